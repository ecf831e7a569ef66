"""The zones: access logs, ingress, quarantine, review and vault buckets, the vault's write guard,
and the batch bucket (each batch's manifest and per-object results)."""

from __future__ import annotations

import math
import re
from typing import Optional

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from .. import defaults
from ..contract import BATCH_PREFIX, MAP_RESULTS_PREFIX
from ..external import Ownership
from ..options import ZoneOptions
from .context import PartContext, acknowledge


class Zones:
    """Every bucket an object can be in. Buckets you pass as ``ingress_bucket`` or ``vault_bucket``
    are adopted: configured if owned, their needs recorded if imported."""

    def __init__(
        self, ctx: PartContext, *, data_key: kms.IKey, options: ZoneOptions, trigger_kind: str,
        ingress_bucket: Optional[s3.IBucket], vault_bucket: Optional[s3.IBucket], claim_ttl_seconds: int,
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
        #: Each batch's manifest, per-object results and map run results (``batches/<batch id>/``,
        #: ``map-results/``), kept as long as a claim holds (rounded up to days), then expired. No
        #: object of the pipeline's care is ever here: only references and results.
        self.batch_bucket = self.data_bucket(
            "BatchBucket", noncurrent_version_days=None,
            lifecycle_rules=defaults.expiring_prefixes((BATCH_PREFIX, MAP_RESULTS_PREFIX), math.ceil(claim_ttl_seconds / 86400)),
        )

    def guard_batch_files(self, writers: dict[str, list[iam.IRole]], map_results_writer: iam.IRole) -> None:
        """Each kind of batch file is written by its one function (``BATCH_FILE_WRITERS``) and the map
        results by the state machine, whatever else an account's identity policies allow: the verdict
        and decision lines that route objects to the vault cannot be written by anyone else."""
        bucket = self.batch_bucket
        guards = [(f"{BATCH_PREFIX}*/{pattern}", roles) for pattern, roles in sorted(writers.items())]
        guards.append((f"{MAP_RESULTS_PREFIX}*", [map_results_writer]))
        for pattern, roles in guards:
            name = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", pattern.rsplit("*/", 1)[-1]) if part)
            bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"OnlyItsWriterWrites{name or 'MapResults'}",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=list(OBJECT_WRITE_ACTIONS),
                    resources=[bucket.arn_for_objects(pattern)],
                    conditions={"ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role in roles]}},
                )
            )

    def data_bucket(self, id: str, **settings) -> s3.Bucket:
        """A hardened data bucket under the data key, logging to the access log bucket."""
        return defaults.data_bucket(
            self._ctx.scope, id, key=self._data_key, access_logs=self.access_logs_bucket,
            removal_policy=self._ctx.removal_policy, **settings,
        )

    def guard_zones(self, writer: iam.IRole) -> None:
        """Defence in depth: only ``writer`` (the transfer role, the one role that writes objects into
        any zone) may write to quarantine, review or the vault, whatever else an account's identity
        policies allow. (Changing these policies is itself a visible act.)

        Quarantine and review are guarded as the vault is: Macie scans ``scans/<scan>/<key>`` in
        quarantine and the verdict is applied to that exact version, so an overwrite or a tag change
        there between staging and the scan is the same bypass as a write into the vault."""
        for setting, bucket, sid in (
            ("quarantine_bucket", self.quarantine_bucket, "OnlyThePipelineWritesToQuarantine"),
            ("review_bucket", self.review_bucket, "OnlyThePipelineWritesToReview"),
        ):
            self._ctx.apply_or_record(
                setting, bucket, "bucket policy", write_guard(sid, bucket, writer),
                "Denies object writes, tag and retention changes to every principal but the pipeline's transfer role.",
            )
        self._ctx.apply_or_record(
            "vault_bucket",
            self.vault_bucket,
            "bucket policy",
            write_guard("OnlyThePipelineWritesToTheVault", self.vault_bucket, writer),
            "Required for the vault guarantee. Denies object writes (PutObject, CopyObject, multipart "
            "uploads, replication into the bucket), tag, ACL, retention and encryption changes to every "
            "principal but the pipeline's transfer role. Without it, anyone your IAM policies allow can put "
            "objects into the vault that were never scanned: the construct's 'only the pipeline writes to "
            "the vault' holds only with it. Existing objects are not affected; replication out of the vault "
            "is not affected (the destination's policy governs it).",
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


#: Every S3 action that writes an object into a bucket, or changes an object's tags, ACL, retention,
#: legal hold or encryption (Service Authorization Reference, "Actions defined by Amazon S3").
#: s3:PutObject also authorises CopyObject into the bucket and every multipart upload call.
#: s3:Replicate* are checked on the *destination* bucket: they stop replication into a zone, never a
#: replication out of it. Deliberately absent: s3:RestoreObject (a temporary readable copy of the same
#: version; nothing is written), s3:BypassGovernanceRetention and s3:ObjectOwnerOverrideToBucketOwner
#: (they only qualify a write or delete denied here or not guarded), s3:InitiateReplication (checked on
#: the source bucket: replicating out of a zone), and deletes (a delete never puts an unscanned
#: object anywhere; see README "Known limits").
OBJECT_WRITE_ACTIONS = (
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:ReplicateObject",
    "s3:ReplicateTags",
    "s3:ReplicateDelete",
    "s3:UpdateObjectEncryption",
)


def write_guard(sid: str, bucket: s3.IBucket, writer: iam.IRole) -> iam.PolicyStatement:
    """The bucket policy statement that denies every object write (:data:`OBJECT_WRITE_ACTIONS`) in
    ``bucket`` to every principal but ``writer``. A service principal without a role has no
    ``aws:PrincipalArn``, so ``ArnNotEquals`` holds and it is denied too."""
    return iam.PolicyStatement(
        sid=sid,
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=list(OBJECT_WRITE_ACTIONS),
        resources=[bucket.arn_for_objects("*")],
        conditions={"ArnNotEquals": {"aws:PrincipalArn": writer.role_arn}},
    )
