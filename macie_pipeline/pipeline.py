"""SensitiveDataScanPipeline: the L3 construct."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import jsii
from aws_cdk import (
    Acknowledgment,
    Annotations,
    Aws,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Size,
    Stack,
    Token,
    Validations,
)
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_macie as macie
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct, IValidation

from . import defaults, layers
from .external import (
    ExternalSetup,
    Ownership,
    environment_differs,
    flatten_reference,
    ownership,
    render_external_setup,
)
from .props import (
    MAX_NAME_LENGTH,
    AllowList,
    CustomDataIdentifier,
    DenyPolicy,
    FindingPolicy,
    ManagedDataIdentifierSelector,
    ObjectLock,
    Trigger,
    UnknownFormatPolicy,
    _value,
    as_finding_policy,
    validate_settings,
)
from .workflow import ScanWorkflow, WorkflowResources, WorkflowSettings, job_arn_pattern

MACIE_SERVICE_LINKED_ROLE = "aws-service-role/macie.amazonaws.com/AWSServiceRoleForAmazonMacie"
DISCOVERY_RESULTS_PREFIX = "macie-discovery-results"
REVIEW_STAGE = "review"
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_13


def _ack(construct: Construct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


@jsii.implements(IValidation)
class _OneResourcePolicy:
    """At synth: the pipeline's statements live in the only resource policy of its vault, ingress and topic.

    S3 and SNS keep one policy per bucket or topic. A second ``AWS::S3::BucketPolicy`` (or
    ``AWS::SNS::TopicPolicy``) in the app for the same resource replaces the pipeline's one at
    deploy time, whichever is written last: the vault would accept writes from anyone your IAM
    allows, or alarms would notify nobody. CDK only warns about it; the pipeline refuses it.
    """

    def __init__(self, pipeline: "SensitiveDataScanPipeline") -> None:
        self._pipeline = pipeline

    def validate(self) -> list[str]:
        pipeline = self._pipeline
        errors = []
        watched = [("vault_bucket", pipeline.vault_bucket), ("ingress_bucket", pipeline.ingress_bucket), ("topic", pipeline.topic)]
        for setting, resource in watched:
            if pipeline._owner.get(setting) is Ownership.IMPORTED:
                continue  # its policy is yours to apply (external_setup)
            stack = Stack.of(resource)
            own = resource.node.path + "/"
            target = stack.resolve(resource.bucket_name if setting != "topic" else resource.topic_arn)
            for construct in pipeline.node.root.node.find_all():
                if isinstance(construct, s3.CfnBucketPolicy) and setting != "topic":
                    targets = [Stack.of(construct).resolve(construct.bucket)]
                elif isinstance(construct, sns.CfnTopicPolicy) and setting == "topic":
                    targets = Stack.of(construct).resolve(construct.topics) or []
                else:
                    continue
                if target in targets and not construct.node.path.startswith(own):
                    errors.append(
                        f"{construct.node.path} is a second resource policy for the pipeline's {setting} "
                        f"({resource.node.path}): S3 and SNS keep one policy per resource, so one would replace "
                        "the other at deploy time. Add your statements with add_to_resource_policy() instead"
                    )
        return errors


def _alarms_key_statement() -> iam.PolicyStatement:
    """The key policy statement that lets this account's CloudWatch alarms publish to a topic under the key."""
    return iam.PolicyStatement(
        sid="AllowCloudWatchAlarmsToPublish",
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
        resources=["*"],
        conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
    )


class SensitiveDataScanPipeline(Construct):
    """A sensitive-data gate: ingress -> integrity check -> Macie scan -> vault, review or quarantine.

    Objects that land in the ingress bucket are copied (exact version) to the quarantine bucket,
    checked for integrity, scanned by a one-time Amazon Macie classification job scoped by a scan-id
    tag, and then promoted to the vault (clean), held in the review bucket for a person's decision
    (REVIEW), or kept in quarantine (DENY, CORRUPT). No path moves an object to the vault without a
    clean, complete scan or an explicit approval, and no path deletes an object that has not been
    copied and verified elsewhere.

    All settings are keyword-only; each states its default.

    :param removal_policy: what happens to buckets, keys, table and log groups when the stack is
        deleted. Default: ``RemovalPolicy.RETAIN`` (data outlives the stack).
    :param trigger: ``Trigger.on_object_created(prefix=, suffix=)`` (default: one execution per new
        object) or ``Trigger.on_schedule(schedule)`` (one Macie job per batch, default every 6 h).
    :param custom_data_identifiers: your own Macie identifiers. Default: none.
    :param allow_lists: text Macie must not report, as regexes. Default: none.
    :param managed_data_identifier_selector: Default: ``RECOMMENDED``.
    :param managed_data_identifier_ids: with INCLUDE or EXCLUDE only. Default: none.
    :param finding_policy: severity -> ALLOW/REVIEW/DENY. Default: every finding needs REVIEW.
    :param unknown_format_policy: what an object the integrity check cannot parse needs.
        Default: ``UnknownFormatPolicy.REVIEW``.
    :param deny_policy: denied or unanswered reviews. Default: ``DenyPolicy.QUARANTINE``.
    :param poll_interval: how often the Macie job is polled. Default: 1 minute.
    :param max_scan_wait: after this the job is cancelled and every object goes to review.
        Default: 6 hours.
    :param approval_timeout: no decision by then is a denial. Default: 3 days.
    :param approval_heartbeat: optional heartbeat for the approval task (something must call
        SendTaskHeartbeat more often than this). Default: none.
    :param notification_emails: subscribed to the notification topic (each must confirm).
        Default: none.
    :param vault_object_lock: ``ObjectLock(mode, retention)`` for the vault. Default: no lock.
    :param create_macie_session: enable Macie in this account and Region. Default: False (most
        accounts already have it; a second session fails the deployment).
    :param configure_discovery_results: create a results bucket and set the account's Macie
        classification export configuration to it (one setting per account and Region).
        Default: False.
    :param discovery_results_bucket: with ``discovery_results_key``: where the account's Macie
        discovery results already go; the evaluator gets read access. Default: none (then, unless
        ``configure_discovery_results``, the location is read at run time and the evaluator must be
        granted access by you: until then every object goes to review).
    :param discovery_results_key: the KMS key of those results. Default: none.
    :param review_api_iam_auth: require SigV4 (IAM) on the review API instead of relying on the
        unguessable single-use link. Default: False.
    :param pandas_layer: a prebuilt layer with pandas + fastparquet for Python 3.12 x86_64.
        Default: built at synth time with pip (no Docker), cached.
    :param runtime_layer: a prebuilt layer with Powertools and ``pipeline_common``.
        Default: built at synth time with pip, cached.
    :param ingress_bucket: an existing, versioned bucket to watch instead of a created one (same
        account and Region). Default: created.
    :param vault_bucket: an existing, versioned bucket for clean and approved objects. Default: created.
    :param encryption_key: the KMS key of the construct's own data buckets (quarantine, review, and
        ingress, vault, discovery results when created), which Macie's service-linked role must be
        able to decrypt. Default: a created key.
    :param topic: an existing standard topic for review requests, summaries, failures and alarms.
        Import an encrypted one with ``Topic.from_topic_attributes(topic_arn=, key_arn=)``.
        Default: created.
    :param event_bus: where result events go. Default: the account's default bus.
    :param externally_managed: the names of the settings above whose resource is imported and whose
        missing policies or settings (see :attr:`external_setup`) you apply yourself. Construction
        fails while an imported resource that needs something is not named here. Default: none.

    A resource you pass is *owned* when it is an L2 (``s3.Bucket``, ``kms.Key``, ``sns.Topic``,
    ``events.EventBus``) of the pipeline's stack: the construct changes it as it changes its own
    (bucket, key and topic policy statements, EventBridge notifications). Anything else is
    *imported*: nothing is changed on it, and :attr:`external_setup` lists what it needs.
    """

    #: Attributes with stable names. The interface types are what is promised: a bucket you pass
    #: in is exposed as you passed it.
    ingress_bucket: s3.IBucket
    quarantine_bucket: s3.IBucket
    review_bucket: s3.IBucket
    vault_bucket: s3.IBucket
    access_logs_bucket: s3.IBucket
    data_key: kms.IKey
    operations_key: kms.IKey
    topic: sns.ITopic
    event_bus: events.IEventBus
    state_table: dynamodb.ITable
    state_machine: sfn.IStateMachine
    review_api: apigw.RestApi
    review_api_url: str
    trigger_rule: events.IRule
    alarms: list[cloudwatch.IAlarm]

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        trigger: Optional[Trigger] = None,
        custom_data_identifiers: Sequence[CustomDataIdentifier] = (),
        allow_lists: Sequence[AllowList] = (),
        managed_data_identifier_selector: ManagedDataIdentifierSelector = ManagedDataIdentifierSelector.RECOMMENDED,
        managed_data_identifier_ids: Sequence[str] = (),
        finding_policy: Union[FindingPolicy, Mapping[str, Any], None] = None,
        unknown_format_policy: UnknownFormatPolicy = UnknownFormatPolicy.REVIEW,
        deny_policy: DenyPolicy = DenyPolicy.QUARANTINE,
        poll_interval: Duration = Duration.minutes(1),
        max_scan_wait: Duration = Duration.hours(6),
        approval_timeout: Duration = Duration.days(3),
        approval_heartbeat: Optional[Duration] = None,
        notification_emails: Sequence[str] = (),
        vault_object_lock: Optional[ObjectLock] = None,
        create_macie_session: bool = False,
        configure_discovery_results: bool = False,
        discovery_results_bucket: Optional[s3.IBucket] = None,
        discovery_results_key: Optional[kms.IKey] = None,
        review_api_iam_auth: bool = False,
        pandas_layer: Optional[lambda_.ILayerVersion] = None,
        runtime_layer: Optional[lambda_.ILayerVersion] = None,
        ingress_bucket: Optional[s3.IBucket] = None,
        vault_bucket: Optional[s3.IBucket] = None,
        encryption_key: Optional[kms.IKey] = None,
        topic: Optional[sns.ITopic] = None,
        event_bus: Optional[events.IEventBus] = None,
        externally_managed: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, id)
        # Access log delivery through a bucket policy, not the legacy LogDeliveryWrite ACL (which
        # conflicts with bucket-owner-enforced ownership), whatever the consumer app's feature flags.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        trigger = trigger or Trigger.on_object_created()
        if finding_policy is None:
            finding_policy = FindingPolicy()
        stack = Stack.of(self)
        self._owner = validate_settings(
            custom_data_identifiers=custom_data_identifiers,
            allow_lists=allow_lists,
            managed_data_identifier_selector=managed_data_identifier_selector,
            managed_data_identifier_ids=managed_data_identifier_ids,
            finding_policy=finding_policy,
            deny_policy=deny_policy,
            unknown_format_policy=unknown_format_policy,
            trigger=trigger,
            poll_interval=poll_interval,
            max_scan_wait=max_scan_wait,
            approval_timeout=approval_timeout,
            approval_heartbeat=approval_heartbeat,
            vault_object_lock=vault_object_lock,
            notification_emails=notification_emails,
            discovery_results_bucket=discovery_results_bucket,
            discovery_results_key=discovery_results_key,
            configure_discovery_results=configure_discovery_results,
            create_macie_session=create_macie_session,
            ingress_bucket=ingress_bucket,
            vault_bucket=vault_bucket,
            encryption_key=encryption_key,
            topic=topic,
            event_bus=event_bus,
            externally_managed=externally_managed,
            stack=stack,
            other_pipelines=self._other_pipelines_in_this_environment(stack),
            other_pipeline_buckets=self._other_pipeline_buckets(),
        )
        #: (configure_discovery_results, create_macie_session): account-wide settings other
        #: pipelines of the app must not repeat.
        self._account_settings = (configure_discovery_results, create_macie_session)
        self._external_setup: list[ExternalSetup] = []
        self.node.add_validation(_OneResourcePolicy(self))
        self._removal_policy = removal_policy
        self._review_api_iam_auth = review_api_iam_auth
        finding_policy = as_finding_policy(finding_policy)
        self.finding_policy = finding_policy

        # ---------------------------------------------------------------- keys
        #: Encrypts every data bucket the construct creates; Macie's service-linked role may decrypt
        #: through S3 only. The key you pass as ``encryption_key``, if any.
        self.data_key = encryption_key or defaults.encryption_key(
            self, "DataKey", description="SensitiveDataScanPipeline data buckets", removal_policy=removal_policy
        )
        self._apply_or_record(
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
        #: Encrypts the topic, the state table and the log groups.
        self.operations_key = defaults.encryption_key(
            self, "OperationsKey", description="SensitiveDataScanPipeline topic, table and logs", removal_policy=removal_policy
        )
        defaults.allow_cloudwatch_logs(self.operations_key, Aws.REGION, Aws.ACCOUNT_ID, Aws.PARTITION)
        self.operations_key.add_to_resource_policy(_alarms_key_statement())

        # ---------------------------------------------------------------- zones
        #: Receives server access logs of every other bucket (SSE-S3: log delivery supports no KMS).
        self.access_logs_bucket = defaults.access_log_bucket(self, "AccessLogs", removal_policy=removal_policy)
        _ack(self.access_logs_bucket, "AwsSolutions-S1", "This is the access log bucket; logging it into itself would loop.")
        self.ingress_bucket = ingress_bucket or defaults.data_bucket(
            self,
            "Ingress",
            key=self.data_key,
            access_logs=self.access_logs_bucket,
            removal_policy=removal_policy,
            event_bridge_enabled=True,
        )
        if ingress_bucket is not None:
            self._adopt_ingress_bucket(ingress_bucket, trigger)
        self.quarantine_bucket = defaults.data_bucket(
            self, "Quarantine", key=self.data_key, access_logs=self.access_logs_bucket, removal_policy=removal_policy
        )
        self.review_bucket = defaults.data_bucket(
            self, "Review", key=self.data_key, access_logs=self.access_logs_bucket, removal_policy=removal_policy
        )
        lock = None
        if vault_object_lock is not None:
            lock = (_value(vault_object_lock.mode), vault_object_lock.retention)
        self.vault_bucket = vault_bucket or defaults.data_bucket(
            self,
            "Vault",
            key=self.data_key,
            access_logs=self.access_logs_bucket,
            removal_policy=removal_policy,
            noncurrent_version_days=None if lock else 365,
            object_lock=lock,
        )
        if self._owner["vault_bucket"] is Ownership.IMPORTED:
            self._record(
                "vault_bucket", self.vault_bucket.bucket_arn, "bucket configuration",
                "Required. Turn on versioning: the pipeline writes and verifies exact object versions.",
            )

        # ---------------------------------------------------------------- messaging and state
        #: Review requests, scan summaries, failures and alarms.
        self.topic = topic or sns.Topic(
            self, "Notifications", display_name="Sensitive data scan", master_key=self.operations_key, enforce_ssl=True
        )
        self._allow_alarms_to_publish()
        for email in notification_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        #: The topic's KMS key (None: not encrypted, or imported without ``key_arn``).
        self._topic_key: Optional[kms.IKey] = self.operations_key if topic is None else topic.master_key
        #: Pending reviews (task tokens) and duplicate-event claims.
        self.state_table = defaults.state_table(self, "State", key=self.operations_key, removal_policy=removal_policy)
        #: Where result events go.
        self.event_bus = event_bus or events.EventBus.from_event_bus_name(self, "DefaultBus", "default")

        # ---------------------------------------------------------------- Macie configuration
        session = None
        if create_macie_session:
            session = macie.CfnSession(self, "MacieSession", status="ENABLED", finding_publishing_frequency="FIFTEEN_MINUTES")
        self.custom_data_identifiers = []
        for index, cdi in enumerate(custom_data_identifiers):
            resource = macie.CfnCustomDataIdentifier(
                self,
                f"CustomDataIdentifier{index}",
                name=self._macie_name(
                    cdi.name, f"CustomDataIdentifier{index}",
                    # Every property of a custom data identifier is immutable: a change replaces it, and
                    # the replacement (created before the old one is deleted) needs a name of its own.
                    json.dumps([cdi.regex, list(cdi.keywords), list(cdi.ignore_words), cdi.maximum_match_distance,
                                cdi.description]),
                ),
                regex=cdi.regex,
                description=cdi.description,
                keywords=list(cdi.keywords) or None,
                ignore_words=list(cdi.ignore_words) or None,
                maximum_match_distance=cdi.maximum_match_distance,
            )
            if session is not None:
                resource.add_dependency(session)
            self.custom_data_identifiers.append(resource)
        self.allow_lists = []
        for index, allow in enumerate(allow_lists):
            resource = macie.CfnAllowList(
                self,
                f"AllowList{index}",
                name=self._macie_name(allow.name, f"AllowList{index}"),
                description=allow.description,
                criteria=macie.CfnAllowList.CriteriaProperty(regex=allow.regex),
            )
            if session is not None:
                resource.add_dependency(session)
            self.allow_lists.append(resource)

        results_bucket, results_key = discovery_results_bucket, discovery_results_key
        if configure_discovery_results:
            results_bucket, results_key = self._configure_discovery_results(session)
        elif results_bucket is None:
            Annotations.of(self).add_warning_v2(
                "macie-pipeline:discovery-results",
                "No Macie discovery results location is configured or given: the evaluator cannot prove objects "
                "were analysed, so every object will go to review. Set configure_discovery_results=True or pass "
                "discovery_results_bucket and discovery_results_key.",
            )

        self._results_bucket: Optional[s3.IBucket] = results_bucket

        # ---------------------------------------------------------------- functions
        runtime_layer = runtime_layer or lambda_.LayerVersion(
            self,
            "RuntimeLayer",
            code=lambda_.Code.from_asset(str(layers.build_runtime_layer())),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="Powertools for AWS Lambda and the pipeline's shared code",
        )
        pandas_layer = pandas_layer or lambda_.LayerVersion(
            self,
            "PandasLayer",
            code=lambda_.Code.from_asset(str(layers.build_pandas_layer())),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="pandas and fastparquet for the integrity check",
        )
        common_env = {"STATE_TABLE": self.state_table.table_name, "POWERTOOLS_LOG_LEVEL": "INFO"}
        self.prepare_scan_function = self._function(
            "PrepareScan",
            "prepare_scan",
            [runtime_layer],
            timeout=Duration.minutes(2),
            environment={
                **common_env,
                "INGRESS_BUCKET": self.ingress_bucket.bucket_name,
                "INGRESS_PREFIX": trigger.prefix or "",
                "MAX_BATCH_OBJECTS": str(trigger.max_batch_objects),
                "CLAIM_TTL_SECONDS": str(int((max_scan_wait.to_seconds() + approval_timeout.to_seconds()) * 2)),
            },
        )
        self.transfer_function = self._function(
            "Transfer", "transfer", [runtime_layer], timeout=Duration.minutes(15), memory_size=1024
        )
        self.integrity_function = self._function(
            "IntegrityCheck",
            "integrity_check",
            [runtime_layer, pandas_layer],
            timeout=Duration.minutes(15),
            memory_size=2048,
            ephemeral_storage_size=10240,
            environment={"CHUNK_ROWS": "50000", "MAX_JSON_DOCUMENT_BYTES": str(64 * 1024 * 1024)},
        )
        evaluate_env = {
            "FINDING_POLICY": json.dumps(finding_policy.as_dict(), sort_keys=True),
            "UNKNOWN_FORMAT_POLICY": _value(unknown_format_policy),
        }
        if custom_data_identifiers:
            # Findings name a custom identifier by its (unique) Macie name; events report the name you gave.
            evaluate_env["CUSTOM_DATA_IDENTIFIER_NAMES"] = json.dumps(
                {resource.name: cdi.name for resource, cdi in zip(self.custom_data_identifiers, custom_data_identifiers)},
                sort_keys=True,
            )
        if results_bucket is not None:
            evaluate_env["RESULTS_BUCKET"] = results_bucket.bucket_name
            evaluate_env["RESULTS_PREFIX"] = DISCOVERY_RESULTS_PREFIX if configure_discovery_results else ""
        self.evaluate_function = self._function(
            "EvaluateFindings", "evaluate_findings", [runtime_layer], timeout=Duration.minutes(10), memory_size=512,
            environment=evaluate_env,
        )
        self.request_review_function = self._function(
            "RequestReview", "request_review", [runtime_layer], timeout=Duration.minutes(1),
            environment={
                **common_env,
                "TOPIC_ARN": self.topic.topic_arn,
                "REVIEW_TIMEOUT_SECONDS": str(int(approval_timeout.to_seconds())),
            },
        )
        self.review_api_function = self._function(
            "ReviewApiHandler", "review_api", [runtime_layer], timeout=Duration.seconds(29), environment=common_env
        )

        # ---------------------------------------------------------------- permissions of the functions
        # Explicit actions rather than grant_* helpers: no action wildcards, and no role may delete
        # from the vault or write to ingress.
        ops_key_use = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
        self._allow(self.prepare_scan_function, ["s3:ListBucket", "s3:ListBucketVersions"], [self.ingress_bucket.bucket_arn])
        self._allow(self.prepare_scan_function, ["dynamodb:PutItem", "dynamodb:GetItem"], [self.state_table.table_arn],
                    leading_keys="claim#*")
        self._allow(self.prepare_scan_function, ops_key_use, [self.operations_key.key_arn])

        readable = (self.ingress_bucket, self.quarantine_bucket, self.review_bucket)
        writable = (self.quarantine_bucket, self.review_bucket, self.vault_bucket)
        self._allow(
            self.transfer_function,
            ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging",
             "s3:DeleteObject", "s3:DeleteObjectVersion"],
            [b.arn_for_objects("*") for b in readable],
        )
        self._allow(
            self.transfer_function,
            ["s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectVersionTagging", "s3:GetObject", "s3:GetObjectVersion",
             "s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            [b.arn_for_objects("*") for b in writable],
        )
        self._allow(
            self.transfer_function,
            ["s3:ListBucket", "s3:ListBucketVersions"],
            [b.bucket_arn for b in (*readable, self.vault_bucket)],
        )
        self._allow(self.transfer_function, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [self.data_key.key_arn])
        # Buckets you pass in may use keys of their own (import them with their encryption_key).
        ingress_key = self._other_key(self.ingress_bucket)
        if ingress_key is not None:
            self._allow(self.transfer_function, ["kms:Decrypt"], [ingress_key.key_arn])
        vault_key = self._other_key(self.vault_bucket)
        if vault_key is not None:
            self._allow(self.transfer_function, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [vault_key.key_arn])

        self._allow(
            self.integrity_function,
            ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"],
            [self.quarantine_bucket.arn_for_objects("scans/*")],
        )
        self._allow(self.integrity_function, ["s3:ListBucket"], [self.quarantine_bucket.bucket_arn])
        self._allow(self.integrity_function, ["kms:Decrypt"], [self.data_key.key_arn])

        self._allow(
            self.evaluate_function,
            ["macie2:ListFindings", "macie2:GetFindings", "macie2:GetClassificationExportConfiguration"],
            ["*"],
        )
        if results_bucket is not None:
            self._allow(self.evaluate_function, ["s3:GetObject"], [results_bucket.arn_for_objects("*")])
            self._allow(self.evaluate_function, ["s3:ListBucket"], [results_bucket.bucket_arn])
            self._allow(self.evaluate_function, ["kms:Decrypt"], [results_key.key_arn])

        self._allow(self.request_review_function, ["dynamodb:PutItem"], [self.state_table.table_arn], leading_keys="review#*")
        self._allow(self.request_review_function, ["sns:Publish"], [self.topic.topic_arn])
        self._allow(self.request_review_function, ops_key_use, [self.operations_key.key_arn])
        if topic is not None and self._topic_key is not None:
            self._allow(self.request_review_function, ["kms:GenerateDataKey", "kms:Decrypt"], [self._topic_key.key_arn])
        self._allow(self.review_api_function, ["dynamodb:GetItem", "dynamodb:UpdateItem"], [self.state_table.table_arn],
                    leading_keys="review#*")
        self._allow(self.review_api_function, ops_key_use, [self.operations_key.key_arn])

        # ---------------------------------------------------------------- review API
        self.review_api = self._review_api(review_api_iam_auth)
        # Built from the API id and stage name, not from the stage resource: the stage depends on the
        # review handler, whose permissions name the state machine, which invokes this function.
        self.review_api_url = f"https://{self.review_api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{REVIEW_STAGE}/"
        self.request_review_function.add_environment("REVIEW_API_URL", self.review_api_url)

        # ---------------------------------------------------------------- workflow
        workflow = ScanWorkflow(
            self,
            "Workflow",
            resources=WorkflowResources(
                prepare_scan=self.prepare_scan_function,
                transfer=self.transfer_function,
                integrity_check=self.integrity_function,
                evaluate_findings=self.evaluate_function,
                request_review=self.request_review_function,
                ingress_bucket=self.ingress_bucket,
                quarantine_bucket=self.quarantine_bucket,
                review_bucket=self.review_bucket,
                vault_bucket=self.vault_bucket,
                topic=self.topic,
                event_bus=self.event_bus,
                custom_data_identifier_ids=[c.attr_id for c in self.custom_data_identifiers],
                allow_list_ids=[a.attr_id for a in self.allow_lists],
                custom_data_identifier_arns=[c.attr_arn for c in self.custom_data_identifiers],
                allow_list_arns=[a.attr_arn for a in self.allow_lists],
            ),
            settings=WorkflowSettings(
                managed_data_identifier_selector=_value(managed_data_identifier_selector),
                managed_data_identifier_ids=list(managed_data_identifier_ids),
                poll_interval=poll_interval,
                max_scan_wait=max_scan_wait,
                approval_timeout=approval_timeout,
                approval_heartbeat=approval_heartbeat,
                deny_policy=_value(deny_policy),
            ),
        )
        self.state_machine_log_group = defaults.log_group(
            self, "WorkflowLogs", key=self.operations_key, removal_policy=removal_policy
        )
        #: The scan workflow (Standard).
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(workflow.definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            timeout=Duration.seconds(int(max_scan_wait.to_seconds() + approval_timeout.to_seconds()) + 86400),
            logs=sfn.LogOptions(
                destination=self.state_machine_log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
            comment="SensitiveDataScanPipeline: stage, check integrity, Macie scan, route by verdict",
        )
        self.state_machine.grant_task_response(self.review_api_function)
        # SnsPublish grants only sns:Publish; the topic is encrypted (with the operations key, unless
        # you passed a topic of your own).
        if self._topic_key is not None:
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self._topic_key.key_arn])
            )
        # Defence in depth: only the transfer function may write to the vault, whatever else an
        # account's identity policies allow. (Changing this policy is itself a visible act.)
        self._apply_or_record(
            "vault_bucket",
            self.vault_bucket,
            "bucket policy",
            iam.PolicyStatement(
                sid="OnlyThePipelineWritesToTheVault",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectVersionTagging"],
                resources=[self.vault_bucket.arn_for_objects("*")],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": self.transfer_function.role.role_arn}},
            ),
            "Required for the vault guarantee. Denies object writes and tag changes to every principal but the "
            "pipeline's transfer role. Without it, anyone your IAM policies allow can put objects into the vault "
            "that were never scanned: the construct's 'only the pipeline writes to the vault' holds only with it. "
            "Existing objects are not affected.",
        )
        if self._owner["event_bus"] is Ownership.IMPORTED and environment_differs(self.event_bus, stack) is not False:
            self._record(
                "event_bus", self.event_bus.event_bus_arn, "event bus policy",
                "Only if the bus is in another account: let the workflow's role put result events on it (in the same "
                "account its IAM policy is enough). Without it every result event fails, and so does the scan.",
                iam.PolicyStatement(
                    sid="AllowSensitiveDataScanPipelineResults",
                    principals=[iam.ArnPrincipal(self.state_machine.role.role_arn)],
                    actions=["events:PutEvents"],
                    resources=[self.event_bus.event_bus_arn],
                ),
            )

        # ---------------------------------------------------------------- trigger
        self.trigger_rule = self._trigger(trigger)

        # ---------------------------------------------------------------- alarms
        self.alarms = self._alarms()

        CfnOutput(self, "ReviewApiUrl", value=self.review_api.url, description="Base URL of the review API")
        self._acknowledge_findings()

    # ------------------------------------------------------------------ helpers
    def _function(
        self,
        id: str,
        folder: str,
        function_layers: list,
        *,
        timeout: Duration,
        memory_size: int = 256,
        ephemeral_storage_size: int = 512,
        environment: Optional[dict] = None,
    ) -> lambda_.Function:
        """A function with its own role: logs to its own encrypted log group, nothing else by default."""
        log_group = defaults.log_group(self, f"{id}Logs", key=self.operations_key, removal_policy=self._removal_policy)
        role = iam.Role(
            self,
            f"{id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"SensitiveDataScanPipeline {folder}",
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn])
        )
        fn = lambda_.Function(
            self,
            id,
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=f"{folder}.handler",
            code=lambda_.Code.from_asset(str(Path(layers.lambda_code_dir()) / folder), exclude=["__pycache__", "*.pyc"]),
            layers=function_layers,
            role=role,
            timeout=timeout,
            memory_size=memory_size,
            ephemeral_storage_size=Size.mebibytes(ephemeral_storage_size),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment={"POWERTOOLS_SERVICE_NAME": f"macie-pipeline-{folder.replace('_', '-')}", **(environment or {})},
            description=f"SensitiveDataScanPipeline: {folder.replace('_', ' ')}",
        )
        _ack(role, "AwsSolutions-IAM5[Resource::*]", "X-Ray PutTraceSegments and PutTelemetryRecords have no resource-level permissions.")
        return fn

    @staticmethod
    def _allow(fn: lambda_.Function, actions: list, resources: list, *, leading_keys: Optional[str] = None) -> None:
        """Allow ``actions`` on ``resources``; for the state table, only on items whose key starts as given."""
        conditions = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [leading_keys]}} if leading_keys else None
        fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))

    def _configure_discovery_results(self, session: Optional[macie.CfnSession]) -> tuple[s3.IBucket, kms.IKey]:
        bucket = defaults.data_bucket(
            self,
            "DiscoveryResults",
            key=self.data_key,
            access_logs=self.access_logs_bucket,
            removal_policy=self._removal_policy,
        )
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
        self._apply_or_record(
            "encryption_key",
            self.data_key,
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
        export = cr.AwsCustomResource(
            self,
            "DiscoveryResultsExport",
            on_update=cr.AwsSdkCall(
                service="Macie2",
                action="putClassificationExportConfiguration",
                parameters={
                    "configuration": {
                        "s3Destination": {
                            "bucketName": bucket.bucket_name,
                            "keyPrefix": DISCOVERY_RESULTS_PREFIX,
                            "kmsKeyArn": self.data_key.key_arn,
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
        _ack(export, "AwsSolutions-IAM5[Resource::*]", "macie2:PutClassificationExportConfiguration has no resource-level permissions.")
        provider = Stack.of(self).node.try_find_child("AWS679f53fac002430cb0da5b7982bd2287")
        if provider is not None:
            _ack(provider, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                 "CDK's AwsCustomResource provider (one per stack) logs with the AWS managed basic execution policy.")
        export.node.add_dependency(bucket)
        export.node.add_dependency(self.data_key)
        if session is not None:
            export.node.add_dependency(session)
        self.discovery_results_bucket = bucket
        return bucket, self.data_key

    def _review_api(self, iam_auth: bool) -> apigw.RestApi:
        access_logs = defaults.log_group(self, "ReviewApiAccessLogs", key=self.operations_key, removal_policy=self._removal_policy)
        api = apigw.RestApi(
            self,
            "ReviewApi",
            description="Reviewer decisions for SensitiveDataScanPipeline",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=self._removal_policy,
            deploy_options=apigw.StageOptions(
                stage_name=REVIEW_STAGE,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                # No X-Ray: API Gateway segments record the request URL, and the URL carries the
                # review id, a bearer capability.
                tracing_enabled=False,
                throttling_rate_limit=5,
                throttling_burst_limit=10,
            ),
            disable_execute_api_endpoint=False,
        )
        validator = api.add_request_validator("ValidateRequests", validate_request_parameters=True, validate_request_body=True)
        integration = apigw.LambdaIntegration(self.review_api_function, proxy=True)
        review = api.root.add_resource("reviews").add_resource("{reviewId}")
        auth = apigw.AuthorizationType.IAM if iam_auth else apigw.AuthorizationType.NONE
        for method in ("GET", "POST"):
            m = review.add_method(
                method,
                integration,
                authorization_type=auth,
                request_validator=validator,
                request_parameters={"method.request.path.reviewId": True},
            )
            if iam_auth:
                _ack(m, "AwsSolutions-COG4", "The method requires IAM (SigV4) authorization instead of a Cognito user pool.")
            else:
                _ack(m, "AwsSolutions-APIG4", "The link is a capability: an unguessable (256-bit), single-use review id that expires with the approval; set review_api_iam_auth=True to require IAM as well.")
                _ack(m, "AwsSolutions-COG4", "No Cognito user pool: see AwsSolutions-APIG4; IAM authorization is available through review_api_iam_auth.")
        _ack(api, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
             "API Gateway execution logging needs the account's CloudWatch role; this is AWS's policy for exactly that.")
        _ack(api.deployment_stage, "AwsSolutions-APIG3", "WAF is an account-level choice (cost, shared web ACLs); the stage is throttled to 5 requests/s.")
        return api

    def _trigger(self, trigger: Trigger) -> events.Rule:
        role = iam.Role(self, "TriggerRole", assumed_by=iam.ServicePrincipal("events.amazonaws.com"))
        self.state_machine.grant_start_execution(role)
        target = targets.SfnStateMachine(self.state_machine, role=role)
        if trigger.kind == "schedule":
            return events.Rule(self, "ScheduleRule", schedule=trigger.schedule, targets=[target],
                               description="Scan everything in the ingress bucket as one batch")
        key_filter: dict = {}
        if trigger.prefix and trigger.suffix:
            key_filter = {"key": [{"wildcard": f"{trigger.prefix}*{trigger.suffix}"}]}
        elif trigger.prefix:
            key_filter = {"key": [{"prefix": trigger.prefix}]}
        elif trigger.suffix:
            key_filter = {"key": [{"suffix": trigger.suffix}]}
        detail: dict = {"bucket": {"name": [self.ingress_bucket.bucket_name]}}
        if key_filter:
            detail["object"] = key_filter
        return events.Rule(
            self,
            "ObjectCreatedRule",
            event_pattern=events.EventPattern(source=["aws.s3"], detail_type=["Object Created"], detail=detail),
            targets=[target],
            description="Scan each object created in the ingress bucket",
        )

    def _alarms(self) -> list[cloudwatch.Alarm]:
        action = cw_actions.SnsAction(self.topic)
        alarms = []
        period = Duration.minutes(5)
        for id, metric, what in (
            ("ExecutionsFailedAlarm", self.state_machine.metric_failed(period=period), "A scan failed: objects are held"),
            ("ExecutionsTimedOutAlarm", self.state_machine.metric_timed_out(period=period), "A scan timed out"),
            ("ExecutionsAbortedAlarm", self.state_machine.metric_aborted(period=period), "A scan was stopped by hand"),
        ):
            alarms.append(self._alarm(id, metric, what, action))
        for fn in (
            self.prepare_scan_function,
            self.transfer_function,
            self.integrity_function,
            self.evaluate_function,
            self.request_review_function,
            self.review_api_function,
        ):
            alarms.append(
                self._alarm(f"{fn.node.id}ErrorsAlarm", fn.metric_errors(period=period), f"{fn.node.id} raised errors", action)
            )
        return alarms

    def _alarm(self, id: str, metric: cloudwatch.IMetric, description: str, action) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
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

    def _acknowledge_findings(self) -> None:
        """cdk-nag findings that are the design, each acknowledged on its resource with the reason."""
        stack = Stack.of(self)

        def arn_of(resource: Construct) -> str:
            return f"<{stack.resolve(stack.get_logical_id(resource.node.default_child))}.Arn>"

        def nag_id(value: str) -> str:
            """The resource as cdk-nag names it in a finding id (works for imported ARNs too)."""
            return flatten_reference(stack.resolve(value))

        object_reason = "Object-level S3 actions need bucket/* (object keys are not known in advance); actions are listed explicitly, none is a wildcard."
        for fn, buckets in (
            (self.transfer_function, (self.ingress_bucket, self.quarantine_bucket, self.review_bucket, self.vault_bucket)),
            (self.evaluate_function, (self._results_bucket,)),
        ):
            for bucket in buckets:
                if bucket is not None:
                    _ack(fn.role, f"AwsSolutions-IAM5[Resource::{nag_id(bucket.arn_for_objects('*'))}]", object_reason)
        _ack(self.integrity_function.role, f"AwsSolutions-IAM5[Resource::{nag_id(self.quarantine_bucket.arn_for_objects('scans/*'))}]", object_reason)
        _ack(self.evaluate_function.role, "AwsSolutions-IAM5[Resource::*]",
             "macie2:ListFindings, GetFindings and GetClassificationExportConfiguration have no resource-level permissions; X-Ray needs *.")

        sm_role = self.state_machine.role
        for fn in (self.prepare_scan_function, self.transfer_function, self.integrity_function,
                   self.evaluate_function, self.request_review_function):
            _ack(sm_role, f"AwsSolutions-IAM5[Resource::{arn_of(fn)}:*]",
                 "CDK's LambdaInvoke grant covers the function's versions (:*); only these functions are invocable.")
        _ack(sm_role, f"AwsSolutions-IAM5[Resource::{nag_id(job_arn_pattern(stack))}]",
             "Macie classification jobs are created at run time, one per scan; their ids cannot be known at deploy time.")
        _ack(sm_role, f"AwsSolutions-IAM5[Resource::{nag_id(self.ingress_bucket.arn_for_objects('*'))}]",
             "The workflow deletes the exact scanned version (s3:DeleteObjectVersion) of any ingress key.")
        _ack(sm_role, "AwsSolutions-IAM5[Resource::*]",
             "Step Functions log delivery (logs:*LogDelivery) and X-Ray have no resource-level permissions.")
        for fn in (self.prepare_scan_function, self.transfer_function, self.integrity_function, self.evaluate_function,
                   self.request_review_function, self.review_api_function):
            _ack(fn, "AwsSolutions-L1", f"Pinned to {LAMBDA_RUNTIME.name}: the pandas layer's binary wheels are built for exactly this runtime; upgrade both together.")

    # ------------------------------------------------------------------ bring your own resources
    def _other_pipeline_buckets(self) -> list[tuple[str, str, s3.IBucket]]:
        """(path, "ingress"|"vault", bucket) of every other pipeline already in this app."""
        found = []
        for construct in self.node.root.node.find_all():
            if construct is not self and isinstance(construct, SensitiveDataScanPipeline):
                for role in ("ingress", "vault"):
                    bucket = getattr(construct, f"{role}_bucket", None)  # None: that one failed validation
                    if bucket is not None:
                        found.append((construct.node.path, role, bucket))
        return found

    def _other_pipelines_in_this_environment(self, stack: Stack) -> list[tuple[str, bool, bool]]:
        """The pipelines already in this app that deploy (or may deploy) to this account and Region."""
        others = []
        for construct in self.node.root.node.find_all():
            if construct is self or not isinstance(construct, SensitiveDataScanPipeline):
                continue
            settings = getattr(construct, "_account_settings", None)
            if settings is None or environment_differs(Stack.of(construct), stack):
                continue
            others.append((construct.node.path, *settings))
        return others

    def _macie_name(self, name: str, child_id: str, *definition: str) -> str:
        """A Macie name unique in the account and Region: custom data identifier and allow list names are.

        The name you gave, then 8 hex characters of a hash of the stack name, the resource's path and
        (for immutable resources) its definition, so that two pipelines, two stacks or a replacement
        never ask Macie for a name that exists.
        """
        stack_name = Stack.of(self).stack_name
        identity = [stack_name if not Token.is_unresolved(stack_name) else "", f"{self.node.path}/{child_id}", *definition]
        digest = hashlib.sha256("\n".join(identity).encode("utf-8")).hexdigest()[:8]
        return f"{name[: MAX_NAME_LENGTH - 9]}-{digest}"

    def _record(self, setting: str, resource: str, applies_to: str, description: str,
                *statements: iam.PolicyStatement) -> None:
        self._external_setup.append(ExternalSetup(setting, resource, applies_to, description, tuple(statements)))

    def _apply_or_record(self, setting: str, resource, applies_to: str, statement: iam.PolicyStatement,
                         description: str) -> None:
        """Add ``statement`` to the resource policy of a created or owned resource; for an imported one,
        record it in :attr:`external_setup` (CDK would drop it silently)."""
        if self._owner.get(setting) is not Ownership.IMPORTED:
            result = resource.add_to_resource_policy(statement)
            if result.statement_added:
                return
        arn = next(getattr(resource, a) for a in ("bucket_arn", "key_arn", "topic_arn", "event_bus_arn") if hasattr(resource, a))
        self._record(setting, arn, applies_to, description, statement)

    def _adopt_ingress_bucket(self, bucket: s3.IBucket, trigger: Trigger) -> None:
        """What a bucket you pass as ``ingress_bucket`` needs: EventBridge notifications and versioning."""
        needs_events = trigger.kind == "object-created"
        if self._owner["ingress_bucket"] is Ownership.OWNED:
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
        self._record("ingress_bucket", bucket.bucket_arn, "bucket configuration", "Required. " + "; ".join(steps) + ".")

    def _allow_alarms_to_publish(self) -> None:
        """CloudWatch alarms publish to the topic as a service: the topic policy must allow it (a
        topic policy without such a statement rejects them) and, if the topic is encrypted, the key."""
        self._apply_or_record(
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
        key = self.topic.master_key if self._owner["topic"] is not Ownership.CREATED else None
        if key is None:
            return  # the created topic's key (operations key) already allows CloudWatch alarms
        key_owner = ownership(key, Stack.of(self), kms.Key)
        statement = _alarms_key_statement()
        if key_owner is Ownership.OWNED and key.add_to_resource_policy(statement).statement_added:
            return
        self._record(
            "topic", key.key_arn, "key policy",
            "Required. CloudWatch alarms must use the topic's key to publish: without it every alarm fails to notify.",
            statement,
        )

    def _other_key(self, bucket: s3.IBucket) -> Optional[kms.IKey]:
        """The bucket's own encryption key when it is not the data key (a bucket you passed in)."""
        key = bucket.encryption_key
        if key is None or key is self.data_key or key.key_arn == self.data_key.key_arn:
            return None
        return key

    # ------------------------------------------------------------------ helpers for users
    @property
    def encryption_key(self) -> kms.IKey:
        """The key of the construct's data buckets (the one you passed, or the created data key)."""
        return self.data_key

    @property
    def external_setup(self) -> list[ExternalSetup]:
        """What you must apply yourself to the imported resources you passed in: policy statements the
        construct cannot add, and settings it cannot change. Empty when nothing you passed is imported.

        Each item's ``statements`` are ``iam.PolicyStatement`` objects: add them in CDK to the stack that
        owns the resource (in the same app they resolve across stacks), or see :meth:`external_setup_json`.
        """
        return list(self._external_setup)

    def external_setup_json(self, *, indent: Optional[int] = 2) -> str:
        """:attr:`external_setup` as JSON, without any CfnOutput. References to resources the pipeline
        creates appear as ``${LogicalId.Arn}`` (the attribute of the deployed resource with that logical
        id in this stack) and pseudo parameters as ``${AWS::AccountId}``, ``${AWS::Region}``..."""
        return render_external_setup(self._external_setup, Stack.of(self), indent=indent)

    def grant_ingress_write(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` upload objects to the ingress bucket (and encrypt with its key, if known)."""
        return self.ingress_bucket.grant_put(grantee)

    def grant_vault_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read clean or approved objects from the vault (and decrypt them, if the key is known)."""
        return self.vault_bucket.grant_read(grantee)

    def grant_review_decision(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call the review API (GET and POST ``/reviews/*``). Requires
        ``review_api_iam_auth=True``: without IAM authorization the link alone decides, and a grant
        would suggest a restriction that does not exist."""
        if not self._review_api_iam_auth:
            raise ValueError(
                "grant_review_decision needs review_api_iam_auth=True: without IAM authorization anyone with a "
                "review link can decide, whatever IAM allows"
            )
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["execute-api:Invoke"],
            resource_arns=[
                self.review_api.arn_for_execute_api(method, "/reviews/*", REVIEW_STAGE) for method in ("GET", "POST")
            ],
        )

    def metric_executions_failed(self, **kwargs) -> cloudwatch.Metric:
        """Failed scan executions (objects are held, people were told)."""
        return self.state_machine.metric_failed(**kwargs)
