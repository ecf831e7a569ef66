"""Copy, move, tag or delete one pinned object version (see docs/CONTRACTS.md, transfer).

Copies use boto3's managed copy (multipart above ``MULTIPART_THRESHOLD``), carry the source's metadata,
content headers and tags, are verified against the source, and only then (for a move) is the source
version deleted. Every copy records its source version and ETag in its metadata, which makes a retry
after a partial move find the finished copy instead of failing.

A request with ``supersededDestination`` (the promotions to the vault) follows the ordering rule: an
older ingress version never becomes the destination's current version over a newer one. The version
goes to ``supersededDestination`` instead, and the result says ``superseded: true``. The copy to the
destination is a conditional write (If-Match the current version's ETag, or If-None-Match * when
there is none), so a promotion that raced in between makes this one fail with TransientError and the
retry decides again on what is current then.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping, NoReturn

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import S3CopyFailedError

import transfer_core
from pipeline_common.clients import ClientCache, client_config
from pipeline_common.contract import TransferEnvironment
from pipeline_common.errors import InvalidInputError, SourceChangedError, TransientError, VerificationError
from pipeline_common.log import get_logger
from pipeline_common.objects import normalise_etag
from pipeline_common.transient import error_code, is_transient
from transfer_core import TransferRequest

logger = get_logger("transfer")

# The requests that create the destination object (single-part and multipart copy).
CREATING_OPERATIONS = ("CopyObject", "CompleteMultipartUpload")

# Objects of at least this size are copied with UploadPartCopy (CopyObject's limit is 5 GiB).
MULTIPART_THRESHOLD = 5 * 1024**3
MULTIPART_CHUNKSIZE = 256 * 1024**2
MAX_CONCURRENCY = 8

# Enough connections for a chunk's thread pool (TransferEnvironment.workers) and a multipart copy's parts.
MAX_POOL_CONNECTIONS = 64
_CLIENTS = ClientCache(client_config(read_timeout=120, max_pool_connections=MAX_POOL_CONNECTIONS))


def _fail(error: Exception, action: str, *, on_source: bool) -> NoReturn:
    """Raise TransientError or SourceChangedError for the errors the workflow understands, else ``error``."""
    if isinstance(error, BotoCoreError):
        if is_transient(error):
            raise TransientError(f"{action}: {type(error).__name__}; retry") from error
        raise error
    if isinstance(error, ClientError):
        code = error_code(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        kind = transfer_core.classify_error(code, status, on_source=on_source)
        if kind == "transient" or is_transient(error):
            raise TransientError(f"{action} failed with {code}; retry") from error
        if kind == "source-changed":
            raise SourceChangedError(f"{action}: the source version is gone or changed ({code})") from error
    raise error


def _is_gone(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return transfer_core.classify_error(error_code(error), status, on_source=True) == "source-changed"


def _head_version(s3: Any, source: Mapping[str, Any]) -> dict[str, Any] | None:
    """HeadObject of the pinned source version (with checksums), or None when that version is gone."""
    try:
        return s3.head_object(
            Bucket=source["bucket"], Key=source["key"], VersionId=source["versionId"], ChecksumMode="ENABLED"
        )
    except ClientError as error:
        if _is_gone(error):
            return None
        _fail(error, "HeadObject (source)", on_source=True)
    except BotoCoreError as error:
        _fail(error, "HeadObject (source)", on_source=True)


def _head_latest(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """HeadObject of the current version of a destination key, or None when there is none."""
    try:
        return s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as error:
        if _is_gone(error):
            return None
        _fail(error, "HeadObject (destination)", on_source=False)
    except BotoCoreError as error:
        _fail(error, "HeadObject (destination)", on_source=False)


def _head_copy(s3: Any, request: TransferRequest, version_id: str | None) -> dict[str, Any]:
    """HeadObject of the copy just made (its version when S3 reported one, else the current one)."""
    try:
        return s3.head_object(
            Bucket=request.destination_bucket,
            Key=request.destination_key,
            ChecksumMode="ENABLED",
            **({"VersionId": version_id} if version_id else {}),
        )
    except (ClientError, BotoCoreError) as error:
        _fail(error, "HeadObject (copy)", on_source=False)


def _merged_tags(s3: Any, source: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, str]:
    try:
        response = s3.get_object_tagging(Bucket=source["bucket"], Key=source["key"], VersionId=source["versionId"])
    except (ClientError, BotoCoreError) as error:
        _fail(error, "GetObjectTagging (source)", on_source=True)
    merged, dropped = transfer_core.merge_tags(response.get("TagSet", []), tags)
    if dropped:
        logger.warning("source tags dropped to stay within the S3 tag limit", extra={"droppedTagKeys": dropped})
    return merged


def _put_tags(s3: Any, bucket: str, key: str, version_id: str, tags: Mapping[str, str], *, on_source: bool) -> None:
    try:
        s3.put_object_tagging(
            Bucket=bucket, Key=key, VersionId=version_id, Tagging={"TagSet": transfer_core.tag_set(tags)}
        )
    except (ClientError, BotoCoreError) as error:
        _fail(error, "PutObjectTagging", on_source=on_source)


def _copy_failed(error: Exception, request: TransferRequest, *, conditional: bool) -> NoReturn:
    """A conditional copy that lost a race is retried (the retry decides again); the rest as _fail."""
    if conditional and isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if transfer_core.is_write_conflict(error_code(error), status):
            raise TransientError(
                f"s3://{request.destination_bucket}/{request.destination_key} changed while this version was "
                f"promoted ({error_code(error)}); retry to decide again"
            ) from error
    _fail(error, "copy", on_source=True)


@dataclass
class _CopyState:
    """One copy in progress: the condition for the request that creates the object, and the version
    ids S3 reported for it."""

    condition: dict[str, str]
    captured: list[str]


# The copies in progress, by destination (bucket, key). The chunk operations share one client between
# threads and never copy to one destination key from two threads at once (transfer_chunks.KeyLocks).
_ACTIVE: dict[tuple[str, str], _CopyState] = {}
_ACTIVE_LOCK = threading.Lock()
_HOOK_ID = "macie-pipeline-transfer"
_CONTEXT_KEY = "macie_pipeline_copy"


def _mark_copy(params: dict, context: dict | None = None, **_: Any) -> None:
    """before-parameter-build: a request creating a copy in progress gets its condition, and its
    context remembers the copy (so that after-call knows whose response it is)."""
    state = _ACTIVE.get((params.get("Bucket"), params.get("Key")))
    if state is None:
        return
    if context is not None:
        context[_CONTEXT_KEY] = state
    params.update(state.condition)


def _capture_copy(parsed: Any = None, context: dict | None = None, **_: Any) -> None:
    state = (context or {}).get(_CONTEXT_KEY)
    if state is not None and isinstance(parsed, dict) and parsed.get("VersionId"):
        state.captured.append(parsed["VersionId"])


def install_hooks(s3: Any) -> None:
    """Register the copy hooks on ``s3`` once (registering them again is a no-op). They stay: adding
    and removing handlers while other threads send requests on the same client is not safe."""
    for op in CREATING_OPERATIONS:
        s3.meta.events.register(f"before-parameter-build.s3.{op}", _mark_copy, unique_id=f"{_HOOK_ID}-mark-{op}")
        s3.meta.events.register(f"after-call.s3.{op}", _capture_copy, unique_id=f"{_HOOK_ID}-capture-{op}")


def _managed_copy(
    s3: Any,
    request: TransferRequest,
    source_head: Mapping[str, Any],
    tags: Mapping[str, str],
    multipart: bool,
    condition: Mapping[str, str],
) -> str | None:
    """Copy the pinned version; returns the new destination version id (None if S3 did not report one).

    ``condition`` (IfMatch or IfNoneMatch) goes on the request that creates the object: CopyObject,
    or CompleteMultipartUpload for a multipart copy (S3 takes no condition on UploadPartCopy, and
    s3transfer passes none through its ExtraArgs, hence the parameter hook).
    """
    install_hooks(s3)
    state = _CopyState(dict(condition), [])
    destination = (request.destination_bucket, request.destination_key)
    with _ACTIVE_LOCK:
        if destination in _ACTIVE:
            raise TransientError(f"another copy to s3://{destination[0]}/{destination[1]} is in progress; retry")
        _ACTIVE[destination] = state
    source = request.source
    copy_source = {"Bucket": source["bucket"], "Key": source["key"], "VersionId": source["versionId"]}
    extra_args = transfer_core.copy_extra_args(source_head, tags, multipart)
    try:
        if multipart:
            s3.copy(
                CopySource=copy_source,
                Bucket=request.destination_bucket,
                Key=request.destination_key,
                ExtraArgs=extra_args,
                Config=TransferConfig(
                    multipart_threshold=MULTIPART_THRESHOLD,
                    multipart_chunksize=MULTIPART_CHUNKSIZE,
                    max_concurrency=MAX_CONCURRENCY,
                ),
            )
        else:
            # The one CopyObject the managed copy would send below its threshold, without the managed
            # copy's own HeadObject of the source (source_head already is one) and its thread pools.
            s3.copy_object(CopySource=copy_source, Bucket=request.destination_bucket, Key=request.destination_key,
                           **extra_args)
    except S3CopyFailedError as error:
        if "did not match expected ETag" in str(error):
            raise SourceChangedError(f"the source's ETag changed during the copy: {error}") from error
        raise
    except (ClientError, BotoCoreError) as error:
        _copy_failed(error, request, conditional=bool(condition))
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.pop(destination, None)
    return state.captured[-1] if state.captured else None


def _delete_version(s3: Any, bucket: str, key: str, version_id: str, *, action: str) -> None:
    """Delete one version; an already absent version counts as deleted."""
    try:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
    except ClientError as error:
        if _is_gone(error):
            return
        _fail(error, action, on_source=False)
    except BotoCoreError as error:
        _fail(error, action, on_source=False)


def _result(request: TransferRequest, dest_head: Mapping[str, Any], method: str, note: str | None) -> dict[str, Any]:
    ref = transfer_core.object_ref_from_head(request.destination_bucket, request.destination_key, dest_head)
    ref["verification"] = method
    if note:
        ref["verificationNote"] = note
    return ref


def _finished_earlier(s3: Any, request: TransferRequest) -> dict[str, Any]:
    """The source version is gone: for a move whose copy was already made (a retry), return that copy
    (for an ordered move, in the destination or, if the earlier attempt found it superseded, there)."""
    if request.operation == "move":
        places = [(request, False)] + ([(request.diverted(), True)] if request.ordered else [])
        for attempt, superseded in places:
            existing = _head_latest(s3, attempt.destination_bucket, attempt.destination_key)
            if existing is None or not transfer_core.is_copy_of(existing, request.source):
                continue
            logger.info("source already moved by an earlier attempt",
                        extra={"key": attempt.destination_key, "versionId": existing.get("VersionId")})
            result = _result(attempt, existing, transfer_core.VERIFIED_BY_SIZE,
                             "source version already deleted by an earlier attempt; copy found by its "
                             "source-version metadata")
            return _ordered_result(result, request, superseded, None) if request.ordered else result
    source = request.source
    raise SourceChangedError(f"s3://{source['bucket']}/{source['key']} version {source['versionId']} no longer exists")


def _place_copy(
    s3: Any,
    request: TransferRequest,
    source_head: Mapping[str, Any],
    pinned: Mapping[str, Any],
    tags: Mapping[str, str],
    multipart: bool,
    placement: "Placement",
) -> tuple[str | None, bool, bool]:
    """Make the destination hold a copy of the pinned version: reuse the copy an earlier attempt made, or
    copy now. Returns the copy's version id, whether the copy is a multipart one, and whether it was
    made now (a single-part copy made now already carries its tags: CopyObject with Tagging, REPLACE)."""
    dest_bucket, dest_key = request.destination_bucket, request.destination_key
    existing = placement.current
    if existing is not None and transfer_core.is_copy_of(existing, pinned):
        logger.info("destination already holds this version; reusing it",
                    extra={"key": dest_key, "versionId": existing.get("VersionId")})
        return existing.get("VersionId"), multipart or transfer_core.is_multipart_etag(existing.get("ETag")), False
    source = request.source
    logger.info("copying", extra={"sourceKey": source["key"], "sourceVersionId": source["versionId"],
                                  "size": int(source_head.get("ContentLength", 0)), "multipart": multipart,
                                  "destinationKey": dest_key})
    dest_version = _managed_copy(s3, request, source_head, tags, multipart, placement.condition)
    if dest_version is None:
        latest = _head_latest(s3, dest_bucket, dest_key)
        if latest is None or not transfer_core.is_copy_of(latest, pinned):
            raise VerificationError(f"the copy to s3://{dest_bucket}/{dest_key} cannot be found")
        dest_version = latest.get("VersionId")
    return dest_version, multipart, True


def _verify_copy(
    s3: Any,
    request: TransferRequest,
    source_head: Mapping[str, Any],
    dest_head: Mapping[str, Any],
    dest_version: str | None,
    multipart: bool,
) -> tuple[str, str | None]:
    """Verify the copy against its source (see transfer_core.verify_copy); a copy that fails is removed
    where the bucket allows it, and the VerificationError raised."""
    dest_bucket, dest_key = request.destination_bucket, request.destination_key
    try:
        method, note = transfer_core.verify_copy(source_head, dest_head, multipart)
    except VerificationError:
        logger.error("copy failed verification; removing it", extra={"key": dest_key, "versionId": dest_version})
        if dest_version:
            try:
                _delete_version(s3, dest_bucket, dest_key, dest_version, action="DeleteObject (unverified copy)")
            except Exception:  # noqa: BLE001 - the vault denies deletes by design; the error below is what matters
                logger.exception("could not remove the unverified copy", extra={"bucket": dest_bucket, "key": dest_key})
        raise
    if note:
        logger.warning("copy verified by size only", extra={"key": dest_key, "note": note})
    return method, note


@dataclass(frozen=True)
class Placement:
    """What a copy was decided on: the destination's current version (None: there was none) and the
    conditional-write parameters that hold the copy to it (empty: unconditional)."""

    current: dict[str, Any] | None
    condition: dict[str, str]


def _copy(s3: Any, request: TransferRequest) -> dict[str, Any]:
    """Copy (or move) the pinned source version; the source is deleted only after the copy is verified.
    An ordered request (a promotion) first decides between its destination and the superseded one."""
    source = request.source
    source_head = _head_version(s3, source)
    if source_head is None:
        return _finished_earlier(s3, request)
    transfer_core.check_source(source_head, source)
    pinned = {**source, "etag": normalise_etag(source_head.get("ETag")), "size": source_head.get("ContentLength")}
    current = _head_latest(s3, request.destination_bucket, request.destination_key)
    if not request.ordered:
        return _copy_to(s3, request, source_head, pinned, Placement(current, {}))
    if current is not None and transfer_core.is_copy_of(current, pinned):
        newer = None  # an earlier attempt promoted this very version: finish it
    else:
        newer = transfer_core.newer_origin(current, transfer_core.origin_of(source_head))
    if newer is None:
        placement = Placement(current, transfer_core.write_condition(current))
        return _ordered_result(_copy_to(s3, request, source_head, pinned, placement), request, False, None)
    superseded_by = {"bucket": request.destination_bucket, "key": request.destination_key,
                     "versionId": current.get("VersionId"), "sourceLastModified": newer}
    logger.warning("a newer version is current at the destination: this version is kept aside",
                   extra={"key": request.destination_key, "sourceLastModified": transfer_core.origin_of(source_head),
                          "supersededBy": superseded_by, "keptAt": request.superseded_key})
    diverted = request.diverted()
    kept = _copy_to(s3, diverted, source_head, pinned,
                    Placement(_head_latest(s3, diverted.destination_bucket, diverted.destination_key), {}))
    return _ordered_result(kept, request, True, superseded_by)


def _ordered_result(
    result: dict[str, Any], request: TransferRequest, superseded: bool, superseded_by: dict[str, Any] | None
) -> dict[str, Any]:
    """An ordered request's result always carries ``superseded`` and ``supersededBy`` (the workflow selects them)."""
    return {**result, "superseded": superseded, "supersededBy": superseded_by}


def _copy_to(
    s3: Any, request: TransferRequest, source_head: Mapping[str, Any], pinned: Mapping[str, Any], placement: Placement
) -> dict[str, Any]:
    source = request.source
    multipart = int(source_head.get("ContentLength", 0)) >= MULTIPART_THRESHOLD
    tags = _merged_tags(s3, source, request.tags)

    dest_version, multipart, fresh = _place_copy(s3, request, source_head, pinned, tags, multipart, placement)
    # A multipart copy, or a copy an earlier attempt made, gets its tags set on the version itself.
    if dest_version and tags and (multipart or not fresh):
        _put_tags(s3, request.destination_bucket, request.destination_key, dest_version, tags, on_source=False)
    dest_head = _head_copy(s3, request, dest_version)
    method, note = _verify_copy(s3, request, source_head, dest_head, dest_version, multipart)

    if request.operation == "move":
        _delete_version(s3, source["bucket"], source["key"], source["versionId"], action="DeleteObject (source)")
        logger.info("source version deleted", extra={"key": source["key"], "versionId": source["versionId"]})
    return _result(request, dest_head, method, note)


def _tag(s3: Any, request: TransferRequest) -> dict[str, Any]:
    source = request.source
    head = _head_version(s3, source)
    if head is None:
        raise SourceChangedError(f"s3://{source['bucket']}/{source['key']} version {source['versionId']} no longer exists")
    transfer_core.check_source(head, source)
    tags = _merged_tags(s3, source, request.tags)
    _put_tags(s3, source["bucket"], source["key"], source["versionId"], tags, on_source=True)
    logger.info("tagged", extra={"key": source["key"], "versionId": source["versionId"], "tagKeys": sorted(tags)})
    return transfer_core.object_ref_from_head(source["bucket"], source["key"], head)


def _delete(s3: Any, request: TransferRequest) -> dict[str, Any]:
    source = request.source
    _delete_version(s3, source["bucket"], source["key"], source["versionId"], action="DeleteObject")
    logger.info("deleted", extra={"key": source["key"], "versionId": source["versionId"]})
    return {"deleted": True, **source}


def run(event: Any, *, s3: Any, env: TransferEnvironment, events: Any = None, dynamodb: Any = None) -> dict[str, Any]:
    """Carry out one request with ``s3``: a single-object operation (copy, move, tag, delete; executions
    started on the per-object workflow still call them) or a chunk operation (transfer_chunks), which
    also uses ``events`` (result events) and ``dynamodb`` (review decisions)."""
    if isinstance(event, Mapping) and event.get("operation") in transfer_core.CHUNK_OPERATIONS:
        import transfer_chunks  # here: transfer_chunks builds on this module

        return transfer_chunks.run(event, s3=s3, events=events, dynamodb=dynamodb, env=env)
    request = transfer_core.parse_request(event)
    if request.operation in transfer_core.COPYING_OPERATIONS:
        return _copy(s3, request)
    if request.operation == "tag":
        return _tag(s3, request)
    if request.operation == "delete":
        return _delete(s3, request)
    raise InvalidInputError(f"unknown operation {request.operation!r}")  # parse_request rejects it first


def handler(event: Any, context: Any) -> dict[str, Any]:
    env = TransferEnvironment.from_environment(os.environ)
    if isinstance(event, Mapping) and event.get("operation") in transfer_core.CHUNK_OPERATIONS:
        return run(event, s3=_CLIENTS.client("s3"), env=env, events=_CLIENTS.client("events"),
                   dynamodb=_CLIENTS.client("dynamodb"))
    return run(event, s3=_CLIENTS.client("s3"), env=env)
