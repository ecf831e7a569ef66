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

from pipeline_common.errors import PipelineError
from pipeline_common.log import get_logger
from pipeline_common.transient import as_pipeline_error, error_code
from verdicts import COMPLETE, PARTIAL, SKIPPED

logger = get_logger("evaluate_findings")

LIST_PAGE_SIZE = 50
GET_FINDINGS_BATCH = 50
RESULTS_SUFFIX = ".jsonl.gz"
# Worst status wins when an object has several discovery records.
_ANALYSIS_RANK = {COMPLETE: 0, PARTIAL: 1, SKIPPED: 2}

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


def read_analysis(
    s3: Any, location: ResultsLocation, prefix: str, wanted: set[tuple[str, str]]
) -> tuple[dict[tuple[str, str], tuple[str, str | None]], RecordStats]:
    """Analysis status per (bucket, key) in ``wanted`` from the discovery results under ``prefix``.

    Objects without a record are absent from the result (the caller treats them as MISSING). A
    record or file that cannot be read is skipped and counted, which fails closed for its objects.
    """
    found: dict[tuple[str, str], tuple[str, str | None]] = {}
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
                    if where not in wanted:
                        continue
                    stats.matched += 1
                    status = record_analysis(record)
                    previous = found.get(where)  # type: ignore[arg-type]
                    if previous is None or _ANALYSIS_RANK[status[0]] > _ANALYSIS_RANK[previous[0]]:
                        found[where] = status  # type: ignore[index]
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

