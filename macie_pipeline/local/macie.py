"""A local Amazon Macie: the classification job API over objects in (moto's) S3, offline.

:class:`LocalMacie` answers Macie API operations with boto3-style parameters (the model's member
names) and returns the body Macie would send (wire form: camelCase members, ISO-8601 timestamps);
every body is checked against botocore's output shape before it leaves (see
:func:`~macie_pipeline.local.awsmodel.output_problems`). Errors are ``ClientError`` with Macie's
error codes and HTTP statuses. Detection itself is :mod:`macie_pipeline.local.detection`.

A job's life is steered by :class:`MacieBehavior`. With ``run_seconds`` set, a job runs in the
background, as Macie's do: it reaches ``job_status`` on a timer that many seconds after it was
created, whether or not anyone describes it (a quota-paused job resumes after
``resume_after_seconds`` if set, then completes). Without it, a job is RUNNING for ``running_polls``
DescribeClassificationJob calls, then reaches ``job_status``. Either way the job's status events
(``JOB_CREATED``, ``ONE_TIME_JOB_STARTED``, ``JOB_COMPLETED`` ...; ``error_events`` such as
``BUCKET_ACCESS_DENIED``) are written to CloudWatch Logs when a logs client is given (see
:mod:`~macie_pipeline.local.jobevents`; ``lose_events`` drops some, to prove a backstop). It classifies the objects in its
scope when it first reaches COMPLETE (a job that is resumed after USER_PAUSED completes on the next
describe). A job that ends CANCELLED (steered, or cancelled with UpdateClassificationJob) produced
no findings and no discovery results: which objects a real job analysed before it was cancelled
is not predictable, and a consumer must not rely on them anyway.

Classification reads the *current* version of every object of the job's buckets that matches its
``scoping`` (tag terms EQ/NE; simple terms OBJECT_KEY STARTS_WITH, OBJECT_EXTENSION EQ/NE,
OBJECT_SIZE and OBJECT_LAST_MODIFIED_DATE comparisons), creates one finding per object with
sensitive data, and writes one sensitive data discovery result per analysed object to the
classification export configuration's bucket, gzipped JSON Lines encrypted with its KMS key, under
``<keyPrefix>/AWSLogs/<accountId>/Macie/<region>/<jobId>/`` (the layout of
https://docs.aws.amazon.com/macie/latest/user/discovery-results-repository-s3.html).

Local limits, all rejected with ValidationException rather than silently ignored: one-time jobs
only, ``samplingPercentage`` 100, ``bucketDefinitions`` of this account (no ``bucketCriteria``),
managed data identifier ids limited to :data:`~macie_pipeline.local.detection.MANAGED_IDENTIFIERS`,
and ListClassificationJobs without ``filterCriteria``/``sortCriteria``. Not documented, so chosen
here: an update that the job's status does not allow is a ValidationException, a client token reused
for a different request a ConflictException, and GetClassificationExportConfiguration without a
configuration answers an empty body (not ResourceNotFoundException).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import gzip
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

from botocore.exceptions import ClientError, ParamValidationError

from . import awsmodel
from .detection import (
    DEFAULT_MAXIMUM_MATCH_DISTANCE,
    FINDING_OCCURRENCES,
    MANAGED_IDENTIFIERS,
    RECOMMENDED,
    RESULT_OCCURRENCES,
    SEVERITY_SCORE,
    SKIPPED,
    AllowListSpec,
    Analysis,
    CustomIdentifierSpec,
    Detection,
    ManagedIdentifier,
    analyse_object,
    classification_result,
    count_matches,
    extension_of,
    finding_type,
    severity,
)
from .jobevents import STATUS_EVENTS, JobEventLog

SERVICE = "macie2"
FINAL_STATUSES = ("COMPLETE", "CANCELLED", "PAUSED", "USER_PAUSED", "IDLE")
LIST_FINDINGS_MAX = 50
GET_FINDINGS_MAX = 50
LIST_JOBS_DEFAULT = 100
SOURCE_OBJECT_NO_LONGER_AVAILABLE = "SOURCE_OBJECT_NO_LONGER_AVAILABLE"
RECORDS_PER_RESULTS_FILE = 100
USER_PAUSE_EXPIRY = timedelta(days=30)
SORTABLE_FINDING_ATTRIBUTES = ("count", "createdAt", "resourcesAffected", "severity.score", "type", "updatedAt")
# Which comparators Macie accepts for each simple scope term key (SimpleScopeTerm.comparator docs).
SIMPLE_SCOPE_COMPARATORS = {
    "OBJECT_EXTENSION": ("EQ", "NE"),
    "OBJECT_KEY": ("STARTS_WITH",),
    "OBJECT_LAST_MODIFIED_DATE": ("EQ", "GT", "GTE", "LT", "LTE", "NE"),
    "OBJECT_SIZE": ("EQ", "GT", "GTE", "LT", "LTE", "NE"),
}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda a, b: a == b,
    "NE": lambda a, b: a != b,
    "GT": lambda a, b: a > b,
    "GTE": lambda a, b: a >= b,
    "LT": lambda a, b: a < b,
    "LTE": lambda a, b: a <= b,
}
_TITLES = {
    "SensitiveData:S3Object/Credentials": (
        "The S3 object contains credentials data.",
        "The object contains sensitive credentials data, such as AWS secret access keys or private keys.",
    ),
    "SensitiveData:S3Object/Financial": ("The S3 object contains financial information.",
                                         "The object contains sensitive financial information, such as credit card numbers."),
    "SensitiveData:S3Object/Personal": (
        "The S3 object contains personal information.",
        "The object contains sensitive personal information, such as personally identifiable information (PII).",
    ),
    "SensitiveData:S3Object/CustomIdentifier": (
        "The S3 object contains text that matches custom data identifiers.",
        "The object contains text that matches the detection criteria of one or more custom data identifiers.",
    ),
    "SensitiveData:S3Object/Multiple": ("The S3 object contains multiple categories of sensitive data.",
                                        "The object contains more than one category of sensitive data."),
}


@dataclass
class MacieBehavior:
    """How the local Macie's jobs and API behave, for trying the paths a real account can take."""

    job_status: str = "COMPLETE"  # final status the job reaches: COMPLETE | CANCELLED | PAUSED | USER_PAUSED | IDLE
    running_polls: int = 0  # DescribeClassificationJob calls answered RUNNING before the final status
    throttle_creates: int = 0  # the first N CreateClassificationJob calls raise ThrottlingException
    last_run_error: bool = False  # lastRunErrorStatus.code ERROR on the job
    fail_operations: dict[str, str] = field(default_factory=dict)  # operation name -> error code raised
    run_seconds: float | None = None  # None: the job advances on describes; else it ends on a timer after this
    resume_after_seconds: float | None = None  # a quota-paused (PAUSED) job resumes after this, then completes
    error_events: tuple[str, ...] = ()  # error event types logged while the job runs (BUCKET_ACCESS_DENIED ...)
    lose_events: tuple[str, ...] = ()  # event types never written to CloudWatch Logs (e.g. JOB_COMPLETED)

    def __post_init__(self) -> None:
        if self.job_status not in FINAL_STATUSES:
            raise ValueError(f"job_status must be one of {', '.join(FINAL_STATUSES)}, got {self.job_status!r}")


@dataclass
class ClassificationJob:
    """One job: the request it was created with (model member names) and where it is in its life."""

    job_id: str
    arn: str
    request: dict
    created_at: datetime
    status: str = "RUNNING"
    describes: int = 0
    resumed: bool = False
    paused_at: datetime | None = None
    bucket_error: bool = False  # a bucket of the job could not be read, or its results not written
    analysing: bool = False  # its results are being written (it is still RUNNING meanwhile)


def _iso(moment: datetime) -> str:
    """Extended ISO 8601 in UTC with milliseconds, as Macie writes timestamps."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"



def _error_statuses() -> dict[str, int]:
    model = awsmodel.operation_model(SERVICE, "ListFindings").service_model
    return {shape.name: int(shape.metadata.get("error", {}).get("httpStatusCode", 400)) for shape in model.error_shapes}


_ERROR_STATUS = _error_statuses()


def macie_error(operation_name: str, code: str, message: str) -> ClientError:
    """The ClientError boto3 raises for a Macie error response (HTTP status from Macie's API model)."""
    status = _ERROR_STATUS.get(code, 500)
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4()), "HTTPHeaders": {}, "RetryAttempts": 0},
            "message": message,
        },
        operation_name,
    )


class _Invalid(Exception):
    """A request Macie rejects: becomes a ClientError with ``code`` in :meth:`LocalMacie.call`."""

    def __init__(self, message: str, code: str = "ValidationException") -> None:
        super().__init__(message)
        self.code = code


def _values_at(item: Any, path: Sequence[str]) -> list[Any]:
    """Every value at a dotted path of a wire-form finding, through lists."""
    if isinstance(item, list):
        return [value for element in item for value in _values_at(element, path)]
    if not path:
        return [item]
    if not isinstance(item, dict) or path[0] not in item:
        return []
    return _values_at(item[path[0]], path[1:])


def _criterion_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _criterion_number(value: Any) -> float | None:
    """Numbers as they are; timestamps as epoch milliseconds, which is how Macie compares dates."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000
        except ValueError:
            return None
    return None


def _matches_criterion(finding: dict, attribute: str, condition: Mapping[str, Any]) -> bool:
    values = _values_at(finding, attribute.split("."))
    texts = {_criterion_text(v) for v in values}
    if "eq" in condition and not texts & set(condition["eq"]):
        return False
    if "neq" in condition and texts & set(condition["neq"]):
        return False
    if "eqExactMatch" in condition and texts != set(condition["eqExactMatch"]):
        return False
    numbers = [n for n in (_criterion_number(v) for v in values) if n is not None]
    for operator in ("gt", "gte", "lt", "lte"):
        if operator in condition and not any(_COMPARE[operator.upper()](n, condition[operator]) for n in numbers):
            return False
    return True


def _sort_key(finding: dict, attribute: str) -> Any:
    if attribute == "resourcesAffected":
        bucket = _values_at(finding, ["resourcesAffected", "s3Bucket", "name"])
        key = _values_at(finding, ["resourcesAffected", "s3Object", "key"])
        return (bucket[0] if bucket else "", key[0] if key else "")
    values = _values_at(finding, attribute.split("."))
    return values[0] if values else ""


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _page_offset(token: str | None, size: int) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError) as error:
        raise _Invalid("The nextToken is not valid.") from error
    if not isinstance(offset, int) or not 0 <= offset <= size:
        raise _Invalid("The nextToken is not valid.")
    return offset


@dataclass
class _Object:
    """What classification knows of one S3 object (its current version): the listing's size, date,
    ETag and storage class; its tags once read (None before); ``head`` the object's metadata, from
    the listing until the object is read (then its GetObject response, without the body)."""

    bucket: str
    key: str
    size: int
    last_modified: datetime
    tags: Optional[dict[str, str]]
    head: dict


class LocalMacie:
    """Amazon Macie for one account and Region, over the S3 client it is given (moto's, offline).

    ``jobs`` holds every classification job created, ``findings`` every finding (by id, in creation
    order). Use :meth:`call`; it is thread-safe.
    """

    def __init__(
        self,
        *,
        account_id: str,
        region: str,
        s3_client: Any,
        custom_identifiers: Sequence[CustomIdentifierSpec] = (),
        allow_lists: Sequence[AllowListSpec] = (),
        behavior: MacieBehavior | None = None,
        enabled: bool = True,
        logs_client: Any = None,
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.partition = _partition(region)
        self.s3 = s3_client
        self.custom_identifiers = {spec.id: spec for spec in custom_identifiers}
        self.allow_lists = {spec.id: spec for spec in allow_lists}
        self.behavior = behavior or MacieBehavior()
        self.jobs: dict[str, ClassificationJob] = {}
        self.findings: dict[str, dict] = {}
        self.export_configuration: dict | None = None
        self.created_at = datetime.now(timezone.utc)
        self.session: dict[str, Any] | None = (
            {"status": "ENABLED", "findingPublishingFrequency": "FIFTEEN_MINUTES", "createdAt": _iso(self.created_at)} if enabled else None
        )
        self._tokens: dict[str, str] = {}
        self._create_calls = 0
        self.events = JobEventLog(account_id, logs_client, self.behavior.lose_events)
        self._timers: list[threading.Timer] = []
        self._closed = False
        self._lock = threading.RLock()
        self._operations: dict[str, Callable[[dict], dict]] = {
            "CreateClassificationJob": self._create_classification_job,
            "DescribeClassificationJob": self._describe_classification_job,
            "UpdateClassificationJob": self._update_classification_job,
            "ListClassificationJobs": self._list_classification_jobs,
            "ListFindings": self._list_findings,
            "GetFindings": self._get_findings,
            "GetClassificationExportConfiguration": self._get_export_configuration,
            "PutClassificationExportConfiguration": self._put_export_configuration,
            "GetCustomDataIdentifier": self._get_custom_data_identifier,
            "BatchGetCustomDataIdentifiers": self._batch_get_custom_data_identifiers,
            "GetAllowList": self._get_allow_list,
            "TestCustomDataIdentifier": self._test_custom_data_identifier,
            "GetMacieSession": self._get_macie_session,
            "EnableMacie": self._enable_macie,
        }

    # ------------------------------------------------------------------------------ entry point
    def call(self, operation_name: str, params: dict) -> dict:
        """Serve one Macie operation: the wire-form body of the response, or a ClientError.

        Requests are validated as Macie does (botocore's model: names, types, required members,
        enums), after the behaviour's injected failures.
        """
        handler = self._operations.get(operation_name)
        if handler is None:
            raise NotImplementedError(f"the local Macie does not implement {operation_name}")
        with self._lock:
            injected = self.behavior.fail_operations.get(operation_name)
            if injected:
                raise macie_error(operation_name, injected, "failure injected by the local Macie")
            if self.session is None and operation_name != "EnableMacie":
                raise macie_error(operation_name, "AccessDeniedException", "Macie is not enabled.")
            try:
                awsmodel.validate_input(SERVICE, operation_name, params)
                body = handler(copy.deepcopy(params))
            except ParamValidationError as error:
                raise macie_error(operation_name, "ValidationException", str(error)) from None
            except _Invalid as error:
                raise macie_error(operation_name, error.code, str(error)) from None
        problems = awsmodel.output_problems((SERVICE, operation_name), body)
        if problems:
            raise AssertionError(f"the local Macie built an invalid {operation_name} response: " + "; ".join(problems))
        return json.loads(json.dumps(body))  # plain JSON, sharing nothing with the service's state

    # ------------------------------------------------------------------------------ jobs
    def _create_classification_job(self, params: dict) -> dict:
        self._create_calls += 1
        if self._create_calls <= self.behavior.throttle_creates:
            raise _Invalid("Rate exceeded", "ThrottlingException")
        token = params.get("clientToken") or str(uuid.uuid4())
        params["clientToken"] = token
        if token in self._tokens:
            job = self.jobs[self._tokens[token]]
            if job.request != params:
                raise _Invalid("The client token was already used for a different request.", "ConflictException")
            return {"jobArn": job.arn, "jobId": job.job_id}
        self._check_job_request(params)
        job_id = uuid.uuid4().hex
        job = ClassificationJob(
            job_id=job_id,
            arn=f"arn:{self.partition}:macie2:{self.region}:{self.account_id}:classification-job/{job_id}",
            request=params,
            created_at=datetime.now(timezone.utc),
        )
        self.jobs[job_id] = job
        self._tokens[token] = job_id
        self._emit(job, "JOB_CREATED", operation="CreateClassificationJob")
        self._emit(job, "ONE_TIME_JOB_STARTED")
        for error_type in self.behavior.error_events:
            self._emit_error(job, error_type)
        if self.behavior.run_seconds is not None:
            self._later(self.behavior.run_seconds, self._finish, job_id)
        return {"jobArn": job.arn, "jobId": job_id}

    # ------------------------------------------------------------------------------ job events and timers
    def _emit(self, job: ClassificationJob, event_type: str, **extra: Any) -> None:
        self.events.emit(self.events.message(job.job_id, job.request["name"], job.created_at, event_type, **extra))

    def _emit_error(self, job: ClassificationJob, event_type: str, bucket: str | None = None) -> None:
        if bucket is None:
            bucket = job.request["s3JobDefinition"]["bucketDefinitions"][0]["buckets"][0]
        self._emit(job, event_type, operation="ListObjectsV2", affectedAccount=self.account_id,
                   affectedResource={"type": "S3_BUCKET_NAME", "value": bucket})

    def _set_status(self, job: ClassificationJob, status: str) -> None:
        """Move the job to ``status`` and log the event Macie logs for it."""
        if status == job.status:
            return
        if status == "COMPLETE":
            # As Macie: a job says COMPLETE once its results and findings are written, never while it
            # is still analysing (a DescribeClassificationJob in the meantime still sees RUNNING).
            if job.analysing:
                return
            job.analysing = True
            try:
                self._classify(job)
            finally:
                job.analysing = False
        job.status = status
        if status == "USER_PAUSED":
            job.paused_at = datetime.now(timezone.utc)
        if status in STATUS_EVENTS:
            self._emit(job, STATUS_EVENTS[status])

    def _later(self, seconds: float, action: Callable[[str], None], job_id: str) -> None:
        timer = threading.Timer(seconds, self._timed, (action, job_id))
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            self._timers.append(timer)
        timer.start()

    def _timed(self, action: Callable[[str], None], job_id: str) -> None:
        with self._lock:
            if not self._closed:
                action(job_id)

    def _finish(self, job_id: str) -> None:
        """The background job's time is up: it reaches its final status (a resumed job completes)."""
        job = self.jobs[job_id]
        if job.status != "RUNNING":
            return  # cancelled or paused by a user meanwhile
        target = "COMPLETE" if job.resumed else self.behavior.job_status
        self._set_status(job, target)
        if target == "PAUSED" and self.behavior.resume_after_seconds is not None:
            self._later(self.behavior.resume_after_seconds, self._resume_after_quota, job_id)

    def _resume_after_quota(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job.status != "PAUSED":
            return
        job.status, job.resumed = "RUNNING", True
        self._emit(job, "JOB_RESUMED_AUTOMATICALLY_AFTER_QUOTA_RESET")
        self._later(self.behavior.run_seconds or 0.0, self._finish, job_id)

    def flush_events(self, timeout: float = 30.0) -> bool:
        """Wait until every job event so far is written (and its subscriptions have run)."""
        return self.events.flush(timeout)

    def close(self) -> None:
        """Stop the job timers and the event writer (the engine is being torn down)."""
        with self._lock:
            self._closed = True
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        self.events.close()

    def _check_job_request(self, params: dict) -> None:
        """Raise what Macie (or this local model of it) answers to a CreateClassificationJob it refuses."""
        if params["jobType"] != "ONE_TIME":
            raise _Invalid("The local Macie runs one-time jobs only.")
        if params.get("samplingPercentage", 100) != 100:
            raise _Invalid("The local Macie analyses every object: samplingPercentage must be 100.")
        self._check_job_definition(params["s3JobDefinition"])
        self._check_identifier_selection(params)
        for identifier in params.get("customDataIdentifierIds") or []:
            self._custom_identifier(identifier)
        for identifier in params.get("allowListIds") or []:
            if identifier not in self.allow_lists:
                raise _Invalid(f"Allow list {identifier} was not found.", "ResourceNotFoundException")

    def _check_job_definition(self, definition: dict) -> None:
        """Explicit buckets of this account, and scope terms Macie accepts."""
        if definition.get("bucketCriteria") or not definition.get("bucketDefinitions"):
            raise _Invalid("The local Macie needs bucketDefinitions (bucketCriteria is not supported).")
        for bucket_definition in definition["bucketDefinitions"]:
            if bucket_definition["accountId"] != self.account_id:
                raise _Invalid(f"Account {bucket_definition['accountId']} is not this account ({self.account_id}).")
        for block in (definition.get("scoping") or {}).values():
            for term in block.get("and") or []:
                self._check_scope_term(term)

    @staticmethod
    def _check_identifier_selection(params: dict) -> None:
        """managedDataIdentifierSelector and managedDataIdentifierIds as Macie requires them together."""
        selector = params.get("managedDataIdentifierSelector", "RECOMMENDED")
        ids = params.get("managedDataIdentifierIds") or []
        if selector in ("ALL", "NONE", "RECOMMENDED") and ids:
            raise _Invalid(f"managedDataIdentifierIds must be empty when managedDataIdentifierSelector is {selector}.")
        if selector in ("INCLUDE", "EXCLUDE") and not ids:
            raise _Invalid(f"managedDataIdentifierIds is required when managedDataIdentifierSelector is {selector}.")
        if selector == "NONE" and not params.get("customDataIdentifierIds"):
            raise _Invalid("customDataIdentifierIds is required when managedDataIdentifierSelector is NONE.")
        unknown = [i for i in ids if i not in MANAGED_IDENTIFIERS]
        if unknown:
            raise _Invalid(f"The local Macie models only {', '.join(MANAGED_IDENTIFIERS)}; not {', '.join(unknown)}.")

    @staticmethod
    def _check_scope_term(term: dict) -> None:
        if len(term) != 1:
            raise _Invalid("Each scope term has exactly one of simpleScopeTerm and tagScopeTerm.")
        if "tagScopeTerm" in term:
            tag_term = term["tagScopeTerm"]
            if (tag_term.get("key") != "TAG" or tag_term.get("comparator") not in ("EQ", "NE")
                    or tag_term.get("target", "S3_OBJECT") != "S3_OBJECT"):
                raise _Invalid("A tagScopeTerm needs key TAG, comparator EQ or NE and target S3_OBJECT.")
            if not tag_term.get("tagValues") or not all(pair.get("key") for pair in tag_term["tagValues"]):
                raise _Invalid("A tagScopeTerm needs tagValues, each with a key.")
            return
        simple = term["simpleScopeTerm"]
        key, comparator, values = simple.get("key"), simple.get("comparator"), simple.get("values") or []
        if comparator not in SIMPLE_SCOPE_COMPARATORS.get(key, ()):
            raise _Invalid(f"Comparator {comparator} is not valid for {key}.")
        if not values or (key in ("OBJECT_SIZE", "OBJECT_LAST_MODIFIED_DATE") and len(values) != 1):
            raise _Invalid(f"{key} takes {'one value' if key in ('OBJECT_SIZE', 'OBJECT_LAST_MODIFIED_DATE') else 'values'}.")
        try:
            if key == "OBJECT_SIZE":
                int(values[0])
            elif key == "OBJECT_LAST_MODIFIED_DATE":
                datetime.fromisoformat(values[0].replace("Z", "+00:00"))
        except ValueError as error:
            raise _Invalid(f"{values[0]!r} is not a valid value for {key}.") from error

    def _job(self, job_id: str) -> ClassificationJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise _Invalid(f"Classification job {job_id} was not found.", "ResourceNotFoundException")
        return job

    def _advance(self, job: ClassificationJob) -> None:
        """Move the job along on a DescribeClassificationJob call, as the behaviour says (a job
        running in the background, ``run_seconds``, moves on its own timer instead)."""
        job.describes += 1
        if job.status in ("COMPLETE", "CANCELLED", "USER_PAUSED") or self.behavior.run_seconds is not None:
            return
        if job.resumed:
            target = "COMPLETE"
        elif job.describes <= self.behavior.running_polls:
            target = "RUNNING"
        else:
            target = self.behavior.job_status
        self._set_status(job, target)

    def _error_status(self, job: ClassificationJob) -> dict:
        return {"code": "ERROR" if self.behavior.last_run_error or job.bucket_error else "NONE"}

    @staticmethod
    def _paused_details(job: ClassificationJob) -> dict:
        paused = job.paused_at or job.created_at
        return {"jobPausedAt": _iso(paused), "jobExpiresAt": _iso(paused + USER_PAUSE_EXPIRY)}

    def _describe_classification_job(self, params: dict) -> dict:
        job = self._job(params["jobId"])
        self._advance(job)
        request = job.request
        body: dict[str, Any] = {
            "allowListIds": request.get("allowListIds", []),
            "clientToken": request["clientToken"],
            "createdAt": _iso(job.created_at),
            "customDataIdentifierIds": request.get("customDataIdentifierIds", []),
            "jobArn": job.arn,
            "jobId": job.job_id,
            "jobStatus": job.status,
            "jobType": request["jobType"],
            "lastRunErrorStatus": self._error_status(job),
            "lastRunTime": _iso(job.created_at),
            "managedDataIdentifierIds": request.get("managedDataIdentifierIds", []),
            "managedDataIdentifierSelector": request.get("managedDataIdentifierSelector", "RECOMMENDED"),
            "name": request["name"],
            "s3JobDefinition": request["s3JobDefinition"],
            "samplingPercentage": request.get("samplingPercentage", 100),
            "statistics": {"numberOfRuns": 1.0},
            "tags": request.get("tags", {}),
        }
        if "description" in request:
            body["description"] = request["description"]
        if job.status in ("COMPLETE", "CANCELLED"):
            body["statistics"]["approximateNumberOfObjectsToProcess"] = 0.0
        if job.status == "USER_PAUSED":
            body["userPausedDetails"] = self._paused_details(job)
        return body

    def _update_classification_job(self, params: dict) -> dict:
        job = self._job(params["jobId"])
        wanted, current = params["jobStatus"], job.status
        allowed = {
            "CANCELLED": ("IDLE", "PAUSED", "RUNNING", "USER_PAUSED"),
            "RUNNING": ("USER_PAUSED",),
            "USER_PAUSED": ("IDLE", "PAUSED", "RUNNING"),
        }
        if current not in allowed.get(wanted, ()):
            raise _Invalid(f"The status of job {job.job_id} can't be changed from {current} to {wanted}.")
        if wanted == "RUNNING":
            job.status, job.resumed = "RUNNING", True
            self._emit(job, "JOB_RESUMED_BY_USER", operation="UpdateClassificationJob")
            if self.behavior.run_seconds is not None:
                self._later(self.behavior.run_seconds, self._finish, job.job_id)
        else:
            self._set_status(job, wanted)
        return {}

    def _list_classification_jobs(self, params: dict) -> dict:
        if params.get("filterCriteria") or params.get("sortCriteria"):
            raise _Invalid("The local Macie lists jobs without filterCriteria or sortCriteria.")
        jobs = list(self.jobs.values())
        size = params.get("maxResults", LIST_JOBS_DEFAULT)
        if size < 1:
            raise _Invalid("maxResults must be at least 1.")
        start = _page_offset(params.get("nextToken"), len(jobs))
        items = []
        for job in jobs[start : start + size]:
            item = {
                "bucketDefinitions": job.request["s3JobDefinition"]["bucketDefinitions"],
                "createdAt": _iso(job.created_at),
                "jobId": job.job_id,
                "jobStatus": job.status,
                "jobType": job.request["jobType"],
                "lastRunErrorStatus": self._error_status(job),
                "name": job.request["name"],
            }
            if job.status == "USER_PAUSED":
                item["userPausedDetails"] = self._paused_details(job)
            items.append(item)
        body: dict[str, Any] = {"items": items}
        if start + size < len(jobs):
            body["nextToken"] = _page_token(start + size)
        return body

    # ------------------------------------------------------------------------------ findings
    def _sorted(self, findings: list[dict], sort: Mapping[str, Any] | None) -> list[dict]:
        if not sort:
            return findings
        attribute = sort.get("attributeName")
        if attribute not in SORTABLE_FINDING_ATTRIBUTES:
            raise _Invalid(f"attributeName must be one of {', '.join(SORTABLE_FINDING_ATTRIBUTES)}.")
        return sorted(findings, key=lambda f: _sort_key(f, attribute), reverse=sort.get("orderBy", "ASC") == "DESC")

    def _list_findings(self, params: dict) -> dict:
        size = params.get("maxResults", LIST_FINDINGS_MAX)
        if not 1 <= size <= LIST_FINDINGS_MAX:
            raise _Invalid(f"maxResults must be between 1 and {LIST_FINDINGS_MAX}.")
        criterion = (params.get("findingCriteria") or {}).get("criterion") or {}
        matching = [f for f in self.findings.values() if all(_matches_criterion(f, k, c) for k, c in criterion.items())]
        matching = self._sorted(matching, params.get("sortCriteria"))
        start = _page_offset(params.get("nextToken"), len(matching))
        body: dict[str, Any] = {"findingIds": [f["id"] for f in matching[start : start + size]]}
        if start + size < len(matching):
            body["nextToken"] = _page_token(start + size)
        return body

    def _get_findings(self, params: dict) -> dict:
        ids = params["findingIds"]
        if not 1 <= len(ids) <= GET_FINDINGS_MAX:
            raise _Invalid(f"findingIds must list 1-{GET_FINDINGS_MAX} finding ids.")
        found = [self.findings[i] for i in dict.fromkeys(ids) if i in self.findings]
        return {"findings": self._sorted(found, params.get("sortCriteria"))}

    # ------------------------------------------------------------------------------ settings
    def _get_export_configuration(self, params: dict) -> dict:
        return {"configuration": self.export_configuration} if self.export_configuration else {}

    def _put_export_configuration(self, params: dict) -> dict:
        destination = params["configuration"].get("s3Destination")
        if not destination:
            raise _Invalid("configuration.s3Destination is required.")
        try:
            self.s3.head_bucket(Bucket=destination["bucketName"])
        except ClientError as error:
            raise _Invalid(f"The bucket {destination['bucketName']} doesn't exist or isn't accessible.") from error
        self.export_configuration = {"s3Destination": destination}
        return {"configuration": self.export_configuration}

    def _custom_identifier(self, identifier: str) -> CustomIdentifierSpec:
        spec = self.custom_identifiers.get(identifier)
        if spec is None:
            raise _Invalid(f"Custom data identifier {identifier} was not found.", "ResourceNotFoundException")
        return spec

    def _get_custom_data_identifier(self, params: dict) -> dict:
        spec = self._custom_identifier(params["id"])
        body: dict[str, Any] = {
            "arn": spec.arn,
            "createdAt": _iso(self.created_at),
            "deleted": False,
            "id": spec.id,
            "ignoreWords": list(spec.ignore_words),
            "keywords": list(spec.keywords),
            "maximumMatchDistance": spec.maximum_match_distance,
            "name": spec.name,
            "regex": spec.regex,
            "severityLevels": [{"occurrencesThreshold": 1, "severity": "MEDIUM"}],
            "tags": {},
        }
        if spec.description:
            body["description"] = spec.description
        return body

    def _batch_get_custom_data_identifiers(self, params: dict) -> dict:
        found, missing = [], []
        for identifier in params.get("ids") or []:
            spec = self.custom_identifiers.get(identifier)
            if spec is None:
                missing.append(identifier)
                continue
            summary: dict[str, Any] = {
                "arn": spec.arn, "createdAt": _iso(self.created_at), "deleted": False, "id": spec.id, "name": spec.name,
            }
            if spec.description:
                summary["description"] = spec.description
            found.append(summary)
        return {"customDataIdentifiers": found, "notFoundIdentifierIds": missing}

    def _get_allow_list(self, params: dict) -> dict:
        spec = self.allow_lists.get(params["id"])
        if spec is None:
            raise _Invalid(f"Allow list {params['id']} was not found.", "ResourceNotFoundException")
        criteria: dict[str, Any] = {}
        if spec.regex is not None:
            criteria["regex"] = spec.regex
        if spec.s3_words_list is not None:
            criteria["s3WordsList"] = {"bucketName": spec.s3_words_list[0], "objectKey": spec.s3_words_list[1]}
        body: dict[str, Any] = {
            "arn": spec.arn,
            "createdAt": _iso(self.created_at),
            "criteria": criteria,
            "id": spec.id,
            "name": spec.name,
            "status": {"code": "OK"},
            "tags": {},
            "updatedAt": _iso(self.created_at),
        }
        if spec.description:
            body["description"] = spec.description
        return body

    def _test_custom_data_identifier(self, params: dict) -> dict:
        spec = CustomIdentifierSpec(
            id="test", arn="test", name="test", regex=params["regex"],
            keywords=tuple(params.get("keywords") or ()), ignore_words=tuple(params.get("ignoreWords") or ()),
            maximum_match_distance=params.get("maximumMatchDistance", DEFAULT_MAXIMUM_MATCH_DISTANCE),
        )
        try:
            return {"matchCount": count_matches(spec, params["sampleText"])}
        except re.error as error:
            raise _Invalid(f"The regex is not valid: {error}") from error

    def _get_macie_session(self, params: dict) -> dict:
        assert self.session is not None  # call() refuses every operation but EnableMacie without one
        return {
            **self.session,
            "serviceRole": (
                f"arn:{self.partition}:iam::{self.account_id}:role/aws-service-role/macie.amazonaws.com/AWSServiceRoleForAmazonMacie"
            ),
            "updatedAt": self.session["createdAt"],
        }

    def _enable_macie(self, params: dict) -> dict:
        if self.session is not None:
            raise _Invalid("Macie is already enabled.", "ConflictException")
        self.session = {
            "status": params.get("status", "ENABLED"),
            "findingPublishingFrequency": params.get("findingPublishingFrequency", "FIFTEEN_MINUTES"),
            "createdAt": _iso(datetime.now(timezone.utc)),
        }
        return {}

    # ------------------------------------------------------------------------------ classification
    def _classify(self, job: ClassificationJob) -> None:
        request = job.request
        detector = functools.partial(
            analyse_object,
            managed=self._managed_identifiers(request),
            custom=[self.custom_identifiers[i] for i in request.get("customDataIdentifierIds") or []],
            allow_lists=[self.allow_lists[i] for i in request.get("allowListIds") or []],
        )
        scoping = request["s3JobDefinition"].get("scoping") or {}
        records: list[tuple[dict, list[Detection]]] = []
        created = datetime.now(timezone.utc)
        for bucket_definition in request["s3JobDefinition"]["bucketDefinitions"]:
            for bucket in bucket_definition["buckets"]:
                try:
                    bucket_info = self._bucket_info(bucket)
                    objects = list(self._objects(bucket))
                except ClientError as error:
                    job.bucket_error = True  # Macie logs a bucket-level error and goes on
                    missing = error.response.get("Error", {}).get("Code") in ("NoSuchBucket", "404")
                    self._emit_error(job, "BUCKET_DOES_NOT_EXIST" if missing else "BUCKET_ACCESS_DENIED", bucket)
                    continue
                in_scope = [item for item in objects if self._in_scope(scoping, item) and self._read_tags(item)]
                records.extend(self._classify_object(bucket, bucket_info, item, detector) for item in in_scope)
        locations = self._write_results(job, records, created)
        for (record, detections), location in zip(records, locations, strict=True):
            if detections:
                self._add_finding(job, record, detections, location, created)

    def _classify_object(
        self, bucket: str, bucket_info: dict, item: _Object, detector: Callable[..., Analysis],
    ) -> tuple[dict, list[Detection]]:
        """One object's discovery result record (its ``resourcesAffected`` and ``result``) and its detections.
        The object is read as a stream (see :func:`~macie_pipeline.local.detection.analyse_object`)."""
        try:
            response = self.s3.get_object(Bucket=bucket, Key=item.key, **self._version(item.head))
            body = response.pop("Body")
            item.head = {**item.head, **response}  # the version read: its encryption, content type, version id
            item.size, item.last_modified = int(response["ContentLength"]), response["LastModified"]
            with contextlib.closing(body):
                extraction = detector(body, item.key, item.head.get("ContentType"))
        except ClientError:
            extraction = Analysis(SKIPPED, SOURCE_OBJECT_NO_LONGER_AVAILABLE, None, [])
        detections = extraction.detections
        resources = {"s3Bucket": bucket_info, "s3Object": self._object_info(item)}
        status: dict[str, Any] = {"code": extraction.status}
        if extraction.reason:
            status["reason"] = extraction.reason
        result: dict[str, Any] = {"sizeClassified": 0 if extraction.status == SKIPPED else item.size, "status": status}
        if extraction.mime_type:
            result["mimeType"] = extraction.mime_type
        return {"resourcesAffected": resources, "result": result}, detections

    def _managed_identifiers(self, request: Mapping[str, Any]) -> list[ManagedIdentifier]:
        selector = request.get("managedDataIdentifierSelector", "RECOMMENDED")
        ids = request.get("managedDataIdentifierIds") or []
        chosen = {
            "ALL": list(MANAGED_IDENTIFIERS),
            "RECOMMENDED": list(RECOMMENDED),
            "NONE": [],
            "INCLUDE": [i for i in MANAGED_IDENTIFIERS if i in ids],
            "EXCLUDE": [i for i in MANAGED_IDENTIFIERS if i not in ids],
        }[selector]
        return [MANAGED_IDENTIFIERS[i] for i in chosen]

    def _bucket_info(self, bucket: str) -> dict:
        self.s3.head_bucket(Bucket=bucket)
        info: dict[str, Any] = {"arn": f"arn:{self.partition}:s3:::{bucket}", "name": bucket}
        created = [b["CreationDate"] for b in self.s3.list_buckets()["Buckets"] if b["Name"] == bucket]
        if created:
            info["createdAt"] = _iso(created[0])
        try:
            rules = self.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
            default = rules[0]["ApplyServerSideEncryptionByDefault"]
            encryption = {"encryptionType": default["SSEAlgorithm"]}
            if default.get("KMSMasterKeyID"):
                encryption["kmsMasterKeyId"] = default["KMSMasterKeyID"]
        except ClientError:
            encryption = {"encryptionType": "NONE"}
        info["defaultServerSideEncryption"] = encryption
        try:
            tag_set = self.s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
        except ClientError:
            tag_set = []
        info["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in tag_set]
        return info

    def _objects(self, bucket: str) -> Iterator[_Object]:
        """The current version of every object in the bucket, as listed (one ListObjectsV2 a page:
        no request per object here; tags and metadata are read only for what the scope needs)."""
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents") or []:
                head = {"ETag": entry.get("ETag", ""), "StorageClass": entry.get("StorageClass")}
                yield _Object(bucket, entry["Key"], int(entry["Size"]), entry["LastModified"], None, head)

    def _read_tags(self, item: _Object) -> bool:
        """Read the object's tags once (GetObjectTagging, which also names the current version: the
        one read later); False when the object is gone since it was listed (no longer part of the job)."""
        if item.tags is not None:
            return True
        try:
            response = self.s3.get_object_tagging(Bucket=item.bucket, Key=item.key)
        except ClientError:
            return False
        item.tags = {t["Key"]: t["Value"] for t in response["TagSet"]}
        if response.get("VersionId"):
            item.head["VersionId"] = response["VersionId"]
        return True

    @staticmethod
    def _version(head: Mapping[str, Any]) -> dict:
        """The ``VersionId`` argument for S3 calls on the object ``head`` describes (none if unversioned)."""
        version = head.get("VersionId")
        return {"VersionId": version} if version not in (None, "null") else {}

    @staticmethod
    def _term_matches(term: Mapping[str, Any], item: _Object) -> bool:
        if "tagScopeTerm" in term:
            tag_term = term["tagScopeTerm"]
            item_tags = item.tags or {}
            present = any(
                pair["key"] in item_tags and (pair.get("value", "") == "" or item_tags[pair["key"]] == pair["value"])
                for pair in tag_term["tagValues"]
            )
            return present if tag_term["comparator"] == "EQ" else not present
        simple = term["simpleScopeTerm"]
        key, comparator, values = simple["key"], simple["comparator"], simple["values"]
        if key == "OBJECT_KEY":
            return any(item.key.startswith(value) for value in values)
        if key == "OBJECT_EXTENSION":
            present = extension_of(item.key) in values
            return present if comparator == "EQ" else not present
        if key == "OBJECT_SIZE":
            return _COMPARE[comparator](item.size, int(values[0]))
        moment = datetime.fromisoformat(values[0].replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return _COMPARE[comparator](item.last_modified.replace(microsecond=0), moment)

    def _in_scope(self, scoping: Mapping[str, Any], item: _Object) -> bool:
        """Included when every term of ``includes`` holds, excluded when every term of ``excludes`` does."""
        # Terms on what the listing says (key, extension, size, date) first: an object they rule out
        # costs no GetObjectTagging. The order does not change the answer (all terms must hold).
        includes = sorted((scoping.get("includes") or {}).get("and") or [], key=lambda term: "tagScopeTerm" in term)
        excludes = sorted((scoping.get("excludes") or {}).get("and") or [], key=lambda term: "tagScopeTerm" in term)
        if not all(self._tag_ready(term, item) and self._term_matches(term, item) for term in includes):
            return False
        return not (excludes and all(self._tag_ready(term, item) and self._term_matches(term, item) for term in excludes))

    def _tag_ready(self, term: Mapping[str, Any], item: _Object) -> bool:
        """True once ``item``'s tags are read when ``term`` needs them (always for other terms)."""
        return "tagScopeTerm" not in term or self._read_tags(item)

    def _object_info(self, item: _Object) -> dict:
        head = item.head
        encryption: dict[str, Any] = {"encryptionType": head.get("ServerSideEncryption") or "NONE"}
        if head.get("SSEKMSKeyId"):
            encryption["kmsMasterKeyId"] = head["SSEKMSKeyId"]
        info: dict[str, Any] = {
            "bucketArn": f"arn:{self.partition}:s3:::{item.bucket}",
            "eTag": str(head.get("ETag", "")).strip('"'),
            "extension": extension_of(item.key),
            "key": item.key,
            "lastModified": _iso(item.last_modified),
            "path": f"{item.bucket}/{item.key}",
            "publicAccess": False,
            "serverSideEncryption": encryption,
            "size": item.size,
            "storageClass": head.get("StorageClass") or "STANDARD",
            "tags": [{"key": k, "value": v} for k, v in (item.tags or {}).items()],
        }
        if self._version(head):
            info["versionId"] = head["VersionId"]
        return info

    def _classification_details(self, job: ClassificationJob, result: dict, location: str | None) -> dict:
        details = {"jobArn": job.arn, "jobId": job.job_id, "originType": "SENSITIVE_DATA_DISCOVERY_JOB", "result": result}
        if location:
            details["detailedResultsLocation"] = location
        return details

    def _write_results(self, job: ClassificationJob, records: list[tuple[dict, list[Detection]]], created: datetime) -> list[str | None]:
        """Write the discovery results (if an export configuration exists); the S3 URI of each record's file."""
        if not self.export_configuration:
            return [None] * len(records)
        destination = self.export_configuration["s3Destination"]
        parts = [p for p in (destination.get("keyPrefix") or "").split("/") if p]
        prefix = "/".join([*parts, "AWSLogs", self.account_id, "Macie", self.region, job.job_id])
        locations: list[str | None] = []
        for start in range(0, len(records), RECORDS_PER_RESULTS_FILE):
            chunk = records[start : start + RECORDS_PER_RESULTS_FILE]
            key = f"{prefix}/{uuid.uuid5(uuid.NAMESPACE_URL, f'{job.arn}/{start}')}.jsonl.gz"
            location = f"s3://{destination['bucketName']}/{key}"
            lines = []
            for record, detections in chunk:
                result = {**record["result"], **classification_result(detections, RESULT_OCCURRENCES)}
                line = {
                    "schemaVersion": "1.0",
                    "accountId": self.account_id,
                    "partition": self.partition,
                    "region": self.region,
                    "createdAt": _iso(created),
                    "resourcesAffected": record["resourcesAffected"],
                    "classificationDetails": self._classification_details(job, result, location),
                }
                self._check_shape("ResourcesAffected", line["resourcesAffected"])
                self._check_shape("ClassificationDetails", line["classificationDetails"])
                lines.append(json.dumps(line, separators=(",", ":")))
            body = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
            try:
                self.s3.put_object(Bucket=destination["bucketName"], Key=key, Body=body,
                                   ServerSideEncryption="aws:kms", SSEKMSKeyId=destination["kmsKeyArn"])
            except ClientError:
                job.bucket_error = True  # the results could not be stored: they are missing, as in Macie
                location = None
            locations.extend([location] * len(chunk))
        return locations

    @staticmethod
    def _check_shape(shape_name: str, value: dict) -> None:
        shape = awsmodel.operation_model(SERVICE, "GetFindings").service_model.shape_for(shape_name)
        problems = awsmodel.wire_problems(shape, value, shape_name)
        if problems:
            raise AssertionError(f"the local Macie built an invalid {shape_name}: " + "; ".join(problems))

    def _add_finding(
        self, job: ClassificationJob, record: dict, detections: list[Detection], location: str | None, created: datetime,
    ) -> None:
        kind = finding_type(detections)
        level = severity(detections)
        title, description = _TITLES[kind]
        result = {**record["result"], **classification_result(detections, FINDING_OCCURRENCES)}
        finding_id = uuid.uuid4().hex
        self.findings[finding_id] = {
            "accountId": self.account_id,
            "archived": False,
            "category": "CLASSIFICATION",
            "classificationDetails": self._classification_details(job, result, location),
            "count": 1,
            "createdAt": _iso(created),
            "description": description,
            "id": finding_id,
            "partition": self.partition,
            "region": self.region,
            "resourcesAffected": record["resourcesAffected"],
            "sample": False,
            "schemaVersion": "1.0",
            "severity": {"description": level.capitalize(), "score": SEVERITY_SCORE[level]},
            "title": title,
            "type": kind,
            "updatedAt": _iso(created),
        }
