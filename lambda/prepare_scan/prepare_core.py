"""Pure logic of prepare_scan (no AWS calls): which event it is, SQS records and listed versions as
object references, batch ids, claim items, chunks, manifest lines and the execution input
(docs/batching.md, Intake)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from pipeline_common.constants import CLAIM_PREFIX, S3_MAX_KEY_BYTES, TABLE_PARTITION_KEY, TABLE_TTL_ATTRIBUTE
from pipeline_common.contract import CHUNK_INDEX, batch_key
from pipeline_common.errors import InvalidInputError
from pipeline_common.objects import normalise_etag

TRIGGER_OBJECT_CREATED = "object-created"
TRIGGER_SCHEDULE = "schedule"
TRIGGER_SWEEP = "sweep"
TRIGGERS = (TRIGGER_OBJECT_CREATED, TRIGGER_SCHEDULE, TRIGGER_SWEEP)

# The two kinds of event prepare_scan takes.
KIND_SQS, KIND_SWEEP = "sqs", "sweep"
SWEEP_SOURCE = "sensitive-data-scan-pipeline.sweep"
SWEEP_ALL, SWEEP_LOST = "all", "lost"
SWEEP_MODES = (SWEEP_ALL, SWEEP_LOST)

# A claim whose batch has no execution is taken over only when it is older than this: a batcher
# that claimed it may still be running (a Lambda runs for at most 15 minutes) and about to start it.
TAKEOVER_GRACE_SECONDS = 15 * 60 + 60

# A claim can be taken when nobody holds it, when this scan holds it (a Lambda retry), or when the
# holder's claim has expired (DynamoDB deletes expired items only eventually, up to days later).
CLAIM_CONDITION = f"attribute_not_exists({TABLE_PARTITION_KEY}) OR scanId = :scan OR {TABLE_TTL_ATTRIBUTE} < :now"

# Storage classes whose objects cannot be read without a restore: Macie and CopyObject both fail.
UNREADABLE_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})

def claim_pk(bucket: str, key: str, version_id: str) -> str:
    """Partition key of the claim on one object version (the key itself is never stored)."""
    digest = hashlib.sha256(f"{bucket}/{key}/{version_id}".encode("utf-8")).hexdigest()
    return CLAIM_PREFIX + digest


def claim_item(ref: Mapping[str, Any], scan_id: str, now: float, ttl_seconds: int) -> dict[str, dict[str, str]]:
    """The DynamoDB item (attribute-value form) claiming ``ref`` for ``scan_id``."""
    return {
        TABLE_PARTITION_KEY: {"S": claim_pk(ref["bucket"], ref["key"], ref["versionId"])},
        "scanId": {"S": scan_id},
        "claimedAt": {"S": datetime.fromtimestamp(now, tz=timezone.utc).isoformat(timespec="seconds")},
        TABLE_TTL_ATTRIBUTE: {"N": str(int(now) + ttl_seconds)},
    }


def claim_condition_values(scan_id: str, now: float) -> dict[str, dict[str, str]]:
    return {":scan": {"S": scan_id}, ":now": {"N": str(int(now))}}


# Taking over a claim whose batch never started: only while that batch still holds it.
TAKEOVER_CONDITION = "scanId = :old"


def takeover_condition_values(old_scan_id: str) -> dict[str, dict[str, str]]:
    return {":old": {"S": old_scan_id}}


def claim_age(item: Mapping[str, Any] | None, now: float) -> float | None:
    """Seconds since the claim item (attribute-value form) was written; None when it cannot be told."""
    text = ((item or {}).get("claimedAt") or {}).get("S")
    try:
        claimed = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if claimed is None:
        return None
    if claimed.tzinfo is None:
        claimed = claimed.replace(tzinfo=timezone.utc)
    return now - claimed.timestamp()


# ---------------------------------------------------------------------------------------- events
def event_kind(event: Any) -> str:
    """``sqs`` (a batch of queued S3 events) or ``sweep``; anything else is an InvalidInputError naming it."""
    if isinstance(event, Mapping):
        records = event.get("Records")
        if isinstance(records, list) and records and all(
            isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records
        ):
            return KIND_SQS
        if event.get("source") == SWEEP_SOURCE:
            return KIND_SWEEP
    raise InvalidInputError(f"prepare_scan takes an SQS batch of S3 events or a sweep event, got {describe(event)}")


def describe(value: Any) -> str:
    """A short description of an unexpected event, for the error message (never the whole event)."""
    if isinstance(value, Mapping):
        shown = {k: value[k] for k in ("source", "detail-type", "sweep", "operation") if k in value}
        keys = ", ".join(sorted(str(k) for k in value)[:10])
        return f"an object with keys [{keys}]" + (f" ({json.dumps(shown, default=str)[:200]})" if shown else "")
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    return type(value).__name__


def sweep_mode(event: Mapping[str, Any]) -> str:
    mode = event.get("sweep")
    if mode not in SWEEP_MODES:
        raise InvalidInputError(f"a sweep event's sweep must be one of {', '.join(SWEEP_MODES)}, got {mode!r}")
    return mode


def sweep_trigger(event: Mapping[str, Any], mode: str) -> str:
    """The execution's trigger: ``trigger`` when the event gives one (schedule or sweep), else
    ``schedule`` for a sweep of everything and ``sweep`` for a sweep for lost events."""
    trigger = event.get("trigger")
    if trigger is None:
        return TRIGGER_SCHEDULE if mode == SWEEP_ALL else TRIGGER_SWEEP
    if trigger not in (TRIGGER_SCHEDULE, TRIGGER_SWEEP):
        raise InvalidInputError(f"a sweep event's trigger must be schedule or sweep, got {trigger!r}")
    return trigger


def record_object(record: Mapping[str, Any], ingress_bucket: str) -> dict[str, Any]:
    """The ObjectRef (with lastModified, the event's time) of one SQS record whose body is an
    EventBridge ``Object Created`` event for the ingress bucket; InvalidInputError when it is not."""
    body = record.get("body")
    if not isinstance(body, str):
        raise InvalidInputError("the SQS record has no body")
    try:
        event = json.loads(body)
    except ValueError as error:
        raise InvalidInputError(f"the SQS record's body is not JSON: {error}") from None
    if not isinstance(event, Mapping):
        raise InvalidInputError("the SQS record's body must be an EventBridge event object")
    if trigger_of(event) != TRIGGER_OBJECT_CREATED:
        raise InvalidInputError("the SQS record's body must be an S3 Object Created event")
    ref = object_from_event(event, ingress_bucket)
    ref["lastModified"] = event.get("time") if isinstance(event.get("time"), str) else None
    return ref


def version_id_of(ref: Mapping[str, Any]) -> tuple[str, str, str]:
    return ref["bucket"], ref["key"], ref["versionId"]


# ---------------------------------------------------------------------------------------- batches
def batch_id(now: float, seeds: Iterable[str]) -> str:
    """``b-<UTC yyyymmddThhmmss>-<16 hex of sha256 of the sorted seeds>`` (the execution name)."""
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y%m%dT%H%M%S")
    digest = hashlib.sha256("\n".join(sorted(seeds)).encode("utf-8")).hexdigest()[:16]
    return f"b-{stamp}-{digest}"


def version_seed(ref: Mapping[str, Any]) -> str:
    """The seed of a sweep's batch id: its first version."""
    return f"{ref['bucket']}/{ref['key']}/{ref['versionId']}"


def chunked(refs: Sequence[Mapping[str, Any]], max_objects: int, max_bytes: int) -> list[list[Mapping[str, Any]]]:
    """Cut ``refs`` (in order) into chunks of at most ``max_objects`` objects and ``max_bytes`` bytes;
    an object larger than ``max_bytes`` is a chunk of its own."""
    chunks: list[list[Mapping[str, Any]]] = []
    current: list[Mapping[str, Any]] = []
    size = 0
    for ref in refs:
        object_size = int(ref.get("size") or 0)
        if current and (len(current) >= max_objects or size + object_size > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append(ref)
        size += object_size
    if current:
        chunks.append(current)
    return chunks


def source_of(ref: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's ``source``: {bucket, key, versionId, etag, size, lastModified}."""
    return {
        "bucket": ref["bucket"],
        "key": ref["key"],
        "versionId": ref["versionId"],
        "etag": ref.get("etag"),
        "size": ref.get("size"),
        "lastModified": ref.get("lastModified"),
    }


def manifest(chunks: Sequence[Sequence[Mapping[str, Any]]]) -> tuple[list[list[dict]], list[dict]]:
    """(lines of each chunk's manifest file, the chunk index) for ``chunks``; ``i`` counts across the batch."""
    files: list[list[dict]] = []
    index: list[dict] = []
    position = 0
    for number, chunk in enumerate(chunks):
        lines = []
        for ref in chunk:
            lines.append({"i": position, "source": source_of(ref)})
            position += 1
        files.append(lines)
        index.append({"chunk": number, "count": len(chunk), "bytes": sum(int(r.get("size") or 0) for r in chunk)})
    return files, index


def execution_input(
    batch: str, trigger: str, bucket: str, object_count: int, chunk_count: int, skipped: int
) -> dict[str, Any]:
    """The execution input of docs/batching.md (references and counts only)."""
    return {
        "batchId": batch,
        "trigger": trigger,
        "manifest": {"bucket": bucket, "chunks": batch_key(batch, CHUNK_INDEX)},
        "objectCount": object_count,
        "chunkCount": chunk_count,
        "skipped": skipped,
    }


def execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:<p>:states:<r>:<a>:execution:<state machine>:<name>`` from the state machine's ARN."""
    parts = state_machine_arn.split(":")
    if len(parts) < 7 or parts[5] != "stateMachine":
        raise InvalidInputError(f"not a state machine ARN: {state_machine_arn!r}")
    return ":".join(parts[:5] + ["execution", parts[6], name])


def last_modified(value: Any) -> str | None:
    """ListObjectVersions' LastModified (a datetime) as UTC ISO 8601 to the second."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return value if isinstance(value, str) else None


def older_than(value: Any, cutoff: float) -> bool:
    """Whether ListObjectVersions' LastModified is before the epoch second ``cutoff``."""
    if not isinstance(value, datetime):
        return False
    moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return moment.timestamp() < cutoff


def trigger_of(event: Mapping[str, Any]) -> str:
    """``object-created`` or ``schedule``; any other event is rejected."""
    detail_type, source = event.get("detail-type"), event.get("source")
    if detail_type == "Object Created":
        if source != "aws.s3":
            raise InvalidInputError(f"event.source must be 'aws.s3' for an Object Created event, got {source!r}")
        return TRIGGER_OBJECT_CREATED
    if detail_type == "Scheduled Event":
        if source != "aws.events":
            raise InvalidInputError(f"event.source must be 'aws.events' for a Scheduled Event, got {source!r}")
        return TRIGGER_SCHEDULE
    raise InvalidInputError(
        f"event.detail-type must be 'Object Created' or 'Scheduled Event', got {detail_type!r}"
    )


def _field(mapping: Mapping[str, Any], name: str, path: str) -> Any:
    if name not in mapping or mapping[name] is None:
        raise InvalidInputError(f"{path}.{name} is missing")
    return mapping[name]


def object_from_event(event: Mapping[str, Any], ingress_bucket: str) -> dict[str, Any]:
    """The ObjectRef of an S3 ``Object Created`` event. The key is used as is (EventBridge does not URL-encode)."""
    bucket_info, obj = _event_parts(event)
    return {
        "bucket": _event_bucket(bucket_info, ingress_bucket),
        "key": _event_key(obj),
        "versionId": _event_version(obj),
        "etag": _event_etag(obj),
        "size": _event_size(obj),
    }


def _event_parts(event: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """``event.detail.bucket`` and ``event.detail.object``."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidInputError("event.detail is missing or not an object")
    bucket_info = _field(detail, "bucket", "event.detail")
    obj = _field(detail, "object", "event.detail")
    if not isinstance(bucket_info, Mapping):
        raise InvalidInputError("event.detail.bucket must be an object")
    if not isinstance(obj, Mapping):
        raise InvalidInputError("event.detail.object must be an object")
    return bucket_info, obj


def _event_bucket(bucket_info: Mapping[str, Any], ingress_bucket: str) -> str:
    bucket = _field(bucket_info, "name", "event.detail.bucket")
    if not isinstance(bucket, str) or not bucket:
        raise InvalidInputError("event.detail.bucket.name must be a non-empty string")
    if bucket != ingress_bucket:
        raise InvalidInputError(f"event is for bucket {bucket!r}, not the ingress bucket {ingress_bucket!r}")
    return bucket


def _event_key(obj: Mapping[str, Any]) -> str:
    key = _field(obj, "key", "event.detail.object")
    if not isinstance(key, str) or not key:
        raise InvalidInputError("event.detail.object.key must be a non-empty string")
    if len(key.encode("utf-8")) > S3_MAX_KEY_BYTES:
        raise InvalidInputError(f"event.detail.object.key is longer than {S3_MAX_KEY_BYTES} bytes")
    return key


def _event_version(obj: Mapping[str, Any]) -> str:
    version = obj.get("version-id")
    if version is None or version == "null":
        raise InvalidInputError(
            "event.detail.object.version-id is missing or 'null': the ingress bucket must be versioned"
        )
    if not isinstance(version, str) or not version:
        raise InvalidInputError("event.detail.object.version-id must be a non-empty string")
    return version


def _event_etag(obj: Mapping[str, Any]) -> str:
    etag = _field(obj, "etag", "event.detail.object")
    if not isinstance(etag, str) or not normalise_etag(etag):
        raise InvalidInputError("event.detail.object.etag must be a non-empty string")
    return normalise_etag(etag)  # type: ignore[return-value]


def _event_size(obj: Mapping[str, Any]) -> int:
    size = _field(obj, "size", "event.detail.object")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInputError(f"event.detail.object.size must be a non-negative integer, got {size!r}")
    return size


def object_from_version(bucket: str, version: Mapping[str, Any]) -> dict[str, Any]:
    """The ObjectRef of one ``Versions`` entry of ListObjectVersions."""
    return {
        "bucket": bucket,
        "key": version["Key"],
        "versionId": version["VersionId"],
        "etag": normalise_etag(version.get("ETag")) or "",
        "size": int(version.get("Size", 0)),
        "lastModified": last_modified(version.get("LastModified")),
    }


def skip_reason(key: str, size: int, prefix: str, storage_class: str | None = None, suffix: str = "") -> str | None:
    """Why an object version is left out of the scan, or None when it belongs in it."""
    if prefix and not key.startswith(prefix):
        return f"key is outside the ingress prefix {prefix!r}"
    if suffix and not key.endswith(suffix):
        return f"key does not end with the trigger's suffix {suffix!r}"
    if key.endswith("/") and size == 0:
        return "folder placeholder (empty object whose key ends with '/')"
    if storage_class in UNREADABLE_STORAGE_CLASSES:
        return f"storage class {storage_class} cannot be read without a restore"
    return None


def duplicate_reason(other_scan_id: str | None) -> str:
    return f"duplicate: version already claimed by scan {other_scan_id or '<unknown>'}"
