"""Macie's side of the pipeline: an optional session, the custom data identifiers and allow lists
every job uses, and where Macie's sensitive data discovery results (the proof of analysis) are."""

from __future__ import annotations

import hashlib
import json
from typing import Optional

from aws_cdk import Annotations, Aws, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_macie as macie
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr

from ..contract import DISCOVERY_RESULTS_PREFIX
from ..options import DiscoveryResultsOptions, MacieOptions
from ..props import MAX_NAME_LENGTH
from .context import PartContext, acknowledge
from .zones import Zones


class MacieSetup:
    """``custom_data_identifiers`` and ``allow_lists`` (the CloudFormation resources, in the order
    given); ``results_bucket``/``results_key``/``results_prefix``: where discovery results are read
    (``results_bucket`` None: looked up at run time); ``discovery_results_bucket``: the bucket the
    construct created for them (with ``configure_discovery_results``)."""

    def __init__(
        self, ctx: PartContext, *, options: MacieOptions, results: DiscoveryResultsOptions, zones: Zones, data_key: kms.IKey,
    ) -> None:
        self._ctx = ctx
        scope = ctx.scope
        self.session: Optional[macie.CfnSession] = None
        if options.create_macie_session:
            self.session = macie.CfnSession(scope, "MacieSession", status="ENABLED", finding_publishing_frequency="FIFTEEN_MINUTES")
        self._given_identifiers = list(options.custom_data_identifiers)
        self.custom_data_identifiers = [self._custom_data_identifier(i, cdi) for i, cdi in enumerate(options.custom_data_identifiers)]
        self.allow_lists = [self._allow_list(i, allow) for i, allow in enumerate(options.allow_lists)]

        self.results_bucket: Optional[s3.IBucket] = results.discovery_results_bucket
        self.results_key: Optional[kms.IKey] = results.discovery_results_key
        self.results_prefix: Optional[str] = "" if self.results_bucket is not None else None
        self.discovery_results_bucket: Optional[s3.Bucket] = None
        if results.configure_discovery_results:
            self.results_bucket, self.results_key = self._configure_discovery_results(zones, data_key)
            self.results_prefix = DISCOVERY_RESULTS_PREFIX
        elif self.results_bucket is None:
            Annotations.of(scope).add_warning_v2(
                "macie-pipeline:discovery-results",
                "No Macie discovery results location is configured or given: the evaluator cannot prove objects "
                "were analysed, so every object will go to review. Set configure_discovery_results=True or pass "
                "discovery_results_bucket and discovery_results_key.",
            )

    def custom_identifier_names(self) -> Optional[str]:
        """``{Macie name: the name you gave}`` as JSON (findings name the unique Macie name; events report
        yours), or None without custom data identifiers."""
        if not self.custom_data_identifiers:
            return None
        return json.dumps(
            {resource.name: cdi.name for resource, cdi in zip(self.custom_data_identifiers, self._given_identifiers, strict=True)},
            sort_keys=True,
        )

    def _custom_data_identifier(self, index: int, cdi) -> macie.CfnCustomDataIdentifier:
        id = f"CustomDataIdentifier{index}"
        resource = macie.CfnCustomDataIdentifier(
            self._ctx.scope,
            id,
            name=self._macie_name(
                cdi.name, id,
                # Every property of a custom data identifier is immutable: a change replaces it, and
                # the replacement (created before the old one is deleted) needs a name of its own.
                json.dumps([cdi.regex, list(cdi.keywords), list(cdi.ignore_words), cdi.maximum_match_distance, cdi.description]),
            ),
            regex=cdi.regex,
            description=cdi.description,
            keywords=list(cdi.keywords) or None,
            ignore_words=list(cdi.ignore_words) or None,
            maximum_match_distance=cdi.maximum_match_distance,
        )
        if self.session is not None:
            resource.add_resource_dependency(self.session)
        return resource

    def _allow_list(self, index: int, allow) -> macie.CfnAllowList:
        id = f"AllowList{index}"
        resource = macie.CfnAllowList(
            self._ctx.scope,
            id,
            name=self._macie_name(allow.name, id),
            description=allow.description,
            criteria=macie.CfnAllowList.CriteriaProperty(regex=allow.regex),
        )
        if self.session is not None:
            resource.add_resource_dependency(self.session)
        return resource

    def _macie_name(self, name: str, child_id: str, *definition: str) -> str:
        """A Macie name unique in the account and Region: custom data identifier and allow list names are.

        The name you gave, then 8 hex characters of a hash of the stack name, the resource's path and
        (for immutable resources) its definition, so that two pipelines, two stacks or a replacement
        never ask Macie for a name that exists.
        """
        scope = self._ctx.scope
        stack_name = Stack.of(scope).stack_name
        identity = [stack_name if not Token.is_unresolved(stack_name) else "", f"{scope.node.path}/{child_id}", *definition]
        digest = hashlib.sha256("\n".join(identity).encode("utf-8")).hexdigest()[:8]
        return f"{name[: MAX_NAME_LENGTH - 9]}-{digest}"

    def _configure_discovery_results(self, zones: Zones, data_key: kms.IKey) -> tuple[s3.Bucket, kms.IKey]:
        """A results bucket, and the account's classification export configuration set to it."""
        ctx = self._ctx
        bucket = zones.data_bucket("DiscoveryResults")
        source_conditions = {
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": [f"arn:{Aws.PARTITION}:macie2:{Aws.REGION}:{Aws.ACCOUNT_ID}:export-configuration:*",
                                          f"arn:{Aws.PARTITION}:macie2:{Aws.REGION}:{Aws.ACCOUNT_ID}:classification-job/*"]},
        }
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowMacieToWriteDiscoveryResults",
                principals=[iam.ServicePrincipal("macie.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{DISCOVERY_RESULTS_PREFIX}/*")],
                conditions=source_conditions,
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowMacieToLocateTheBucket",
                principals=[iam.ServicePrincipal("macie.amazonaws.com")],
                actions=["s3:GetBucketLocation"],
                resources=[bucket.bucket_arn],
                conditions=source_conditions,
            )
        )
        ctx.apply_or_record(
            "encryption_key",
            data_key,
            "key policy",
            iam.PolicyStatement(
                sid="AllowMacieToEncryptDiscoveryResults",
                principals=[iam.ServicePrincipal("macie.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Encrypt"],
                resources=["*"],
                conditions=source_conditions,
            ),
            "Required with configure_discovery_results. Macie encrypts the discovery results it writes with this "
            "key: without it no result is written, no object is proven analysed and every object goes to review.",
        )
        export = self._export_configuration(bucket, data_key)
        export.node.add_dependency(bucket)
        export.node.add_dependency(data_key)
        if self.session is not None:
            export.node.add_dependency(self.session)
        self.discovery_results_bucket = bucket
        return bucket, data_key

    def _export_configuration(self, bucket: s3.Bucket, data_key: kms.IKey) -> cr.AwsCustomResource:
        export = cr.AwsCustomResource(
            self._ctx.scope,
            "DiscoveryResultsExport",
            on_update=cr.AwsSdkCall(
                service="Macie2",
                action="putClassificationExportConfiguration",
                parameters={
                    "configuration": {
                        "s3Destination": {
                            "bucketName": bucket.bucket_name,
                            "keyPrefix": DISCOVERY_RESULTS_PREFIX,
                            "kmsKeyArn": data_key.key_arn,
                        }
                    }
                },
                physical_resource_id=cr.PhysicalResourceId.of("macie-classification-export-configuration"),
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["macie2:PutClassificationExportConfiguration"], resources=["*"])]
            ),
            install_latest_aws_sdk=False,
        )
        acknowledge(export, "AwsSolutions-IAM5[Resource::*]",
                    "macie2:PutClassificationExportConfiguration has no resource-level permissions.")
        provider = self._ctx.stack.node.try_find_child("AWS679f53fac002430cb0da5b7982bd2287")
        if provider is not None:
            acknowledge(provider,
                        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                        "CDK's AwsCustomResource provider (one per stack) logs with the AWS managed basic execution policy.")
        return export
