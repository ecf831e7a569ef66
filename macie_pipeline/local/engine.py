"""The local engine: a synthesized SensitiveDataScanPipeline, deployed into moto and executed offline.

``LocalPipeline`` creates the stack's buckets, keys, topic, table, functions and state machine in
moto, registers the state machine definition exactly as synthesized (intrinsics resolved to the
local resources), and runs executions in moto's Step Functions interpreter: Lambda tasks run the
handlers from their assets in this process, ``aws-sdk:macie2:*`` tasks and the handlers' Macie calls
are served by :class:`~macie_pipeline.local.macie.LocalMacie`, result events and notifications land
in SQS queues where they can be read, and the review API is served on 127.0.0.1 by the review
handler. See :mod:`macie_pipeline.local.patches` for the five moto internals this relies on.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import boto3
import botocore.client
from botocore.exceptions import ClientError
from moto import mock_aws

from ..asl import walk_states
from ..workflow import EVENT_SOURCE
from . import awsmodel, patches
from .detection import DEFAULT_MAXIMUM_MATCH_DISTANCE
from .functions import CURRENT, LOG_SINK, InjectedFault, LocalFunction, layer_is_pure_python
from .macie import LocalMacie, MacieBehavior
from .review_server import ReviewServer
from .template import (
    ACCOUNT,
    ALLOW_LIST,
    BUCKET,
    CUSTOM_IDENTIFIER,
    EVENT_BUS,
    FUNCTION,
    KEY,
    LAYER,
    REGION,
    RULE,
    TABLE,
    TOPIC,
    Physical,
    Resolver,
    StackTemplate,
    TemplateError,
    physical_names,
)

ZONES = ("ingress", "quarantine", "review", "vault")
TERMINAL_OUTCOMES = ("VAULT", "REVIEW_PENDING", "QUARANTINED", "APPROVED", "DENIED", "DELETED", "FAILED")
DECISIONS = ("approve", "deny", "none", "manual")
_ENGINE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/local-engine"
_SFN_SERVICE_NAMES = {"s3": "S3", "macie2": "Macie2", "sns": "SNS", "sqs": "SQS", "dynamodb": "DynamoDb", "events": "EventBridge", "lambda": "Lambda", "kms": "Kms"}


class EngineError(RuntimeError):
    """The engine could not run the pipeline (the message says why)."""


# --------------------------------------------------------------------------------------- results
@dataclass
class Uploaded:
    key: str
    version_id: str
    etag: str
    size: int
    sha256: str


@dataclass
class ObjectResult:
    """Where one uploaded object ended, and what the pipeline said about it."""

    key: str
    version_id: str
    outcome: Optional[str]
    integrity: Optional[str]
    findings: dict[str, int]
    verdict: Optional[str]
    zone: Optional[str]
    bucket: Optional[str]
    final_key: Optional[str]
    tags: dict[str, str]
    review: Optional[dict] = None

    def as_json(self) -> dict:
        return {
            "key": self.key,
            "integrity": self.integrity,
            "findings": self.findings,
            "verdict": self.verdict,
            "bucket": self.bucket,
            "final_key": self.final_key,
            "tags": self.tags,
            "zone": self.zone,
            "outcome": self.outcome,
        }


@dataclass
class Execution:
    arn: str
    status: str
    error: Optional[str]
    cause: Optional[str]
    states: list[str]
    history: list[dict]


@dataclass
class RunResult:
    objects: list[ObjectResult]
    executions: list[Execution]
    events: list[dict]
    notifications: list[dict]

    def by_key(self, key: str) -> ObjectResult:
        matches = [o for o in self.objects if o.key == key]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} results for key {key!r}")
        return matches[0]


# ---------------------------------------------------------------------------------- the engine
_FAULT_LOCK = threading.Lock()


@dataclass
class _Countdown:
    """When an injected fault fires: after ``skip`` matching calls, for ``times`` calls (None: always)."""

    times: Optional[int]
    skip: int

    def fires(self) -> bool:
        with _FAULT_LOCK:  # moto runs Map iterations and Parallel branches in threads
            if self.skip > 0:
                self.skip -= 1
                return False
            if self.times is None:
                return True
            if self.times > 0:
                self.times -= 1
                return True
            return False


@dataclass
class _Fault(_Countdown):
    error_type: str = "RuntimeError"
    message: str = ""


@dataclass
class _CallFault(_Countdown):
    code: str = ""
    caller: str = "workflow"  # workflow | handlers | any
    status: int = 500

    def applies(self) -> bool:
        in_handler = getattr(CURRENT, "role", None) is not None
        if self.caller == "workflow" and in_handler or self.caller == "handlers" and not in_handler:
            return False
        return self.fires()


class LocalPipeline:
    """One synthesized pipeline running in moto. Use as a context manager."""

    def __init__(
        self,
        stack: StackTemplate,
        state_machine_id: str,
        *,
        macie: Optional[MacieBehavior] = None,
        review_wait_seconds: float = 60.0,
        echo_logs: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.stack = stack
        self.state_machine_id = state_machine_id
        self.macie_behavior = macie or MacieBehavior()
        self.review_wait_seconds = review_wait_seconds
        self._echo_logs = echo_logs
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self.functions: dict[str, LocalFunction] = {}
        self.waits: list[tuple[str, float]] = []
        self.sdk_calls: list[tuple[str, str, dict]] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._hooks: dict[str, list[Callable[[Any], None]]] = {}
        self._after: dict[str, list[Callable[[Any], Any]]] = {}
        self._call_faults: dict[tuple[str, str], list[_CallFault]] = {}
        self._events: list[dict] = []
        self._notifications: list[dict] = []
        self._executions: list[str] = []
        self._counted: set[str] = set()  # executions whose states are in COVERAGE
        self._state_lock = threading.Lock()
        self.uploaded: list[Uploaded] = []
        self._original_make_api_call = None
        self.server: Optional[ReviewServer] = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "LocalPipeline":
        # moto's interpreter logs every failed state with its whole parse tree: failures are the
        # engine's business (history, events, notifications), not log noise.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        self._mock.start()
        try:
            patches.activate(self)
            self._install_macie_client_route()
            self._deploy()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.server is not None:
                self.server.stop()
            for arn in self._executions:
                try:
                    if self._sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                        self._sfn.stop_execution(executionArn=arn, error="LocalEngine.Stopped", cause="engine stopped")
                except Exception:  # noqa: BLE001 - best effort while tearing down
                    pass
            self._remove_macie_client_route()
            LOG_SINK.echo = None
        finally:
            patches.deactivate(self)
            self._mock.stop()

    # ------------------------------------------------------------------ deployment
    def _deploy(self) -> None:
        stack = self.stack
        self.physical: dict[str, Physical] = physical_names(stack)
        self._session = session = boto3.session.Session(region_name=REGION)
        self._s3 = session.client("s3")
        self._sfn = session.client("stepfunctions")
        self._sqs = session.client("sqs")
        self._sns = session.client("sns")
        self._events_client = session.client("events")
        iam = session.client("iam")
        iam.create_role(RoleName="local-engine", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))

        kms = session.client("kms")
        for logical in stack.of_type(KEY):
            key = kms.create_key(Description=f"local {logical}")["KeyMetadata"]
            self.physical[logical] = Physical(key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})
        self.resolver = Resolver(stack, self.physical)
        resolve = self.resolver.resolve

        self.server = ReviewServer(self)
        self.server.start()

        for logical, resource in stack.of_type(BUCKET).items():
            self._create_bucket(self.physical[logical].ref, resolve(resource.get("Properties") or {}))
        for logical, resource in stack.of_type(TABLE).items():
            self._create_table(self.physical[logical].ref, resolve(resource.get("Properties") or {}))
        self._notification_queue = self._queue("local-engine-notifications")
        for logical in stack.of_type(TOPIC):
            topic_arn = self._sns.create_topic(Name=self.physical[logical].attributes["TopicName"])["TopicArn"]
            self._sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=self._queue_arn(self._notification_queue))
        for logical, resource in stack.of_type(EVENT_BUS).items():
            self._events_client.create_event_bus(Name=self.physical[logical].ref)

        self.definition = self._definition()
        self._create_functions()
        self._create_macie()
        self._capture_result_events()
        sm = stack.resources[self.state_machine_id]
        self.state_machine_arn = self._sfn.create_state_machine(
            name=self.physical[self.state_machine_id].attributes["Name"],
            definition=json.dumps(self.definition),
            roleArn=_ENGINE_ROLE,
            type=(sm.get("Properties") or {}).get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        self.zones = self._zones()
        for zone, bucket in self.zones.items():
            self._ensure_bucket(bucket)  # an imported (bring-your-own) bucket is not in the template
        self.trigger_rules = self._trigger_rules()

    def review_base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def _definition(self) -> dict:
        props = self.stack.resources[self.state_machine_id].get("Properties") or {}
        text = self.resolver.resolve(props.get("DefinitionString"))
        if not isinstance(text, str):
            raise TemplateError("The state machine has no DefinitionString")
        substitutions = self.resolver.resolve(props.get("DefinitionSubstitutions") or {})
        for name, value in substitutions.items():
            text = text.replace("${" + name + "}", str(value))
        return json.loads(text)

    def _queue(self, name: str) -> str:
        return self._sqs.create_queue(QueueName=name)["QueueUrl"]

    def _queue_arn(self, url: str) -> str:
        return self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def _create_bucket(self, name: str, props: Mapping[str, Any]) -> None:
        kwargs: dict[str, Any] = {"Bucket": name}
        if props.get("ObjectLockEnabled"):
            kwargs["ObjectLockEnabledForBucket"] = True
        self._s3.create_bucket(**kwargs)
        if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled" or props.get("ObjectLockEnabled"):
            self._s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        rules = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")
        if rules:  # CloudFormation's rules, in the API's names
            api_rules = [
                {k: v for k, v in {"ApplyServerSideEncryptionByDefault": r.get("ServerSideEncryptionByDefault"),
                                   "BucketKeyEnabled": r.get("BucketKeyEnabled")}.items() if v is not None}
                for r in rules
            ]
            self._s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": api_rules})
        lock = props.get("ObjectLockConfiguration")
        if lock and lock.get("Rule"):
            self._s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock)

    def _ensure_bucket(self, name: str) -> None:
        try:
            self._s3.head_bucket(Bucket=name)
        except ClientError:
            # An imported bucket, not created by the template: created empty, versioned.
            self._create_bucket(name, {"VersioningConfiguration": {"Status": "Enabled"}})

    def _create_table(self, name: str, props: Mapping[str, Any]) -> None:
        self._session.client("dynamodb").create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )

    def _create_functions(self) -> None:
        lam = self._session.client("lambda")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("index.py", "# runs in process: see macie_pipeline.local.functions\n")
        layer_dirs: dict[str, Path] = {}
        for logical in self.stack.of_type(LAYER):
            folder = self.stack.asset_dir(logical)
            if folder is not None:
                layer_dirs[self.physical[logical].ref] = folder / "python" if (folder / "python").is_dir() else folder
        for logical, resource in self.stack.of_type(FUNCTION).items():
            props = resource.get("Properties") or {}
            runtime = str(props.get("Runtime", ""))
            code_dir = self.stack.asset_dir(logical)
            if not runtime.startswith("python") or code_dir is None:
                continue  # e.g. CDK's Node.js custom-resource provider: deployment plumbing, not the pipeline
            environment = {k: str(v) for k, v in self.resolver.resolve((props.get("Environment") or {}).get("Variables") or {}).items()}
            if "REVIEW_API_URL" in environment:
                environment["REVIEW_API_URL"] = self.review_base_url()
            pure, substituted = [], []
            for layer_arn in self.resolver.resolve(props.get("Layers") or []):
                folder = layer_dirs.get(layer_arn)
                if folder is None:
                    substituted.append(f"{layer_arn} (not in the assembly)")
                elif layer_is_pure_python(folder):
                    pure.append(folder)
                else:
                    substituted.append(f"{folder.parent.name} (compiled for Lambda; local packages used)")
            name = self.physical[logical].ref
            self.functions[name] = LocalFunction(
                logical_id=logical,
                name=name,
                handler=props["Handler"],
                environment=environment,
                code_dir=code_dir,
                layer_dirs=pure,
                substituted_layers=substituted,
                memory_mb=int(props.get("MemorySize", 128)),
                timeout_seconds=int(props.get("Timeout", 3)),
            )
            lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=_ENGINE_ROLE,
                Handler=props["Handler"],
                Code={"ZipFile": buffer.getvalue()},
                Timeout=int(props.get("Timeout", 3)),
                MemorySize=int(props.get("MemorySize", 128)),
            )
        if not self.functions:
            raise TemplateError("The template has no Python Lambda functions with local assets")
        LOG_SINK.echo = self._echo_logs

    def _create_macie(self) -> None:
        from .detection import AllowListSpec, CustomIdentifierSpec

        identifiers = []
        for logical, resource in self.stack.of_type(CUSTOM_IDENTIFIER).items():
            props = self.resolver.resolve(resource.get("Properties") or {})
            attrs = self.physical[logical].attributes
            identifiers.append(CustomIdentifierSpec(
                id=attrs["Id"], arn=attrs["Arn"], name=props["Name"], regex=props["Regex"],
                keywords=tuple(props.get("Keywords") or ()), ignore_words=tuple(props.get("IgnoreWords") or ()),
                maximum_match_distance=int(props.get("MaximumMatchDistance", DEFAULT_MAXIMUM_MATCH_DISTANCE)),
            ))
        allow_lists = []
        for logical, resource in self.stack.of_type(ALLOW_LIST).items():
            props = self.resolver.resolve(resource.get("Properties") or {})
            attrs = self.physical[logical].attributes
            criteria = props.get("Criteria") or {}
            words: Optional[tuple[str, ...]] = None
            source: Optional[tuple[str, str]] = None
            if criteria.get("S3WordsList"):
                location = criteria["S3WordsList"]
                source = (location["BucketName"], location["ObjectKey"])
                body = self._s3.get_object(Bucket=source[0], Key=source[1])["Body"].read()
                words = tuple(line.strip() for line in body.decode("utf-8").splitlines() if line.strip())
            allow_lists.append(AllowListSpec(id=attrs["Id"], arn=attrs["Arn"], name=props["Name"], regex=criteria.get("Regex"), words=words, s3_words_list=source))
        self.macie = LocalMacie(
            account_id=ACCOUNT,
            region=REGION,
            s3_client=self._s3,
            custom_identifiers=identifiers,
            allow_lists=allow_lists,
            behavior=self.macie_behavior,
        )
        configured = False
        for logical, resource in self.stack.of_type("Custom::AWS").items():
            create = (resource.get("Properties") or {}).get("Create")
            if create is None:
                continue
            call = json.loads(self.resolver.resolve(create))
            if str(call.get("service", "")).lower() == "macie2" and call.get("action") == "putClassificationExportConfiguration":
                params = awsmodel.sfn_params_to_api("macie2", "PutClassificationExportConfiguration", call.get("parameters") or {})
                self.macie.call("PutClassificationExportConfiguration", params)
                configured = True
        if not configured:
            # The account's classification export configuration is outside the stack: simulate one.
            bucket = "local-macie-discovery-results"
            self._create_bucket(bucket, {"VersioningConfiguration": {"Status": "Enabled"}})
            key_arn = self._session.client("kms").create_key(Description="local Macie discovery results")["KeyMetadata"]["Arn"]
            self.macie.call("PutClassificationExportConfiguration", {"configuration": {"s3Destination": {"bucketName": bucket, "keyPrefix": "macie", "kmsKeyArn": key_arn}}})

    def _capture_result_events(self) -> None:
        self._event_queue = self._queue("local-engine-result-events")
        buses = {"default"}
        for _, _, state in walk_states(self.definition.get("States") or {}):
            for entry in ((state.get("Parameters") or {}).get("Entries") or []):
                bus = entry.get("EventBusName")
                if isinstance(bus, str):
                    buses.add(bus.rsplit("/", 1)[-1])
        for index, bus in enumerate(sorted(buses)):
            if bus != "default":
                try:
                    self._events_client.create_event_bus(Name=bus)
                except ClientError:
                    pass  # created from the template already
            rule = f"local-engine-capture-{index}"
            self._events_client.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
            self._events_client.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "capture", "Arn": self._queue_arn(self._event_queue)}])

    def _zones(self) -> dict[str, str]:
        """Zone -> bucket name, read from the definition and the prepare function (not guessed)."""
        zones: dict[str, str] = {}
        wanted = {"Copy to quarantine": "quarantine", "Promote to vault": "vault", "Hold for review": "review"}
        for _, name, state in walk_states(self.definition.get("States") or {}):
            if name in wanted:
                payload = (state.get("Parameters") or {}).get("Payload") or {}
                bucket = (payload.get("destination") or {}).get("bucket")
                if isinstance(bucket, str):
                    zones[wanted[name]] = bucket
        for function in self.functions.values():
            if function.role == "prepare_scan" and function.environment.get("INGRESS_BUCKET"):
                zones["ingress"] = function.environment["INGRESS_BUCKET"]
        missing = [z for z in ZONES if z not in zones]
        if missing:
            raise TemplateError(f"Cannot find the {', '.join(missing)} bucket(s) of the pipeline in the definition")
        return zones

    def _trigger_rules(self) -> list[dict]:
        rules = []
        for logical, resource in self.stack.of_type(RULE).items():
            props = self.resolver.resolve(resource.get("Properties") or {})
            if any(t.get("Arn") == self.state_machine_arn or t.get("Arn") == self.physical[self.state_machine_id].ref for t in props.get("Targets") or []):
                rules.append(props)
        return rules

    # ------------------------------------------------------------------ Macie for the handlers' boto3 clients
    def _install_macie_client_route(self) -> None:
        engine = self
        original = botocore.client.BaseClient._make_api_call
        self._original_make_api_call = original

        def _make_api_call(client: Any, operation_name: str, api_params: dict) -> Any:
            service = client.meta.service_model.service_name
            engine._raise_call_fault(service, operation_name)
            if service != "macie2":
                return original(client, operation_name, api_params)
            wire = engine._call_macie(operation_name, api_params)
            return awsmodel.parse_wire_output("macie2", operation_name, wire)

        botocore.client.BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]

    def _remove_macie_client_route(self) -> None:
        if self._original_make_api_call is not None:
            botocore.client.BaseClient._make_api_call = self._original_make_api_call  # type: ignore[method-assign]
            self._original_make_api_call = None

    # ------------------------------------------------------------------ patches.Host
    def invoke_function(self, function_name: str, payload: Any) -> tuple[str, bool, str]:
        function = self.functions.get(function_name)
        if function is None:
            body = json.dumps({"errorType": "ResourceNotFoundException", "errorMessage": f"no local function {function_name}"})
            return body, True, ""
        event = json.loads(payload) if isinstance(payload, (str, bytes)) else payload

        def before(evt: Any) -> None:
            for hook in self._hooks.get(function.role, []):
                hook(evt)
            for injected in self._faults.get(function.role, []):
                if injected.fires():
                    raise InjectedFault(injected.error_type, injected.message)

        def after(result: Any) -> Any:
            for hook in self._after.get(function.role, []):
                result = hook(result)
            return result

        result, error, logs = function.invoke(event, before, after)
        if error is not None:
            return json.dumps(error), True, logs
        return json.dumps(result), False, logs

    def call_sdk_task(self, service: str, action: str, parameters: dict) -> Optional[dict]:
        if service != "macie2":
            return None
        operation = awsmodel.operation_for_action(service, action).name
        self._raise_call_fault(service, operation)
        params = awsmodel.sfn_params_to_api(service, action, parameters)
        wire = self._call_macie(operation, params)
        return awsmodel.api_output_to_sfn(service, action, wire)

    def _call_macie(self, operation: str, params: dict) -> dict:
        """Validate the call against Macie's API model, record it in :attr:`sdk_calls`, and serve it."""
        awsmodel.validate_input("macie2", operation, params)
        with self._state_lock:
            self.sdk_calls.append(("macie2", operation, json.loads(json.dumps(params, default=str))))
        return self.macie.call(operation, params)

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
        with self._state_lock:
            self.waits.append((kind, float(seconds)))

    def review_timeout(self, declared: int) -> int:
        return max(1, int(min(declared, self.review_wait_seconds)))

    # ------------------------------------------------------------------ scenario controls
    def fail(self, role: str, error_type: str = "RuntimeError", *, times: Optional[int] = None, message: str = "fault injected by the local engine") -> None:
        """Make the ``role`` function (``transfer``, ``evaluate_findings``...) raise ``error_type``."""
        self._faults.setdefault(role, []).append(_Fault(times=times, skip=0, error_type=error_type, message=message))

    def before_invoke(self, role: str, hook: Callable[[Any], None]) -> None:
        """Call ``hook(event)`` before each invocation of the ``role`` function (it may change S3)."""
        self._hooks.setdefault(role, []).append(hook)

    def after_invoke(self, role: str, hook: Callable[[Any], Any]) -> None:
        """Replace the ``role`` function's result with ``hook(result)`` (a faulty handler)."""
        self._after.setdefault(role, []).append(hook)

    def fail_call(
        self, service: str, operation: str, code: str, *, times: Optional[int] = None, skip: int = 0,
        caller: str = "workflow", status: int = 500,
    ) -> None:
        """Make AWS calls (botocore names: ``events``/``PutEvents``) fail with ``code``.

        ``caller``: ``workflow`` (the state machine's own integrations), ``handlers`` or ``any``;
        ``skip``: let that many matching calls succeed first; ``times``: fail that many (default: all).
        """
        if caller not in ("workflow", "handlers", "any"):
            raise ValueError("caller must be workflow, handlers or any")
        self._call_faults.setdefault((service, operation), []).append(
            _CallFault(times=times, skip=skip, code=code, caller=caller, status=status)
        )

    def _raise_call_fault(self, service: str, operation: str) -> None:
        for injected in self._call_faults.get((service, operation), []):
            if injected.applies():
                raise ClientError(
                    {"Error": {"Code": injected.code, "Message": "fault injected by the local engine"},
                     "ResponseMetadata": {"HTTPStatusCode": injected.status, "RequestId": "local"}},
                    operation,
                )

    # ------------------------------------------------------------------ objects and executions
    def upload(self, key: str, body: bytes, **kwargs: Any) -> Uploaded:
        response = self._s3.put_object(Bucket=self.zones["ingress"], Key=key, Body=body, **kwargs)
        uploaded = Uploaded(key, response["VersionId"], response["ETag"].strip('"'), len(body), hashlib.sha256(body).hexdigest())
        self.uploaded.append(uploaded)
        return uploaded

    def object_created_event(self, uploaded: Uploaded) -> dict:
        """The EventBridge event S3 sends for the upload (detail as documented for "Object Created")."""
        bucket = self.zones["ingress"]
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": ACCOUNT,
            "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket},
                "object": {"key": uploaded.key, "size": uploaded.size, "etag": uploaded.etag, "version-id": uploaded.version_id, "sequencer": uuid.uuid4().hex[:18].upper()},
                "request-id": uuid.uuid4().hex[:16].upper(),
                "requester": ACCOUNT,
                "source-ip-address": "127.0.0.1",
                "reason": "PutObject",
            },
        }

    def scheduled_event(self) -> dict:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/local-schedule"],
            "detail": {},
        }

    def deliver(self, event: dict) -> Optional[str]:
        """Send an event through the trigger rules as EventBridge would: an execution if one matches."""
        from moto.events.models import EventPattern

        for rule in self.trigger_rules:
            if "EventPattern" in rule and EventPattern.load(json.dumps(rule["EventPattern"])).matches_event(event):
                return self.start(event)
            if "ScheduleExpression" in rule and event.get("detail-type") == "Scheduled Event":
                return self.start(event)
        return None

    def start(self, event: Any) -> str:
        arn = self._sfn.start_execution(stateMachineArn=self.state_machine_arn, name=str(uuid.uuid4()), input=json.dumps(event))["executionArn"]
        self._executions.append(arn)
        return arn

    def run(
        self,
        files: Mapping[str, bytes],
        *,
        decision: str = "approve",
        schedule: bool = False,
        timeout: float = 120.0,
    ) -> RunResult:
        """Upload ``files`` (key -> bytes), run the pipeline on them, answer reviews, and report."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
        uploaded = [self.upload(key, body) for key, body in files.items()]
        started: list[str] = []
        if schedule:
            arn = self.deliver(self.scheduled_event())
            if arn is None:
                raise EngineError("The pipeline has no schedule trigger (it is triggered on object created)")
            started.append(arn)
        else:
            for item in uploaded:
                arn = self.deliver(self.object_created_event(item))
                if arn is not None:
                    started.append(arn)
        finished = self.wait(started, decision=decision, timeout=timeout)
        return self.result([u.version_id for u in uploaded], finished)

    def wait(self, executions: Sequence[str], *, decision: str = "approve", timeout: float = 120.0) -> list[Execution]:
        """Drive executions to their end, answering review requests as ``decision`` says."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.drain_notifications():
                if message.get("event") == "REVIEW_REQUESTED" and decision in ("approve", "deny"):
                    self.answer_review(message["link"], decision)
            statuses = [self._sfn.describe_execution(executionArn=arn)["status"] for arn in executions]
            if all(s != "RUNNING" for s in statuses):
                break
            if time.monotonic() > deadline:
                running = [a for a, s in zip(executions, statuses) if s == "RUNNING"]
                details = "; ".join(f"{a.rsplit(':', 1)[-1]} last in {self._states(a)[-1:]}" for a in running)
                raise EngineError(f"{len(running)} execution(s) still running after {timeout:.0f} s: {details}")
            time.sleep(0.05)
        self.drain_notifications()
        self.drain_events()
        return [self.execution(arn) for arn in executions]

    # ------------------------------------------------------------------ reviews
    def answer_review(self, link: str, decision: str) -> tuple[int, str]:
        """Open the link as a reviewer would (GET), then POST the decision. Returns the POST's status and page."""
        with urllib.request.urlopen(link, timeout=30) as page:
            if page.status != 200:
                raise EngineError(f"The review page answered {page.status}")
        data = urllib.parse.urlencode({"decision": decision}).encode()
        request = urllib.request.Request(link, data=data, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    # ------------------------------------------------------------------ what happened
    def drain_notifications(self) -> list[dict]:
        """New SNS messages: ``{"subject", "event", "message", "link"?}`` (also kept in :attr:`notifications`)."""
        out = []
        for body in self._drain(self._notification_queue):
            envelope = json.loads(body)
            attributes = envelope.get("MessageAttributes") or {}
            event = (attributes.get("event") or {}).get("Value")
            message = envelope.get("Message", "")
            item = {"subject": envelope.get("Subject"), "event": event, "message": message}
            link = re.search(re.escape(self.review_base_url()) + r"reviews/[A-Za-z0-9_-]+", message)
            if link:
                item["link"] = link.group(0)
            out.append(item)
        with self._state_lock:
            self._notifications.extend(out)
        return out

    def drain_events(self) -> list[dict]:
        events = [json.loads(body) for body in self._drain(self._event_queue)]
        with self._state_lock:
            self._events.extend(events)
        return events

    def _drain(self, queue_url: str) -> list[str]:
        bodies = []
        while True:
            messages = self._sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages") or []
            if not messages:
                return bodies
            for message in messages:
                bodies.append(message["Body"])
                self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    @property
    def events(self) -> list[dict]:
        self.drain_events()
        return list(self._events)

    @property
    def notifications(self) -> list[dict]:
        self.drain_notifications()
        return list(self._notifications)

    def _history(self, arn: str) -> list[dict]:
        events: list[dict] = []
        token = None
        while True:
            kwargs = {"executionArn": arn, "maxResults": 1000}
            if token:
                kwargs["nextToken"] = token
            page = self._sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events

    def _states(self, arn: str, history: Optional[list[dict]] = None) -> list[str]:
        """The states an execution entered, in order."""
        history = self._history(arn) if history is None else history
        return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]

    def execution(self, arn: str) -> Execution:
        description = self._sfn.describe_execution(executionArn=arn)
        history = self._history(arn)
        states = self._states(arn, history)
        with self._state_lock:
            if arn not in self._counted and description["status"] != "RUNNING":
                self._counted.add(arn)
                COVERAGE.update(states)
        return Execution(arn, description["status"], description.get("error"), description.get("cause"), states, history)

    def stored_versions(self) -> list[dict]:
        """Every object version (not delete markers) in the four zones: zone, bucket, key, version, sha256, tags."""
        found = []
        for zone, bucket in self.zones.items():
            paginator = self._s3.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=bucket):
                for version in page.get("Versions") or []:
                    body = self._s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
                    tags = self._s3.get_object_tagging(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["TagSet"]
                    found.append({
                        "zone": zone,
                        "bucket": bucket,
                        "key": version["Key"],
                        "versionId": version["VersionId"],
                        "isLatest": version["IsLatest"],
                        "sha256": hashlib.sha256(body).hexdigest(),
                        "tags": {t["Key"]: t["Value"] for t in tags},
                    })
        return found

    def places_of(self, uploaded: Uploaded, stored: Optional[list[dict]] = None) -> list[dict]:
        """Where the uploaded version's bytes are now, under the keys the workflow gives it.

        Ingress: the same version. Vault: the same key. Quarantine: ``scans/<scan-id>/<key>`` or
        ``denied/<scan-id>/<key>``. Review: ``<scan-id>/<key>``. Same bytes under another key are
        another object, not this one.
        """
        stored = self.stored_versions() if stored is None else stored
        scan = r"[A-Za-z0-9_-]{1,64}/" + re.escape(uploaded.key)
        shapes = {
            "quarantine": re.compile(r"(?:scans|denied)/" + scan),
            "review": re.compile(scan),
        }
        places = []
        for s in stored:
            if s["sha256"] != uploaded.sha256:
                continue
            if s["zone"] == "ingress":
                ok = s["key"] == uploaded.key and s["versionId"] == uploaded.version_id
            elif s["zone"] == "vault":
                ok = s["key"] == uploaded.key
            else:
                ok = bool(shapes[s["zone"]].fullmatch(s["key"]))
            if ok:
                places.append(s)
        return places

    def result(self, version_ids: Iterable[str], executions: Sequence[str | Execution]) -> RunResult:
        """Where the uploads with these ingress version ids ended, and what the executions did.

        ``executions``: execution ARNs (looked up now) or finished :class:`Execution` objects, as
        :meth:`wait` returns them (used as they are).
        """
        events = self.events
        stored = self.stored_versions()
        wanted = set(version_ids)
        objects = []
        for uploaded in self.uploaded:
            if uploaded.version_id not in wanted:
                continue
            mine = [
                e["detail"] for e in events
                if (e.get("detail") or {}).get("object", {}).get("key") == uploaded.key
                and (e.get("detail") or {}).get("object", {}).get("versionId") == uploaded.version_id
                and (e.get("detail") or {}).get("outcome") in TERMINAL_OUTCOMES
            ]
            last = mine[-1] if mine else {}
            places = self.places_of(uploaded, stored)
            place = places[0] if len(places) == 1 else None
            findings = (last.get("findings") or {}).get("types") or {}
            objects.append(ObjectResult(
                key=uploaded.key,
                version_id=uploaded.version_id,
                outcome=last.get("outcome") or ("NOT_SCANNED" if not mine else None),
                integrity=(last.get("integrity") or {}).get("status"),
                findings={str(k): int(v) for k, v in findings.items()},
                verdict=last.get("verdict"),
                zone=place["zone"] if place else ("deleted" if not places else "several"),
                bucket=place["bucket"] if place else None,
                final_key=place["key"] if place else None,
                tags=place["tags"] if place else {},
                review=last.get("review"),
            ))
        finished = [e if isinstance(e, Execution) else self.execution(e) for e in executions]
        return RunResult(objects, finished, events, self.notifications)

    # ------------------------------------------------------------------ invariants
    def _execution_facts(self) -> dict[str, dict[str, Any]]:
        """Ground truth per ingress version id, from the executions that handled it (not from the
        result events under test): ``verdict`` as the evaluator returned it, ``decisions`` taken by a
        reviewer (APPROVE/DENY/TIMEOUT), ``statuses`` of those executions and the ``states`` they entered.
        """
        facts: dict[str, dict[str, Any]] = {}
        for arn in self._executions:
            history = self._history(arn)
            status = self._sfn.describe_execution(executionArn=arn)["status"]
            handled: set[str] = set()
            evaluated: dict[str, str] = {}
            taken: set[str] = set()
            states = set(self._states(arn, history))
            for event in history:
                details = event.get("taskSucceededEventDetails") or event.get("stateExitedEventDetails") or {}
                try:
                    output = json.loads(details.get("output") or "null")
                except ValueError:
                    continue
                if not isinstance(output, dict):
                    continue
                payload = output.get("Payload") if "Payload" in output else output
                if isinstance(payload, dict) and isinstance(payload.get("objects"), list):
                    for obj in payload["objects"]:
                        if not isinstance(obj, dict):
                            continue
                        version = obj.get("versionId") or (obj.get("source") or {}).get("versionId")
                        if version:
                            handled.add(version)
                            if "summary" in payload and "verdict" in obj:
                                evaluated[version] = str(obj["verdict"])
                if output.get("decision") in ("APPROVE", "DENY") and "reviewer" in output:
                    taken.add(output["decision"])
                review = output.get("review")
                if isinstance(review, dict) and review.get("decision") in ("APPROVE", "DENY", "TIMEOUT"):
                    taken.add(review["decision"])
            for version in handled:
                entry = facts.setdefault(version, {"verdict": None, "decisions": set(), "statuses": set(), "states": set()})
                entry["statuses"].add(status)
                entry["states"] |= states
                if version in evaluated:
                    entry["verdict"] = evaluated[version]
                    entry["decisions"] |= taken
        return facts

    def invariant_violations(self, *, delete_allowed: bool = False) -> list[str]:
        """Each uploaded version is in exactly one place; nothing is in the vault without CLEAN or APPROVE.

        The facts come from the executions (what the evaluator returned, what the reviewer decided),
        not from the result events, which are themselves under test. Allowed exceptions, each one a
        reported duplicate and never a loss:

        * a version the workflow could not remove from ingress (its execution entered "Report
          ingress cleanup failed") is in ingress as well as in its zone;
        * after a failed execution the original stays in ingress and the staged copy in quarantine
          (``scans/<scan-id>/``) is kept for forensics;
        * ``delete_allowed`` (the pipeline deletes denied objects): a version a reviewer explicitly
          denied may be nowhere.
        """
        problems = []
        stored = self.stored_versions()
        facts = self._execution_facts()
        empty: dict[str, Any] = {"verdict": None, "decisions": set(), "statuses": set(), "states": set()}

        for uploaded in self.uploaded:
            places = self.places_of(uploaded, stored)
            zones = sorted(p["zone"] for p in places)
            fact = facts.get(uploaded.version_id, empty)
            if len(places) == 1:
                continue
            if len(places) == 2 and "ingress" in zones and "Report ingress cleanup failed" in fact["states"]:
                continue
            if "ingress" in zones and "FAILED" in fact["statuses"] and all(
                p["zone"] == "ingress" or (p["zone"] == "quarantine" and p["key"].startswith("scans/")) for p in places
            ):
                continue
            if not places and delete_allowed and "DENY" in fact["decisions"]:
                continue
            where = ", ".join(f"{p['zone']}:{p['key']}" for p in places) or "nowhere"
            problems.append(f"{uploaded.key} ({uploaded.version_id}) is in {len(places)} places: {where}")
        for item in stored:
            if item["zone"] != "vault":
                continue
            sources = [u for u in self.uploaded if u.sha256 == item["sha256"] and item["key"] == u.key]
            if not sources:
                problems.append(f"vault:{item['key']} does not match any uploaded object's bytes")
                continue
            justified = [
                u for u in sources
                if facts.get(u.version_id, empty)["verdict"] == "CLEAN"
                or (facts.get(u.version_id, empty)["verdict"] == "REVIEW" and "APPROVE" in facts.get(u.version_id, empty)["decisions"])
            ]
            if not justified:
                problems.append(f"vault:{item['key']} ({item['versionId']}) has no CLEAN verdict or approval")
        return problems


# States entered by any engine in this process (tests assert the definition is covered).
COVERAGE: Counter[str] = Counter()
