"""The pipeline's KMS keys: the data key (every data bucket it creates) and the operations key
(topic, state table, log groups)."""

from __future__ import annotations

from typing import Optional

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from .. import defaults
from .context import PartContext

MACIE_SERVICE_LINKED_ROLE = "aws-service-role/macie.amazonaws.com/AWSServiceRoleForAmazonMacie"


def alarms_key_statement() -> iam.PolicyStatement:
    """The key policy statement that lets this account's CloudWatch alarms publish to a topic under the key."""
    return iam.PolicyStatement(
        sid="AllowCloudWatchAlarmsToPublish",
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
        resources=["*"],
        conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
    )


def macie_decrypt_statement() -> iam.PolicyStatement:
    """The key policy statement that lets Macie's service-linked role decrypt staged objects, through S3 only.

    The role is named in a condition, not as the Principal: KMS rejects a key policy whose principal does
    not exist (CreateKey/PutKeyPolicy: "The principals in the key policy must exist and be visible to
    KMS"), and the role exists only once Macie was enabled in the account - never yet in a new account,
    and not yet while ``create_macie_session`` creates the session alongside the key. ``aws:PrincipalArn``
    is the role's ARN for its sessions, ``kms:CallerAccount`` keeps the statement to this account (as in
    the key policies of AWS managed keys) and ``kms:ViaService`` to S3 in this Region.
    """
    return iam.PolicyStatement(
        sid="AllowMacieServiceLinkedRoleToReadStagedObjects",
        principals=[iam.AnyPrincipal()],
        actions=["kms:Decrypt"],
        resources=["*"],
        conditions={
            "ArnEquals": {"aws:PrincipalArn": f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{MACIE_SERVICE_LINKED_ROLE}"},
            "StringEquals": {"kms:CallerAccount": Aws.ACCOUNT_ID, "kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"},
        },
    )


class Keys:
    """``data_key``: the key you passed as ``encryption_key``, or a created one; Macie's
    service-linked role may decrypt through S3 only. ``operations_key``: always created."""

    def __init__(self, ctx: PartContext, *, encryption_key: Optional[kms.IKey]) -> None:
        self.data_key: kms.IKey = encryption_key or defaults.encryption_key(
            ctx.scope, "DataKey", description="SensitiveDataScanPipeline data buckets", removal_policy=ctx.removal_policy
        )
        ctx.apply_or_record(
            "encryption_key",
            self.data_key,
            "key policy",
            macie_decrypt_statement(),
            "Required. Macie's service-linked role must decrypt the staged objects (quarantine bucket, SSE-KMS "
            "with this key): without it Macie skips every object, no object is proven analysed and every object "
            "goes to review. The pipeline's own roles get IAM policies for the key, which work if the key policy "
            "lets this account's IAM policies grant access (the default key policy does).",
        )
        self.operations_key: kms.Key = defaults.encryption_key(
            ctx.scope, "OperationsKey", description="SensitiveDataScanPipeline topic, table and logs",
            removal_policy=ctx.removal_policy,
        )
        defaults.allow_cloudwatch_logs(self.operations_key, Aws.REGION, Aws.ACCOUNT_ID, Aws.PARTITION)
        self.operations_key.add_to_resource_policy(alarms_key_statement())

    def other_key(self, bucket) -> Optional[kms.IKey]:
        """The bucket's own encryption key when it is not the data key (a bucket you passed in)."""
        key = bucket.encryption_key
        if key is None or key is self.data_key or key.key_arn == self.data_key.key_arn:
            return None
        return key
