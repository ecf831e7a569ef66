"""integrity_check's chunk operation (docs/batching.md): ``check_chunk`` checks every staged object of
one chunk.

Input ``{"operation": "check_chunk", "batchId", "chunk"}``. Reads copied/<chunk> (it must exist), checks
each object that has a staged copy with the single-object check (streamed, bounded memory), at most
``IntegrityCheckEnvironment.workers`` at a time, and writes staged/<chunk>: the copied line plus
``"integrity"`` (the check's result, or null). A line that already has an error passes through; a
check that fails gets the line's ``error``. Returns counts only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pipeline_common import batches
from pipeline_common.contract import COPIED, STAGED, IntegrityCheckEnvironment, chunk_key
from pipeline_common.errors import InvalidInputError
from pipeline_common.objects import object_ref

OPERATIONS = ("check_chunk",)
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")

#: check({"object", "originalKey"}) -> result: the single-object check (integrity_check.check_one).
Check = Callable[[Mapping[str, Any]], dict]


def parse_request(event: Mapping[str, Any]) -> tuple[str, int]:
    """``(batch id, chunk)``; InvalidInputError naming the field."""
    if event.get("operation") not in OPERATIONS:
        raise InvalidInputError(f"operation must be one of {', '.join(OPERATIONS)}, got {event.get('operation')!r}")
    batch_id, chunk = event.get("batchId"), event.get("chunk")
    if not isinstance(batch_id, str) or not _BATCH_ID.match(batch_id):
        raise InvalidInputError(f"batchId must be a batch id (letters, digits, . _ -; at most 80), got {batch_id!r}")
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 0:
        raise InvalidInputError(f"chunk must be a non-negative integer, got {chunk!r}")
    return batch_id, chunk


def check_lines(lines: list[dict], name: str) -> None:
    """InvalidInputError naming the file and line of the first line without a usable i, source or staged."""
    for number, line in enumerate(lines, start=1):
        index = line.get("i")
        try:
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise InvalidInputError(f"i must be a non-negative integer, got {index!r}")
            object_ref(line.get("source"), field="source")
            if line.get("staged") is not None:
                object_ref(line["staged"], field="staged")
        except InvalidInputError as error:
            raise InvalidInputError(f"{name} line {number}: {error}") from None




def check_chunk(event: Mapping[str, Any], *, s3: Any, env: IntegrityCheckEnvironment, check: Check) -> dict:
    batch_id, chunk = parse_request(event)
    name = chunk_key(batch_id, COPIED, chunk)
    lines = batches.read_chunk(s3, env.batch_bucket, batch_id, COPIED, chunk)
    if lines is None:
        raise InvalidInputError(f"s3://{env.batch_bucket}/{name} does not exist")
    check_lines(lines, name)

    def work(line: Mapping[str, Any]) -> dict:
        if line.get("error") or not line.get("staged"):
            return {**line, "integrity": None}
        request = {"object": line["staged"], "originalKey": line["source"]["key"]}
        return {**line, "integrity": batches.retrying(lambda: check(request))}

    staged = [{**line, "integrity": line.get("integrity")}
              for line in batches.for_each_object(lines, work, workers=env.workers)]
    batches.write_chunk(s3, env.batch_bucket, batch_id, STAGED, chunk, staged)
    statuses: dict[str, int] = {}
    for line in staged:
        if line["integrity"] and not line.get("error"):
            status = str(line["integrity"].get("status")).lower()
            statuses[status] = statuses.get(status, 0) + 1
    failed = sum(1 for line in staged if line.get("error") or not line["integrity"])
    return {"chunk": chunk, "checked": len(staged) - failed, "failed": failed, **dict(sorted(statuses.items()))}
