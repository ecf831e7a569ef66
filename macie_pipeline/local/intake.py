"""Intake, offline: the stack's queues, rules, log subscriptions and event source mappings in moto,
and the engine's stand-in for Lambda's SQS poller.

:class:`IntakeResources` creates, from the template (CloudFormation shapes):

* ``AWS::SQS::Queue`` (with ``VisibilityTimeout``, ``MessageRetentionPeriod`` and ``RedrivePolicy``:
  the dead-letter queue receives a message after ``maxReceiveCount`` receives, as moto does on receive);
* ``AWS::Events::Rule`` with an ``EventPattern`` and SQS or Lambda targets: put in moto, which routes
  ``PutEvents`` to them. Rules with a ``ScheduleExpression`` are kept as :class:`ScheduledTarget`
  (moto never fires a schedule): the runner fires them, invoking the target with its ``Input``;
* ``AWS::Lambda::EventSourceMapping`` on a queue: kept as :class:`QueueMapping`, *not* created in
  moto (moto would invoke the function once per message as it is sent). :class:`IntakePump` is the
  mapping;
* log groups (``AWS::Logs::LogGroup`` and a ``Custom::AWS`` resource whose call is CloudWatch Logs'
  ``createLogGroup``) and ``AWS::Logs::SubscriptionFilter`` to a function (moto delivers each
  ``PutLogEvents`` to it, through the in-process invoke, patch point 1).

:class:`IntakePump` receives a mapping's queue in batches as Lambda's poller does: up to
``BatchSize`` messages, gathered until the queue is quiet (``MaximumBatchingWindowInSeconds`` > 0,
the engine does not wait out the window: every message is there already) or one receive of at most
10 (a window of zero); it invokes the function with the SQS event, deletes what succeeded and makes
the ``batchItemFailures`` (every message, if the function failed) visible again at once, so they are
received again and reach the dead-letter queue after ``maxReceiveCount`` receives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from .template import ACCOUNT, REGION

QUEUE = "AWS::SQS::Queue"
EVENT_SOURCE_MAPPING = "AWS::Lambda::EventSourceMapping"
LOG_GROUP = "AWS::Logs::LogGroup"
SUBSCRIPTION_FILTER = "AWS::Logs::SubscriptionFilter"
RULE = "AWS::Events::Rule"
_SQS_RECEIVE_MAX = 10
# Lambda invokes a function with at most 6 MB of payload: an SQS batch closes there too, whatever its
# BatchSize (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html, "Batching behavior").
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
# Lambda's defaults for an SQS event source (CloudFormation's too).
DEFAULT_BATCH_SIZE = 10


@dataclass(frozen=True)
class QueueMapping:
    """One ``AWS::Lambda::EventSourceMapping`` from a queue to a function."""

    function: str
    queue_url: str
    queue_arn: str
    batch_size: int = DEFAULT_BATCH_SIZE
    window_seconds: int = 0
    report_failures: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class ScheduledTarget:
    """A function a schedule rule invokes, with the rule's constant ``Input`` (None: the scheduled event)."""

    rule: str
    schedule: str
    function: str
    input: Optional[dict]
    enabled: bool = True


@dataclass
class PumpedBatch:
    """One invocation by the pump: which messages it carried, which failed, the function's answer."""

    function: str
    message_ids: list[str]
    failed: list[str] = field(default_factory=list)
    error: Optional[dict] = None
    result: Any = None


def _arn_tail(arn: Any) -> str:
    return str(arn).rsplit(":", 1)[-1]


class IntakeResources:
    """The intake resources of one deployment (see the module docstring); built by :meth:`create`."""

    def __init__(self) -> None:
        self.queues: dict[str, str] = {}  # logical id -> queue URL
        self.queue_arns: dict[str, str] = {}  # queue ARN -> URL
        self.mappings: list[QueueMapping] = []
        self.schedules: list[ScheduledTarget] = []
        self.pattern_rules: list[str] = []  # rules put in moto
        self.log_groups: list[str] = []
        self.subscriptions: list[tuple[str, str]] = []  # (log group, function name)

    @classmethod
    def create(cls, deployment: Any) -> "IntakeResources":
        """Create every intake resource of ``deployment``'s template (its functions exist already)."""
        resources = cls()
        resources._create_queues(deployment)
        resources._create_log_groups(deployment)
        resources._create_subscriptions(deployment)
        resources._create_rules(deployment)
        resources._read_mappings(deployment)
        return resources

    # ------------------------------------------------------------------ queues
    def _create_queues(self, deployment: Any) -> None:
        redrives: list[tuple[str, dict]] = []
        for logical, resource in deployment.stack.of_type(QUEUE).items():
            props = deployment.resolver.resolve(resource.get("Properties") or {})
            attributes = {name: str(props[name]) for name in ("VisibilityTimeout", "MessageRetentionPeriod",
                                                              "DelaySeconds", "ReceiveMessageWaitTimeSeconds") if name in props}
            name = deployment.physical[logical].attributes.get("QueueName", logical)
            url = deployment.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            self.queues[logical] = url
            self.queue_arns[deployment.queue_arn(url)] = url
            if props.get("RedrivePolicy"):
                redrives.append((url, props["RedrivePolicy"]))
        for url, policy in redrives:  # every dead-letter queue exists now
            policy = json.loads(policy) if isinstance(policy, str) else policy
            redrive = {"deadLetterTargetArn": policy["deadLetterTargetArn"], "maxReceiveCount": int(policy["maxReceiveCount"])}
            deployment.sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(redrive)})

    # ------------------------------------------------------------------ CloudWatch Logs
    def _create_log_groups(self, deployment: Any) -> None:
        names = [deployment.physical[logical].ref for logical in deployment.stack.of_type(LOG_GROUP)]
        names.extend(_custom_log_groups(deployment))
        for name in names:
            self.ensure_log_group(deployment.logs, name)

    def ensure_log_group(self, logs: Any, name: str) -> None:
        try:
            logs.create_log_group(logGroupName=name)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        if name not in self.log_groups:
            self.log_groups.append(name)

    def _create_subscriptions(self, deployment: Any) -> None:
        for logical, resource in deployment.stack.of_type(SUBSCRIPTION_FILTER).items():
            props = deployment.resolver.resolve(resource.get("Properties") or {})
            function = deployment.function_named(props["DestinationArn"])
            if function is None:
                continue  # not a function this engine runs (Kinesis, Firehose ...)
            group = props["LogGroupName"]
            self.ensure_log_group(deployment.logs, group)
            deployment.logs.put_subscription_filter(
                logGroupName=group,
                filterName=props.get("FilterName") or logical,
                filterPattern=props.get("FilterPattern", ""),
                destinationArn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function.name}",
            )
            self.subscriptions.append((group, function.name))

    # ------------------------------------------------------------------ rules
    def _create_rules(self, deployment: Any) -> None:
        for logical, resource in deployment.stack.of_type(RULE).items():
            props = deployment.resolver.resolve(resource.get("Properties") or {})
            enabled = props.get("State", "ENABLED") == "ENABLED"
            if "ScheduleExpression" in props:
                self.schedules.extend(self._scheduled_targets(deployment, logical, props, enabled))
            elif "EventPattern" in props:
                self._put_pattern_rule(deployment, logical, props, enabled)

    def _scheduled_targets(self, deployment: Any, logical: str, props: dict, enabled: bool) -> Iterator[ScheduledTarget]:
        for target in props.get("Targets") or []:
            function = deployment.function_named(target.get("Arn"))
            if function is not None:
                payload = target.get("Input")
                yield ScheduledTarget(logical, props["ScheduleExpression"], function.name,
                                      json.loads(payload) if isinstance(payload, str) else payload, enabled)

    def _put_pattern_rule(self, deployment: Any, logical: str, props: dict, enabled: bool) -> None:
        targets = []
        for target in props.get("Targets") or []:
            arn = str(target.get("Arn", ""))
            function = deployment.function_named(arn) if ":lambda:" in arn else None
            if arn in self.queue_arns or function is not None:
                entry = {"Id": str(target.get("Id", logical))[:64], "Arn": arn}
                if "Input" in target:
                    entry["Input"] = target["Input"] if isinstance(target["Input"], str) else json.dumps(target["Input"])
                targets.append(entry)
        if not targets:
            return  # e.g. a rule that starts the state machine: the runner delivers those itself
        bus = _arn_tail(props.get("EventBusName", "default")).rsplit("/", 1)[-1]
        name = logical[:64]
        deployment.events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]),
                                   State="ENABLED" if enabled else "DISABLED")
        deployment.events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self.pattern_rules.append(name)

    # ------------------------------------------------------------------ event source mappings
    def _read_mappings(self, deployment: Any) -> None:
        for resource in deployment.stack.of_type(EVENT_SOURCE_MAPPING).values():
            props = deployment.resolver.resolve(resource.get("Properties") or {})
            queue_arn = str(props.get("EventSourceArn", ""))
            function = deployment.function_named(props.get("FunctionName"))
            if queue_arn not in self.queue_arns or function is None:
                continue  # not a queue of this stack (a stream, say), or not a local function
            self.mappings.append(QueueMapping(
                function=function.name,
                queue_url=self.queue_arns[queue_arn],
                queue_arn=queue_arn,
                batch_size=int(props.get("BatchSize", DEFAULT_BATCH_SIZE)),
                window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                enabled=bool(props.get("Enabled", True)),
            ))


def _custom_log_groups(deployment: Any) -> Iterator[str]:
    """Log groups a ``Custom::AWS`` resource creates with CloudWatch Logs' ``createLogGroup``."""
    for resource in deployment.stack.of_type("Custom::AWS").values():
        create = (resource.get("Properties") or {}).get("Create")
        if create is None:
            continue
        call = deployment.resolver.resolve(create)
        call = json.loads(call) if isinstance(call, str) else call
        service = str(call.get("service", "")).lower().replace("-", "").replace("@awssdk/client", "")
        action = str(call.get("action", "")).lower().removesuffix("command")
        if service in ("cloudwatchlogs", "logs") and action == "createloggroup":
            yield str((call.get("parameters") or {})["logGroupName"])


# ---------------------------------------------------------------------- the event source mapping
Invoke = Callable[[str, Any], tuple[str, bool, str]]  # EngineHost.invoke_function


class IntakePump:
    """Lambda's SQS poller for the mappings, run when the engine says (see the module docstring)."""

    def __init__(self, sqs: Any, invoke: Invoke, mappings: list[QueueMapping]) -> None:
        self.sqs = sqs
        self.invoke = invoke
        self.mappings = mappings
        self.batches: list[PumpedBatch] = []

    def run(self, max_batches: int = 100_000) -> list[PumpedBatch]:
        """Deliver every enabled mapping's queue until it is empty (or ``max_batches``); the batches."""
        done: list[PumpedBatch] = []
        for mapping in self.mappings:
            if not mapping.enabled:
                continue
            while len(done) < max_batches:
                batch = self.pump_once(mapping)
                if batch is None:
                    break
                done.append(batch)
        return done

    def pump_once(self, mapping: QueueMapping) -> Optional[PumpedBatch]:
        """One batch from the mapping's queue to its function, or None when the queue is empty."""
        messages = self._collect(mapping)
        if not messages:
            return None
        payload, error, _ = self.invoke(mapping.function, {"Records": [_record(m, mapping.queue_arn) for m in messages]})
        ids = [m["MessageId"] for m in messages]
        batch = PumpedBatch(mapping.function, ids)
        if error:
            batch.error = json.loads(payload) if payload else {}
            batch.failed = list(ids)
        else:
            batch.result = json.loads(payload) if payload else None
            if mapping.report_failures and isinstance(batch.result, dict):
                wanted = {f.get("itemIdentifier") for f in batch.result.get("batchItemFailures") or []}
                batch.failed = [i for i in ids if i in wanted]
        self._settle(mapping, messages, set(batch.failed))
        self.batches.append(batch)
        return batch

    def _collect(self, mapping: QueueMapping) -> list[dict]:
        messages: list[dict] = []
        size = len('{"Records":[]}')
        while len(messages) < mapping.batch_size:
            received = self.sqs.receive_message(
                QueueUrl=mapping.queue_url,
                MaxNumberOfMessages=min(_SQS_RECEIVE_MAX, mapping.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages") or []
            for index, message in enumerate(received):
                record_size = len(json.dumps(_record(message, mapping.queue_arn))) + 1
                if messages and size + record_size > LAMBDA_PAYLOAD_LIMIT:
                    self._return(mapping, received[index:])  # the 6 MB payload is full: they wait for the next batch
                    return messages
                messages.append(message)
                size += record_size
            if not received or mapping.window_seconds == 0:
                break  # the queue is quiet, or no window: Lambda invokes with what one poll gave
        return messages

    def _return(self, mapping: QueueMapping, messages: list[dict]) -> None:
        for message in messages:
            self.sqs.change_message_visibility(QueueUrl=mapping.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)

    def _settle(self, mapping: QueueMapping, messages: list[dict], failed: set[str]) -> None:
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), _SQS_RECEIVE_MAX):
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[start:start + _SQS_RECEIVE_MAX])]
            self.sqs.delete_message_batch(QueueUrl=mapping.queue_url, Entries=entries)
        again = [m for m in messages if m["MessageId"] in failed]
        for start in range(0, len(again), _SQS_RECEIVE_MAX):
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                       for n, m in enumerate(again[start:start + _SQS_RECEIVE_MAX])]
            self.sqs.change_message_visibility_batch(QueueUrl=mapping.queue_url, Entries=entries)


def _record(message: dict, queue_arn: str) -> dict:
    """One record of the SQS event Lambda sends (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html)."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: {k[:1].lower() + k[1:]: v for k, v in value.items()}
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
