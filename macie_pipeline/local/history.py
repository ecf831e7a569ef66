"""The executions the engine started, read back from Step Functions: status, history, states entered.

Every finished execution's states are counted once in :data:`COVERAGE`, so the tests can tell
which states of a definition no scenario ever entered.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional

from .deploy import Deployment
from .host import MapRun
from .results import Execution


def state_transitions(events: Iterable[dict]) -> int:
    """Billed state transitions in history events: every state entered, plus every task retry."""
    types = Counter(event["type"] for event in events)
    entered = sum(count for kind, count in types.items() if kind.endswith("StateEntered"))
    retries = types["TaskScheduled"] + types["LambdaFunctionScheduled"] - types["TaskStateEntered"]
    return entered + max(0, retries)


@dataclass(frozen=True)
class Transitions:
    """The state transitions of one execution and of the child executions its Distributed Maps ran."""

    parent: int
    children: int
    child_executions: int
    child_events: int

    @property
    def total(self) -> int:
        return self.parent + self.children


def transitions(history: list[dict], map_runs: Iterable[MapRun] = ()) -> Transitions:
    """Count ``history`` (one execution's events) and its ``map_runs`` (see :meth:`ExecutionHistory.map_runs`)."""
    runs = list(map_runs)
    return Transitions(
        parent=state_transitions(history),
        children=sum(state_transitions(run.events) for run in runs),
        child_executions=sum(run.child_executions for run in runs),
        child_events=sum(len(run.events) for run in runs),
    )


# States entered by any engine in this process (tests assert the definition is covered).
COVERAGE: Counter[str] = Counter()


class ExecutionHistory:
    """The ARNs of the executions started so far, and what Step Functions says about each."""

    def __init__(self, deployment: Deployment, map_runs: Optional[dict[str, MapRun]] = None) -> None:
        self._deployment = deployment
        self._map_runs = map_runs if map_runs is not None else {}  # the host's, filled by patch 6
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

    def map_runs(self, arn: str) -> list[MapRun]:
        """The Distributed Map runs of one execution (their children's events included)."""
        return [run for run in list(self._map_runs.values()) if run.execution_arn == arn]

    def transitions(self, arn: str) -> Transitions:
        """State transitions of one execution and of its map runs' children."""
        return transitions(self.events(arn), self.map_runs(arn))

    def states(self, arn: str, history: Optional[list[dict]] = None) -> list[str]:
        """The states an execution entered, in order."""
        history = self.events(arn) if history is None else history
        return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]

    def map_states(self, arn: str) -> list[str]:
        """The states the children of an execution's Distributed Maps entered."""
        return [e["stateEnteredEventDetails"]["name"] for run in self.map_runs(arn) for e in run.events
                if "stateEnteredEventDetails" in e]

    def execution(self, arn: str) -> Execution:
        description = self._deployment.sfn.describe_execution(executionArn=arn)
        history = self.events(arn)
        states = self.states(arn, history)
        children = self.map_states(arn)
        with self._lock:
            if arn not in self._counted and description["status"] != "RUNNING":
                self._counted.add(arn)
                COVERAGE.update(states)
                COVERAGE.update(children)
        return Execution(arn, description["status"], description.get("error"), description.get("cause"), states, history, children)

    def stop_running(self) -> None:
        """Stop the executions still running (the engine is being torn down); best effort."""
        for arn in self.arns:
            try:
                if self.status(arn) == "RUNNING":
                    self._deployment.sfn.stop_execution(executionArn=arn, error="LocalEngine.Stopped", cause="engine stopped")
            except Exception:  # noqa: BLE001 - best effort while tearing down
                pass
