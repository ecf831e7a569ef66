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
            iam.PolicyStatement(
                sid="AllowMacieServiceLinkedRoleToReadStagedObjects",
                principals=[iam.ArnPrincipal(f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{MACIE_SERVICE_LINKED_ROLE}")],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}},
            ),
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
