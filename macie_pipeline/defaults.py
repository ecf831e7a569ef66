"""Hardened settings for every resource kind the pipeline creates, in one place.

The construct never scatters security settings: it asks these functions for a resource and adds
only what is specific to that resource's role.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import jsii
from aws_cdk import Aspects, Duration, IAspect, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct


def encryption_key(scope: Construct, id: str, *, description: str, removal_policy: RemovalPolicy) -> kms.Key:
    """A customer managed symmetric key with yearly automatic rotation."""
    return kms.Key(
        scope,
        id,
        description=description,
        enable_key_rotation=True,
        removal_policy=removal_policy,
        pending_window=Duration.days(30),
    )


def access_log_bucket(scope: Construct, id: str, *, removal_policy: RemovalPolicy) -> s3.Bucket:
    """Destination of S3 server access logs.

    Server access log delivery supports only SSE-S3 on the destination bucket, so this is the one
    bucket without the customer managed key. Logs are kept for a year, then expire.
    """
    return s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=removal_policy,
        auto_delete_objects=False,
        lifecycle_rules=[
            s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(365), noncurrent_version_expiration=Duration.days(30)),
            s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(7)),
        ],
    )


def data_bucket(
    scope: Construct,
    id: str,
    *,
    key: kms.IKey,
    access_logs: s3.IBucket,
    removal_policy: RemovalPolicy,
    event_bridge_enabled: bool = False,
    noncurrent_version_days: Optional[int] = 90,
    object_lock: Optional[tuple[str, Duration]] = None,
    lifecycle_rules: Sequence[s3.LifecycleRule] = (),
) -> s3.Bucket:
    """A bucket for objects under the pipeline's care.

    SSE-KMS with the pipeline's key and an S3 bucket key, public access blocked, TLS 1.2+ only,
    versioning, owner-enforced object ownership, server access logs, and incomplete multipart
    uploads aborted after 7 days. Current versions never expire: only a person or the pipeline
    removes an object. Noncurrent versions expire after ``noncurrent_version_days`` (None: never).
    ``lifecycle_rules`` are added (a bucket of the pipeline's own working files expires them).
    """
    lifecycle = [s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(7))]
    lifecycle.extend(lifecycle_rules)
    if noncurrent_version_days:
        lifecycle.append(
            s3.LifecycleRule(id="ExpireNoncurrentVersions", noncurrent_version_expiration=Duration.days(noncurrent_version_days))
        )
    lock_kwargs = {}
    if object_lock is not None:
        mode, retention = object_lock
        retention_rule = (
            s3.ObjectLockRetention.compliance(retention) if mode == "COMPLIANCE" else s3.ObjectLockRetention.governance(retention)
        )
        lock_kwargs = {"object_lock_enabled": True, "object_lock_default_retention": retention_rule}
    bucket = s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{id.lower()}/",
        removal_policy=removal_policy,
        auto_delete_objects=False,
        lifecycle_rules=lifecycle,
        **lock_kwargs,
    )
    if event_bridge_enabled:
        enable_event_bridge(bucket)
    return bucket


def enable_event_bridge(bucket: s3.Bucket) -> None:
    """Send the bucket's events to EventBridge, set on the bucket itself: CDK's
    ``event_bridge_enabled`` deploys a notification custom resource (a Lambda function with an AWS
    managed policy) to do the same.

    If the bucket also gets CDK-managed S3 event notifications (``add_event_notification``, before or
    after this call), their custom resource writes the bucket's whole notification configuration at
    deploy time; an aspect turns EventBridge on in it too, or it would switch EventBridge off and no
    scan would ever start.
    """
    bucket.node.default_child.add_property_override(
        "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
    )
    Aspects.of(bucket).add(_KeepEventBridgeNotifications(bucket))


@jsii.implements(IAspect)
class _KeepEventBridgeNotifications:
    """Turns EventBridge on in the bucket's CDK notification resource, if the bucket has one."""

    def __init__(self, bucket: s3.Bucket) -> None:
        self._path = bucket.node.path
        self._bucket = bucket

    def visit(self, node) -> None:
        if node.node.path == self._path and node.node.try_find_child("Notifications") is not None:
            self._bucket.enable_event_bridge_notification()


def expiring_prefixes(prefixes: Sequence[str], days: int) -> list[s3.LifecycleRule]:
    """Objects under each prefix expire ``days`` after they were written, their noncurrent versions
    one day after that; expired delete markers are removed."""
    rules = [
        s3.LifecycleRule(
            id=f"Expire{prefix.strip('/').title().replace('-', '')}", prefix=prefix, expiration=Duration.days(days),
            noncurrent_version_expiration=Duration.days(1),
        )
        for prefix in prefixes
    ]
    rules.append(s3.LifecycleRule(id="RemoveExpiredDeleteMarkers", expired_object_delete_marker=True))
    return rules


def queue(
    scope: Construct, id: str, *, key: kms.IKey, removal_policy: RemovalPolicy, visibility_timeout: Optional[Duration] = None,
    retention: Optional[Duration] = None, dead_letter_queue: Optional[sqs.DeadLetterQueue] = None,
) -> sqs.Queue:
    """A standard queue encrypted with the pipeline's key (and an SQS data key reused for 5 minutes),
    reachable over TLS only."""
    return sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        data_key_reuse=Duration.minutes(5),
        enforce_ssl=True,
        visibility_timeout=visibility_timeout,
        retention_period=retention,
        dead_letter_queue=dead_letter_queue,
        removal_policy=removal_policy,
    )


def state_table(scope: Construct, id: str, *, key: kms.IKey, removal_policy: RemovalPolicy) -> dynamodb.Table:
    """Pending reviews and duplicate-event claims: encrypted with the pipeline's key, PITR, TTL."""
    return dynamodb.Table(
        scope,
        id,
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
        time_to_live_attribute="expiresAt",
        deletion_protection=removal_policy == RemovalPolicy.RETAIN,
        removal_policy=removal_policy,
    )


def log_group(scope: Construct, id: str, *, key: kms.IKey, removal_policy: RemovalPolicy) -> logs.LogGroup:
    """A log group encrypted with the pipeline's key, kept for a year."""
    return logs.LogGroup(
        scope,
        id,
        encryption_key=key,
        retention=logs.RetentionDays.ONE_YEAR,
        removal_policy=removal_policy,
    )


def allow_cloudwatch_logs(key: kms.Key, region: str, account: str, partition: str) -> None:
    """Let CloudWatch Logs use the key, only for this account's log groups."""
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogs",
            principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account}:log-group:*"}
            },
        )
    )
