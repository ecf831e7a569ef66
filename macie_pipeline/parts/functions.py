"""The Lambda functions: their layers, and each function with its environment and its IAM together.

Explicit actions rather than ``grant_*`` helpers: no action wildcards, and no role may delete from
the vault or write to ingress. Each function's environment is its contract class
(``macie_pipeline.contract``), the very class its handler parses at run time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import jsii
from aws_cdk import ArnFormat, Aws, Duration, IStableStringProducer, Lazy, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn

from .. import defaults, layers
from ..contract import (
    BATCH_FILE_WRITERS,
    BATCH_PREFIX,
    CLAIM_PREFIX,
    JOB_PREFIX,
    REVIEW_PREFIX,
    STAGING_PREFIX,
    EvaluateFindingsEnvironment,
    FunctionEnvironment,
    IntegrityCheckEnvironment,
    JobEventsEnvironment,
    PrepareScanEnvironment,
    RequestReviewEnvironment,
    ReviewApiEnvironment,
    TransferEnvironment,
)
from ..external import flatten_reference
from ..options import LayerOptions, PipelineOptions
from ..props import value_of
from .context import PartContext, acknowledge
from .keys import Keys
from .macie_setup import MacieSetup
from .messaging import Messaging
from .zones import Zones

LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_13
#: Customer managed key actions the functions that use the operations key need.
OPERATIONS_KEY_USE = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
#: What a function that only reads the state table needs of its key (the operations key).
TABLE_READ_KEY_USE = ["kms:Decrypt", "kms:DescribeKey"]
OBJECT_ARN_REASON = (
    "Object-level S3 actions need bucket/* (object keys are not known in advance); actions are listed explicitly, "
    "none is a wildcard."
)


def macie_job_arn_pattern(stack: Stack) -> str:
    """Every Macie classification job of the stack's account and Region: job ids exist only at run time."""
    return f"arn:{stack.partition}:macie2:{stack.region}:{stack.account}:classification-job/*"


@jsii.implements(IStableStringProducer)
class _Later:
    """A value known only once a later part exists (the review API's URL, the state machine's ARN),
    resolved at synth."""

    def __init__(self) -> None:
        self.value: Optional[str] = None

    def produce(self) -> Optional[str]:
        return self.value


class Functions:
    """``prepare_scan``, ``transfer``, ``integrity_check``, ``evaluate_findings``, ``job_events``,
    ``request_review`` and ``review_api``: one role each, logging to its own encrypted log group.

    Each function's environment is set from its contract class; ``prepare_scan``'s state machine ARN
    and the task-response permission of ``job_events`` come with :meth:`bind_state_machine`, once
    the state machine exists."""

    def __init__(
        self, ctx: PartContext, *, options: PipelineOptions, keys: Keys, zones: Zones, messaging: Messaging, macie: MacieSetup,
    ) -> None:
        self._ctx = ctx
        self._keys = keys
        self._zones = zones
        self._folders: dict[str, str] = {}  # construct id -> folder under lambda/
        self._batch_writers: list[tuple[str, iam.IRole]] = []
        self._review_api_url = _Later()
        self._sign_in = {name: _Later() for name in ("user_pool_id", "user_pool_client_id", "sign_in_url", "signed_in_url")}
        self._state_machine_arn = _Later()
        runtime_layer, pandas_layer = self._layers(options.layers)
        self.prepare_scan = self._prepare_scan(runtime_layer, options, zones, messaging)
        self.transfer = self._transfer(runtime_layer, options, zones, messaging)
        self.integrity_check = self._integrity_check(runtime_layer, pandas_layer, zones)
        self.evaluate_findings = self._evaluate_findings(runtime_layer, options, macie, messaging)
        self.job_events = self._job_events(runtime_layer, options, messaging)
        self.request_review = self._request_review(runtime_layer, options, messaging)
        self.review_api = self._review_api(runtime_layer, messaging, options)

    @property
    def all(self) -> tuple[lambda_.Function, ...]:
        return (self.prepare_scan, self.transfer, self.integrity_check, self.evaluate_findings, self.job_events,
                self.request_review, self.review_api)

    @property
    def invoked_by_workflow(self) -> tuple[lambda_.Function, ...]:
        return (self.transfer, self.integrity_check, self.evaluate_findings, self.job_events, self.request_review)

    def set_review_api_url(self, url: str) -> None:
        """The review API's base URL for review links (the API is built after the functions)."""
        self._review_api_url.value = url

    def set_sign_in(self, *, user_pool_id: str, user_pool_client_id: str, sign_in_url: str, signed_in_url: str) -> None:
        """Where the review function signs reviewers in (the pool, client and API are built after the functions)."""
        for name, value in (("user_pool_id", user_pool_id), ("user_pool_client_id", user_pool_client_id),
                            ("sign_in_url", sign_in_url), ("signed_in_url", signed_in_url)):
            self._sign_in[name].value = value

    def bind_state_machine(self, state_machine: sfn.IStateMachine) -> None:
        """What needs the state machine, which is built after the functions: ``prepare_scan`` starts
        (and looks up) its executions, ``job_events`` resumes the ones waiting for a Macie job.

        ``job_events``' permission is a policy of its own, not its role's default policy: the state
        machine invokes ``job_events`` (so depends on the function), and a function depends on its
        role's default policy; this policy depends on the state machine and nothing on it."""
        self._state_machine_arn.value = state_machine.state_machine_arn
        stack = self._ctx.stack
        executions = stack.format_arn(
            service="states", resource="execution", resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        allow(self.prepare_scan, ["states:StartExecution"], [state_machine.state_machine_arn])
        allow(self.prepare_scan, ["states:DescribeExecution"], [executions])
        acknowledge(self.prepare_scan.role, f"AwsSolutions-IAM5[Resource::{self._nag_id(executions)}]",
                    "An execution's name is its batch id, made at run time; only executions of this state machine.")
        iam.Policy(
            self._ctx.scope, "JobEventsTaskResponsePolicy", roles=[self.job_events.role],
            statements=[iam.PolicyStatement(
                # A wake-up carries no verdict: job_events only ever resumes the wait (SendTaskSuccess).
                actions=["states:SendTaskSuccess"], resources=[state_machine.state_machine_arn],
            )],
        )

    # ------------------------------------------------------------------ layers
    def _layers(self, given: LayerOptions) -> tuple[lambda_.ILayerVersion, lambda_.ILayerVersion]:
        runtime_layer = given.runtime_layer or self._layer(
            "RuntimeLayer", layers.build_runtime_layer(), "Powertools for AWS Lambda and the pipeline's shared code"
        )
        pandas_layer = given.pandas_layer or self._layer(
            "PandasLayer", layers.build_pandas_layer(), "pandas and fastparquet for the integrity check"
        )
        return runtime_layer, pandas_layer

    def _layer(self, id: str, folder: Path, description: str) -> lambda_.LayerVersion:
        """A layer built at synth (pip, no Docker) for this runtime and architecture only."""
        return lambda_.LayerVersion(
            self._ctx.scope,
            id,
            code=lambda_.Code.from_asset(str(folder)),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description=description,
        )

    # ------------------------------------------------------------------ the functions
    def _prepare_scan(self, layer, options: PipelineOptions, zones: Zones, messaging: Messaging) -> lambda_.Function:
        """The batcher: claims object versions (from the intake queue or a sweep of the ingress bucket),
        writes each batch's manifest and starts one execution per batch."""
        trigger = options.trigger
        fn = self._function(
            "PrepareScan", [layer], timeout=Duration.minutes(15), memory_size=1024,
            environment=PrepareScanEnvironment(
                state_table=messaging.state_table.table_name,
                ingress_bucket=zones.ingress_bucket.bucket_name,
                batch_bucket=zones.batch_bucket.bucket_name,
                state_machine_arn=Lazy.string(self._state_machine_arn),
                ingress_prefix=trigger.prefix or "",
                ingress_suffix=trigger.suffix or "",
                max_batch_objects=trigger.max_batch_objects,
                chunk_objects=options.chunk_objects,
                lost_event_age_seconds=int(trigger.lost_event_age.to_seconds()),
                claim_ttl_seconds=options.timing.claim_ttl_seconds(),
            ),
        )
        # Sweeps list the ingress versions; an event or a listing carries every field of a manifest line
        # (no HeadObject, so no object permission).
        allow(fn, ["s3:ListBucket", "s3:ListBucketVersions"], [zones.ingress_bucket.bucket_arn])
        self._batch_files(fn, write=True, read=False)
        allow(fn, ["dynamodb:PutItem", "dynamodb:GetItem"], [messaging.state_table.table_arn], leading_keys=CLAIM_PREFIX + "*")
        allow(fn, OPERATIONS_KEY_USE, [self._keys.operations_key.key_arn])
        return fn

    def _transfer(self, layer, options: PipelineOptions, zones: Zones, messaging: Messaging) -> lambda_.Function:
        """Copies, moves and tags exact object versions between the zones, chunk by chunk; the only
        writer of quarantine, review and vault; sends each object's result event."""
        fn = self._function(
            "Transfer", [layer], timeout=Duration.minutes(15), memory_size=1024,
            environment=TransferEnvironment(
                batch_bucket=zones.batch_bucket.bucket_name,
                ingress_bucket=zones.ingress_bucket.bucket_name,
                quarantine_bucket=zones.quarantine_bucket.bucket_name,
                review_bucket=zones.review_bucket.bucket_name,
                vault_bucket=zones.vault_bucket.bucket_name,
                event_bus=messaging.event_bus.event_bus_name,
                state_table=messaging.state_table.table_name,
                deny_policy=value_of(options.verdicts.deny_policy),
            ),
        )
        readable = (zones.ingress_bucket, zones.quarantine_bucket, zones.review_bucket)
        writable = (zones.quarantine_bucket, zones.review_bucket, zones.vault_bucket)
        allow(
            fn,
            ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging"],
            [b.arn_for_objects("*") for b in readable],
        )
        # A move deletes its verified source version, in quarantine or review (always by version id);
        # routing deletes the scanned ingress version once its copy is in its zone (that version only).
        allow(fn, ["s3:DeleteObjectVersion"], [b.arn_for_objects("*") for b in (zones.ingress_bucket, *writable[:2])])
        allow(
            fn,
            ["s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectVersionTagging", "s3:GetObject", "s3:GetObjectVersion",
             "s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            [b.arn_for_objects("*") for b in writable],
        )
        allow(fn, ["s3:ListBucket", "s3:ListBucketVersions"], [b.bucket_arn for b in (*readable, zones.vault_bucket)])
        allow(fn, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [self._keys.data_key.key_arn])
        self._batch_files(fn, write=True)
        self._put_events(fn, messaging)
        # Reviewer decisions, one item per object (review#<batch id>#<index>), read with BatchGetItem.
        allow(fn, ["dynamodb:BatchGetItem"], [messaging.state_table.table_arn], leading_keys=REVIEW_PREFIX + "*")
        allow(fn, TABLE_READ_KEY_USE, [self._keys.operations_key.key_arn])
        # Buckets you pass in may use keys of their own (import them with their encryption_key).
        ingress_key = self._keys.other_key(zones.ingress_bucket)
        if ingress_key is not None:
            allow(fn, ["kms:Decrypt"], [ingress_key.key_arn])
        vault_key = self._keys.other_key(zones.vault_bucket)
        if vault_key is not None:
            allow(fn, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [vault_key.key_arn])
        for bucket in (zones.ingress_bucket, zones.quarantine_bucket, zones.review_bucket, zones.vault_bucket):
            acknowledge(fn.role, f"AwsSolutions-IAM5[Resource::{self._nag_id(bucket.arn_for_objects('*'))}]", OBJECT_ARN_REASON)
        return fn

    def _integrity_check(self, layer, pandas_layer, zones: Zones) -> lambda_.Function:
        """Parses each staged object of a chunk in bounded memory (pandas): VALID, CORRUPT or UNCHECKED."""
        fn = self._function(
            "IntegrityCheck", [layer, pandas_layer], timeout=Duration.minutes(15), memory_size=2048, ephemeral_storage_size=10240,
            environment=IntegrityCheckEnvironment(batch_bucket=zones.batch_bucket.bucket_name),
        )
        staged = zones.quarantine_bucket.arn_for_objects(STAGING_PREFIX + "*")
        allow(fn, ["s3:GetObject", "s3:GetObjectVersion"], [staged])
        allow(fn, ["s3:ListBucket"], [zones.quarantine_bucket.bucket_arn])
        allow(fn, ["kms:Decrypt"], [self._keys.data_key.key_arn])
        self._batch_files(fn, write=True)
        acknowledge(fn.role, f"AwsSolutions-IAM5[Resource::{self._nag_id(staged)}]", OBJECT_ARN_REASON)
        return fn

    def _evaluate_findings(self, layer, options: PipelineOptions, macie: MacieSetup, messaging: Messaging) -> lambda_.Function:
        """Reads every finding and discovery result of the job and decides each object's verdict;
        counts and summarizes the batch."""
        results_bucket = macie.results_bucket
        fn = self._function(
            "EvaluateFindings", [layer], timeout=Duration.minutes(15), memory_size=1024,
            environment=EvaluateFindingsEnvironment(
                batch_bucket=self._zones.batch_bucket.bucket_name,
                state_table=messaging.state_table.table_name,
                event_bus=messaging.event_bus.event_bus_name,
                finding_policy=json.dumps(options.verdicts.resolved_finding_policy().as_dict(), sort_keys=True),
                unknown_format_policy=value_of(options.verdicts.unknown_format_policy),
                custom_data_identifier_names=macie.custom_identifier_names(),
                results_bucket=None if results_bucket is None else results_bucket.bucket_name,
                results_prefix=macie.results_prefix,
            ),
        )
        allow(fn, ["macie2:ListFindings", "macie2:GetFindings", "macie2:GetClassificationExportConfiguration"], ["*"])
        self._batch_files(fn, write=True)
        self._put_events(fn, messaging)
        # The job's error events (job#<id>), recorded by job_events.
        allow(fn, ["dynamodb:GetItem"], [messaging.state_table.table_arn], leading_keys=JOB_PREFIX + "*")
        allow(fn, TABLE_READ_KEY_USE, [self._keys.operations_key.key_arn])
        if results_bucket is not None:
            allow(fn, ["s3:GetObject"], [results_bucket.arn_for_objects("*")])
            allow(fn, ["s3:ListBucket"], [results_bucket.bucket_arn])
            # The results may share the data key (configure_discovery_results): decrypt only what S3
            # reads from the results bucket. With an S3 Bucket Key the encryption context is the
            # bucket's ARN, without one the object's.
            fn.add_to_role_policy(iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[macie.results_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"},
                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [results_bucket.bucket_arn, results_bucket.arn_for_objects("*")]},
                },
            ))
            acknowledge(fn.role, f"AwsSolutions-IAM5[Resource::{self._nag_id(results_bucket.arn_for_objects('*'))}]", OBJECT_ARN_REASON)
        acknowledge(fn.role, "AwsSolutions-IAM5[Resource::*]",
                    "macie2:ListFindings, GetFindings and GetClassificationExportConfiguration have no resource-level "
                    "permissions; X-Ray needs *.")
        return fn

    def _job_events(self, layer, options: PipelineOptions, messaging: Messaging) -> lambda_.Function:
        """Resumes the execution waiting for a Macie job: from the job's log events (subscription on
        Macie's log group), or at once when the job has already ended when the execution starts waiting."""
        fn = self._function(
            "JobEvents", [layer], timeout=Duration.minutes(1),
            environment=JobEventsEnvironment(
                state_table=messaging.state_table.table_name,
                item_ttl_seconds=options.timing.claim_ttl_seconds(),
            ),
        )
        # job#<id>: the waiting task token (UpdateItem, so that error events recorded first are kept) and
        # its error events; GetItem finds the token when a wake-up event arrives.
        allow(fn, ["dynamodb:GetItem", "dynamodb:UpdateItem"], [messaging.state_table.table_arn],
              leading_keys=JOB_PREFIX + "*")
        allow(fn, OPERATIONS_KEY_USE, [self._keys.operations_key.key_arn])
        jobs = macie_job_arn_pattern(self._ctx.stack)
        allow(fn, ["macie2:DescribeClassificationJob"], [jobs])
        acknowledge(fn.role, f"AwsSolutions-IAM5[Resource::{self._nag_id(jobs)}]",
                    "Macie classification jobs are created at run time, one per batch; their ids cannot be known at deploy time.")
        return fn

    def _request_review(self, layer, options: PipelineOptions, messaging: Messaging) -> lambda_.Function:
        """Lists a batch's held objects, stores the task token under a single-use review id and sends the link."""
        fn = self._function(
            "RequestReview", [layer], timeout=Duration.minutes(5), memory_size=512,
            environment=RequestReviewEnvironment(
                state_table=messaging.state_table.table_name,
                topic_arn=messaging.topic.topic_arn,
                batch_bucket=self._zones.batch_bucket.bucket_name,
                review_timeout_seconds=int(options.timing.approval_timeout.to_seconds()),
                review_api_url=Lazy.string(self._review_api_url),
            ),
        )
        allow(fn, ["dynamodb:PutItem"], [messaging.state_table.table_arn], leading_keys=REVIEW_PREFIX + "*")
        allow(fn, ["sns:Publish"], [messaging.topic.topic_arn])
        allow(fn, OPERATIONS_KEY_USE, [self._keys.operations_key.key_arn])
        self._batch_files(fn, write=True)
        if messaging.topic_supplied and messaging.topic_key is not None:
            allow(fn, ["kms:GenerateDataKey", "kms:Decrypt"], [messaging.topic_key.key_arn])
        return fn

    def _review_api(self, layer, messaging: Messaging, options: PipelineOptions) -> lambda_.Function:
        """Signs reviewers in (Cognito, code flow with PKCE), serves the review page (GET, read-only) and
        records decisions, per object or all (POST). The only function with the sign-in layer."""
        sign_in_layer = options.layers.sign_in_layer or self._layer(
            "SignInLayer", layers.build_sign_in_layer(), "PyJWT and cryptography: the review function verifies reviewers' tokens"
        )
        later = {name: Lazy.string(value) for name, value in self._sign_in.items()}
        fn = self._function(
            "ReviewApiHandler", [layer, sign_in_layer], timeout=Duration.seconds(29), memory_size=512,
            environment=ReviewApiEnvironment(
                state_table=messaging.state_table.table_name, batch_bucket=self._zones.batch_bucket.bucket_name,
                reviewers_group=options.review.reviewers_group, approvals_required=options.review.review_approvals_required,
                **later,
            ),
        )
        # A batch decision is one TransactWriteItems: an Update of the review's counts and an Update per
        # object's decision item (approvals, then the decision): UpdateItem only.
        allow(fn, ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem"],
              [messaging.state_table.table_arn], leading_keys=REVIEW_PREFIX + "*")
        allow(fn, OPERATIONS_KEY_USE, [self._keys.operations_key.key_arn])
        self._batch_files(fn, write=False)
        return fn

    def _batch_files(self, fn: lambda_.Function, *, write: bool, read: bool = True) -> None:
        """Read (GetObject; ListBucket so that a missing file is a 404, not a 403) the files of any
        batch, ``batches/*`` in the batch bucket, and/or write (PutObject) exactly the files the
        contract gives this function (``BATCH_FILE_WRITERS``), under the data key."""
        bucket = self._zones.batch_bucket
        files = bucket.arn_for_objects(BATCH_PREFIX + "*")
        if read:
            allow(fn, ["s3:GetObject"], [files])
            allow(fn, ["s3:ListBucket"], [bucket.bucket_arn])
            acknowledge(fn.role, f"AwsSolutions-IAM5[Resource::{self._nag_id(files)}]",
                        "A batch's files are under batches/<batch id>/; batch ids are made at run time.")
        if write:
            writes = [bucket.arn_for_objects(f"{BATCH_PREFIX}*/{pattern}") for pattern in self._writes(fn)]
            allow(fn, ["s3:PutObject"], writes)
            for arn in writes:
                acknowledge(fn.role, f"AwsSolutions-IAM5[Resource::{self._nag_id(arn)}]",
                            "This function's own files of each batch (BATCH_FILE_WRITERS); batch ids are made at run time.")
        key_actions = (["kms:Decrypt"] if read else []) + (["kms:GenerateDataKey"] if write else [])
        allow(fn, key_actions, [self._keys.data_key.key_arn])

    def _writes(self, fn: lambda_.Function) -> tuple[str, ...]:
        folder = self._folders[fn.node.id]
        self._batch_writers.append((folder, fn.role))
        return BATCH_FILE_WRITERS[folder]

    def batch_file_writers(self) -> dict[str, list[iam.IRole]]:
        """Pattern under ``batches/<batch id>/`` -> the roles that write it (for the batch bucket's guard)."""
        writers: dict[str, list[iam.IRole]] = {}
        for folder, role in self._batch_writers:
            for pattern in BATCH_FILE_WRITERS[folder]:
                writers.setdefault(pattern, []).append(role)
        return writers

    def _put_events(self, fn: lambda_.Function, messaging: Messaging) -> None:
        """Send result events to the pipeline's bus (PutEvents, 10 entries per call)."""
        allow(fn, ["events:PutEvents"], [messaging.event_bus.event_bus_arn])

    # ------------------------------------------------------------------ helpers
    def _function(
        self, id: str, function_layers: Sequence[lambda_.ILayerVersion], *, timeout: Duration, environment: FunctionEnvironment,
        memory_size: int = 256, ephemeral_storage_size: int = 512,
    ) -> lambda_.Function:
        """A function with its own role: logs to its own encrypted log group, nothing else by default."""
        ctx = self._ctx
        folder = environment.FUNCTION
        self._folders[id] = folder
        log_group = defaults.log_group(ctx.scope, f"{id}Logs", key=self._keys.operations_key, removal_policy=ctx.removal_policy)
        role = iam.Role(
            ctx.scope, f"{id}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"SensitiveDataScanPipeline {folder}",
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn])
        )
        fn = lambda_.Function(
            ctx.scope,
            id,
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=f"{folder}.handler",
            code=lambda_.Code.from_asset(str(Path(layers.lambda_code_dir()) / folder), exclude=["__pycache__", "*.pyc"]),
            layers=list(function_layers),
            role=role,
            timeout=timeout,
            memory_size=memory_size,
            ephemeral_storage_size=Size.mebibytes(ephemeral_storage_size),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment={"POWERTOOLS_SERVICE_NAME": f"macie-pipeline-{folder.replace('_', '-')}", **environment.to_environment()},
            description=f"SensitiveDataScanPipeline: {folder.replace('_', ' ')}",
        )
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                    "X-Ray PutTraceSegments and PutTelemetryRecords have no resource-level permissions.")
        acknowledge(fn, "AwsSolutions-L1",
                    f"Pinned to {LAMBDA_RUNTIME.name}: the pandas layer's binary wheels are built for exactly this runtime; "
                    "upgrade both together.")
        return fn

    def _nag_id(self, value: str) -> str:
        """The resource as cdk-nag names it in a finding id (works for imported ARNs too)."""
        return flatten_reference(self._ctx.stack.resolve(value))


def allow(fn: lambda_.Function, actions: list, resources: list, *, leading_keys: Optional[str] = None) -> None:
    """Allow ``actions`` on ``resources``; for the state table, only on items whose key starts as given."""
    conditions = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [leading_keys]}} if leading_keys else None
    fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))
