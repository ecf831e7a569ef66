"""Operations: what tells people something went wrong (alarms). What starts a scan is the intake
(``macie_pipeline.parts.intake``)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn

from ..props import Trigger
from .context import PartContext
from .functions import Functions
from .intake import Intake


class Operations:
    """``trigger_rule`` (the intake's rule, as before) and ``alarms`` (each publishes to the topic)."""

    def __init__(
        self, ctx: PartContext, *, trigger: Trigger, state_machine: sfn.StateMachine, intake: Intake,
        topic: sns.ITopic, functions: Functions,
    ) -> None:
        self._scope = ctx.scope
        self.trigger_rule = intake.trigger_rule
        self.alarms = self._alarms(state_machine, topic, functions)
        self.alarms += self._intake_alarms(trigger, intake, cw_actions.SnsAction(topic))

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

    def _intake_alarms(self, trigger: Trigger, intake: Intake, action: cw_actions.SnsAction) -> list[cloudwatch.Alarm]:
        """The queue's oldest message is older than two batch windows and the batcher's 15 minutes (a
        batch should have taken it long ago), or any message reached the dead-letter queue."""
        if intake.queue is None or intake.dead_letter_queue is None:
            return []
        max_age = 2 * trigger.batch_window_seconds + 15 * 60
        period = Duration.minutes(5)
        return [
            self._alarm(
                "IntakeQueueAgeAlarm",
                intake.queue.metric_approximate_age_of_oldest_message(period=period, statistic="Maximum"),
                f"Objects wait in the intake queue for more than {max_age} seconds: batches are not being started",
                action, threshold=max_age, comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            ),
            self._alarm(
                "IntakeDeadLetterAlarm",
                intake.dead_letter_queue.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
                "Object events reached the intake dead-letter queue: they were not usable or could not be batched",
                action,
            ),
        ]

    def _alarm(
        self, id: str, metric: cloudwatch.IMetric, description: str, action: cw_actions.SnsAction, *, threshold: float = 1,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self._scope,
            id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(action)
        return alarm
