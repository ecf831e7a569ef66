"""The scan workflow as a Standard state machine, one small function per step.

Read :meth:`ScanWorkflow.definition` first: it chains the steps in the order of the diagram in the
README. Every task gets a Retry for transient errors and a Catch to a fail-closed path: the object
stays where it is safe (ingress, quarantine or review), a result event and a notification say so,
and the execution fails so that the alarms fire. Nothing reaches the vault without a CLEAN verdict
from a completed scan or a reviewer's APPROVE.

State names are a contract: the tests, the README and the offline engine refer to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from .contract import (  # noqa: F401 - EVENT_DETAIL_TYPE and EVENT_SOURCE are re-exported (README, public API)
    DENIED_PREFIX,
    EVENT_DETAIL_TYPE,
    EVENT_SOURCE,
    STAGING_PREFIX,
    SUPERSEDED_PREFIX,
    TAG_FINDINGS,
    TAG_OUTCOME,
    TAG_SCAN_ID,
    TAG_VERDICT,
    States,
)


def job_arn_pattern(stack: Stack) -> str:
    """Every Macie classification job of the stack's account and Region: job ids exist only at run time."""
    return f"arn:{stack.partition}:macie2:{stack.region}:{stack.account}:classification-job/*"


# Errors a handler raises when a retry may help (see lambda/shared/pipeline_common/errors.py).
HANDLER_TRANSIENT_ERRORS = ["TransientError"]
INVALID_INPUT_ERROR = "InvalidInputError"  # pipeline_common.errors.InvalidInputError
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
JOB_WAITING_STATUSES = ("RUNNING", "IDLE", "PAUSED", "USER_PAUSED")


def retry_with_backoff(
    task: sfn.TaskStateBase, errors: Sequence[str], *, interval: Duration, max_attempts: int, max_delay: Duration,
) -> None:
    """Retry ``errors``: exponential backoff (x2) from ``interval``, capped at ``max_delay``, full jitter, bounded."""
    task.add_retry(
        errors=list(errors),
        interval=interval,
        max_attempts=max_attempts,
        backoff_rate=2,
        max_delay=max_delay,
        jitter_strategy=sfn.JitterType.FULL,
    )


@dataclass
class WorkflowResources:
    """What the workflow calls; the construct creates these and hands them over."""

    prepare_scan: lambda_.IFunction
    transfer: lambda_.IFunction
    integrity_check: lambda_.IFunction
    evaluate_findings: lambda_.IFunction
    request_review: lambda_.IFunction
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
    stage_concurrency: int = 10


class ScanWorkflow(Construct):
    """Builds the state machine definition. ``definition`` is the chain to hand to the state machine."""

    def __init__(self, scope: Construct, id: str, *, resources: WorkflowResources, settings: WorkflowSettings) -> None:
        super().__init__(scope, id)
        self._r = resources
        self._s = settings
        self._account = Stack.of(self).account
        self.definition = self._build()

    # ------------------------------------------------------------------ the whole path
    def _build(self) -> sfn.IChainable:
        scan_failed, notify_scan_failure = self._scan_failed()
        prepare = self._prepare_scan(self._invalid_input(), notify_scan_failure)
        stage = self._stage_and_check(scan_failed)
        start_job = self._start_macie_job(scan_failed)
        wait_for_job, evaluate = self._wait_for_macie_job(scan_failed)
        route = self._route(scan_failed)
        report = self._report_summary(scan_failed)

        nothing_to_scan = sfn.Succeed(self, "Nothing to scan", comment="Every object was a duplicate or filtered out")
        anything = (
            sfn.Choice(self, "Anything to scan?")
            .when(sfn.Condition.number_greater_than("$.objectCount", 0), stage)
            .otherwise(nothing_to_scan)
        )
        stage.next(start_job)
        start_job.next(wait_for_job)
        evaluate.next(route).next(report).next(sfn.Succeed(self, "Scan finished"))
        return prepare.next(anything)

    # ------------------------------------------------------------------ steps
    def _prepare_scan(self, invalid_input: sfn.IChainable, scan_failure: sfn.IChainable) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            States.PREPARE_SCAN,
            lambda_function=self._r.prepare_scan,
            retry_on_service_exceptions=False,  # see _lambda_retry
            payload=sfn.TaskInput.from_object({"event.$": "$", "executionName.$": "$$.Execution.Name"}),
            result_selector={
                "scanId.$": "$.Payload.scanId",
                "trigger.$": "$.Payload.trigger",
                "objects.$": "$.Payload.objects",
                "objectCount.$": "$.Payload.objectCount",
                "skipped.$": "$.Payload.skipped",
            },
            result_path="$",
            comment="Validate the event, claim each object version once, derive the scan id",
        )
        self._lambda_retry(task)
        # A malformed event is reported as such; any other failure (nothing was moved yet) is a scan
        # failure, so that a crash is not mistaken for a bad event.
        task.add_catch(invalid_input, errors=[INVALID_INPUT_ERROR], result_path="$.error")
        task.add_catch(scan_failure, errors=["States.ALL"], result_path="$.error")
        return task

    def _stage_and_check(self, scan_failed: sfn.IChainable) -> sfn.Map:
        """Per object: copy the exact version to quarantine with the scan-id tag, then check integrity."""
        stage_map = sfn.Map(
            self,
            States.STAGE_OBJECTS,
            items_path="$.objects",
            item_selector={"source.$": "$$.Map.Item.Value", "scanId.$": "$.scanId"},
            max_concurrency=self._s.stage_concurrency,
            result_path="$.items",
            comment="Copy each object version to quarantine and check its integrity",
        )
        copy = self._transfer(
            States.COPY_TO_QUARANTINE,
            {
                "operation": "copy",
                "source.$": "$.source",
                "destination": {
                    "bucket": self._r.quarantine_bucket.bucket_name,
                    "key.$": f"States.Format('{STAGING_PREFIX}{{}}/{{}}', $.scanId, $.source.key)",
                },
                "tags": {TAG_SCAN_ID + ".$": "$.scanId", TAG_OUTCOME: "SCANNING"},
            },
            result_path="$.staged",
        )
        check = tasks.LambdaInvoke(
            self,
            "Check integrity",
            lambda_function=self._r.integrity_check,
            retry_on_service_exceptions=False,  # see _lambda_retry
            payload=sfn.TaskInput.from_object({"object.$": "$.staged", "originalKey.$": "$.source.key"}),
            result_selector={
                "status.$": "$.Payload.status",
                "format.$": "$.Payload.format",
                "reason.$": "$.Payload.reason",
                "checksum.$": "$.Payload.checksum",
            },
            result_path="$.integrity",
            comment="Parse the staged copy in bounded memory; verify the uploader's checksum",
        )
        self._lambda_retry(check)
        item_failed = self._object_failed("Staging failed", "$.source", "INGRESS")
        for task in (copy, check):
            task.add_catch(item_failed, errors=["States.ALL"], result_path="$.error")
        keep = sfn.Pass(
            self,
            "Staged",
            parameters={
                "source.$": "$.source",
                "staged.$": "$.staged",
                "integrity.$": "$.integrity",
            },
        )
        stage_map.item_processor(copy.next(check).next(keep))
        stage_map.add_catch(scan_failed, errors=["States.ALL"], result_path="$.error")
        return stage_map

    def _start_macie_job(self, scan_failed: sfn.IChainable) -> tasks.CallAwsService:
        parameters = {
            "ClientToken.$": "$.scanId",
            "JobType": "ONE_TIME",
            "Name.$": "States.Format('sensitive-data-scan-{}', $.scanId)",
            "Description": "One-time scan of objects staged by SensitiveDataScanPipeline",
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
                                    "TagValues": [{"Key": TAG_SCAN_ID, "Value.$": "$.scanId"}],
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
            "Start Macie job",
            service="macie2",
            action="createClassificationJob",
            parameters=parameters,
            iam_action="macie2:CreateClassificationJob",
            iam_resources=[self._job_arn_pattern(), *self._r.custom_data_identifier_arns, *self._r.allow_list_arns],
            result_selector={"jobId.$": "$.JobId"},
            result_path="$.job",
            comment="One job for the batch, scoped by the scan-id tag; the client token makes retries create no second job",
        )
        # CreateClassificationJob is limited to about 0.1 requests per second: back off generously.
        retry_with_backoff(task, MACIE_THROTTLING_ERRORS, interval=Duration.seconds(15), max_attempts=8, max_delay=Duration.minutes(5))
        self._sdk_retry(task, MACIE_TRANSIENT_ERRORS)
        task.add_catch(scan_failed, errors=["States.ALL"], result_path="$.error")
        return task

    def _wait_for_macie_job(self, scan_failed: sfn.IChainable) -> tuple[sfn.IChainable, sfn.IChainable]:
        """Bounded poll loop. Returns (entry state, evaluate state)."""
        poll_seconds = int(self._s.poll_interval.to_seconds())
        max_polls = max(1, -(-int(self._s.max_scan_wait.to_seconds()) // poll_seconds))
        start = sfn.Pass(self, "Start polling", result=sfn.Result.from_object({"count": 0}), result_path="$.poll")
        wait = sfn.Wait(self, "Wait for Macie job", time=sfn.WaitTime.duration(self._s.poll_interval))
        describe = tasks.CallAwsService(
            self,
            "Describe Macie job",
            service="macie2",
            action="describeClassificationJob",
            parameters={"JobId.$": "$.job.jobId"},
            iam_action="macie2:DescribeClassificationJob",
            iam_resources=[self._job_arn_pattern()],
            # The whole response: selecting an optional field (LastRunErrorStatus) that is absent
            # would be an uncatchable States.Runtime error. The evaluator reads what it needs.
            result_path="$.jobDescription",
        )
        self._sdk_retry(describe, MACIE_THROTTLING_ERRORS + MACIE_TRANSIENT_ERRORS)
        describe.add_catch(scan_failed, errors=["States.ALL"], result_path="$.error")
        count = sfn.Pass(
            self,
            "Count poll",
            parameters={"count.$": "States.MathAdd($.poll.count, 1)"},
            result_path="$.poll",
        )
        evaluate = self._evaluate_findings(scan_failed)
        complete = sfn.Pass(self, "Scan complete", result=sfn.Result.from_boolean(True), result_path="$.scanComplete")
        incomplete = sfn.Pass(
            self,
            "Scan incomplete",
            result=sfn.Result.from_boolean(False),
            result_path="$.scanComplete",
            comment="Cancelled, timed out or unknown status: every object is at least REVIEW",
        )
        cancel = tasks.CallAwsService(
            self,
            "Cancel Macie job",
            service="macie2",
            action="updateClassificationJob",
            parameters={"JobId.$": "$.job.jobId", "JobStatus": "CANCELLED"},
            iam_action="macie2:UpdateClassificationJob",
            iam_resources=[self._job_arn_pattern()],
            result_path=sfn.JsonPath.DISCARD,
            comment="The scan took longer than max_scan_wait: stop paying for it",
        )
        self._sdk_retry(cancel, MACIE_THROTTLING_ERRORS + MACIE_TRANSIENT_ERRORS)
        # A job that cannot be cancelled changes nothing for the objects: they go to review anyway.
        cancel.add_catch(incomplete, errors=["States.ALL"], result_path="$.cancelError")
        cancel.next(incomplete)
        status = (
            sfn.Choice(self, "Macie job status?")
            .when(sfn.Condition.string_equals("$.jobDescription.JobStatus", "COMPLETE"), complete)
            .when(sfn.Condition.string_equals("$.jobDescription.JobStatus", "CANCELLED"), incomplete)
            .when(sfn.Condition.number_greater_than_equals("$.poll.count", max_polls), cancel)
            .when(
                sfn.Condition.or_(*[sfn.Condition.string_equals("$.jobDescription.JobStatus", s) for s in JOB_WAITING_STATUSES]),
                wait,
            )
            .otherwise(incomplete)
        )
        complete.next(evaluate)
        incomplete.next(evaluate)
        start.next(wait).next(describe).next(count).next(status)
        return start, evaluate

    def _evaluate_findings(self, scan_failed: sfn.IChainable) -> sfn.IChainable:
        task = tasks.LambdaInvoke(
            self,
            "Evaluate findings",
            lambda_function=self._r.evaluate_findings,
            retry_on_service_exceptions=False,  # see _lambda_retry
            payload=sfn.TaskInput.from_object(
                {
                    "scanId.$": "$.scanId",
                    "job.$": "$.jobDescription",
                    "scanComplete.$": "$.scanComplete",
                    "objects.$": "$.items",
                }
            ),
            result_selector={
                "items.$": "$.Payload.objects",
                "summary.$": "$.Payload.summary",
                "reviewRequired.$": "$.Payload.reviewRequired",
            },
            result_path="$.evaluation",
            comment="Every finding of the job and Macie's discovery results -> one verdict per object",
        )
        self._lambda_retry(task)
        task.add_catch(scan_failed, errors=["States.ALL"], result_path="$.error")
        keep = sfn.Pass(
            self,
            "Keep verdicts",
            parameters={
                "scanId.$": "$.scanId",
                "trigger.$": "$.trigger",
                "objects.$": "$.objects",
                "job.$": "$.job",
                "items.$": "$.evaluation.items",
                "summary.$": "$.evaluation.summary",
                "reviewRequired.$": "$.evaluation.reviewRequired",
            },
        )
        return task.next(keep)

    def _route(self, scan_failed: sfn.IChainable) -> sfn.Parallel:
        route = sfn.Parallel(
            self,
            "Route objects",
            result_path=sfn.JsonPath.DISCARD,
            comment="Remove the scanned versions from ingress while each object goes to its zone",
        )
        route.branch(self._remove_from_ingress())
        route.branch(self._route_each_object())
        route.add_catch(scan_failed, errors=["States.ALL"], result_path="$.error")
        return route

    def _remove_from_ingress(self) -> sfn.IChainable:
        remove = sfn.Map(
            self,
            "Remove from ingress",
            items_path="$.objects",
            max_concurrency=self._s.stage_concurrency,
            result_path=sfn.JsonPath.DISCARD,
        )
        delete = tasks.CallAwsService(
            self,
            "Delete ingress version",
            service="s3",
            action="deleteObject",
            parameters={"Bucket.$": "$.bucket", "Key.$": "$.key", "VersionId.$": "$.versionId"},
            iam_action="s3:DeleteObjectVersion",
            iam_resources=[self._r.ingress_bucket.arn_for_objects("*")],
            result_path=sfn.JsonPath.DISCARD,
            comment="Only the scanned version: a newer upload of the same key stays for its own scan",
        )
        self._sdk_retry(delete, ["S3.S3Exception", "S3.SdkClientException"])
        # A version left in ingress is a duplicate, not a loss: report it and go on, so that this
        # branch never aborts the other one while it waits for a reviewer.
        report = self._put_event(
            States.REPORT_INGRESS_CLEANUP_FAILED,
            {
                "executionArn.$": "$$.Execution.Id",
                "outcome": "INGRESS_CLEANUP_FAILED",
                "object": {"bucket.$": "$.bucket", "key.$": "$.key", "versionId.$": "$.versionId"},
                "error.$": "$.error.Error",
            },
        )
        notify = self._notify_failure("Notify ingress cleanup failed", "INGRESS_CLEANUP_FAILED")
        kept = sfn.Pass(self, "Ingress version kept")
        report.add_catch(notify, errors=["States.ALL"], result_path="$.reportError")
        notify.add_catch(kept, errors=["States.ALL"], result_path="$.notifyError")
        report.next(notify).next(kept)
        delete.add_catch(report, errors=["States.ALL"], result_path="$.error")
        remove.item_processor(delete)
        return remove

    def _route_each_object(self) -> sfn.IChainable:
        routing = sfn.Map(
            self,
            "Route by verdict",
            items_path="$.items",
            item_selector={"item.$": "$$.Map.Item.Value", "scanId.$": "$.scanId"},
            max_concurrency=self._s.stage_concurrency,
            result_path="$.routed",
        )
        item_failed = self._object_failed("Routing failed", "$.item.source", "QUARANTINE")
        tags = self._verdict_tags

        promote = self._transfer(
            States.PROMOTE_TO_VAULT,
            {
                "operation": "move",
                "source.$": "$.item.staged",
                "destination": {"bucket": self._r.vault_bucket.bucket_name, "key.$": "$.item.source.key"},
                "supersededDestination": self._superseded_destination(),
                "tags": tags("VAULT"),
            },
            result_path="$.location",
            ordered=True,
        )
        hold = self._transfer(
            States.HOLD_FOR_REVIEW,
            {
                "operation": "move",
                "source.$": "$.item.staged",
                "destination": {
                    "bucket": self._r.review_bucket.bucket_name,
                    "key.$": "States.Format('{}/{}', $.scanId, $.item.source.key)",
                },
                "tags": tags("REVIEW_PENDING"),
            },
            result_path="$.location",
        )
        quarantine = self._transfer(
            "Keep in quarantine",
            {"operation": "tag", "source.$": "$.item.staged", "tags": tags("QUARANTINED")},
            result_path="$.location",
        )
        for task in (promote, hold, quarantine):
            task.add_catch(item_failed, errors=["States.ALL"], result_path="$.error")
        promote.next(
            self._superseded_or("Superseded?", self._report_object("Report promoted", "VAULT"), "Report superseded", review=False)
        )
        hold.next(self._report_object("Report held for review", "REVIEW_PENDING"))
        quarantine.next(self._report_object("Report quarantined", "QUARANTINED"))

        verdict = (
            sfn.Choice(self, "Verdict?")
            .when(sfn.Condition.string_equals("$.item.verdict", "CLEAN"), promote)
            .when(sfn.Condition.string_equals("$.item.verdict", "REVIEW"), hold)
            .when(
                sfn.Condition.or_(
                    sfn.Condition.string_equals("$.item.verdict", "DENY"),
                    sfn.Condition.string_equals("$.item.verdict", "CORRUPT"),
                ),
                quarantine,
            )
            .otherwise(sfn.Fail(self, "Unknown verdict", cause="The verdict is not CLEAN, REVIEW, DENY or CORRUPT"))
        )
        routing.item_processor(verdict)

        review_needed = (
            sfn.Choice(self, "Review needed?")
            .when(sfn.Condition.boolean_equals("$.reviewRequired", True), self._review())
            .otherwise(sfn.Succeed(self, "No review needed"))
        )
        return routing.next(review_needed)

    def _review(self) -> sfn.IChainable:
        ask = tasks.LambdaInvoke(
            self,
            "Wait for reviewer",
            lambda_function=self._r.request_review,
            retry_on_service_exceptions=False,  # see _lambda_retry
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {
                    "taskToken": sfn.JsonPath.task_token,
                    "scanId.$": "$.scanId",
                    "executionArn.$": "$$.Execution.Id",
                    "objects.$": "$.items",
                }
            ),
            task_timeout=sfn.Timeout.duration(self._s.approval_timeout),
            heartbeat_timeout=(
                sfn.Timeout.duration(self._s.approval_heartbeat) if self._s.approval_heartbeat is not None else None
            ),
            result_path="$.review",
            comment="Store the task token server side and send the reviewer a single-use link",
        )
        self._lambda_retry(ask)
        timed_out = sfn.Pass(
            self,
            "Review timed out",
            parameters={"decision": "TIMEOUT", "reviewer": "timeout", "decidedAt.$": "$$.State.EnteredTime"},
            result_path="$.review",
            comment="No answer in time: the object is denied and kept in quarantine, never deleted",
        )
        ask.add_catch(timed_out, errors=["States.Timeout", "States.HeartbeatTimeout"], result_path="$.reviewError")
        ask.add_catch(
            sfn.Fail(self, "Review request failed", cause="The review could not be requested; objects stay in the review bucket"),
            errors=["States.ALL"],
            result_path="$.error",
        )

        decide = sfn.Map(
            self,
            "Apply decision",
            items_path="$.routed",
            item_selector={
                "item.$": "$$.Map.Item.Value.item",
                "location.$": "$$.Map.Item.Value.location",
                "scanId.$": "$.scanId",
                "review.$": "$.review",
            },
            max_concurrency=self._s.stage_concurrency,
            result_path=sfn.JsonPath.DISCARD,
        )
        item_failed = self._object_failed("Decision failed", "$.item.source", "REVIEW")
        tags = self._verdict_tags
        approve = self._transfer(
            States.PROMOTE_APPROVED,
            {
                "operation": "move",
                "source.$": "$.location",
                "destination": {"bucket": self._r.vault_bucket.bucket_name, "key.$": "$.item.source.key"},
                "supersededDestination": self._superseded_destination(),
                "tags": tags("APPROVED"),
            },
            result_path="$.location",
            ordered=True,
        )
        approve.next(
            self._superseded_or(
                "Approved version superseded?",
                self._report_object("Report approved", "APPROVED"),
                "Report approved superseded",
                review=True,
            )
        )
        # No answer in time is a denial, but never a deletion: only an explicit DENY deletes.
        deny = self._transfer(
            "Return to quarantine",
            {
                "operation": "move",
                "source.$": "$.location",
                "destination": {
                    "bucket": self._r.quarantine_bucket.bucket_name,
                    "key.$": f"States.Format('{DENIED_PREFIX}{{}}/{{}}', $.scanId, $.item.source.key)",
                },
                "tags": tags("DENIED"),
            },
            result_path="$.location",
        )
        deny.next(self._report_object("Report denied", "DENIED"))
        handlers = [approve, deny]
        choice = (
            sfn.Choice(self, "Decision?")
            .when(sfn.Condition.not_(sfn.Condition.string_equals("$.item.verdict", "REVIEW")), sfn.Pass(self, "Not under review"))
            .when(sfn.Condition.string_equals("$.review.decision", "APPROVE"), approve)
        )
        if self._s.deny_policy == "DELETE":
            delete = self._transfer(
                "Delete denied object",
                {"operation": "delete", "source.$": "$.location"},
                result_path="$.location",
            )
            delete.next(self._report_object("Report deleted", "DELETED"))
            handlers.append(delete)
            choice.when(sfn.Condition.string_equals("$.review.decision", "DENY"), delete)
        choice.otherwise(deny)
        for task in handlers:
            task.add_catch(item_failed, errors=["States.ALL"], result_path="$.error")
        decide.item_processor(choice)
        timed_out.next(decide)
        return ask.next(decide)

    def _report_summary(self, scan_failed: sfn.IChainable) -> tasks.SnsPublish:
        task = tasks.SnsPublish(
            self,
            "Notify scan summary",
            topic=self._r.topic,
            subject="Sensitive data scan finished",
            message=sfn.TaskInput.from_object(
                {
                    "event": "SCAN_FINISHED",
                    "scanId.$": "$.scanId",
                    "executionArn.$": "$$.Execution.Id",
                    "summary.$": "$.summary",
                }
            ),
            message_attributes={"event": tasks.MessageAttribute(value="SCAN_FINISHED")},
            result_path=sfn.JsonPath.DISCARD,
        )
        self._sdk_retry(task, ["States.TaskFailed"])
        task.add_catch(scan_failed, errors=["States.ALL"], result_path="$.error")
        return task

    # ------------------------------------------------------------------ fail-closed paths
    def _invalid_input(self) -> sfn.IChainable:
        notify = self._notify_failure("Notify invalid input", "INVALID_INPUT")
        fail = sfn.Fail(self, "Invalid input", cause="The execution input is not a usable S3 or schedule event; nothing was moved")
        notify.add_catch(fail, errors=["States.ALL"], result_path="$.notifyError")
        return notify.next(fail)

    def _scan_failed(self) -> tuple[sfn.IChainable, sfn.IChainable]:
        """After a failure: a FAILED result event per object, a notification, and a failed execution.

        Returns (the entry, per-object events first; the notification, for failures before any
        object is known).
        """
        fail = sfn.Fail(
            self,
            "Scan failed",
            cause="A step failed; every object stays in ingress, quarantine or review. See the notification.",
        )
        report = sfn.Map(
            self,
            "Report failed objects",
            items_path="$.objects",
            item_selector={
                "source.$": "$$.Map.Item.Value",
                "scanId.$": "$.scanId",
                "error.$": "$.error",
            },
            max_concurrency=self._s.stage_concurrency,
            result_path=sfn.JsonPath.DISCARD,
        )
        put = self._put_event(
            "Report failed object",
            {
                "scanId.$": "$.scanId",
                "executionArn.$": "$$.Execution.Id",
                "outcome": "FAILED",
                "object.$": "$.source",
                "error.$": "$.error.Error",
            },
        )
        # The notification below still goes out when a per-object event cannot be sent.
        put.add_catch(
            sfn.Pass(self, "Failure event not sent", result_path=sfn.JsonPath.DISCARD),
            errors=["States.ALL"],
            result_path="$.putError",
        )
        report.item_processor(put)
        notify = self._notify_failure("Notify scan failure", "SCAN_FAILED")
        report.add_catch(notify, errors=["States.ALL"], result_path="$.reportError")
        notify.add_catch(fail, errors=["States.ALL"], result_path="$.notifyError")
        report.next(notify).next(fail)
        return report, notify

    def _object_failed(self, name: str, object_path: str, where: str) -> sfn.IChainable:
        """Inside a Map iteration: a FAILED event for this object, then fail the iteration (and so the Map)."""
        fail = sfn.Fail(self, name, cause=f"The object was left in place ({where.lower()} zone)")
        put = self._put_event(
            f"Report {name.lower()}",
            {
                "scanId.$": "$.scanId",
                "executionArn.$": "$$.Execution.Id",
                "outcome": "FAILED",
                "heldIn": where,
                "object.$": object_path,
                "error.$": "$.error.Error",
            },
        )
        put.add_catch(fail, errors=["States.ALL"], result_path="$.reportError")
        return put.next(fail)

    # ------------------------------------------------------------------ building blocks
    def _transfer(self, name: str, payload: dict, *, result_path: str, ordered: bool = False) -> tasks.LambdaInvoke:
        """``ordered``: a promotion to the vault, whose result also says whether the version was superseded."""
        selected = {
            "bucket.$": "$.Payload.bucket",
            "key.$": "$.Payload.key",
            "versionId.$": "$.Payload.versionId",
        }
        if ordered:
            selected.update({"superseded.$": "$.Payload.superseded", "supersededBy.$": "$.Payload.supersededBy"})
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self._r.transfer,
            retry_on_service_exceptions=False,  # see _lambda_retry
            payload=sfn.TaskInput.from_object(payload),
            result_selector=selected,
            result_path=result_path,
        )
        self._lambda_retry(task)
        return task

    def _superseded_destination(self) -> dict:
        """Where a promotion keeps a version the vault already has a newer one of: quarantine superseded/<scan>/<key>."""
        return {
            "bucket": self._r.quarantine_bucket.bucket_name,
            "key.$": f"States.Format('{SUPERSEDED_PREFIX}{{}}/{{}}', $.scanId, $.item.source.key)",
        }

    def _superseded_or(self, name: str, promoted: sfn.IChainable, superseded_report: str, *, review: bool) -> sfn.Choice:
        """After a promotion: its own report, or a SUPERSEDED result event when the transfer kept the
        version aside because the vault's current version of the key came from a newer upload."""
        superseded = self._report_object(superseded_report, "SUPERSEDED", review=review)
        return (
            sfn.Choice(self, name)
            .when(sfn.Condition.boolean_equals("$.location.superseded", True), superseded)
            .otherwise(promoted)
        )

    def _verdict_tags(self, outcome: str) -> dict:
        return {
            TAG_SCAN_ID + ".$": "$.scanId",
            TAG_VERDICT + ".$": "$.item.verdict",
            TAG_FINDINGS + ".$": "$.item.findings.tagValue",
            TAG_OUTCOME: outcome,
        }

    def _report_object(self, name: str, outcome: str, *, review: bool = False) -> tasks.EventBridgePutEvents:
        detail = {
            "scanId.$": "$.scanId",
            "executionArn.$": "$$.Execution.Id",
            "outcome": outcome,
            "verdict.$": "$.item.verdict",
            "object.$": "$.item.source",
            "location.$": "$.location",
            "integrity.$": "$.item.integrity",
            "findings.$": "$.item.findings",
            "reasons.$": "$.item.reasons",
        }
        if review or outcome in ("APPROVED", "DENIED", "DELETED"):
            detail["review.$"] = "$.review"
        task = self._put_event(name, detail)
        task.add_catch(
            sfn.Fail(self, f"{name} failed", cause="The object is in place but its result event could not be sent"),
            errors=["States.ALL"],
            result_path="$.error",
        )
        return task

    def _put_event(self, name: str, detail: dict) -> tasks.EventBridgePutEvents:
        task = tasks.EventBridgePutEvents(
            self,
            name,
            entries=[
                tasks.EventBridgePutEventsEntry(
                    event_bus=self._r.event_bus,
                    source=EVENT_SOURCE,
                    detail_type=EVENT_DETAIL_TYPE,
                    detail=sfn.TaskInput.from_object(detail),
                )
            ],
            result_path=sfn.JsonPath.DISCARD,
        )
        self._sdk_retry(task, ["EventBridge.EventBridgeException", "States.TaskFailed"])
        return task

    def _notify_failure(self, name: str, event: str) -> tasks.SnsPublish:
        task = tasks.SnsPublish(
            self,
            name,
            topic=self._r.topic,
            subject="Sensitive data scan FAILED: objects held, action needed",
            message=sfn.TaskInput.from_object(
                {"event": event, "executionArn.$": "$$.Execution.Id", "error.$": "$.error"}
            ),
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
