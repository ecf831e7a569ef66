"""Check that a staged object parses as its format and matches its stored checksum (see docs/CONTRACTS.md).

Input ``{"object": ObjectRef of the staged copy, "originalKey": str}``; output
``{"status", "format", "reason", "rows", "checksum"}``. The object is streamed, never read whole; the
format comes from ``originalKey``. All parsing lives in :mod:`integrity_core`; this module only talks
to S3 and maps its failures onto the workflow's errors:

* throttling, 5xx, ``RequestTimeout`` and network failures (also while streaming the body) ->
  ``TransientError`` (retried by the workflow);
* the pinned version is gone (``NoSuchVersion``/``NoSuchKey``/404, a delete marker) or its ETag or size
  differ from the reference -> ``SourceChangedError``;
* a malformed event or version id -> ``InvalidInputError``; any other S3 error -> ``PipelineError``.

Logs carry the object's location and the result, never its contents.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    IncompleteReadError,
    ParamValidationError,
)

import integrity_chunks
import integrity_core as core
from pipeline_common.clients import ClientCache, client_config
from pipeline_common.contract import IntegrityCheckEnvironment
from pipeline_common.errors import InvalidInputError, PipelineError, SourceChangedError, TransientError
from pipeline_common.log import get_logger
from pipeline_common.objects import normalise_etag, object_ref
from pipeline_common.transient import error_code, is_transient

logger = get_logger("integrity_check")

# The function hashes the bytes itself (integrity_core.HashingReader); botocore validates a response
# checksum only when asked to (ChecksumMode on GetObject), so nothing is hashed twice.
_CLIENTS = ClientCache(
    client_config(read_timeout=60, response_checksum_validation="when_required", max_pool_connections=32)
)

# S3 answers a stalled upload/download with 400 RequestTimeout (in the shared transient set): worth a
# retry, unlike other 400s. Its ...Exception spelling is not in the shared set.
_EXTRA_TRANSIENT_CODES = frozenset({"RequestTimeoutException"})
_GONE_CODES = frozenset({"NoSuchVersion", "NoSuchKey", "404", "NotFound", "MethodNotAllowed", "405"})
_BAD_INPUT_CODES = frozenset({"InvalidArgument", "400", "InvalidBucketName", "NoSuchBucket"})


def _transient(exc: BaseException) -> bool:
    return (
        is_transient(exc)
        or isinstance(exc, IncompleteReadError)
        or (isinstance(exc, ClientError) and error_code(exc) in _EXTRA_TRANSIENT_CODES)
    )


def _s3_call(operation: str, call: Callable[..., dict], **kwargs: Any) -> dict:
    """Call S3 and translate its failures into the workflow's errors."""
    try:
        return call(**kwargs)
    except ParamValidationError as exc:
        raise InvalidInputError(f"S3 {operation} rejected the parameters: {exc}") from None
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc)
        if _transient(exc):
            raise TransientError(f"S3 {operation} failed with {code}; worth a retry") from exc
        if code in _GONE_CODES:
            raise SourceChangedError(
                f"S3 {operation}: the object version no longer exists ({code})"
            ) from None
        if code in _BAD_INPUT_CODES:
            raise InvalidInputError(f"S3 {operation} rejected the object reference ({code})") from None
        raise PipelineError(f"S3 {operation} failed with {code}") from None


class _BodyReader:
    """``read(n)`` over a botocore StreamingBody, mapping its failures for integrity_core."""

    def __init__(self, body: Any):
        self._body = body

    def read(self, size: int = -1) -> bytes:
        try:
            return self._body.read(size)
        except FlexibleChecksumError:
            raise core.SourceChecksumError("botocore reported a checksum mismatch") from None
        except Exception as exc:
            if _transient(exc) or isinstance(exc, (BotoCoreError, OSError)):
                raise TransientError(f"reading the object failed with {error_code(exc)}; worth a retry") from exc
            raise


def _parse_event(event: Any) -> tuple[dict, str]:
    if not isinstance(event, Mapping):
        raise InvalidInputError("the event must be an object with object and originalKey")
    ref = object_ref(event.get("object"), field="object")
    original_key = event.get("originalKey")
    if not isinstance(original_key, str) or not original_key:
        raise InvalidInputError("originalKey must be a non-empty string")
    return ref, original_key


def _head(s3: Any, ref: Mapping[str, Any]) -> dict:
    """HeadObject of the pinned version (with its checksums); SourceChangedError when its ETag or size
    differ from the reference."""
    head = _s3_call(
        "HeadObject",
        s3.head_object,
        Bucket=ref["bucket"],
        Key=ref["key"],
        VersionId=ref["versionId"],
        ChecksumMode="ENABLED",
    )
    etag = normalise_etag(head.get("ETag"))
    if ref.get("etag") and etag and etag != ref["etag"]:
        raise SourceChangedError("the object version's ETag differs from the reference")
    size = head.get("ContentLength")
    if ref.get("size") is not None and isinstance(size, int) and size != ref["size"]:
        raise SourceChangedError("the object version's size differs from the reference")
    return head


def run(event: Any, *, s3: Any, env: IntegrityCheckEnvironment, tmp_dir: str | None = None) -> dict:
    """Check the staged object the event names, streamed from ``s3``, with the limits of ``env``; or,
    for ``{"operation": "check_chunk", "batchId", "chunk"}``, every staged object of one chunk
    (integrity_chunks: counts only, the results go to staged/<chunk> in the batch bucket)."""
    if isinstance(event, Mapping) and "operation" in event:
        return integrity_chunks.check_chunk(
            event, s3=s3, env=env, check=lambda request: check_one(request, s3=s3, env=env, tmp_dir=tmp_dir)
        )
    return check_one(event, s3=s3, env=env, tmp_dir=tmp_dir)


def check_one(event: Any, *, s3: Any, env: IntegrityCheckEnvironment, tmp_dir: str | None = None) -> dict:
    """Check one staged object: ``{"object": ObjectRef of the staged copy, "originalKey"}``."""
    ref, original_key = _parse_event(event)
    location = {"bucket": ref["bucket"], "key": ref["key"], "versionId": ref["versionId"]}
    head = _head(s3, ref)
    size = head.get("ContentLength")
    checksum, checksum_note = core.expected_checksum(head)

    response = _s3_call(
        "GetObject", s3.get_object, Bucket=ref["bucket"], Key=ref["key"], VersionId=ref["versionId"]
    )
    body = response["Body"]
    try:
        result = core.check_object(
            _BodyReader(body),
            original_key,
            size=size if isinstance(size, int) else None,
            checksum=checksum,
            checksum_note=checksum_note,
            chunk_rows=env.chunk_rows,
            max_json_bytes=env.max_json_document_bytes,
            tmp_dir=tmp_dir,
        )
    finally:
        body.close()
    log = logger.warning if result["status"] != core.VALID else logger.info
    log(
        "Checked the object's integrity",
        extra={**location, "size": size, "checksumAlgorithm": checksum.algorithm if checksum else None, **result},
    )
    return result


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: Any) -> dict:
    env = IntegrityCheckEnvironment.from_environment(os.environ)
    return run(event, s3=_CLIENTS.client("s3"), env=env)
