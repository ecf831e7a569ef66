"""Pure logic of transfer: request parsing, tag merging, copy arguments and copy verification (no AWS calls)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote, urlencode

from pipeline_common.constants import (
    META_SOURCE_ETAG,
    META_SOURCE_LAST_MODIFIED,
    META_SOURCE_VERSION,
    S3_MAX_KEY_BYTES,
    S3_MAX_TAG_VALUE,
    S3_MAX_TAGS,
    SUPERSEDED,
    TAG_FINDINGS,
    TAG_OUTCOME,
    TAG_SCAN_ID,
    TAG_VERDICT,
)
from pipeline_common.contract import REVIEW_DECISION_SEPARATOR, REVIEW_PREFIX
from pipeline_common.errors import InvalidInputError, SourceChangedError, VerificationError
from pipeline_common.objects import normalise_etag, object_ref
from pipeline_common.objects import tag_value as clean_tag_value

OPERATIONS = ("copy", "move", "tag", "delete")
COPYING_OPERATIONS = ("copy", "move")

VERIFIED_BY_ETAG = "etag"
VERIFIED_BY_CHECKSUM = "checksum"
VERIFIED_BY_SIZE = "size"

# Content headers carried over explicitly (MetadataDirective REPLACE), so single-part and multipart
# copies produce the same object.
CONTENT_HEADERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl")

# HeadObject members holding a checksum, by algorithm.
CHECKSUM_MEMBERS = {
    "CRC64NVME": "ChecksumCRC64NVME",
    "CRC32": "ChecksumCRC32",
    "CRC32C": "ChecksumCRC32C",
    "SHA1": "ChecksumSHA1",
    "SHA256": "ChecksumSHA256",
}

# Error codes meaning "the pinned source version (or its ETag) is no longer there".
SOURCE_GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound", "405", "MethodNotAllowed"})
PRECONDITION_CODES = frozenset({"PreconditionFailed", "412"})
# A conditional write (If-Match / If-None-Match) lost a race: the destination's current version changed.
WRITE_CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
ORIGIN_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TRANSIENT_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "InternalError", "ServiceUnavailable", "RequestTimeout",
     "RequestTimeoutException", "503", "500"}
)

TAG_KEY_MAX = 128
TAG_VALUE_MAX = S3_MAX_TAG_VALUE


@dataclass(frozen=True)
class TransferRequest:
    operation: str
    source: dict[str, Any]
    destination_bucket: str | None = None
    destination_key: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: Where the version goes instead when the destination's current version descends from a newer
    #: ingress version (promotions to the vault only); None: no ordering rule, the copy always lands.
    superseded_bucket: str | None = None
    superseded_key: str | None = None

    @property
    def ordered(self) -> bool:
        return self.superseded_key is not None

    def diverted(self) -> "TransferRequest":
        """The same transfer to the superseded destination, tagged SUPERSEDED, with no ordering rule."""
        return dataclasses.replace(
            self,
            destination_bucket=self.superseded_bucket,
            destination_key=self.superseded_key,
            tags={**self.tags, TAG_OUTCOME: SUPERSEDED},
            superseded_bucket=None,
            superseded_key=None,
        )


def parse_request(event: Any) -> TransferRequest:
    """Validate the task input; every problem raises InvalidInputError naming the field."""
    if not isinstance(event, Mapping):
        raise InvalidInputError(f"input must be an object, got {type(event).__name__}")
    operation = event.get("operation")
    if operation not in OPERATIONS:
        raise InvalidInputError(f"operation must be one of {', '.join(OPERATIONS)}, got {operation!r}")
    source = object_ref(event.get("source"), field="source")
    tags = parse_tags(event.get("tags"))
    if operation not in COPYING_OPERATIONS:
        if event.get("supersededDestination") is not None:
            raise InvalidInputError(f"supersededDestination is for copy and move, not {operation}")
        return TransferRequest(operation=operation, source=source, tags=tags)

    if not isinstance(event.get("destination"), Mapping):
        raise InvalidInputError(f"destination {{bucket, key}} is required for {operation}")
    bucket, key = _destination(event["destination"], "destination", source)
    superseded = event.get("supersededDestination")
    if superseded is None:
        return TransferRequest(operation, source, bucket, key, tags)
    if not isinstance(superseded, Mapping):
        raise InvalidInputError("supersededDestination must be an object {bucket, key}")
    other_bucket, other_key = _destination(superseded, "supersededDestination", source)
    if (other_bucket, other_key) == (bucket, key):
        raise InvalidInputError("supersededDestination must differ from destination")
    return TransferRequest(operation, source, bucket, key, tags, other_bucket, other_key)


def _destination(value: Mapping[str, Any], name: str, source: Mapping[str, Any]) -> tuple[str, str]:
    bucket, key = value.get("bucket"), value.get("key")
    if not isinstance(bucket, str) or not bucket:
        raise InvalidInputError(f"{name}.bucket must be a non-empty string")
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"{name}.key must be a non-empty string")
    size = len(key.encode("utf-8"))
    if size > S3_MAX_KEY_BYTES:
        raise InvalidInputError(f"{name}.key is {size} bytes in UTF-8, longer than S3's {S3_MAX_KEY_BYTES}")
    if (bucket, key) == (source["bucket"], source["key"]):
        raise InvalidInputError(f"{name} must differ from the source (same bucket and key)")
    return bucket, key


def parse_tags(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"tags must be an object of string keys and values, got {type(value).__name__}")
    tags: dict[str, str] = {}
    for key, tag_value in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= TAG_KEY_MAX:
            raise InvalidInputError(f"tag key {key!r} must be a string of 1 to {TAG_KEY_MAX} characters")
        if not isinstance(tag_value, str) or len(tag_value) > TAG_VALUE_MAX:
            raise InvalidInputError(f"tag {key!r} must have a string value of at most {TAG_VALUE_MAX} characters")
        tags[key] = tag_value
    if len(tags) > S3_MAX_TAGS:
        raise InvalidInputError(f"{len(tags)} tags given; S3 allows {S3_MAX_TAGS} per object")
    return tags


def merge_tags(
    source_tags: Iterable[Mapping[str, str]], pipeline_tags: Mapping[str, str], limit: int = S3_MAX_TAGS
) -> tuple[dict[str, str], list[str]]:
    """Source tags (an S3 ``TagSet``) overlaid with the pipeline's tags, within S3's tag limit.

    Pipeline tags always win and are always kept; source tags fill the remaining slots in key order
    (so retries give the same result). Returns the merged tags and the keys of the dropped source tags.
    """
    merged = dict(pipeline_tags)
    dropped: list[str] = []
    for tag in sorted(source_tags, key=lambda t: t["Key"]):
        key = tag["Key"]
        if key in merged:
            continue
        if len(merged) < limit:
            merged[key] = tag["Value"]
        else:
            dropped.append(key)
    return merged, dropped


def tag_set(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def is_multipart_etag(etag: str | None) -> bool:
    return "-" in (normalise_etag(etag) or "")


def check_source(head: Mapping[str, Any], source: Mapping[str, Any]) -> None:
    """Raise SourceChangedError when the version's ETag or size differs from what the scan saw."""
    expected, actual = source.get("etag"), normalise_etag(head.get("ETag"))
    if expected and expected != actual:
        raise SourceChangedError(
            f"s3://{source['bucket']}/{source['key']} version {source['versionId']} has ETag {actual}, expected {expected}"
        )
    size = source.get("size")
    if size is not None and size != head.get("ContentLength"):
        raise SourceChangedError(
            f"s3://{source['bucket']}/{source['key']} version {source['versionId']} has "
            f"{head.get('ContentLength')} bytes, expected {size}"
        )


def full_object_checksum(head: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(algorithm, value)`` of a checksum over the whole object, or None (absent or composite)."""
    for algorithm, member in CHECKSUM_MEMBERS.items():
        value = head.get(member)
        if not value:
            continue
        checksum_type = head.get("ChecksumType")
        if checksum_type == "COMPOSITE" or (checksum_type is None and "-" in value):
            return None
        return algorithm, value
    return None


def copy_checksum_algorithm(source_head: Mapping[str, Any], multipart: bool) -> str | None:
    """The ChecksumAlgorithm to request on a multipart copy so the copy gets a comparable checksum.

    Only CRC64NVME is a full-object checksum by default on multipart uploads; single-part copies keep
    the source's algorithm by themselves.
    """
    found = full_object_checksum(source_head)
    if multipart and found is not None and found[0] == "CRC64NVME":
        return "CRC64NVME"
    return None


def copy_metadata(source_head: Mapping[str, Any]) -> dict[str, str]:
    """The source's user metadata plus the pipeline's source-version, source-ETag and origin markers."""
    metadata = dict(source_head.get("Metadata") or {})
    metadata[META_SOURCE_VERSION] = str(source_head["VersionId"])
    metadata[META_SOURCE_ETAG] = normalise_etag(source_head.get("ETag")) or ""
    metadata[META_SOURCE_LAST_MODIFIED] = origin_of(source_head)
    return metadata


# ------------------------------------------------------------------ which version is newer
def parse_origin(value: Any) -> datetime | None:
    """A recorded origin time, or None when absent or not in the pipeline's format."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, ORIGIN_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def origin_of(head: Mapping[str, Any]) -> str:
    """When the ingress version ``head`` descends from was written (its LastModified), as recorded.

    The earlier of the recorded origin and the object's own LastModified: a copy is always younger
    than its origin, so at staging (the ingress version itself) this is the ingress LastModified
    whatever metadata the uploader set, and on every later copy it is the origin recorded at staging.
    No version can claim to be newer than it is.
    """
    own = head["LastModified"].astimezone(timezone.utc).replace(microsecond=0)
    recorded = parse_origin((head.get("Metadata") or {}).get(META_SOURCE_LAST_MODIFIED))
    earliest = own if recorded is None or recorded > own else recorded
    return earliest.strftime(ORIGIN_FORMAT)


def newer_origin(current_head: Mapping[str, Any] | None, incoming_origin: str) -> str | None:
    """The origin of the destination's current version when it is strictly newer than ``incoming_origin``
    (so the incoming version must not replace it), else None.

    Not newer: no current version, a current version with no recorded origin (written before the
    pipeline recorded origins), or the same second (S3's LastModified resolution: no order is known).
    """
    if current_head is None:
        return None
    recorded = parse_origin((current_head.get("Metadata") or {}).get(META_SOURCE_LAST_MODIFIED))
    incoming = parse_origin(incoming_origin)
    if recorded is None or incoming is None or recorded <= incoming:
        return None
    return recorded.strftime(ORIGIN_FORMAT)


def write_condition(current_head: Mapping[str, Any] | None) -> dict[str, str]:
    """The conditional-write parameters that make the copy land only on the current version the
    decision was made on: If-Match its ETag, or If-None-Match * when the key had none."""
    if current_head is None:
        return {"IfNoneMatch": "*"}
    return {"IfMatch": '"' + (normalise_etag(current_head.get("ETag")) or "") + '"'}


def copy_extra_args(source_head: Mapping[str, Any], tags: Mapping[str, str], multipart: bool) -> dict[str, Any]:
    """ExtraArgs for boto3's managed copy. No SSE arguments: the destination's default encryption applies."""
    args: dict[str, Any] = {
        "MetadataDirective": "REPLACE",
        "Metadata": copy_metadata(source_head),
        "TaggingDirective": "REPLACE",
    }
    for header in CONTENT_HEADERS:
        if source_head.get(header):
            args[header] = source_head[header]
    if tags:
        args["Tagging"] = urlencode(list(tags.items()), quote_via=quote)
    etag = source_head.get("ETag")
    if etag:
        args["CopySourceIfMatch"] = '"' + normalise_etag(etag) + '"'
    algorithm = copy_checksum_algorithm(source_head, multipart)
    if algorithm:
        args["ChecksumAlgorithm"] = algorithm
    return args


def is_copy_of(dest_head: Mapping[str, Any], source: Mapping[str, Any]) -> bool:
    """True when ``dest_head`` describes a copy the pipeline made of exactly ``source`` (its version and ETag)."""
    metadata = dest_head.get("Metadata") or {}
    if metadata.get(META_SOURCE_VERSION) != source["versionId"]:
        return False
    if source.get("etag") and metadata.get(META_SOURCE_ETAG) != source["etag"]:
        return False
    if source.get("size") is not None and dest_head.get("ContentLength") != source["size"]:
        return False
    return True


def _etag_is_md5(head: Mapping[str, Any]) -> bool:
    """Only unencrypted and SSE-S3 objects have an MD5 ETag; SSE-KMS, DSSE-KMS and SSE-C do not."""
    return head.get("ServerSideEncryption") in (None, "AES256") and not head.get("SSECustomerAlgorithm")


def verify_copy(source_head: Mapping[str, Any], dest_head: Mapping[str, Any], multipart_copy: bool) -> tuple[str, str | None]:
    """Compare a copy with its source. Returns ``(method, note)``; raises VerificationError on a mismatch.

    Size always; full-object checksums when both have one of the same algorithm; the ETag when both
    are MD5s of the same single-part content (a single-part source copied in one part, neither
    encrypted with KMS or SSE-C). ``method`` is the strongest comparison made.
    """
    source_size, dest_size = source_head.get("ContentLength"), dest_head.get("ContentLength")
    if source_size != dest_size:
        raise VerificationError(f"copy has {dest_size} bytes, source has {source_size}")

    checksum_compared = False
    source_sum, dest_sum = full_object_checksum(source_head), full_object_checksum(dest_head)
    if source_sum and dest_sum and source_sum[0] == dest_sum[0]:
        if source_sum[1] != dest_sum[1]:
            raise VerificationError(f"copy's {dest_sum[0]} checksum differs from the source's")
        checksum_compared = True

    source_etag, dest_etag = normalise_etag(source_head.get("ETag")), normalise_etag(dest_head.get("ETag"))
    etag_comparable = (
        not multipart_copy
        and not is_multipart_etag(source_etag)
        and _etag_is_md5(source_head)
        and _etag_is_md5(dest_head)
    )
    if etag_comparable:
        if source_etag != dest_etag:
            raise VerificationError(f"copy's ETag {dest_etag} differs from the source's {source_etag}")
        return VERIFIED_BY_ETAG, None
    if checksum_compared:
        return VERIFIED_BY_CHECKSUM, None
    reasons = []
    if multipart_copy or is_multipart_etag(source_etag):
        reasons.append("multipart ETags differ by part layout")
    if not (_etag_is_md5(source_head) and _etag_is_md5(dest_head)):
        reasons.append("KMS or SSE-C ETags are not content digests")
    reasons.append("no full-object checksum of the same algorithm on both objects")
    return VERIFIED_BY_SIZE, "size only: " + "; ".join(reasons)


def object_ref_from_head(bucket: str, key: str, head: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "key": key,
        "versionId": head.get("VersionId") or "null",
        "etag": normalise_etag(head.get("ETag")) or "",
        "size": int(head.get("ContentLength", 0)),
    }


def is_write_conflict(code: str, status: int | None) -> bool:
    """A conditional write failed (412) or raced another one (409 ConditionalRequestConflict)."""
    return code in WRITE_CONFLICT_CODES or status in (409, 412)


def classify_error(code: str, status: int | None, *, on_source: bool) -> str | None:
    """``"transient"``, ``"source-changed"`` or None (re-raise as is) for an S3 error."""
    if code in TRANSIENT_CODES or (status is not None and status >= 500):
        return "transient"
    if on_source and (code in SOURCE_GONE_CODES or code in PRECONDITION_CODES or status in (404, 405, 412)):
        if code in ("NoSuchBucket", "NoSuchUpload"):
            return None
        return "source-changed"
    return None


# ------------------------------------------------------------------ chunk operations (docs/batching.md)
#: Operations on one chunk of a batch (or, report_failed, on a whole batch); each returns counts only.
CHUNK_OPERATIONS = ("stage_chunk", "route_chunk", "decide_chunk", "report_failed")

# Outcomes (result events, the outcome tag, routed/decided lines).
SCANNING = "SCANNING"
VAULT, REVIEW_PENDING, QUARANTINED = "VAULT", "REVIEW_PENDING", "QUARANTINED"
APPROVED, DENIED, DELETED, FAILED = "APPROVED", "DENIED", "DELETED", "FAILED"
INGRESS_CLEANUP_FAILED = "INGRESS_CLEANUP_FAILED"
#: Outcomes after which nothing more happens to the object in this batch.
FINAL_OUTCOMES = (VAULT, SUPERSEDED, QUARANTINED, APPROVED, DENIED, DELETED, FAILED)
# Where a FAILED object was left (heldIn).
INGRESS, QUARANTINE, REVIEW_ZONE = "INGRESS", "QUARANTINE", "REVIEW"

# Verdicts of evaluate_findings (FAILED: the object could not be scanned; nothing moves).
CLEAN_VERDICT, REVIEW_VERDICT, DENY_VERDICT, CORRUPT_VERDICT = "CLEAN", "REVIEW", "DENY", "CORRUPT"
ROUTABLE_VERDICTS = (CLEAN_VERDICT, REVIEW_VERDICT, DENY_VERDICT, CORRUPT_VERDICT)
LINE_VERDICTS = (*ROUTABLE_VERDICTS, FAILED)
# Reviewer decisions; TIMEOUT: no decision stored when decide_chunk ran (denied, never deleted).
APPROVE_DECISION, DENY_DECISION, TIMEOUT_DECISION = "APPROVE", "DENY", "TIMEOUT"
DENY_POLICIES = ("QUARANTINE", "DELETE")

#: A batch id is an execution name (``b-<time>-<hex>``): it becomes part of S3 keys, so no ``/``.
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
#: The object fields of a result event (the ingress version; the manifest also has lastModified).
OBJECT_FIELDS = ("bucket", "key", "versionId", "etag", "size")
STAGED_FIELDS = ("bucket", "key", "versionId", "etag", "size")
LOCATION_FIELDS = ("bucket", "key", "versionId")


@dataclass(frozen=True)
class ChunkRequest:
    """A chunk operation's input: ``{"operation", "batchId", "chunk", "executionArn"?}``, or for
    report_failed ``{"operation", "batchId", "chunkCount", "executionArn"?, "error"?}``."""

    operation: str
    batch_id: str
    chunk: int = 0
    execution_arn: str | None = None
    chunk_count: int = 0
    error: Any = None


def parse_chunk_request(event: Any) -> ChunkRequest:
    """Validate a chunk operation's input; every problem raises InvalidInputError naming the field."""
    if not isinstance(event, Mapping):
        raise InvalidInputError(f"input must be an object, got {type(event).__name__}")
    operation = event.get("operation")
    if operation not in CHUNK_OPERATIONS:
        raise InvalidInputError(f"operation must be one of {', '.join(CHUNK_OPERATIONS)}, got {operation!r}")
    batch_id = event.get("batchId")
    if not isinstance(batch_id, str) or not _BATCH_ID.match(batch_id):
        raise InvalidInputError(f"batchId must be a batch id (letters, digits, . _ -; at most 80), got {batch_id!r}")
    execution_arn = event.get("executionArn")
    if execution_arn is not None and not isinstance(execution_arn, str):
        raise InvalidInputError(f"executionArn must be a string, got {type(execution_arn).__name__}")
    if operation == "report_failed":
        count = _count(event.get("chunkCount"), "chunkCount")
        return ChunkRequest(operation, batch_id, execution_arn=execution_arn, chunk_count=count, error=event.get("error"))
    return ChunkRequest(operation, batch_id, chunk=_count(event.get("chunk"), "chunk"), execution_arn=execution_arn)


def _count(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInputError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _line_problem(line: Mapping[str, Any], *, ingress_bucket: str | None) -> str | None:
    """What is wrong with a line's ``i`` and ``source`` (None: nothing)."""
    index = line.get("i")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        return f"i must be a non-negative integer, got {index!r}"
    try:
        source = object_ref(line.get("source"), field="source")
    except InvalidInputError as error:
        return str(error)
    if ingress_bucket is not None and source["bucket"] != ingress_bucket:
        return f"source.bucket is {source['bucket']!r}, not the ingress bucket {ingress_bucket!r}"
    return None


def _staged_problem(line: Mapping[str, Any], field: str = "staged") -> str | None:
    value = line.get(field)
    if value is None:
        return None
    try:
        object_ref(value, field=field)
    except InvalidInputError as error:
        return str(error)
    return None


def check_lines(lines: Sequence[Mapping[str, Any]], name: str, *, ingress_bucket: str | None,
                staged: bool = False, verdict: bool = False) -> None:
    """Raise InvalidInputError naming the file and the line of the first malformed line: ``i`` and
    ``source`` always, the ``staged`` ref when ``staged``, the ``verdict`` when ``verdict``."""
    seen: set[int] = set()
    for number, line in enumerate(lines, start=1):
        problem = _line_problem(line, ingress_bucket=ingress_bucket)
        if problem is None and staged:
            problem = _staged_problem(line)
        if problem is None and verdict and line.get("verdict") not in LINE_VERDICTS:
            problem = f"verdict must be one of {', '.join(LINE_VERDICTS)}, got {line.get('verdict')!r}"
        if problem is None and line["i"] in seen:
            problem = f"i {line['i']} appears twice"
        if problem is not None:
            raise InvalidInputError(f"{name} line {number}: {problem}")
        seen.add(line["i"])


def check_review_locations(lines: Sequence[Mapping[str, Any]], name: str, review_bucket: str) -> None:
    """Every REVIEW_PENDING line must say where in the review bucket its object is."""
    for number, line in enumerate(lines, start=1):
        if line.get("outcome") != REVIEW_PENDING:
            continue
        problem = _staged_problem(line, "location") if line.get("location") is not None else "location is missing"
        if problem is None and line["location"]["bucket"] != review_bucket:
            problem = f"location.bucket is {line['location']['bucket']!r}, not the review bucket {review_bucket!r}"
        if problem is not None:
            raise InvalidInputError(f"{name} line {number}: {problem}")


def pick(value: Mapping[str, Any] | None, fields: Sequence[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    return {name: value[name] for name in fields if name in value}


def promotion_location(result: Mapping[str, Any]) -> dict[str, Any]:
    """Where an ordered move left the object: bucket, key, versionId, superseded, supersededBy."""
    return {**pick(result, LOCATION_FIELDS), "superseded": bool(result.get("superseded")),
            "supersededBy": result.get("supersededBy")}


def verdict_tags(scan_id: str, line: Mapping[str, Any], outcome: str) -> dict[str, str]:
    """The tags of a routed object (as the per-object workflow wrote them): scan id, verdict, the
    findings' tag value and the outcome."""
    findings = line.get("findings") if isinstance(line.get("findings"), Mapping) else {}
    return parse_tags({
        TAG_SCAN_ID: scan_id,
        TAG_VERDICT: str(line.get("verdict") or ""),
        TAG_FINDINGS: clean_tag_value(str(findings.get("tagValue") or "")),
        TAG_OUTCOME: outcome,
    })


def error_name(error: Any) -> str:
    """The error name of a result event: ``Error`` of a Step Functions error, or the text itself."""
    if isinstance(error, Mapping):
        return str(error.get("Error") or "Error")
    return str(error) if error else "Error"


def result_detail(line: Mapping[str, Any], *, scan_id: str, execution_arn: str | None) -> dict[str, Any]:
    """The detail of an object's result event (docs/batching.md, "Result events")."""
    obj = pick(line.get("source"), OBJECT_FIELDS)
    if line.get("outcome") == FAILED:
        return {"scanId": scan_id, "executionArn": execution_arn, "outcome": FAILED, "heldIn": line.get("heldIn"),
                "object": obj, "error": error_name(line.get("error"))}
    detail = {
        "scanId": scan_id,
        "executionArn": execution_arn,
        "outcome": line["outcome"],
        "verdict": line.get("verdict"),
        "object": obj,
        "location": line.get("location"),
        "integrity": line.get("integrity"),
        "findings": line.get("findings"),
        "reasons": line.get("reasons") or [],
    }
    if line.get("review") is not None:
        detail["review"] = line["review"]
    return detail


def cleanup_detail(line: Mapping[str, Any], *, scan_id: str, execution_arn: str | None, error: Any) -> dict[str, Any]:
    """The extra event of an object whose scanned ingress version could not be deleted."""
    return {"scanId": scan_id, "executionArn": execution_arn, "outcome": INGRESS_CLEANUP_FAILED,
            "object": pick(line.get("source"), LOCATION_FIELDS), "error": error_name(error)}


def decision_key(batch_id: str, index: int) -> str:
    """``review#<batch id>#<object index>``: the reviewer's decision on one object of a batch."""
    return f"{REVIEW_PREFIX}{batch_id}{REVIEW_DECISION_SEPARATOR}{index}"


#: The audit fields of a stored decision (docs/reviewer-sign-in.md) that are plain strings.
AUDIT_TEXT_FIELDS = ("reviewerSub", "reviewerEmail", "reviewerSourceIp")
#: Bounds on what a decision item may carry into a decided/ line and a result event.
MAX_APPROVALS = 10
MAX_GROUPS = 50
MAX_AUDIT_TEXT = 512
#: The attributes decide_chunk reads of a decision item (ProjectionExpression names).
DECISION_ATTRIBUTES = ("decision", "reviewer", "decidedAt", *AUDIT_TEXT_FIELDS, "reviewerGroups", "approvals")


def plain_attribute(value: Any) -> Any:
    """A DynamoDB attribute value (``{"S": ...}``, ``{"L": [...]}``, ``{"M": {...}}``, ``{"SS": [...]}``,
    ``{"N": ...}``, ``{"BOOL": ...}``, ``{"NULL": true}``) as plain JSON data; anything else is None."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return None
    (kind, data), = value.items()
    if kind in ("S", "BOOL"):
        return data
    if kind == "N":
        return int(data) if isinstance(data, str) and data.lstrip("-").isdigit() else data
    if kind in ("SS", "NS"):
        return sorted(data) if isinstance(data, list) else None
    if kind == "L":
        return [plain_attribute(item) for item in data] if isinstance(data, list) else None
    if kind == "M":
        return {str(name): plain_attribute(item) for name, item in data.items()} if isinstance(data, Mapping) else None
    return None


def plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (low-level client form) as plain data."""
    return {str(name): plain_attribute(value) for name, value in item.items()}


def _text(value: Any) -> str | None:
    return value[:MAX_AUDIT_TEXT] if isinstance(value, str) and value else None


def _groups(value: Any) -> list[str] | None:
    """A list of group names (strings only), or None when the value is not a list of strings."""
    if not isinstance(value, (list, tuple, set, frozenset)):
        return None
    groups = [name[:MAX_AUDIT_TEXT] for name in value if isinstance(name, str) and name]
    if len(groups) != len(value):
        return None
    return groups[:MAX_GROUPS]


def _recorded(value: Mapping[str, Any], text_fields: tuple[str, ...], groups_field: str) -> dict[str, Any]:
    """The text fields and the group list ``value`` records well formed (bounded); the rest left out."""
    out: dict[str, Any] = {name: _text(value.get(name)) for name in text_fields}
    out[groups_field] = _groups(value.get(groups_field))
    return {name: field for name, field in out.items() if field is not None}


def _approval(value: Any) -> dict[str, Any] | None:
    """One entry of ``approvals``: ``{email, groups, at, sourceIp}`` with only what is recorded."""
    if not isinstance(value, Mapping):
        return None
    return _recorded(value, ("email", "at", "sourceIp"), "groups")


def approvals_of(value: Any) -> dict[str, dict[str, Any]] | None:
    """The ``approvals`` map (reviewer subject -> approval), bounded, in order of approval time;
    None when there is none or it is not a map."""
    if not isinstance(value, Mapping):
        return None
    entries: dict[str, dict[str, Any]] = {}
    for sub, entry in value.items():
        approval = _approval(entry)
        if sub and approval is not None:
            entries[str(sub)[:MAX_AUDIT_TEXT]] = approval
    ordered = sorted(entries.items(), key=lambda pair: (str(pair[1].get("at") or ""), pair[0]))
    return dict(ordered[:MAX_APPROVALS]) or None


def audit_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    """Who decided, as the decision item records it (docs/reviewer-sign-in.md, "Four eyes and the audit
    record"): reviewerSub, reviewerEmail, reviewerGroups, reviewerSourceIp, approvals. A field the item
    does not have (written before reviewers signed in) or that is malformed is left out, never invented."""
    out = _recorded(item, AUDIT_TEXT_FIELDS, "reviewerGroups")
    approvals = approvals_of(item.get("approvals"))
    if approvals is not None:
        out["approvals"] = approvals
    return out


def parse_decision(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``{decision, reviewer, decidedAt}`` and the audit fields (:func:`audit_fields`) of a stored
    decision (plain data, :func:`plain_item`), or None when there is none usable (no item, or a decision
    that is neither APPROVE nor DENY: only an explicit APPROVE promotes)."""
    if not item:
        return None
    decision = item.get("decision")
    if decision not in (APPROVE_DECISION, DENY_DECISION):
        return None
    return {"decision": decision, "reviewer": str(item.get("reviewer") or "unknown"),
            "decidedAt": str(item.get("decidedAt") or ""), **audit_fields(item)}


def timeout_review(now: datetime) -> dict[str, str]:
    """The review of an object nobody decided on: denied, kept in quarantine, never deleted."""
    stamp = now.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"decision": TIMEOUT_DECISION, "reviewer": "timeout", "decidedAt": stamp}


def outcome_counts(lines: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in lines:
        outcome = str(line.get("outcome"))
        counts[outcome] = counts.get(outcome, 0) + 1
    return dict(sorted(counts.items()))


def has_final_outcome(routed: Mapping[str, Any] | None, decided: Mapping[str, Any] | None) -> bool:
    """Whether an object already has its outcome (and so its result event): decided, or routed to
    anything but review."""
    if decided is not None and decided.get("outcome"):
        return True
    return routed is not None and routed.get("outcome") in FINAL_OUTCOMES
