"""Read what a Macie classification job produced: its findings and its sensitive data discovery results.

Findings come from ListFindings (every page) and GetFindings (at most 50 ids a call). The discovery
results are gzipped JSON Lines objects in the bucket of the account's classification export
configuration, under ``<keyPrefix>/AWSLogs/<accountId>/Macie/<region>/<jobId>/``; they are streamed
line by line, never loaded whole.
"""

from __future__ import annotations

import codecs
import gzip
import json
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from pipeline_common.errors import InvalidInputError, PipelineError
from pipeline_common.log import get_logger
from pipeline_common.transient import as_pipeline_error, error_code
from verdicts import COMPLETE, PARTIAL, SKIPPED, DiscoveryRecord, reported_detections

logger = get_logger("evaluate_findings")

LIST_PAGE_SIZE = 50
GET_FINDINGS_BATCH = 50
RESULTS_SUFFIX = ".jsonl.gz"

T = TypeVar("T")


def aws_call(what: str, call: Callable[..., T], /, **kwargs: Any) -> T:
    """Call AWS; throttling, 5xx and network errors become TransientError, the rest PipelineError."""
    try:
        return call(**kwargs)
    except (ClientError, BotoCoreError) as error:
        raise as_pipeline_error(what, error) from error


# ---------------------------------------------------------------------------------------- findings
def list_finding_ids(macie: Any, job_id: str) -> Iterator[str]:
    """Every finding id of the job, following nextToken through all pages."""
    token: str | None = None
    seen_tokens: set[str] = set()
    while True:
        request: dict[str, Any] = {
            "findingCriteria": {"criterion": {"classificationDetails.jobId": {"eq": [job_id]}}},
            "maxResults": LIST_PAGE_SIZE,
        }
        if token:
            request["nextToken"] = token
        page = aws_call("Macie ListFindings", macie.list_findings, **request)
        yield from page.get("findingIds") or []
        token = page.get("nextToken")
        if not token:
            return
        if token in seen_tokens:  # a service bug must not loop forever
            raise PipelineError("Macie ListFindings returned the same nextToken twice")
        seen_tokens.add(token)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def get_findings(macie: Any, finding_ids: Iterable[str]) -> Iterator[dict]:
    """The findings for the ids, fetched with GetFindings in groups of at most 50."""
    for group in batched(finding_ids, GET_FINDINGS_BATCH):
        response = aws_call("Macie GetFindings", macie.get_findings, findingIds=group)
        yield from response.get("findings") or []


def finding_location(finding: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(bucket name, object key) a finding or discovery record is about."""
    resources = finding.get("resourcesAffected") or {}
    bucket = (resources.get("s3Bucket") or {}).get("name")
    key = (resources.get("s3Object") or {}).get("key")
    return (bucket if isinstance(bucket, str) else None, key if isinstance(key, str) else None)


def object_version(finding: Mapping[str, Any]) -> str | None:
    """``resourcesAffected.s3Object.versionId`` of a finding or discovery record; None when absent or
    not a real version id (an unversioned object has none, and "null" names no version)."""
    version = (((finding.get("resourcesAffected") or {}).get("s3Object")) or {}).get("versionId")
    return version if isinstance(version, str) and version and version != "null" else None


# ------------------------------------------------------------------------ discovery results location
@dataclass(frozen=True)
class ResultsLocation:
    bucket: str
    key_prefix: str
    kms_key_arn: str | None = None


def results_location(macie: Any, bucket: str | None = None, prefix: str | None = None) -> ResultsLocation | None:
    """``bucket``/``prefix`` (RESULTS_BUCKET/RESULTS_PREFIX) when a bucket is given, else the account's
    classification export configuration; None when there is neither."""
    if bucket and bucket.strip():
        return ResultsLocation(bucket.strip(), prefix or "")
    try:
        response = aws_call(
            "Macie GetClassificationExportConfiguration", macie.get_classification_export_configuration
        )
    except PipelineError as error:
        cause = error.__cause__
        if isinstance(cause, ClientError) and error_code(cause) == "ResourceNotFoundException":
            return None
        raise
    destination = ((response.get("configuration") or {}).get("s3Destination")) or {}
    if not destination.get("bucketName"):
        return None
    return ResultsLocation(destination["bucketName"], destination.get("keyPrefix") or "", destination.get("kmsKeyArn"))


@dataclass(frozen=True)
class UnreadableResults:
    """The discovery results could not be read for a reason that retrying will not fix (AccessDenied on
    S3 or on the KMS key, no such bucket...): no object can be shown to have been analysed."""

    location: str | None  # s3://bucket/prefix, None when the location itself could not be looked up
    error: str  # the AWS error code
    grant: str  # what the evaluator's role needs

    def reason(self) -> str:
        where = f"at {self.location}" if self.location else "(their location could not be looked up)"
        return (
            f"the Macie sensitive data discovery results {where} could not be read ({self.error}), "
            "so the object cannot be shown to have been analysed"
        )

    def summary(self) -> dict[str, Any]:
        return {"readable": False, "location": self.location, "error": self.error, "grant": self.grant}


def unreadable_results(
    error: PipelineError, location: ResultsLocation | None, prefix: str | None, partition: str = "aws"
) -> UnreadableResults:
    """Describe a permanent failure to read the discovery results under ``prefix`` of ``location``
    (``location`` None: GetClassificationExportConfiguration itself failed)."""
    cause = error.__cause__
    code = error_code(cause) if cause is not None else type(error).__name__
    if location is None:
        return UnreadableResults(None, code, "macie2:GetClassificationExportConfiguration")
    bucket_arn = f"arn:{partition}:s3:::{location.bucket}"
    key = f"kms:Decrypt on {location.kms_key_arn}" if location.kms_key_arn else "kms:Decrypt on the KMS key that encrypts them"
    grant = (
        f"s3:ListBucket on {bucket_arn} (for the prefix {prefix}), s3:GetObject on {bucket_arn}/{prefix}*, "
        f"and {key} (allowed by the key policy too)"
    )
    return UnreadableResults(f"s3://{location.bucket}/{prefix or ''}", code, grant)


def job_results_prefix(key_prefix: str, account_id: str, region: str, job_id: str) -> str:
    """``<keyPrefix>/AWSLogs/<accountId>/Macie/<region>/<jobId>/`` without doubled or leading slashes."""
    parts = [p for p in key_prefix.split("/") if p]
    parts += ["AWSLogs", account_id, "Macie", region, job_id]
    return "/".join(parts) + "/"


# --------------------------------------------------------------------------- discovery result records
@dataclass
class RecordStats:
    files: int = 0
    records: int = 0
    matched: int = 0
    bad_lines: int = 0
    bad_files: int = 0


def iter_records(body: Any) -> Iterator[dict | None]:
    """Stream one gzipped JSON Lines body: a dict per record, None for a line that is not a JSON object.

    Reads the body in chunks through a gzip decompressor and an incremental UTF-8 decoder, so neither
    the compressed nor the decompressed object is ever held in memory.
    """
    with gzip.GzipFile(fileobj=body, mode="rb") as compressed:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        while True:
            chunk = compressed.read(64 * 1024)
            text = decoder.decode(chunk, final=not chunk)
            lines = (pending + text).split("\n")
            pending = lines.pop()
            for line in lines:
                if line.strip():
                    yield _parse_line(line)
            if not chunk:
                break
        if pending.strip():
            yield _parse_line(pending)


def _parse_line(line: str) -> dict | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def record_analysis(record: Mapping[str, Any]) -> tuple[str, str | None]:
    """(COMPLETE|PARTIAL|SKIPPED, reason) from classificationDetails.result.status; unknown -> PARTIAL."""
    status = (((record.get("classificationDetails") or {}).get("result") or {}).get("status")) or {}
    code = str(status.get("code") or "").strip().upper()
    reason = status.get("reason") if isinstance(status.get("reason"), str) else None
    if code in (COMPLETE, PARTIAL, SKIPPED):
        return code, reason
    return PARTIAL, f"unrecognised Macie status {code or 'none'!r}" + (f": {reason}" if reason else "")


def discovery_record(record: Mapping[str, Any]) -> DiscoveryRecord:
    """The version, analysis status and reported detections of one discovery result record."""
    status, reason = record_analysis(record)
    return DiscoveryRecord(object_version(record), status, reason, reported_detections(record))


def read_analysis(
    s3: Any, location: ResultsLocation, prefix: str, wanted: set[tuple[str, str]] | None
) -> tuple[dict[tuple[str, str], list[DiscoveryRecord]], RecordStats]:
    """The discovery result records about each (bucket, key) in ``wanted`` (None: every one), from the
    results under ``prefix``, whatever version they name (the caller binds them to the staged version).

    Objects without a record are absent from the result (the caller treats them as MISSING). A
    record or file that cannot be read is skipped and counted, which fails closed for its objects.
    AWS errors are raised as pipeline errors (TransientError when worth retrying).
    """
    found: dict[tuple[str, str], list[DiscoveryRecord]] = {}
    stats = RecordStats()
    paginator = s3.get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=location.bucket, Prefix=prefix)
    for page in _aws_iter("S3 ListObjectsV2 on the discovery results", pages):
        for entry in page.get("Contents") or []:
            key = entry["Key"]
            if not key.endswith(RESULTS_SUFFIX):
                continue
            stats.files += 1
            response = aws_call("S3 GetObject on a discovery result", s3.get_object, Bucket=location.bucket, Key=key)
            body = response["Body"]
            try:
                for record in _aws_iter("S3 read of a discovery result", iter_records(body)):
                    if record is None:
                        stats.bad_lines += 1
                        continue
                    stats.records += 1
                    where = finding_location(record)
                    if wanted is not None and where not in wanted:
                        continue
                    stats.matched += 1
                    found.setdefault(where, []).append(discovery_record(record))  # type: ignore[arg-type]
            except (OSError, EOFError, zlib.error):
                # gzip.BadGzipFile is an OSError; a truncated file raises EOFError.
                stats.bad_files += 1
                logger.warning("Skipped an unreadable discovery result file", extra={"resultKey": key})
            finally:
                body.close()
    return found, stats


def _aws_iter(what: str, iterator: Iterable[T]) -> Iterator[T]:
    """Iterate, turning AWS errors raised while paging or streaming into pipeline errors."""
    it = iter(iterator)
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except (ClientError, BotoCoreError) as error:
            raise as_pipeline_error(what, error) from error
        yield item


# ------------------------------------------------------------------------------ a job's results
def account_of(context: Any) -> tuple[str, str]:
    """(partition, account id) from the Lambda context's invoked_function_arn."""
    arn = getattr(context, "invoked_function_arn", None)
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) < 5 or not parts[4].isdigit():
        raise InvalidInputError("cannot tell the AWS account id: the Lambda context has no invoked_function_arn")
    return parts[1] or "aws", parts[4]


def job_fields(job: Any) -> Any:
    """Accept the job as the contract names it, or as Step Functions returns DescribeClassificationJob.

    The workflow passes the whole aws-sdk response (PascalCase: JobId, JobStatus, LastRunErrorStatus
    {Code}) rather than selecting optional fields in the definition, where a missing field would be
    an uncatchable States.Runtime error.
    """
    if not isinstance(job, Mapping) or "JobId" not in job:
        return job
    error = job.get("LastRunErrorStatus")
    return {
        "jobId": job.get("JobId"),
        "jobStatus": job.get("JobStatus"),
        "lastRunErrorStatus": error.get("Code") if isinstance(error, Mapping) else error,
    }


def read_job_analysis(
    macie: Any,
    s3: Any,
    env: Any,
    job_id: str,
    wanted: set[tuple[str, str]] | None,
    region: str,
    context: Any,
) -> tuple[dict[tuple[str, str], list[DiscoveryRecord]], UnreadableResults | None]:
    """The sensitive data discovery result records of the job (proof that each object was analysed),
    by staged bucket and key; empty without a results location, so that no object counts as analysed.

    A permanent AWS error (AccessDenied on S3 or KMS, no such bucket...) does not fail the scan: it is
    returned as UnreadableResults, and every object goes to review. Transient errors are raised.
    """
    partition, account_id = account_of(context)
    location: ResultsLocation | None = None
    prefix: str | None = None
    try:
        location = results_location(macie, env.results_bucket, env.results_prefix)
        if location is None:
            logger.warning("No sensitive data discovery results location is configured; every object counts as not analysed")
            return {}, None
        prefix = job_results_prefix(location.key_prefix, account_id, region, job_id)
        analysis, stats = read_analysis(s3, location, prefix, wanted)
    except PipelineError as error:
        unreadable = unreadable_results(error, location, prefix, partition)
        logger.error(
            "The discovery results cannot be read; every object goes to review",
            extra={"resultsLocation": unreadable.location, "error": unreadable.error, "grant": unreadable.grant},
        )
        return {}, unreadable
    logger.info(
        "Read the discovery results",
        extra={
            "resultsBucket": location.bucket,
            "resultsPrefix": prefix,
            "files": stats.files,
            "records": stats.records,
            "matchedRecords": stats.matched,
            "badLines": stats.bad_lines,
            "badFiles": stats.bad_files,
        },
    )
    return analysis, None
