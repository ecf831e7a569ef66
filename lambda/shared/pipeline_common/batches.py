"""A batch's files in the batch bucket (docs/batching.md): the chunk index and per-chunk JSON Lines.

Every handler that works on a chunk reads its input lines with :func:`read_chunk` and writes its
output lines once, after the whole chunk, with :func:`write_chunk` (a retry overwrites the file).
:func:`for_each_object` runs the per-object work of a chunk in a thread pool and turns an exception
on one object into that object's ``error`` so that the rest of the chunk goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional, TypeVar

from botocore.exceptions import ClientError

from .contract import CHUNK_INDEX, EVENT_DETAIL_TYPE, EVENT_SOURCE, batch_key, chunk_key
from .errors import InvalidInputError, TransientError
from .transient import is_transient

# One object's step is tried this often within its chunk when it fails with a TransientError.
OBJECT_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0
_T = TypeVar("_T")

# PutEvents takes at most 10 entries and 256 KiB per call.
PUT_EVENTS_MAX_ENTRIES = 10
PUT_EVENTS_MAX_BYTES = 256 * 1024 - 4096


def dumps_line(line: Mapping[str, Any]) -> bytes:
    return (json.dumps(line, separators=(",", ":"), ensure_ascii=False, default=str) + "\n").encode("utf-8")


def parse_lines(body: bytes, *, name: str) -> list[dict]:
    """JSON Lines -> objects; a line that is not a JSON object is an InvalidInputError naming the file and line."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInputError(f"{name} is not UTF-8: {error}") from None
    lines = []
    # Split on "\n" only: str.splitlines() also splits on U+0085, U+2028 and U+2029, which JSON keeps
    # unescaped inside strings (an S3 key may hold them), and would cut such a line in two.
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as error:
            raise InvalidInputError(f"{name} line {number} is not JSON: {error}") from None
        if not isinstance(value, dict):
            raise InvalidInputError(f"{name} line {number} is not a JSON object")
        lines.append(value)
    return lines


def _get(s3: Any, bucket: str, key: str) -> Optional[bytes]:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        if is_transient(error):
            raise TransientError(f"reading s3://{bucket}/{key}: {error}") from error
        raise


def _put(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    except ClientError as error:
        if is_transient(error):
            raise TransientError(f"writing s3://{bucket}/{key}: {error}") from error
        raise


def read_chunk(s3: Any, bucket: str, batch_id: str, stage: str, chunk: int) -> Optional[list[dict]]:
    """The lines of one chunk at one stage, or None when that file does not exist."""
    key = chunk_key(batch_id, stage, chunk)
    body = _get(s3, bucket, key)
    return None if body is None else parse_lines(body, name=key)


def write_chunk(s3: Any, bucket: str, batch_id: str, stage: str, chunk: int, lines: Iterable[Mapping[str, Any]]) -> str:
    key = chunk_key(batch_id, stage, chunk)
    _put(s3, bucket, key, b"".join(dumps_line(line) for line in lines), "application/x-ndjson")
    return key


def read_index(s3: Any, bucket: str, batch_id: str) -> list[dict]:
    """The chunk index ``[{"chunk", "count", "bytes"}]``; a missing index is an InvalidInputError."""
    key = batch_key(batch_id, CHUNK_INDEX)
    body = _get(s3, bucket, key)
    if body is None:
        raise InvalidInputError(f"s3://{bucket}/{key} does not exist")
    try:
        index = json.loads(body)
    except ValueError as error:
        raise InvalidInputError(f"{key} is not JSON: {error}") from None
    if not isinstance(index, list) or not all(isinstance(c, dict) and isinstance(c.get("chunk"), int) for c in index):
        raise InvalidInputError(f"{key} must be a JSON array of objects with an integer chunk")
    return index


def write_index(s3: Any, bucket: str, batch_id: str, index: Sequence[Mapping[str, Any]]) -> str:
    key = batch_key(batch_id, CHUNK_INDEX)
    _put(s3, bucket, key, json.dumps(list(index), separators=(",", ":")).encode("utf-8"), "application/json")
    return key


def iter_stage(s3: Any, bucket: str, batch_id: str, stage: str, chunk_count: int) -> Iterator[tuple[int, Optional[list[dict]]]]:
    """(chunk, lines or None) for every chunk 0..chunk_count-1 at one stage."""
    for chunk in range(chunk_count):
        yield chunk, read_chunk(s3, bucket, batch_id, stage, chunk)


def error_of(error: BaseException) -> dict[str, str]:
    """``{"Error", "Cause"}`` as Step Functions reports a task error: the class name and the message."""
    return {"Error": type(error).__name__, "Cause": str(error)[:1000]}


def retrying(call: Callable[[], _T]) -> _T:
    """``call()``, again after a TransientError (up to OBJECT_ATTEMPTS in all, with back-off)."""
    for attempt in range(1, OBJECT_ATTEMPTS + 1):
        try:
            return call()
        except TransientError:
            if attempt == OBJECT_ATTEMPTS:
                raise
            time.sleep(RETRY_DELAY_SECONDS * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def for_each_object(
    lines: Sequence[Mapping[str, Any]], work: Callable[[Mapping[str, Any]], dict], *, workers: int
) -> list[dict]:
    """``work(line)`` for every line, ``workers`` at a time, results in input order.

    ``work`` returns the output line. An exception on one object becomes that object's output line:
    the input line plus ``"error"`` (a TransientError too: retrying the whole chunk would redo the
    objects that succeeded; the object stays where it is and is reported).
    """

    def guarded(line: Mapping[str, Any]) -> dict:
        try:
            return work(line)
        except Exception as error:  # noqa: BLE001 - one object's failure must not stop its chunk
            return {**line, "error": error_of(error)}

    if workers <= 1 or len(lines) <= 1:
        return [guarded(line) for line in lines]
    with ThreadPoolExecutor(max_workers=min(workers, len(lines))) as pool:
        return list(pool.map(guarded, lines))


def result_entries(bus: str, details: Iterable[Mapping[str, Any]]) -> list[dict]:
    """PutEvents entries for result events (source and detail type of the contract)."""
    return [
        {"Source": EVENT_SOURCE, "DetailType": EVENT_DETAIL_TYPE, "EventBusName": bus, "Detail": json.dumps(detail, default=str)}
        for detail in details
    ]


def put_events(events_client: Any, entries: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Send ``entries`` 10 at a time (and under 256 KiB per call); returns the entries that failed
    after one resend of the failed ones, each with its ``ErrorCode``."""
    failed: list[dict] = []
    for group in _groups(entries):
        response = events_client.put_events(Entries=list(group))
        if response.get("FailedEntryCount", 0):
            retry = [entry for entry, result in zip(group, response["Entries"], strict=True) if result.get("ErrorCode")]
            again = events_client.put_events(Entries=retry)
            for entry, result in zip(retry, again["Entries"], strict=True):
                if result.get("ErrorCode"):
                    failed.append({**entry, "ErrorCode": result["ErrorCode"]})
    return failed


def _groups(entries: Sequence[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    group: list[Mapping[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = len(entry["Detail"].encode("utf-8")) + 200
        if group and (len(group) == PUT_EVENTS_MAX_ENTRIES or size + entry_size > PUT_EVENTS_MAX_BYTES):
            yield group
            group, size = [], 0
        group.append(entry)
        size += entry_size
    if group:
        yield group
