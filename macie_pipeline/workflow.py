"""The batch scan workflow (docs/batching.md, "The workflow (Standard)") as a Standard state machine.

Read :meth:`ScanWorkflow._build` first: it chains the steps in the order of the diagram in the
README. One execution scans one batch: its input names the batch's chunk index in the batch bucket,
three Distributed Maps run one Standard child workflow per chunk (stage, route, apply decisions),
one Macie job scans every staged object, and its completion wakes the execution through the
``job_events`` function (a task token), with a poll as the backstop.

The execution's state holds ids, references and counts only: every per-object line lives in the
batch bucket, so a batch of any size fits in 256 KiB. Every task gets a Retry for transient errors
and a Catch to a fail-closed path: a chunk whose handler fails stays where it is (its objects get
no line at the next stage and are reported FAILED), a failed step reports every object without an
outcome as FAILED, notifies, and fails the execution so that the alarms fire. Nothing reaches the
vault without a CLEAN verdict from a completed scan or a reviewer's APPROVE (the handlers decide).

State names are a contract (:class:`States`): the tests, the README and the offline engine refer to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from .contract import (  # noqa: F401 - EVENT_DETAIL_TYPE and EVENT_SOURCE are re-exported (README, public API)
    EVENT_DETAIL_TYPE,
    EVENT_SOURCE,
    TAG_SCAN_ID,
    States,
    _contract,
)

# The batch layout (lambda/shared/pipeline_common/contract.py); read from the loaded contract until
# macie_pipeline.contract re-exports these names.
BATCH_PREFIX: str = _contract.BATCH_PREFIX
MAP_RESULTS_PREFIX: str = _contract.MAP_RESULTS_PREFIX


def job_arn_pattern(stack: Stack) -> str:
    """Every Macie classification job of the stack's account and Region: job ids exist only at run time."""
    return f"arn:{stack.partition}:macie2:{stack.region}:{stack.account}:classification-job/*"


# Errors a handler raises when a retry may help (see lambda/shared/pipeline_common/errors.py).
HANDLER_TRANSIENT_ERRORS = ["TransientError"]
NOTHING_TO_REVIEW_ERROR = "NothingToReview"  # request_review: no object of the batch is held for review
# Lambda's transient service errors and throttling, as Step Functions names them (Step Functions
# developer guide, "Handle Lambda service exceptions"); every LambdaInvoke retries all of them.
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
MACIE_THROTTLING_ERRORS = ["Macie2.ThrottlingException"]
MACIE_TRANSIENT_ERRORS = ["Macie2.InternalServerException", "Macie2.Macie2Exception", "Macie2.SdkClientException"]
#: Statuses after which the execution waits for the job again.
JOB_WAITING_STATUSES = ("RUNNING", "IDLE", "PAUSED", "USER_PAUSED")
#: Macie pauses a job when the account reaches its monthly sensitive data discovery quota.
JOB_PAUSED_STATUS = "PAUSED"
#: ``ceil(max_scan_wait / poll_interval)`` may not exceed this: it bounds the poll loop, and so the
#: execution's history (25,000 events; tests/test_workflow.py computes the worst case).
MAX_POLL_RATIO = 1000
#: Extra polls on top of ``ceil(max_scan_wait / poll_interval)``: a job event wakes the execution
#: before its poll interval is up, and such wake-ups count too.
EXTRA_POLLS = 10
#: ``CreateClassificationJob`` allows 0.1 requests per second per account and Region. Throttling
#: is retried for about two hours at least (the sum of the capped delays, halved by full jitter on
#: average): a batch is delayed, never failed, and the client token (the batch id) means that a
#: retry never creates a second job.
START_JOB_THROTTLING_RETRY = {"interval": Duration.seconds(20), "max_attempts": 30, "max_delay": Duration.minutes(10)}

#: The payload field that names a function's operation (docs/batching.md).
OPERATION = "operation"
#: A JSON null in Parameters (CDK leaves None out of what it renders).
_NULL = "States.StringToJson('null')"


def retry_with_backoff(
    task: sfn.State, errors: Sequence[str], *, interval: Duration, max_attempts: int, max_delay: Duration,
) -> None:
    """Retry ``errors``: exponential backoff (x2) from ``interval``, capped at ``max_delay``, full jitter, bounded."""
    task.add_retry(  # type: ignore[attr-defined]
        errors=list(errors),
        interval=interval,
        max_attempts=max_attempts,
        backoff_rate=2,
        max_delay=max_delay,
        jitter_strategy=sfn.JitterType.FULL,
    )


def max_polls(poll_interval: Duration, max_scan_wait: Duration) -> int:
    """How many times the execution describes the job before it cancels it: one per poll interval of
    ``max_scan_wait``, plus :data:`EXTRA_POLLS` for wake-ups by job events."""
    ratio = math.ceil(max_scan_wait.to_seconds() / poll_interval.to_seconds())
    if ratio > MAX_POLL_RATIO:
        raise ValueError(
            f"max_scan_wait / poll_interval is {ratio}; at most {MAX_POLL_RATIO} (the execution's history is limited)"
        )
    return max(1, ratio) + EXTRA_POLLS


@dataclass
class WorkflowResources:
    """What the workflow calls; the construct creates these and hands them over."""

    transfer: lambda_.IFunction
    integrity_check: lambda_.IFunction
    evaluate_findings: lambda_.IFunction
    request_review: lambda_.IFunction
    job_events: lambda_.IFunction
    batch_bucket: s3.IBucket
    ingress_bucket: s3.IBucket
    quarantine_bucket: s3.IBucket
    review_bucket: s3.IBucket
    vault_bucket: s3.IBucket
    topic: sns.ITopic
    event_bus: events.IEventBus
    custom_data_identifier_ids: Sequence[str]
    allow_list_ids: Sequence[str]
    custom_data_identifier_arns: Sequence[str]
    allow_list_arns: Sequence[str]


@dataclass
class WorkflowSettings:
    managed_data_identifier_selector: str
    managed_data_identifier_ids: Sequence[str]
    poll_interval: Duration
    max_scan_wait: Duration
    approval_timeout: Duration
    approval_heartbeat: Optional[Duration]
    deny_policy: str
    #: Child workflows (chunks) of one Distributed Map running at the same time.
    map_concurrency: int = 10


class _ChunkIndexReader(sfn.S3JsonItemReader):
    """The batch's chunk index (``batches/<id>/chunks.json``, a JSON array) in the batch bucket.

    It provides the map's whole S3 grant, narrower than CDK's (``s3:GetObject`` on ``batches/*``
    instead of the whole bucket; the map run's results under ``map-results/*`` only, which
    :class:`_ChunkMap` writes).
    """

    def __init__(self, bucket: s3.IBucket, key: str) -> None:
        super().__init__(bucket=bucket, key=key)
        self._bucket_ref = bucket

    def provide_policy_statements(self) -> list:
        return [
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[self._bucket_ref.arn_for_objects(f"{BATCH_PREFIX}*")]),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
                resources=[self._bucket_ref.arn_for_objects(f"{MAP_RESULTS_PREFIX}*")],
            ),
        ]


class _ChunkMap(sfn.DistributedMap):
    """A Distributed Map whose map run writes its results to ``map-results/`` of the batch bucket.

    The ``ResultWriter`` is rendered here: CDK renders ``resultWriterV2`` only under the feature flag
    ``@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2`` and the deprecated
    ``resultWriter`` otherwise; this way the definition is the same in every app, without warnings.
    """

    def __init__(self, scope: Construct, id: str, *, results_bucket: s3.IBucket, **props) -> None:
        super().__init__(scope, id, **props)
        self._results_bucket = results_bucket

    def to_state_json(self, state_machine_query_language: Optional[sfn.QueryLanguage] = None) -> dict:
        rendered = dict(super().to_state_json(state_machine_query_language))
        rendered["ResultWriter"] = {
            "Resource": f"arn:{Aws.PARTITION}:states:::s3:putObject",
            "Parameters": {"Bucket": self._results_bucket.bucket_name, "Prefix": MAP_RESULTS_PREFIX.rstrip("/")},
        }
        return rendered


class ScanWorkflow(Construct):
    """Builds the state machine definition. ``definition`` is the chain to hand to the state machine."""

    def __init__(self, scope: Construct, id: str, *, resources: WorkflowResources, settings: WorkflowSettings) -> None:
        super().__init__(scope, id)
        self._r = resources
        self._s = settings
        self._account = Stack.of(self).account
        #: How many times the execution describes the Macie job at most (then it cancels the job).
        self.max_polls = max_polls(settings.poll_interval, settings.max_scan_wait)
        self.definition = self._build()

    # ------------------------------------------------------------------ the whole path
    def _build(self) -> sfn.IChainable:
        failed = self._batch_failed()
        stage = self._stage_objects(failed)
        count = self._count_staged(failed)
        start_job, evaluate = self._scan(failed)
        route = self._route_objects(failed)
        summarize = self._summarize(failed)
        review = self._review(failed, summarize)

        no_job = sfn.Pass(
            self,
            "No Macie job",
            # null (CDK leaves None out of a Result): Evaluate findings reads every field.
            parameters={"jobId.$": _NULL, "job.$": _NULL, "scanComplete": False},
            result_path="$.macie",
            comment="No object was staged: every object is reported FAILED, held where it is",
        )
        anything_staged = (
            sfn.Choice(self, "Anything staged?")
            .when(sfn.Condition.number_greater_than("$.staging.staged", 0), start_job)
            .otherwise(no_job)
        )
        no_job.next(evaluate)
        stage.next(count).next(anything_staged)
        review_needed = (
            sfn.Choice(self, "Review needed?")
            .when(sfn.Condition.boolean_equals("$.evaluation.reviewRequired", True), review)
            .otherwise(summarize)
        )
        evaluate.next(route).next(review_needed)
        return self._batch_ready(stage)

    def _batch_ready(self, stage: sfn.IChainable) -> sfn.Choice:
        """The input must name a batch and its chunk index; a batch of no objects has nothing to scan."""
        required = [
            ("$.batchId", sfn.Condition.is_string),
            ("$.manifest.bucket", sfn.Condition.is_string),
            ("$.manifest.chunks", sfn.Condition.is_string),
            ("$.objectCount", sfn.Condition.is_numeric),
            ("$.chunkCount", sfn.Condition.is_numeric),
        ]
        checks = []
        for path, type_check in required:
            checks += [sfn.Condition.is_present(path), type_check(path)]
        checks.append(sfn.Condition.string_matches("$.manifest.chunks", f"{BATCH_PREFIX}*"))
        nothing_to_scan = sfn.Succeed(self, "Nothing to scan", comment="Every object was a duplicate or filtered out")
        return (
            sfn.Choice(self, States.BATCH_READY)
            .when(sfn.Condition.not_(sfn.Condition.and_(*checks)), self._invalid_input(), comment="not a batch")
            .when(sfn.Condition.number_less_than("$.objectCount", 1), nothing_to_scan, comment="no object")
            .otherwise(stage)
        )

    # ------------------------------------------------------------------ staging
    def _stage_objects(self, failed: sfn.IChainable) -> sfn.DistributedMap:
        """Per chunk: copy each object version to quarantine with the scan-id tag, then check integrity."""
        copy = self._invoke(
            States.COPY_TO_QUARANTINE,
            self._r.transfer,
            {OPERATION: "stage_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk"},
            comment="Copy every object of the chunk to quarantine (scans/<batch>/<key>), tagged with the batch id",
        )
        check = self._invoke(
            States.CHECK_INTEGRITY,
            self._r.integrity_check,
            {OPERATION: "check_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk"},
            comment="Parse every staged copy of the chunk in bounded memory; verify the uploaders' checksums",
        )
        not_staged = sfn.Succeed(
            self, "Chunk not staged", comment="The chunk's objects have no staged line: reported FAILED, held in ingress"
        )
        for task in (copy, check):
            task.add_catch(not_staged, errors=["States.ALL"], result_path="$.error")
        return self._chunk_map(
            States.STAGE_OBJECTS, copy.next(check), failed, with_execution=False,
            comment="One child workflow per chunk of the batch's chunk index",
        )

    def _count_staged(self, failed: sfn.IChainable) -> tasks.LambdaInvoke:
        task = self._invoke(
            States.COUNT_STAGED,
            self._r.evaluate_findings,
            {OPERATION: "count_staged", "batchId.$": "$.batchId", "chunkCount.$": "$.chunkCount"},
            result_selector={"staged.$": "$.Payload.staged", "failed.$": "$.Payload.failed"},
            result_path="$.staging",
        )
        task.add_catch(failed, errors=["States.ALL"], result_path="$.error")
        return task

    # ------------------------------------------------------------------ the Macie job
    def _scan(self, failed: sfn.IChainable) -> tuple[sfn.IChainable, sfn.IChainable]:
        """Start one job, wait for it (event-driven, polled as a backstop). Returns (entry, Evaluate findings)."""
        start_job = self._start_macie_job(failed)
        evaluate = self._evaluate_findings(failed)
        start_job.next(self._wait_for_macie_job(failed, evaluate))
        return start_job, evaluate

    def _start_macie_job(self, failed: sfn.IChainable) -> tasks.CallAwsService:
        parameters = {
            "ClientToken.$": "$.batchId",
            "JobType": "ONE_TIME",
            "Name.$": "States.Format('sensitive-data-scan-{}', $.batchId)",
            "Description": "One-time scan of a batch staged by SensitiveDataScanPipeline",
            "SamplingPercentage": 100,
            "ManagedDataIdentifierSelector": self._s.managed_data_identifier_selector,
            "S3JobDefinition": {
                "BucketDefinitions": [{"AccountId": self._account, "Buckets": [self._r.quarantine_bucket.bucket_name]}],
                "Scoping": {
                    "Includes": {
                        "And": [
                            {
                                "TagScopeTerm": {
                                    "Comparator": "EQ",
                                    "Key": "TAG",
                                    "TagValues": [{"Key": TAG_SCAN_ID, "Value.$": "$.batchId"}],
                                    "Target": "S3_OBJECT",
                                }
                            }
                        ]
                    }
                },
            },
        }
        if self._s.managed_data_identifier_ids:
            parameters["ManagedDataIdentifierIds"] = list(self._s.managed_data_identifier_ids)
        if self._r.custom_data_identifier_ids:
            parameters["CustomDataIdentifierIds"] = list(self._r.custom_data_identifier_ids)
        if self._r.allow_list_ids:
            parameters["AllowListIds"] = list(self._r.allow_list_ids)
        task = tasks.CallAwsService(
            self,
            States.START_MACIE_JOB,
            service="macie2",
            action="createClassificationJob",
            parameters=parameters,
            iam_action="macie2:CreateClassificationJob",
            iam_resources=[self._job_arn_pattern(), *self._r.custom_data_identifier_arns, *self._r.allow_list_arns],
            result_selector={"jobId.$": "$.JobId"},
            result_path="$.macie",
            comment="One job for the batch, scoped by the scan-id tag; the client token makes retries create no second job",
        )
        retry_with_backoff(task, MACIE_THROTTLING_ERRORS, **START_JOB_THROTTLING_RETRY)
        self._sdk_retry(task, MACIE_TRANSIENT_ERRORS)
        task.add_catch(failed, errors=["States.ALL"], result_path="$.error")
        return task

    def _wait_for_macie_job(self, failed: sfn.IChainable, evaluate: sfn.IChainable) -> sfn.IChainable:
        """Bounded loop: wait for a job event (or the poll interval), describe the job, decide by its status."""
        start = sfn.Pass(self, "Start polling", result=sfn.Result.from_object({"count": 0}), result_path="$.poll")
        wait = self._invoke(
            States.WAIT_FOR_MACIE_JOB,
            self._r.job_events,
            {
                OPERATION: "wait",
                "taskToken": sfn.JsonPath.task_token,
                "jobId.$": "$.macie.jobId",
                "batchId.$": "$.batchId",
            },
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            task_timeout=sfn.Timeout.duration(self._s.poll_interval),
            result_path=sfn.JsonPath.DISCARD,
            comment="Resumed by the job's log events (job_events); the timeout is the poll backstop",
        )
        describe = tasks.CallAwsService(
            self,
            States.DESCRIBE_MACIE_JOB,
            service="macie2",
            action="describeClassificationJob",
            parameters={"JobId.$": "$.macie.jobId"},
            iam_action="macie2:DescribeClassificationJob",
            iam_resources=[self._job_arn_pattern()],
            # The whole response (job-level only): selecting an optional field (LastRunErrorStatus)
            # that is absent would be an uncatchable States.Runtime error. The evaluator reads what it needs.
            result_path="$.macie.job",
        )
        self._sdk_retry(describe, MACIE_THROTTLING_ERRORS + MACIE_TRANSIENT_ERRORS)
        describe.add_catch(failed, errors=["States.ALL"], result_path="$.error")
        wait.add_catch(describe, errors=["States.Timeout", "States.HeartbeatTimeout"], result_path=sfn.JsonPath.DISCARD)
        wait.add_catch(failed, errors=["States.ALL"], result_path="$.error")
        count = sfn.Pass(
            self, "Count poll", parameters={"count.$": "States.MathAdd($.poll.count, 1)"}, result_path="$.poll"
        )
        complete = sfn.Pass(self, "Scan complete", result=sfn.Result.from_boolean(True), result_path="$.macie.scanComplete")
        incomplete = sfn.Pass(
            self,
            "Scan incomplete",
            result=sfn.Result.from_boolean(False),
            result_path="$.macie.scanComplete",
            comment="Cancelled, timed out or unknown status: no object of the batch is CLEAN",
        )
        cancel = tasks.CallAwsService(
            self,
            "Cancel Macie job",
            service="macie2",
            action="updateClassificationJob",
            parameters={"JobId.$": "$.macie.jobId", "JobStatus": "CANCELLED"},
            iam_action="macie2:UpdateClassificationJob",
            iam_resources=[self._job_arn_pattern()],
            result_path=sfn.JsonPath.DISCARD,
            comment="The scan took longer than max_scan_wait: stop paying for it",
        )
        self._sdk_retry(cancel, MACIE_THROTTLING_ERRORS + MACIE_TRANSIENT_ERRORS)
        # A job that cannot be cancelled changes nothing for the objects: none of them is CLEAN anyway.
        cancel.add_catch(incomplete, errors=["States.ALL"], result_path="$.macie.cancelError")
        cancel.next(incomplete)
        status = "$.macie.job.JobStatus"
        paused = self._notify_job_paused(wait)
        choice = (
            sfn.Choice(self, "Macie job status?")
            .when(sfn.Condition.string_equals(status, "COMPLETE"), complete)
            .when(sfn.Condition.string_equals(status, "CANCELLED"), incomplete)
            .when(sfn.Condition.number_greater_than_equals("$.poll.count", self.max_polls), cancel)
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals(status, JOB_PAUSED_STATUS),
                    sfn.Condition.is_not_present("$.macie.pauseNotice"),
                ),
                paused,
            )
            .when(sfn.Condition.or_(*[sfn.Condition.string_equals(status, s) for s in JOB_WAITING_STATUSES]), wait)
            .otherwise(incomplete)
        )
        complete.next(evaluate)
        incomplete.next(evaluate)
        start.next(wait).next(describe).next(count).next(choice)
        return start

    def _notify_job_paused(self, wait: sfn.IChainable) -> tasks.SnsPublish:
        """Once per batch: Macie paused the job (the account's monthly quota); the execution waits on."""
        task = tasks.SnsPublish(
            self,
            "Notify job paused",
            topic=self._r.topic,
            subject="Sensitive data scan waiting: Macie paused the job (quota)",
            message=sfn.TaskInput.from_object(
                {
                    "event": "JOB_PAUSED",
                    "batchId.$": "$.batchId",
                    "jobId.$": "$.macie.jobId",
                    "executionArn.$": "$$.Execution.Id",
                }
            ),
            message_attributes={"event": tasks.MessageAttribute(value="JOB_PAUSED")},
            result_selector={"messageId.$": "$.MessageId"},
            result_path="$.macie.pauseNotice",
        )
        self._sdk_retry(task, ["States.TaskFailed"])
        # A notification that cannot be sent does not stop the scan (and is not tried again).
        task.add_catch(wait, errors=["States.ALL"], result_path="$.macie.pauseNotice")
        task.next(wait)
        return task

    def _evaluate_findings(self, failed: sfn.IChainable) -> tasks.LambdaInvoke:
        task = self._invoke(
            States.EVALUATE_FINDINGS,
            self._r.evaluate_findings,
            {
                OPERATION: "evaluate",
                "batchId.$": "$.batchId",
                "chunkCount.$": "$.chunkCount",
                "jobId.$": "$.macie.jobId",
                "job.$": "$.macie.job",
                "scanComplete.$": "$.macie.scanComplete",
            },
            # The counts per verdict (and discoveryResults when Macie's results could not be read), whole.
            result_selector={"counts.$": "$.Payload", "reviewRequired.$": "$.Payload.reviewRequired"},
            result_path="$.evaluation",
            comment="The job's findings and Macie's discovery results -> one verdict line per object",
        )
        task.add_catch(failed, errors=["States.ALL"], result_path="$.error")
        return task

    # ------------------------------------------------------------------ routing and review
    def _route_objects(self, failed: sfn.IChainable) -> sfn.DistributedMap:
        route = self._invoke(
            States.ROUTE_CHUNK,
            self._r.transfer,
            {OPERATION: "route_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk", "executionArn.$": "$.executionArn"},
            comment="Each object by its verdict: vault, review, quarantine or left in place; then the ingress version goes",
        )
        route.add_catch(
            sfn.Succeed(self, "Chunk not routed", comment="The chunk's objects have no routed line: reported FAILED, held in quarantine"),
            errors=["States.ALL"],
            result_path="$.error",
        )
        return self._chunk_map(States.ROUTE_OBJECTS, route, failed, with_execution=True)

    def _review(self, failed: sfn.IChainable, summarize: sfn.IChainable) -> sfn.IChainable:
        ask = self._invoke(
            States.WAIT_FOR_REVIEWER,
            self._r.request_review,
            {
                "taskToken": sfn.JsonPath.task_token,
                "batchId.$": "$.batchId",
                "chunkCount.$": "$.chunkCount",
                "executionArn.$": "$$.Execution.Id",
                # Decisions are refused after this time + the approval timeout (minus a margin), so
                # none is saved after Apply decisions has read them.
                "stateEnteredTime.$": "$$.State.EnteredTime",
            },
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            task_timeout=sfn.Timeout.duration(self._s.approval_timeout),
            heartbeat_timeout=(
                sfn.Timeout.duration(self._s.approval_heartbeat) if self._s.approval_heartbeat is not None else None
            ),
            # The review API's {reviewId, decided, reviewer, decidedAt}, whole: a ResultSelector naming a
            # field that is missing would be an uncatchable States.Runtime error.
            result_path="$.review",
            comment="List the held objects for a reviewer (one link); resumed when every object is decided",
        )
        timed_out = sfn.Pass(
            self,
            "Review timed out",
            parameters={"decision": "TIMEOUT", "reviewer": "timeout", "decidedAt.$": "$$.State.EnteredTime"},
            result_path="$.review",
            comment="Undecided objects are denied and kept in quarantine, never deleted",
        )
        ask.add_catch(timed_out, errors=["States.Timeout", "States.HeartbeatTimeout"], result_path=sfn.JsonPath.DISCARD)
        # Every REVIEW object failed to reach the review bucket (each is reported by Summarize batch).
        ask.add_catch(summarize, errors=[NOTHING_TO_REVIEW_ERROR], result_path="$.reviewError")
        ask.add_catch(failed, errors=["States.ALL"], result_path="$.error")

        decide = self._invoke(
            States.APPLY_DECISIONS_TO_CHUNK,
            self._r.transfer,
            {OPERATION: "decide_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk", "executionArn.$": "$.executionArn"},
            comment="Each held object by its reviewer's decision (undecided: denied, kept in quarantine)",
        )
        decide.add_catch(
            sfn.Succeed(self, "Chunk not decided", comment="The chunk's held objects stay in the review bucket, reported FAILED"),
            errors=["States.ALL"],
            result_path="$.error",
        )
        apply = self._chunk_map(States.APPLY_DECISIONS, decide, failed, with_execution=True)
        timed_out.next(apply)
        ask.next(apply)
        apply.next(summarize)
        return ask

    # ------------------------------------------------------------------ the end
    def _summarize(self, failed: sfn.IChainable) -> sfn.IChainable:
        summarize = self._invoke(
            States.SUMMARIZE_BATCH,
            self._r.evaluate_findings,
            {
                OPERATION: "summarize",
                "batchId.$": "$.batchId",
                "chunkCount.$": "$.chunkCount",
                "executionArn.$": "$$.Execution.Id",
                "evaluation.$": "$.evaluation.counts",
            },
            result_selector={"summary.$": "$.Payload.summary"},
            result_path="$.result",
            comment="Counts per outcome and verdict; a FAILED result event for every object that reached no outcome",
        )
        summarize.add_catch(failed, errors=["States.ALL"], result_path="$.error")
        notify = tasks.SnsPublish(
            self,
            States.NOTIFY_SCAN_SUMMARY,
            topic=self._r.topic,
            subject="Sensitive data scan finished",
            message=sfn.TaskInput.from_object(
                {
                    "event": "SCAN_FINISHED",
                    "batchId.$": "$.batchId",
                    "executionArn.$": "$$.Execution.Id",
                    "summary.$": "$.result.summary",
                }
            ),
            message_attributes={"event": tasks.MessageAttribute(value="SCAN_FINISHED")},
            result_path=sfn.JsonPath.DISCARD,
        )
        self._sdk_retry(notify, ["States.TaskFailed"])
        notify.add_catch(failed, errors=["States.ALL"], result_path="$.error")
        summarize.next(notify).next(sfn.Succeed(self, "Scan finished"))
        return summarize

    # ------------------------------------------------------------------ fail-closed paths
    def _invalid_input(self) -> sfn.IChainable:
        notify = self._notify_failure(
            "Notify invalid input", "INVALID_INPUT", {"event": "INVALID_INPUT", "executionArn.$": "$$.Execution.Id"}
        )
        fail = sfn.Fail(self, "Invalid input", cause="The execution input does not name a batch; nothing was moved")
        notify.add_catch(fail, errors=["States.ALL"], result_path="$.notifyError")
        return notify.next(fail)

    def _batch_failed(self) -> sfn.IChainable:
        """After a step failed: a FAILED result event per object without an outcome, a notification,
        and a failed execution. Every catch that leads here writes ``$.error``."""
        fail = sfn.Fail(
            self,
            "Scan failed",
            cause="A step failed; every object stays in ingress, quarantine or review. See the notification.",
        )
        report = self._invoke(
            States.REPORT_FAILED_BATCH,
            self._r.transfer,
            {
                OPERATION: "report_failed",
                "batchId.$": "$.batchId",
                "chunkCount.$": "$.chunkCount",
                "executionArn.$": "$$.Execution.Id",
                "error.$": "$.error",
            },
            result_path=sfn.JsonPath.DISCARD,
            comment="A FAILED result event for every object of the manifest that has no outcome yet (held where it is)",
        )
        notify = self._notify_failure(
            "Notify scan failure",
            "SCAN_FAILED",
            {"event": "SCAN_FAILED", "batchId.$": "$.batchId", "executionArn.$": "$$.Execution.Id", "error.$": "$.error"},
        )
        # The notification still goes out when the objects could not be reported.
        report.add_catch(notify, errors=["States.ALL"], result_path="$.reportError")
        notify.add_catch(fail, errors=["States.ALL"], result_path="$.notifyError")
        report.next(notify).next(fail)
        return report

    # ------------------------------------------------------------------ building blocks
    def _chunk_map(
        self, name: str, processor: sfn.IChainable, failed: sfn.IChainable, *, with_execution: bool, comment: Optional[str] = None,
    ) -> sfn.DistributedMap:
        """A Distributed Map over the batch's chunk index: one Standard child workflow per chunk (a chunk's
        function may run for 15 minutes; an Express child stops at 5), whose input is the batch id and
        the chunk number (and the parent's execution ARN when its function sends result events)."""
        selector = {"batchId.$": "$.batchId", "chunk.$": "$$.Map.Item.Value.chunk"}
        if with_execution:
            selector["executionArn.$"] = "$$.Execution.Id"
        chunk_map = _ChunkMap(
            self,
            name,
            results_bucket=self._r.batch_bucket,
            item_reader=_ChunkIndexReader(self._r.batch_bucket, sfn.JsonPath.string_at("$.manifest.chunks")),
            item_selector=selector,
            map_execution_type=sfn.StateMachineType.STANDARD,
            max_concurrency=self._s.map_concurrency,
            # Children catch their own failures; a failed child (say, stopped) leaves its objects in
            # place and they are reported FAILED at the end, so the map goes on.
            tolerated_failure_percentage=100,
            result_path=sfn.JsonPath.DISCARD,
            comment=comment,
        )
        chunk_map.item_processor(processor)
        # The chunk index could not be read (before any child ran): try again, then fail the batch.
        retry_with_backoff(
            chunk_map, ["States.ItemReaderFailed"], interval=Duration.seconds(5), max_attempts=3, max_delay=Duration.minutes(1)
        )
        chunk_map.add_catch(failed, errors=["States.ALL"], result_path="$.error")
        return chunk_map

    def _invoke(
        self,
        name: str,
        function: lambda_.IFunction,
        payload: dict,
        *,
        result_selector: Optional[dict] = None,
        result_path: str = sfn.JsonPath.DISCARD,
        **options,
    ) -> tasks.LambdaInvoke:
        """A LambdaInvoke with the retries of :meth:`_lambda_retry`; its output is selected (small) or discarded."""
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=function,
            retry_on_service_exceptions=False,  # see _lambda_retry
            payload=sfn.TaskInput.from_object(payload),
            result_selector=result_selector,
            result_path=result_path,
            **options,
        )
        self._lambda_retry(task)
        return task

    def _notify_failure(self, name: str, event: str, message: dict) -> tasks.SnsPublish:
        task = tasks.SnsPublish(
            self,
            name,
            topic=self._r.topic,
            subject="Sensitive data scan FAILED: objects held, action needed",
            message=sfn.TaskInput.from_object(message),
            message_attributes={"event": tasks.MessageAttribute(value=event)},
            result_path=sfn.JsonPath.DISCARD,
        )
        self._sdk_retry(task, ["States.TaskFailed"])
        return task

    def _lambda_retry(self, task: tasks.LambdaInvoke) -> None:
        """Lambda's own errors (throttling included: CDK's default retrier leaves out
        Lambda.TooManyRequestsException, so every LambdaInvoke turns it off), then the handler's."""
        retry_with_backoff(task, LAMBDA_SERVICE_ERRORS, interval=Duration.seconds(2), max_attempts=8, max_delay=Duration.minutes(1))
        retry_with_backoff(task, HANDLER_TRANSIENT_ERRORS, interval=Duration.seconds(5), max_attempts=5, max_delay=Duration.minutes(2))

    def _sdk_retry(self, task: sfn.TaskStateBase, errors: Sequence[str]) -> None:
        retry_with_backoff(task, errors, interval=Duration.seconds(5), max_attempts=4, max_delay=Duration.minutes(1))

    def _job_arn_pattern(self) -> str:
        return job_arn_pattern(Stack.of(self))
