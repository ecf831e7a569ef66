"""Operations: what starts a scan (the trigger rule) and what tells people something went wrong (alarms)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn

from ..props import Trigger
from .context import PartContext
from .functions import Functions


class Operations:
    """``trigger_rule`` (EventBridge) and ``alarms`` (each publishes to the topic)."""

    def __init__(
        self, ctx: PartContext, *, trigger: Trigger, state_machine: sfn.StateMachine, ingress_bucket: s3.IBucket,
        topic: sns.ITopic, functions: Functions,
    ) -> None:
        self._scope = ctx.scope
        self.trigger_rule = self._trigger(trigger, state_machine, ingress_bucket)
        self.alarms = self._alarms(state_machine, topic, functions)

    def _trigger(self, trigger: Trigger, state_machine: sfn.StateMachine, ingress_bucket: s3.IBucket) -> events.Rule:
        role = iam.Role(self._scope, "TriggerRole", assumed_by=iam.ServicePrincipal("events.amazonaws.com"))
        state_machine.grant_start_execution(role)
        target = targets.SfnStateMachine(state_machine, role=role)
        if trigger.kind == "schedule":
            return events.Rule(self._scope, "ScheduleRule", schedule=trigger.schedule, targets=[target],
                               description="Scan everything in the ingress bucket as one batch")
        detail: dict = {"bucket": {"name": [ingress_bucket.bucket_name]}}
        key_filter = _key_filter(trigger.prefix, trigger.suffix)
        if key_filter:
            detail["object"] = key_filter
        return events.Rule(
            self._scope,
            "ObjectCreatedRule",
            event_pattern=events.EventPattern(source=["aws.s3"], detail_type=["Object Created"], detail=detail),
            targets=[target],
            description="Scan each object created in the ingress bucket",
        )

    def _alarms(self, state_machine: sfn.StateMachine, topic: sns.ITopic, functions: Functions) -> list[cloudwatch.Alarm]:
        action = cw_actions.SnsAction(topic)
        period = Duration.minutes(5)
        alarms = [
            self._alarm(id, metric, what, action)
            for id, metric, what in (
                ("ExecutionsFailedAlarm", state_machine.metric_failed(period=period), "A scan failed: objects are held"),
                ("ExecutionsTimedOutAlarm", state_machine.metric_timed_out(period=period), "A scan timed out"),
                ("ExecutionsAbortedAlarm", state_machine.metric_aborted(period=period), "A scan was stopped by hand"),
            )
        ]
        for fn in functions.all:
            alarms.append(self._alarm(f"{fn.node.id}ErrorsAlarm", fn.metric_errors(period=period), f"{fn.node.id} raised errors", action))
        return alarms

    def _alarm(self, id: str, metric: cloudwatch.IMetric, description: str, action: cw_actions.SnsAction) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self._scope,
            id,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(action)
        return alarm


def _key_filter(prefix, suffix) -> dict:
    """The EventBridge pattern for the object key, from the trigger's prefix and suffix."""
    if prefix and suffix:
        return {"key": [{"wildcard": f"{prefix}*{suffix}"}]}
    if prefix:
        return {"key": [{"prefix": prefix}]}
    if suffix:
        return {"key": [{"suffix": suffix}]}
    return {}
