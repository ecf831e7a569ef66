"""The local engine: a synthesized SensitiveDataScanPipeline, deployed into moto and executed offline.

``LocalPipeline`` creates the stack's buckets, keys, topic, table, functions and state machine in
moto, registers the state machine definition exactly as synthesized (intrinsics resolved to the
local resources), and runs executions in moto's Step Functions interpreter: Lambda tasks run the
handlers from their assets in this process, ``aws-sdk:macie2:*`` tasks and the handlers' Macie calls
are served by :class:`~macie_pipeline.local.macie.LocalMacie`, result events and notifications land
in SQS queues where they can be read, and the review API is served on 127.0.0.1 by the review
handler. See :mod:`macie_pipeline.local.patches` for the moto (and boto3) internals this relies on.

``LocalPipeline`` is a facade over one part per concern, each usable on its own:

* :mod:`~macie_pipeline.local.deploy` - the template's resources, created in moto;
* :mod:`~macie_pipeline.local.host` - what moto's patched internals call back into;
* :mod:`~macie_pipeline.local.faults` - faults and hooks a scenario injects;
* :mod:`~macie_pipeline.local.history` - the executions started and their histories;
* :mod:`~macie_pipeline.local.inspection` - events, notifications, stored versions, results;
* :mod:`~macie_pipeline.local.runner` - uploads, trigger events, executions, reviews;
* :mod:`~macie_pipeline.local.invariants` - exactly one place; nothing in the vault unjustified.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Optional

from moto import mock_aws

from . import patches
from .deploy import ZONES, Deployment
from .faults import Faults
from .functions import LOG_SINK
from .history import COVERAGE, ExecutionHistory
from .host import JOB_WAIT_SECONDS, EngineHost
from .inspection import TERMINAL_OUTCOMES, Inspector
from .intake import IntakePump
from .invariants import Invariants
from .macie import MacieBehavior
from .results import Execution, ObjectResult, RunResult, Uploaded
from .runner import DECISIONS, EngineError, Runner
from .template import StackTemplate

# How long a local Macie job runs by default before it completes (in the background).
DEFAULT_JOB_RUN_SECONDS = 0.2

__all__ = [
    "COVERAGE",
    "DECISIONS",
    "TERMINAL_OUTCOMES",
    "ZONES",
    "EngineError",
    "Execution",
    "LocalPipeline",
    "ObjectResult",
    "RunResult",
    "Uploaded",
]


def _forward(part: str, method: Callable[..., Any]) -> Any:
    """A method that calls ``method`` on the facade's ``part`` (keeps its name, signature and docstring)."""
    name = method.__name__

    @functools.wraps(method)
    def forwarded(self: "LocalPipeline", *args: Any, **kwargs: Any) -> Any:
        return getattr(getattr(self, part), name)(*args, **kwargs)

    return forwarded


def _attribute(part: str, name: str, doc: str) -> Any:
    """A read-only property for the attribute ``name`` of the facade's ``part``."""
    return property(lambda self: getattr(getattr(self, part), name), doc=doc)


class LocalPipeline:
    """One synthesized pipeline running in moto. Use as a context manager."""

    def __init__(
        self,
        stack: StackTemplate,
        state_machine_id: str,
        *,
        macie: Optional[MacieBehavior] = None,
        review_wait_seconds: float = 60.0,
        job_wait_seconds: float = JOB_WAIT_SECONDS,
        echo_logs: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.stack = stack
        self.state_machine_id = state_machine_id
        # By default a Macie job runs in the background and ends on its own (its JOB_COMPLETED event
        # resumes the waiting execution); a scenario's MacieBehavior says otherwise.
        self.macie_behavior = macie or MacieBehavior(run_seconds=DEFAULT_JOB_RUN_SECONDS)
        self.uploaded: list[Uploaded] = []  # shared by the parts: the runner appends, the others read
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self.deployment = Deployment(stack, state_machine_id, macie_behavior=self.macie_behavior, echo_logs=echo_logs)
        self.faults = Faults()
        self.host = EngineHost(self.deployment, self.faults, review_wait_seconds, job_wait_seconds)
        self.history = ExecutionHistory(self.deployment, self.host.map_runs)
        self.inspector = Inspector(self.deployment, self.history, self.uploaded)
        self.runner = Runner(self.deployment, self.history, self.inspector, self.uploaded)
        self.invariants = Invariants(self.history, self.inspector, self.uploaded)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "LocalPipeline":
        # moto's interpreter logs every failed state with its whole parse tree: failures are the
        # engine's business (history, events, notifications), not log noise.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        self._mock.start()
        try:
            patches.activate(self.host)
            self.host.route_macie_clients()
            self.deployment.deploy()
            self.pump = IntakePump(self.deployment.sqs, self.host.invoke_function, self.deployment.intake.mappings)
            self.runner.pump = self.pump
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.deployment.server is not None:
                self.deployment.server.stop()
            self.history.stop_running()
            macie = getattr(self.deployment, "macie", None)
            if macie is not None:
                macie.close()
            self.host.unroute_macie_clients()
            LOG_SINK.echo = None
        finally:
            patches.deactivate(self.host)
            self._mock.stop()

    @property
    def review_wait_seconds(self) -> float:
        """How long a review waits for its answer (a review's declared timeout is days)."""
        return self.host.review_wait_seconds

    @review_wait_seconds.setter
    def review_wait_seconds(self, seconds: float) -> None:
        self.host.review_wait_seconds = seconds

    # ------------------------------------------------------------------ the deployment (after __enter__)
    functions = _attribute("deployment", "functions", "Function name -> the LocalFunction that runs it.")
    server = _attribute("deployment", "server", "The local review API.")
    physical = _attribute("deployment", "physical", "Logical id -> local physical name and attributes.")
    resolver = _attribute("deployment", "resolver", "Resolves the template's intrinsics to local resources.")
    definition = _attribute("deployment", "definition", "The state machine definition as registered in moto.")
    macie = _attribute("deployment", "macie", "The local Macie serving the workflow and the handlers.")
    state_machine_arn = _attribute("deployment", "state_machine_arn", "The state machine in moto.")
    zones = _attribute("deployment", "zones", "Zone (ingress, quarantine, review, vault) -> bucket name.")
    trigger_rules = _attribute("deployment", "trigger_rules", "Properties of the rules that start the state machine.")
    _s3 = _attribute("deployment", "s3", "The engine's S3 client (scenarios change objects behind the pipeline's back).")
    review_base_url = _forward("deployment", Deployment.review_base_url)

    # ------------------------------------------------------------------ patches.Host
    waits = _attribute("host", "waits", "(kind, seconds) of every Wait state and retry back-off, not slept.")
    sdk_calls = _attribute("host", "sdk_calls", "(service, operation, parameters) of every Macie call.")
    invoke_function = _forward("host", EngineHost.invoke_function)
    call_sdk_task = _forward("host", EngineHost.call_sdk_task)
    sdk_error_name = _forward("host", EngineHost.sdk_error_name)
    record_wait = _forward("host", EngineHost.record_wait)
    review_timeout = _forward("host", EngineHost.review_timeout)
    callback_timeout = _forward("host", EngineHost.callback_timeout)
    record_map_run = _forward("host", EngineHost.record_map_run)
    observe_calls = _forward("host", EngineHost.observe_calls)

    # ------------------------------------------------------------------ scenario controls
    fail = _forward("faults", Faults.fail)
    fail_call = _forward("faults", Faults.fail_call)
    page_size = _forward("faults", Faults.page_size)
    before_invoke = _forward("faults", Faults.before_invoke)
    after_invoke = _forward("faults", Faults.after_invoke)

    # ------------------------------------------------------------------ objects and executions
    upload = _forward("runner", Runner.upload)
    object_created_event = _forward("runner", Runner.object_created_event)
    scheduled_event = _forward("runner", Runner.scheduled_event)
    deliver = _forward("runner", Runner.deliver)
    start = _forward("runner", Runner.start)
    run = _forward("runner", Runner.run)
    wait = _forward("runner", Runner.wait)
    answer_review = _forward("runner", Runner.answer_review)
    put_object_created_events = _forward("runner", Runner.put_object_created_events)
    pump_intake = _forward("runner", Runner.pump_intake)
    sweep = _forward("runner", Runner.sweep)
    discover_executions = _forward("runner", Runner.discover_executions)
    execution = _forward("history", ExecutionHistory.execution)

    # ------------------------------------------------------------------ what happened
    drain_notifications = _forward("inspector", Inspector.drain_notifications)
    drain_events = _forward("inspector", Inspector.drain_events)
    events = _attribute("inspector", "events", "Every result event so far.")
    notifications = _attribute("inspector", "notifications", "Every notification so far.")
    stored_versions = _forward("inspector", Inspector.stored_versions)
    places_of = _forward("inspector", Inspector.places_of)
    result = _forward("inspector", Inspector.result)

    def set_environment(self, role: str, **values: str) -> None:
        """Change the environment of the ``role`` function (``prepare_scan``...) from now on, as a
        redeployment with another setting would (``LOST_EVENT_AGE_SECONDS="1"``)."""
        found = [f for f in self.deployment.functions.values() if f.role == role]
        if not found:
            raise KeyError(f"no function with the handler module {role!r}")
        for function in found:
            function.environment = {**function.environment, **values}

    def invariant_violations(self, *, delete_allowed: bool = False, stored: Optional[list[dict]] = None) -> list[str]:
        """See :meth:`~macie_pipeline.local.invariants.Invariants.violations`."""
        return self.invariants.violations(delete_allowed=delete_allowed, stored=stored)
