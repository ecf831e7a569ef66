"""Messaging and state: the notification topic, the state table and the result events' bus."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from aws_cdk import Aws
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from .. import defaults
from ..external import Ownership, environment_differs, ownership
from .context import PartContext
from .keys import alarms_key_statement


class Messaging:
    """``topic``: review requests, scan summaries, failures and alarms (yours, or created under the
    operations key). ``state_table``: pending reviews and duplicate-event claims. ``event_bus``: where
    result events go (yours, or the account's default bus)."""

    def __init__(
        self, ctx: PartContext, *, operations_key: kms.Key, topic: Optional[sns.ITopic],
        event_bus: Optional[events.IEventBus], notification_emails: Sequence[str],
    ) -> None:
        self._ctx = ctx
        self.topic: sns.ITopic = topic or sns.Topic(
            ctx.scope, "Notifications", display_name="Sensitive data scan", master_key=operations_key, enforce_ssl=True
        )
        self._allow_alarms_to_publish()
        for email in notification_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        #: The topic's KMS key (None: not encrypted, or imported without ``key_arn``).
        self.topic_key: Optional[kms.IKey] = operations_key if topic is None else topic.master_key
        #: Whether the topic is yours (then its key, if any, needs explicit permissions).
        self.topic_supplied = topic is not None
        self.state_table = defaults.state_table(ctx.scope, "State", key=operations_key, removal_policy=ctx.removal_policy)
        self.event_bus: events.IEventBus = event_bus or events.EventBus.from_event_bus_name(ctx.scope, "DefaultBus", "default")

    def allow_results_from(self, *roles: iam.IRole) -> None:
        """A bus you passed from another account needs a policy that lets ``roles`` (every role that
        sends result events) put result events."""
        if self._ctx.imported("event_bus") and environment_differs(self.event_bus, self._ctx.stack) is not False:
            self._ctx.record(
                "event_bus", self.event_bus.event_bus_arn, "event bus policy",
                "Only if the bus is in another account: let the pipeline's roles that send result events put them on "
                "it (in the same account their IAM policies are enough). Without it every result event fails, and so "
                "does the scan.",
                iam.PolicyStatement(
                    sid="AllowSensitiveDataScanPipelineResults",
                    principals=[iam.ArnPrincipal(role.role_arn) for role in roles],
                    actions=["events:PutEvents"],
                    resources=[self.event_bus.event_bus_arn],
                ),
            )

    def _allow_alarms_to_publish(self) -> None:
        """CloudWatch alarms publish to the topic as a service: the topic policy must allow it (a
        topic policy without such a statement rejects them) and, if the topic is encrypted, the key."""
        ctx = self._ctx
        ctx.apply_or_record(
            "topic",
            self.topic,
            "topic policy",
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"}},
            ),
            "Required unless the topic policy already lets CloudWatch alarms of this account publish. Without it "
            "every alarm of the pipeline fires into nothing. If the topic is encrypted, import it with "
            "Topic.from_topic_attributes(topic_arn=..., key_arn=...): the pipeline's roles then get permissions for "
            "the key, and the key policy statement CloudWatch needs is listed here.",
        )
        key = self.topic.master_key if ctx.owner["topic"] is not Ownership.CREATED else None
        if key is None:
            return  # the created topic's key (operations key) already allows CloudWatch alarms
        key_owner = ownership(key, ctx.stack, kms.Key)
        statement = alarms_key_statement()
        if key_owner is Ownership.OWNED and key.add_to_resource_policy(statement).statement_added:
            return
        ctx.record(
            "topic", key.key_arn, "key policy",
            "Required. CloudWatch alarms must use the topic's key to publish: without it every alarm fails to notify.",
            statement,
        )
