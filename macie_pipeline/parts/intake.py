"""Intake: what starts a batch. New objects are queued (EventBridge rule -> SQS) and handed to the
batcher in micro-batches; sweeps of the ingress bucket catch what no event announced (docs/batching.md)."""

from __future__ import annotations

from typing import Optional

import jsii
from aws_cdk import Aws, Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs

from .. import defaults
from ..props import Trigger
from .context import PartContext

#: The source of a sweep's invocation of the batcher (``{"source": ..., "sweep": "all" | "lost"}``).
SWEEP_SOURCE = "sensitive-data-scan-pipeline.sweep"
#: A message is received at most this many times before it goes to the dead-letter queue.
MAX_RECEIVE_COUNT = 5
#: The queue's visibility timeout is this many times the batcher's timeout (as Lambda recommends).
VISIBILITY_TIMEOUT_FACTOR = 6


def sweep_input(sweep: str) -> events.RuleTargetInput:
    """What a sweep rule sends the batcher: ``all`` (every unclaimed version) or ``lost`` (only those
    older than the trigger's ``lost_event_age``)."""
    return events.RuleTargetInput.from_object({"source": SWEEP_SOURCE, "sweep": sweep})


class Intake:
    """``trigger_rule``: ``ObjectCreatedRule`` (object-created trigger: events go to ``queue``) or
    ``ScheduleRule`` (schedule trigger: a sweep of everything). With the object-created trigger also
    ``queue`` (``IntakeQueue``), ``dead_letter_queue`` (``IntakeDeadLetterQueue``) and ``sweep_rule``
    (``SweepRule``, for lost events); None with the schedule trigger."""

    def __init__(
        self, ctx: PartContext, *, trigger: Trigger, key: kms.Key, ingress_bucket: s3.IBucket, prepare_scan: lambda_.Function,
    ) -> None:
        self._scope = ctx.scope
        self.queue: Optional[sqs.Queue] = None
        self.dead_letter_queue: Optional[sqs.Queue] = None
        self.sweep_rule: Optional[events.Rule] = None
        if trigger.kind == "schedule":
            self.trigger_rule = events.Rule(
                self._scope, "ScheduleRule", schedule=trigger.schedule,
                targets=[targets.LambdaFunction(prepare_scan, event=sweep_input("all"), retry_attempts=2)],
                description="Sweep the ingress bucket: every unclaimed object, in batches",
            )
            return
        self.dead_letter_queue = defaults.queue(
            self._scope, "IntakeDeadLetterQueue", key=key, removal_policy=ctx.removal_policy, retention=Duration.days(14),
        )
        self.queue = defaults.queue(
            self._scope, "IntakeQueue", key=key, removal_policy=ctx.removal_policy,
            visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * int(prepare_scan.timeout.to_seconds())),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=MAX_RECEIVE_COUNT, queue=self.dead_letter_queue),
        )
        _allow_eventbridge_to_use(key)
        self.trigger_rule = self._object_created_rule(trigger, ingress_bucket)
        window = trigger.batch_window_seconds
        prepare_scan.add_event_source(event_sources.SqsEventSource(
            self.queue, batch_size=trigger.batch_size, max_batching_window=Duration.seconds(window) if window else None,
            report_batch_item_failures=True,
        ))
        self.sweep_rule = events.Rule(
            self._scope, "SweepRule", schedule=events.Schedule.rate(trigger.sweep_interval),
            targets=[targets.LambdaFunction(prepare_scan, event=sweep_input("lost"), retry_attempts=2)],
            description="Sweep the ingress bucket for objects whose Object Created event was lost",
        )

    def _object_created_rule(self, trigger: Trigger, ingress_bucket: s3.IBucket) -> events.Rule:
        detail: dict = {"bucket": {"name": [ingress_bucket.bucket_name]}}
        key_filter = _key_filter(trigger.prefix, trigger.suffix)
        if key_filter:
            detail["object"] = key_filter
        rule = events.Rule(
            self._scope,
            "ObjectCreatedRule",
            event_pattern=events.EventPattern(source=["aws.s3"], detail_type=["Object Created"], detail=detail),
            targets=[_QueueTarget(self.queue)],
            description="Queue each object created in the ingress bucket for the next batch",
        )
        # Only this rule may send (CDK's SqsQueue target lets any rule of any account send to an
        # encrypted queue, and grants EventBridge the key without a condition).
        self.queue.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowTheObjectCreatedRuleToSend",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["sqs:SendMessage"],
            resources=[self.queue.queue_arn],
            conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
        ))
        return rule


@jsii.implements(events.IRuleTarget)
class _QueueTarget:
    """The intake queue as a rule target, without the grants of CDK's ``SqsQueue`` target (see above)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(self, rule: events.IRule, id: Optional[str] = None) -> events.RuleTargetConfig:  # noqa: A002 - jsii's name
        return events.RuleTargetConfig(arn=self._queue.queue_arn, target_resource=self._queue)


def _allow_eventbridge_to_use(key: kms.Key) -> None:
    """EventBridge sends to the encrypted queue as a service: the key policy must let it encrypt,
    only for rules of this account (the rule's own ARN would make the key depend on the rule, which
    depends on the queue, which depends on the key)."""
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="AllowEventBridgeToQueueObjectEvents",
        principals=[iam.ServicePrincipal("events.amazonaws.com")],
        actions=["kms:GenerateDataKey", "kms:Decrypt"],
        resources=["*"],
        conditions={
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/*"},
        },
    ))


def _key_filter(prefix, suffix) -> dict:
    """The EventBridge pattern for the object key, from the trigger's prefix and suffix."""
    if prefix and suffix:
        return {"key": [{"wildcard": f"{prefix}*{suffix}"}]}
    if prefix:
        return {"key": [{"prefix": prefix}]}
    if suffix:
        return {"key": [{"suffix": suffix}]}
    return {}
