"""Pure logic of prepare_scan: event parsing, scan ids, claim keys and skip rules (no AWS calls)."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Any, Mapping

from pipeline_common.constants import CLAIM_PREFIX, S3_MAX_KEY_BYTES, TABLE_PARTITION_KEY, TABLE_TTL_ATTRIBUTE
from pipeline_common.errors import InvalidInputError
from pipeline_common.objects import normalise_etag

TRIGGER_OBJECT_CREATED = "object-created"
TRIGGER_SCHEDULE = "schedule"

# A claim can be taken when nobody holds it, when this scan holds it (a Lambda retry), or when the
# holder's claim has expired (DynamoDB deletes expired items only eventually, up to days later).
CLAIM_CONDITION = f"attribute_not_exists({TABLE_PARTITION_KEY}) OR scanId = :scan OR {TABLE_TTL_ATTRIBUTE} < :now"

# Storage classes whose objects cannot be read without a restore: Macie and CopyObject both fail.
UNREADABLE_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})

_SCAN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def scan_id_for(execution_name: str) -> str:
    """The execution name when it is a valid scan id, else ``scan-`` + 32 hex digits of its SHA-256."""
    if _SCAN_ID.fullmatch(execution_name):
        return execution_name
    return "scan-" + hashlib.sha256(execution_name.encode("utf-8")).hexdigest()[:32]


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


def parse_request(payload: Any) -> tuple[Mapping[str, Any], str]:
    """Split the task input ``{"event", "executionName"}`` into the event and the execution name."""
    if not isinstance(payload, Mapping):
        raise InvalidInputError(f"input must be an object with event and executionName, got {type(payload).__name__}")
    name = payload.get("executionName")
    if not isinstance(name, str) or not name:
        raise InvalidInputError("input.executionName must be a non-empty string")
    event = payload.get("event")
    if not isinstance(event, Mapping):
        raise InvalidInputError("input.event must be the execution input (an EventBridge event object)")
    return event, name


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
    }


def skip_reason(key: str, size: int, prefix: str, storage_class: str | None = None) -> str | None:
    """Why an object version is left out of the scan, or None when it belongs in it."""
    if prefix and not key.startswith(prefix):
        return f"key is outside the ingress prefix {prefix!r}"
    if key.endswith("/") and size == 0:
        return "folder placeholder (empty object whose key ends with '/')"
    if storage_class in UNREADABLE_STORAGE_CLASSES:
        return f"storage class {storage_class} cannot be read without a restore"
    return None


def duplicate_reason(other_scan_id: str | None) -> str:
    return f"duplicate: version already claimed by scan {other_scan_id or '<unknown>'}"
