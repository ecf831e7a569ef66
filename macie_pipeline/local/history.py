"""The executions the engine started, read back from Step Functions: status, history, states entered.

Every finished execution's states are counted once in :data:`COVERAGE`, so the tests can tell
which states of a definition no scenario ever entered.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Optional

from .deploy import Deployment
from .results import Execution

# States entered by any engine in this process (tests assert the definition is covered).
COVERAGE: Counter[str] = Counter()


class ExecutionHistory:
    """The ARNs of the executions started so far, and what Step Functions says about each."""

    def __init__(self, deployment: Deployment) -> None:
        self._deployment = deployment
        self.arns: list[str] = []
        self._counted: set[str] = set()  # executions whose states are in COVERAGE
        self._lock = threading.Lock()

    def started(self, arn: str) -> None:
        self.arns.append(arn)

    def status(self, arn: str) -> str:
        return self._deployment.sfn.describe_execution(executionArn=arn)["status"]

    def events(self, arn: str) -> list[dict]:
        """The execution's whole history, every page."""
        events: list[dict] = []
        token = None
        while True:
            kwargs = {"executionArn": arn, "maxResults": 1000}
            if token:
                kwargs["nextToken"] = token
            page = self._deployment.sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events

    def states(self, arn: str, history: Optional[list[dict]] = None) -> list[str]:
        """The states an execution entered, in order."""
        history = self.events(arn) if history is None else history
        return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]

    def execution(self, arn: str) -> Execution:
        description = self._deployment.sfn.describe_execution(executionArn=arn)
        history = self.events(arn)
        states = self.states(arn, history)
        with self._lock:
            if arn not in self._counted and description["status"] != "RUNNING":
                self._counted.add(arn)
                COVERAGE.update(states)
        return Execution(arn, description["status"], description.get("error"), description.get("cause"), states, history)

    def stop_running(self) -> None:
        """Stop the executions still running (the engine is being torn down); best effort."""
        for arn in self.arns:
            try:
                if self.status(arn) == "RUNNING":
                    self._deployment.sfn.stop_execution(executionArn=arn, error="LocalEngine.Stopped", cause="engine stopped")
            except Exception:  # noqa: BLE001 - best effort while tearing down
                pass
