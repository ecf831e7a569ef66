"""The engine's side of the moto patches (:class:`~macie_pipeline.local.patches.Host`), and Macie for the handlers.

moto's patched internals call back into :class:`EngineHost` to run a function (with the scenario's
faults around it), to serve an ``aws-sdk:macie2:*`` task, to name an SDK error as Step Functions
does, to record a wait instead of sleeping, and to shorten a review's wait for its task token. The
handlers' own boto3 Macie calls take the same route to the local Macie (:meth:`EngineHost.route_macie_clients`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

import botocore.client
from botocore.exceptions import ClientError

from ..contract import States
from . import awsmodel
from .deploy import Deployment
from .faults import Faults
from .functions import current_role

# Who made an AWS call (see EngineHost.observe_calls): the workflow's own SDK and service integrations,
# a handler (its role, e.g. "transfer"), or the engine itself (uploads, reading results, the local Macie's reads).
WORKFLOW, ENGINE = "workflow", "engine"
CallObserver = Callable[[str, str, str, dict], None]

# How long the Macie job's backstop (``Wait for Macie job``, declared as the poll interval) waits
# for its task token locally before States.Timeout sends the workflow to describe the job itself.
JOB_WAIT_SECONDS = 3.0
# The ``.waitForTaskToken`` states that wait for Macie rather than for a person.
JOB_WAIT_STATES = frozenset({States.WAIT_FOR_MACIE_JOB})

# Step Functions' spelling of a service in its error names (``Macie2.ThrottlingException``).
_SFN_SERVICE_NAMES = {
    "s3": "S3", "macie2": "Macie2", "sns": "SNS", "sqs": "SQS", "dynamodb": "DynamoDb",
    "events": "EventBridge", "lambda": "Lambda", "kms": "Kms",
}


@dataclass(frozen=True)
class MapRun:
    """One Distributed Map run: its parent execution and its child executions' history events.

    moto records every child of a map run in one event list (interleaved, ids from 1, no
    ``ExecutionStarted``/``ExecutionSucceeded`` per child), so a child is counted, not told apart:
    ``child_executions`` is the map run's execution count, ``events`` the children's events, each
    with its ``type`` as a plain string (as ``GetExecutionHistory`` gives it).
    """

    arn: str
    execution_arn: str
    child_executions: int
    events: list[dict]


def _plain_event(event: Any) -> dict:
    plain = dict(event)
    plain["type"] = str(getattr(plain.get("type"), "value", plain.get("type")))
    return plain


class EngineHost:
    """What the patches delegate to while this engine is active; records waits and Macie calls."""

    def __init__(
        self, deployment: Deployment, faults: Faults, review_wait_seconds: float, job_wait_seconds: float = JOB_WAIT_SECONDS,
    ) -> None:
        self.deployment = deployment
        self.faults = faults
        self.review_wait_seconds = review_wait_seconds
        self.job_wait_seconds = job_wait_seconds
        # Map run ARN -> the map run's parent and child executions (patch 6).
        self.map_runs: dict[str, MapRun] = {}
        self.waits: list[tuple[str, float]] = []
        self.sdk_calls: list[tuple[str, str, dict]] = []
        self._lock = threading.Lock()
        self._original_make_api_call: Any = None
        self._call_observers: list[CallObserver] = []

    # ------------------------------------------------------------------ counting (the benchmark)
    def observe_calls(self, observer: CallObserver) -> None:
        """Call ``observer(caller, service, operation, parameters)`` for every AWS API call made while
        this engine runs, before it is served: the handlers' boto3 calls, the workflow's service and
        ``aws-sdk`` integrations (``caller`` is :data:`WORKFLOW`) and the engine's own (:data:`ENGINE`).
        Counting only: the call goes on unchanged."""
        self._call_observers.append(observer)

    def _observe(self, caller: str, service: str, operation: str, parameters: dict) -> None:
        for observer in self._call_observers:
            observer(caller, service, operation, parameters)

    def _caller(self, client: Any) -> str:
        deployment = self.deployment
        if any(client is getattr(deployment, name, None) for name in ("s3", "sfn", "sqs", "sns", "events")):
            return ENGINE
        return current_role() or WORKFLOW

    # ------------------------------------------------------------------ patches.Host
    def invoke_function(self, function_name: str, payload: Any) -> tuple[str, bool, str]:
        function = self.deployment.functions.get(function_name)
        if function is None:
            body = json.dumps({"errorType": "ResourceNotFoundException", "errorMessage": f"no local function {function_name}"})
            return body, True, ""
        event = json.loads(payload) if isinstance(payload, (str, bytes)) else payload
        role = function.role
        result, error, logs = function.invoke(
            event,
            lambda evt: self.faults.before(role, evt),
            lambda res: self.faults.after(role, res),
        )
        if error is not None:
            return json.dumps(error), True, logs
        return json.dumps(result), False, logs

    def call_sdk_task(self, service: str, action: str, parameters: dict) -> Optional[dict]:
        if service != "macie2":
            return None
        operation = awsmodel.operation_for_action(service, action).name
        self._observe(WORKFLOW, service, operation, parameters)
        self.faults.raise_call_fault(service, operation, parameters)
        params = awsmodel.sfn_params_to_api(service, action, parameters)
        wire = self.call_macie(operation, params)
        return awsmodel.api_output_to_sfn(service, action, wire)

    def sdk_error_name(self, service: str, error: ClientError) -> Optional[str]:
        """The error name Step Functions gives an AWS SDK integration's error.

        ``<Service>.<ErrorCode>`` with an ``Exception`` suffix for errors the service's API model
        declares (``Macie2.ThrottlingException``, ``S3.NoSuchKeyException``), and
        ``<Service>.<Service>Exception`` for the rest (``S3.S3Exception`` for S3's undeclared
        ``InternalError`` or ``SlowDown``): Step Functions runs these integrations on the AWS SDK for
        Java 2.x, which raises its generic service exception for error codes it has no class for.
        """
        code = str(error.response.get("Error", {}).get("Code") or "")
        if not code:
            return None
        prefix = _SFN_SERVICE_NAMES.get(service.lower(), service[:1].upper() + service[1:])
        if awsmodel.is_modeled_error(awsmodel.botocore_service_name(service), code):
            return f"{prefix}.{code}" + ("" if code.endswith("Exception") else "Exception")
        return f"{prefix}.{prefix}Exception"

    def record_wait(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.waits.append((kind, float(seconds)))

    def callback_timeout(self, state_name: str, declared: int) -> float:
        """The seconds a ``.waitForTaskToken`` state waits here: the job backstop's window for the
        Macie job wait, the review window for anything else (a person), never more than declared
        (fractions allowed: a scenario that polls a paused job 34 times waits 34 short windows)."""
        window = self.job_wait_seconds if state_name in JOB_WAIT_STATES else self.review_wait_seconds
        return max(0.05, float(min(declared, window)))

    def review_timeout(self, declared: int) -> float:
        return self.callback_timeout("", declared)

    def record_map_run(self, execution_arn: str, map_run_arn: str, child_executions: int, child_events: list) -> None:
        run = MapRun(map_run_arn, execution_arn, child_executions, [_plain_event(e) for e in child_events])
        with self._lock:
            self.map_runs[map_run_arn] = run

    # ------------------------------------------------------------------ Macie
    def call_macie(self, operation: str, params: dict) -> dict:
        """Validate the call against Macie's API model, record it in :attr:`sdk_calls`, and serve it."""
        awsmodel.validate_input("macie2", operation, params)
        with self._lock:
            self.sdk_calls.append(("macie2", operation, json.loads(json.dumps(params, default=str))))
        return self.deployment.macie.call(operation, params)

    def route_macie_clients(self) -> None:
        """Send every boto3 client's ``macie2`` calls to the local Macie, and let call faults fire on any service."""
        host = self
        original = botocore.client.BaseClient._make_api_call
        self._original_make_api_call = original

        def _make_api_call(client: Any, operation_name: str, api_params: dict) -> Any:
            service = client.meta.service_model.service_name
            if host._call_observers:
                host._observe(host._caller(client), service, operation_name, api_params)
            host.faults.raise_call_fault(service, operation_name, api_params)
            api_params = host.faults.shape_call(service, operation_name, api_params)
            if service != "macie2":
                return original(client, operation_name, api_params)
            wire = host.call_macie(operation_name, api_params)
            return awsmodel.parse_wire_output("macie2", operation_name, wire)

        botocore.client.BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]

    def unroute_macie_clients(self) -> None:
        if self._original_make_api_call is not None:
            botocore.client.BaseClient._make_api_call = self._original_make_api_call  # type: ignore[method-assign]
            self._original_make_api_call = None
