"""The zones: access logs, ingress, quarantine, review and vault buckets, and the vault's write guard."""

from __future__ import annotations

from typing import Optional

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from .. import defaults
from ..external import Ownership
from ..options import ZoneOptions
from .context import PartContext, acknowledge


class Zones:
    """Every bucket an object can be in. Buckets you pass as ``ingress_bucket`` or ``vault_bucket``
    are adopted: configured if owned, their needs recorded if imported."""

    def __init__(
        self, ctx: PartContext, *, data_key: kms.IKey, options: ZoneOptions, trigger_kind: str,
        ingress_bucket: Optional[s3.IBucket], vault_bucket: Optional[s3.IBucket],
    ) -> None:
        self._ctx = ctx
        self._data_key = data_key
        #: Receives server access logs of every other bucket (SSE-S3: log delivery supports no KMS).
        self.access_logs_bucket = defaults.access_log_bucket(ctx.scope, "AccessLogs", removal_policy=ctx.removal_policy)
        acknowledge(self.access_logs_bucket, "AwsSolutions-S1", "This is the access log bucket; logging it into itself would loop.")
        self.ingress_bucket: s3.IBucket = ingress_bucket or self.data_bucket("Ingress", event_bridge_enabled=True)
        if ingress_bucket is not None:
            self._adopt_ingress_bucket(ingress_bucket, trigger_kind)
        self.quarantine_bucket = self.data_bucket("Quarantine")
        self.review_bucket = self.data_bucket("Review")
        lock = options.object_lock()
        self.vault_bucket: s3.IBucket = vault_bucket or self.data_bucket(
            "Vault", noncurrent_version_days=None if lock else 365, object_lock=lock
        )
        if ctx.imported("vault_bucket"):
            ctx.record(
                "vault_bucket", self.vault_bucket.bucket_arn, "bucket configuration",
                "Required. Turn on versioning: the pipeline writes and verifies exact object versions.",
            )

    def data_bucket(self, id: str, **settings) -> s3.Bucket:
        """A hardened data bucket under the data key, logging to the access log bucket."""
        return defaults.data_bucket(
            self._ctx.scope, id, key=self._data_key, access_logs=self.access_logs_bucket,
            removal_policy=self._ctx.removal_policy, **settings,
        )

    def guard_vault(self, writer: iam.IRole) -> None:
        """Defence in depth: only ``writer`` (the transfer role) may write to the vault, whatever else an
        account's identity policies allow. (Changing this policy is itself a visible act.)"""
        self._ctx.apply_or_record(
            "vault_bucket",
            self.vault_bucket,
            "bucket policy",
            iam.PolicyStatement(
                sid="OnlyThePipelineWritesToTheVault",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectVersionTagging"],
                resources=[self.vault_bucket.arn_for_objects("*")],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": writer.role_arn}},
            ),
            "Required for the vault guarantee. Denies object writes and tag changes to every principal but the "
            "pipeline's transfer role. Without it, anyone your IAM policies allow can put objects into the vault "
            "that were never scanned: the construct's 'only the pipeline writes to the vault' holds only with it. "
            "Existing objects are not affected.",
        )

    def _adopt_ingress_bucket(self, bucket: s3.IBucket, trigger_kind: str) -> None:
        """What a bucket you pass as ``ingress_bucket`` needs: EventBridge notifications and versioning."""
        needs_events = trigger_kind == "object-created"
        if self._ctx.owner["ingress_bucket"] is Ownership.OWNED:
            if needs_events:
                defaults.enable_event_bridge(bucket)
            return
        steps = []
        if needs_events:
            steps.append(
                "turn on Amazon EventBridge notifications (S3 console: Properties > Event notifications > Amazon "
                "EventBridge: On; or PutBucketNotificationConfiguration with EventBridgeConfiguration {}, keeping the "
                "bucket's other notification configurations, which that call replaces). Without it no scan ever "
                "starts and objects wait in ingress unnoticed"
            )
        steps.append("turn on versioning (the pipeline pins object versions; unversioned events are rejected)")
        self._ctx.record("ingress_bucket", bucket.bucket_arn, "bucket configuration", "Required. " + "; ".join(steps) + ".")
