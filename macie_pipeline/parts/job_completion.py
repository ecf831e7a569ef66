"""Event-driven Macie job completion: Macie's job log events wake the execution waiting for its job.

Macie writes one log stream per classification job to ``/aws/macie/classificationjobs`` (an
account-wide log group it creates on its first job); a subscription filter sends the events that
matter to ``job_events``, which resumes the waiting execution by its task token. The workflow's
poll (``poll_interval``) remains as a backstop for a lost event.

CloudWatch Logs allows **2 subscription filters per log group**. Each pipeline with
``job_completion_events=True`` (the default) uses one on this account-wide group: a third pipeline in
the same account and Region must set ``job_completion_events=False`` (its backstop poll alone then
notices a job's end, up to ``poll_interval`` later), or its deployment fails when the filter is created.
"""

from __future__ import annotations

from typing import Optional

from aws_cdk import ArnFormat
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as destinations
from aws_cdk import custom_resources as cr

from ..contract import JOB_ERROR_EVENT_PREFIXES, JOB_WAKE_EVENTS, MACIE_JOB_LOG_GROUP
from ..external import flatten_reference
from .context import PartContext, acknowledge


def job_event_filter_pattern() -> logs.IFilterPattern:
    """Macie's job events that wake a waiting execution or record an error on the job."""
    terms = [logs.FilterPattern.string_value("$.eventType", "=", event) for event in JOB_WAKE_EVENTS]
    terms += [logs.FilterPattern.string_value("$.eventType", "=", f"{prefix}*") for prefix in JOB_ERROR_EVENT_PREFIXES]
    return logs.FilterPattern.any(*terms)


class JobCompletion:
    """``log_group_creation`` (``MacieJobLogGroup``, an AwsCustomResource that creates Macie's log group
    if it does not exist yet, and never deletes it) and ``subscription_filter``
    (``MacieJobEventsSubscription``); both None with ``job_completion_events=False``."""

    def __init__(self, ctx: PartContext, *, job_events: lambda_.Function, enabled: bool) -> None:
        self.log_group_creation: Optional[cr.AwsCustomResource] = None
        self.subscription_filter: Optional[logs.SubscriptionFilter] = None
        if not enabled:
            return
        scope, stack = ctx.scope, ctx.stack
        arn = stack.format_arn(service="logs", resource="log-group", resource_name=MACIE_JOB_LOG_GROUP,
                               arn_format=ArnFormat.COLON_RESOURCE_NAME)
        # Macie creates the group on its first job; a subscription needs it now. Shared by every
        # pipeline (and by Macie) in the account and Region: created if missing, never deleted.
        self.log_group_creation = cr.AwsCustomResource(
            scope,
            "MacieJobLogGroup",
            on_create=cr.AwsSdkCall(
                service="CloudWatchLogs",
                action="createLogGroup",
                parameters={"logGroupName": MACIE_JOB_LOG_GROUP},
                physical_resource_id=cr.PhysicalResourceId.of(MACIE_JOB_LOG_GROUP),
                ignore_error_codes_matching="ResourceAlreadyExistsException",
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["logs:CreateLogGroup"], resources=[arn, f"{arn}:*"])]
            ),
            install_latest_aws_sdk=False,
        )
        log_group = logs.LogGroup.from_log_group_name(scope, "MacieJobLogs", MACIE_JOB_LOG_GROUP)
        self.subscription_filter = logs.SubscriptionFilter(
            scope,
            "MacieJobEventsSubscription",
            log_group=log_group,
            destination=destinations.LambdaDestination(job_events),
            filter_pattern=job_event_filter_pattern(),
        )
        self.subscription_filter.node.add_dependency(self.log_group_creation)
        acknowledge(self.log_group_creation, f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(arn))}:*]",
                    "The one log group Macie writes job events to, in both ARN forms CloudWatch Logs authorizes CreateLogGroup on.")
        _acknowledge_provider(ctx)


def _acknowledge_provider(ctx: PartContext) -> None:
    provider = ctx.stack.node.try_find_child("AWS679f53fac002430cb0da5b7982bd2287")
    if provider is not None:
        acknowledge(provider,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                    "CDK's AwsCustomResource provider (one per stack) logs with the AWS managed basic execution policy.")
