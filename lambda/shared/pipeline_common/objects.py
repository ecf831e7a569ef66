"""Object references as they travel through the workflow, and the checks every handler applies."""

from __future__ import annotations

from typing import Any, Mapping

from .constants import S3_MAX_KEY_BYTES, S3_MAX_TAG_VALUE
from .errors import InvalidInputError

# Characters S3 accepts in tag keys and values (besides Unicode letters, digits and spaces).
_TAG_PUNCTUATION = set("_.:/=+-@")


def normalise_etag(etag: str | None) -> str | None:
    """S3 returns ETags quoted in API responses and unquoted in events: compare them unquoted."""
    if etag is None:
        return None
    return etag.strip().strip('"')


def object_ref(value: Any, *, field: str = "object", need_version: bool = True) -> dict:
    """Validate ``{bucket, key, versionId, etag?, size?}`` and return a clean copy.

    Raises InvalidInputError naming the field, so a malformed event fails with a clear message.
    """
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{field} must be an object with bucket and key, got {type(value).__name__}")
    problems = []
    bucket, key = value.get("bucket"), value.get("key")
    if not isinstance(bucket, str) or not bucket:
        problems.append(f"{field}.bucket must be a non-empty string")
    if not isinstance(key, str) or not key:
        problems.append(f"{field}.key must be a non-empty string")
    elif len(key.encode("utf-8")) > S3_MAX_KEY_BYTES:
        problems.append(f"{field}.key is longer than {S3_MAX_KEY_BYTES} bytes")
    version = value.get("versionId")
    if need_version and (not isinstance(version, str) or not version or version == "null"):
        problems.append(f"{field}.versionId is required (the ingress bucket must be versioned)")
    size = value.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        problems.append(f"{field}.size must be a non-negative integer")
    if problems:
        raise InvalidInputError("; ".join(problems))
    ref = {"bucket": bucket, "key": key, "versionId": version}
    if value.get("etag") is not None:
        ref["etag"] = normalise_etag(str(value["etag"]))
    if size is not None:
        ref["size"] = size
    return ref


def tag_value(text: str) -> str:
    """Make ``text`` a valid S3 tag value: replace disallowed characters, cap at 256 characters."""
    cleaned = "".join(c if (c.isalnum() or c == " " or c in _TAG_PUNCTUATION) else "_" for c in text)
    if len(cleaned) > S3_MAX_TAG_VALUE:
        cleaned = cleaned[: S3_MAX_TAG_VALUE - 3] + "..."
    return cleaned
