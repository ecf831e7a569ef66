"""transfer's chunk operations (docs/batching.md): stage, route, decide and report a whole chunk.

Each operation reads its input lines from the batch bucket, handles every object of the chunk in a
thread pool (``TransferEnvironment.workers``) with the single-object logic of :mod:`transfer` (checks,
metadata, verification, ordered promotion, idempotent retries), writes its output chunk file once and
returns counts only. A failure on one object stays with that object (its line gets ``error``, its
result event says FAILED and where it is held); the rest of the chunk goes on.

Fail closed: only a staged version with the verdict CLEAN (route_chunk) or an object a reviewer
approved (decide_chunk) is moved to the vault.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

from botocore.exceptions import BotoCoreError, ClientError

import transfer as single
import transfer_core as core
from pipeline_common import batches
from pipeline_common.constants import TABLE_PARTITION_KEY, TAG_OUTCOME, TAG_SCAN_ID
from pipeline_common.contract import (
    COPIED,
    DECIDED,
    DENIED_PREFIX,
    MANIFEST,
    REPORTED,
    ROUTED,
    STAGED,
    STAGING_PREFIX,
    SUPERSEDED_PREFIX,
    VERDICTS,
    TransferEnvironment,
    chunk_key,
    zone_key,
)
from pipeline_common.errors import InvalidInputError, TransientError
from pipeline_common.log import get_logger
from pipeline_common.objects import object_ref
from pipeline_common.transient import error_code, is_transient

logger = get_logger("transfer")

#: BatchGetItem takes at most 100 keys; unprocessed keys are asked again this many times.
DECISION_KEYS_PER_CALL = 100
DECISION_ATTEMPTS = 5



class KeyLocks:
    """One lock per ingress key: the objects of a chunk that share a key (versions of one key in one
    batch) are transferred one after the other, so that two copies never race for one destination."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield


@dataclass
class Chunk:
    """What every chunk operation works with."""

    request: core.ChunkRequest
    env: TransferEnvironment
    s3: Any
    events: Any
    dynamodb: Any = None
    locks: KeyLocks = field(default_factory=KeyLocks)

    @property
    def batch_id(self) -> str:
        return self.request.batch_id

    def key(self, stage: str, chunk: Optional[int] = None) -> str:
        return chunk_key(self.batch_id, stage, self.request.chunk if chunk is None else chunk)

    def read(self, stage: str, chunk: Optional[int] = None) -> Optional[list[dict]]:
        return batches.read_chunk(self.s3, self.env.batch_bucket, self.batch_id, stage,
                                  self.request.chunk if chunk is None else chunk)

    def read_required(self, stage: str) -> list[dict]:
        lines = self.read(stage)
        if lines is None:
            raise InvalidInputError(f"s3://{self.env.batch_bucket}/{self.key(stage)} does not exist")
        return lines

    def write(self, stage: str, lines: Sequence[Mapping[str, Any]], chunk: Optional[int] = None) -> None:
        batches.write_chunk(self.s3, self.env.batch_bucket, self.batch_id, stage,
                            self.request.chunk if chunk is None else chunk, lines)

    def detail(self, line: Mapping[str, Any]) -> dict:
        return core.result_detail(line, scan_id=self.batch_id, execution_arn=self.request.execution_arn)




def send_events(chunk: Chunk, details: Sequence[Mapping[str, Any]]) -> None:
    """PutEvents for every detail; raise TransientError when some could not be sent (call this
    after writing the chunk file: the retry re-sends)."""
    if not details:
        return
    try:
        failed = batches.put_events(chunk.events, batches.result_entries(chunk.env.event_bus, details))
    except (ClientError, BotoCoreError) as error:
        if is_transient(error):
            raise TransientError(f"PutEvents failed with {error_code(error)}; retry") from error
        raise
    if failed:
        codes = sorted({entry.get("ErrorCode", "?") for entry in failed})
        raise TransientError(f"{len(failed)} of {len(details)} result events were not sent ({', '.join(codes)}); retry")


def _source(line: Mapping[str, Any]) -> dict:
    return object_ref(line["source"], field="source")


def _log_failure(what: str, line: Mapping[str, Any], error: Any) -> None:
    logger.warning(f"{what} failed", extra={"i": line.get("i"), "key": (line.get("source") or {}).get("key"),
                                            "error": core.error_name(error)})


# ---------------------------------------------------------------------------------------- stage_chunk
def stage_chunk(chunk: Chunk) -> dict:
    """Copy every manifest object's exact version to quarantine (scans/<batch>/<key>, tagged with the
    scan id and SCANNING); write copied/<chunk>."""
    lines = chunk.read_required(MANIFEST)
    core.check_lines(lines, chunk.key(MANIFEST), ingress_bucket=chunk.env.ingress_bucket)
    tags = {TAG_SCAN_ID: chunk.batch_id, TAG_OUTCOME: core.SCANNING}

    def stage(line: Mapping[str, Any]) -> dict:
        source = _source(line)
        request = core.TransferRequest("copy", source, chunk.env.quarantine_bucket,
                                       zone_key(STAGING_PREFIX, chunk.batch_id, source["key"]), tags)
        with chunk.locks.hold(source["key"]):
            result = batches.retrying(lambda: single._copy(chunk.s3, request))
        return {"i": line["i"], "source": line["source"], "staged": core.pick(result, core.STAGED_FIELDS), "error": None}

    single.install_hooks(chunk.s3)
    copied = []
    for line in batches.for_each_object(lines, stage, workers=chunk.env.workers):
        if line.get("error"):
            _log_failure("staging", line, line["error"])
        copied.append({"i": line["i"], "source": line["source"], "staged": line.get("staged"), "error": line.get("error")})
    chunk.write(COPIED, copied)
    failed = sum(1 for line in copied if line["error"])
    return {"chunk": chunk.request.chunk, "copied": len(copied) - failed, "failed": failed}


# ---------------------------------------------------------------------------------------- route_chunk
def _move(chunk: Chunk, source: dict, bucket: str, key: str, tags: dict) -> dict:
    request = core.TransferRequest("move", source, bucket, key, tags)
    return core.pick(batches.retrying(lambda: single._copy(chunk.s3, request)), core.LOCATION_FIELDS)


def _promote(chunk: Chunk, line: Mapping[str, Any], source: dict, outcome: str) -> tuple[dict, str]:
    """Ordered move of ``source`` to the vault at the original key (or, when the vault's current version
    came from a newer upload, to quarantine superseded/<batch>/<key>)."""
    key = line["source"]["key"]
    request = core.TransferRequest(
        "move", source, chunk.env.vault_bucket, key, core.verdict_tags(chunk.batch_id, line, outcome),
        chunk.env.quarantine_bucket, zone_key(SUPERSEDED_PREFIX, chunk.batch_id, key),
    )
    result = batches.retrying(lambda: single._copy(chunk.s3, request))
    return core.promotion_location(result), (core.SUPERSEDED if result.get("superseded") else outcome)


def _route_by_verdict(chunk: Chunk, line: Mapping[str, Any]) -> tuple[dict, str]:
    staged, verdict, key = _source({"source": line["staged"]}), line["verdict"], line["source"]["key"]
    if verdict == core.CLEAN_VERDICT:
        return _promote(chunk, line, staged, core.VAULT)
    if verdict == core.REVIEW_VERDICT:
        tags = core.verdict_tags(chunk.batch_id, line, core.REVIEW_PENDING)
        return _move(chunk, staged, chunk.env.review_bucket, zone_key("", chunk.batch_id, key), tags), core.REVIEW_PENDING
    tags = core.verdict_tags(chunk.batch_id, line, core.QUARANTINED)
    request = core.TransferRequest("tag", staged, tags=tags)
    return core.pick(batches.retrying(lambda: single._tag(chunk.s3, request)), core.LOCATION_FIELDS), core.QUARANTINED


def _not_this_batchs_staging(chunk: Chunk, line: Mapping[str, Any]) -> Optional[str]:
    """Why the line's staged ref is not where this batch stages this object (None: it is). Only the
    copy staging made, in quarantine under this batch, is what Macie scanned for this batch."""
    staged, key = line["staged"], line["source"]["key"]
    expected = zone_key(STAGING_PREFIX, chunk.batch_id, key)
    if staged.get("bucket") != chunk.env.quarantine_bucket or staged.get("key") != expected:
        return f"staged copy s3://{staged.get('bucket')}/{staged.get('key')} is not s3://{chunk.env.quarantine_bucket}/{expected}"
    return None


def _route_one(chunk: Chunk, line: Mapping[str, Any]) -> dict:
    if line["verdict"] == core.FAILED or line.get("error") or not line.get("staged"):
        error = line.get("error") or {"Error": "NotScanned", "Cause": "; ".join(map(str, line.get("reasons") or []))}
        return {**line, "outcome": core.FAILED, "location": None, "heldIn": core.INGRESS, "error": error}
    mismatch = _not_this_batchs_staging(chunk, line)
    if mismatch is not None:
        _log_failure("routing", line, {"Error": "StagedCopyMismatch", "Cause": mismatch})
        return {**line, "outcome": core.FAILED, "location": None, "heldIn": core.INGRESS,
                "error": {"Error": "StagedCopyMismatch", "Cause": mismatch}}
    try:
        with chunk.locks.hold(line["source"]["key"]):
            location, outcome = _route_by_verdict(chunk, line)
    except Exception as error:  # noqa: BLE001 - one object's failure stays with that object
        _log_failure("routing", line, batches.error_of(error))
        return {**line, "outcome": core.FAILED, "location": None, "heldIn": core.QUARANTINE,
                "error": batches.error_of(error)}
    return {**line, "outcome": outcome, "location": location}


def _staged_copy_exists(chunk: Chunk, line: Mapping[str, Any]) -> bool:
    """Whether the staged version a failed routing left behind is still in quarantine (when unsure: no)."""
    try:
        return single._head_version(chunk.s3, line["staged"]) is not None
    except Exception:  # noqa: BLE001 - unknown means the ingress version must stay
        logger.exception("could not confirm the staged copy", extra={"key": line["source"]["key"]})
        return False


def _remove_from_ingress(chunk: Chunk, line: Mapping[str, Any]) -> dict:
    """Delete the scanned ingress version of a routed object (only that version). An object whose
    routing failed keeps its ingress version unless its staged copy is confirmed in quarantine."""
    if line.get("heldIn") == core.INGRESS:
        return dict(line)
    if line["outcome"] == core.FAILED and not _staged_copy_exists(chunk, line):
        return {**line, "heldIn": core.INGRESS}
    source = _source(line)
    try:
        batches.retrying(lambda: single._delete_version(chunk.s3, source["bucket"], source["key"], source["versionId"],
                                                action="DeleteObject (ingress)"))
    except Exception as error:  # noqa: BLE001 - a version left in ingress is a duplicate, not a loss
        _log_failure("ingress cleanup", line, batches.error_of(error))
        return {**line, "ingressError": batches.error_of(error)}
    return dict(line)


def route_chunk(chunk: Chunk) -> dict:
    """Route every object by its verdict, remove the scanned versions from ingress, write
    routed/<chunk>, send one result event per object."""
    lines = chunk.read(VERDICTS)
    if lines is None:
        return _route_without_verdicts(chunk)
    core.check_lines(lines, chunk.key(VERDICTS), ingress_bucket=chunk.env.ingress_bucket, staged=True, verdict=True)
    single.install_hooks(chunk.s3)
    routed = batches.for_each_object(lines, lambda line: _route_one(chunk, line), workers=chunk.env.workers)
    routed = [_failed_if_unrouted(line) for line in routed]
    routed = batches.for_each_object(routed, lambda line: _remove_from_ingress(chunk, line), workers=chunk.env.workers)
    chunk.write(ROUTED, routed)
    details = [chunk.detail(line) for line in routed]
    details += [core.cleanup_detail(line, scan_id=chunk.batch_id, execution_arn=chunk.request.execution_arn,
                                    error=line["ingressError"]) for line in routed if line.get("ingressError")]
    send_events(chunk, details)
    return {"chunk": chunk.request.chunk, "objects": len(routed), "outcomes": core.outcome_counts(routed),
            "ingressCleanupFailed": sum(1 for line in routed if line.get("ingressError"))}


def _failed_if_unrouted(line: dict) -> dict:
    """A line that came back from the thread pool without an outcome failed outside _route_one."""
    if line.get("outcome"):
        return line
    return {**line, "outcome": core.FAILED, "location": None, "heldIn": core.QUARANTINE}


def _route_without_verdicts(chunk: Chunk) -> dict:
    """No verdicts for this chunk: nothing moves; every object is FAILED, held in quarantine when it
    has a staged copy, else in ingress."""
    manifest = chunk.read_required(MANIFEST)
    core.check_lines(manifest, chunk.key(MANIFEST), ingress_bucket=None)
    copied = {line.get("i"): line for line in chunk.read(COPIED) or []}
    error = {"Error": "NoVerdict", "Cause": f"{chunk.key(VERDICTS)} does not exist"}
    routed = []
    for line in manifest:
        staged = (copied.get(line["i"]) or {}).get("staged")
        routed.append({"i": line["i"], "source": line["source"], "staged": staged, "error": error,
                       "outcome": core.FAILED, "location": None,
                       "heldIn": core.QUARANTINE if staged else core.INGRESS})
    chunk.write(ROUTED, routed)
    send_events(chunk, [chunk.detail(line) for line in routed])
    return {"chunk": chunk.request.chunk, "objects": len(routed), "outcomes": core.outcome_counts(routed),
            "ingressCleanupFailed": 0}


# ---------------------------------------------------------------------------------------- decide_chunk
#: What decide_chunk reads of a decision item: its key, the decision and who made it (the audit fields).
_PROJECTED_NAMES = {f"#a{n}": name for n, name in enumerate((TABLE_PARTITION_KEY, *core.DECISION_ATTRIBUTES))}


def _decisions(chunk: Chunk, indexes: Sequence[int]) -> dict[int, dict]:
    """The stored decisions ``review#<batch id>#<i>`` of these objects (BatchGetItem, consistent).
    A read that fails raises: an unread decision must never count as no decision."""
    by_key = {core.decision_key(chunk.batch_id, index): index for index in indexes}
    keys = list(by_key)
    found: dict[int, dict] = {}
    for start in range(0, len(keys), DECISION_KEYS_PER_CALL):
        request = {chunk.env.state_table: {
            "Keys": [{TABLE_PARTITION_KEY: {"S": key}} for key in keys[start:start + DECISION_KEYS_PER_CALL]],
            "ConsistentRead": True,
            "ProjectionExpression": ", ".join(_PROJECTED_NAMES),
            "ExpressionAttributeNames": _PROJECTED_NAMES,
        }}
        for item in _batch_get(chunk, request):
            plain = core.plain_item(item)
            found[by_key[plain[TABLE_PARTITION_KEY]]] = plain
    return found


def _batch_get(chunk: Chunk, request: dict) -> list[dict]:
    items: list[dict] = []
    for attempt in range(1, DECISION_ATTEMPTS + 1):
        try:
            response = chunk.dynamodb.batch_get_item(RequestItems=request)
        except (ClientError, BotoCoreError) as error:
            if is_transient(error):
                raise TransientError(f"BatchGetItem failed with {error_code(error)}; retry") from error
            raise
        items += response.get("Responses", {}).get(chunk.env.state_table, [])
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return items
        time.sleep(batches.RETRY_DELAY_SECONDS * 2 ** (attempt - 1))
    raise TransientError("BatchGetItem left keys unprocessed; retry")


def _apply_decision(chunk: Chunk, line: Mapping[str, Any], review: Mapping[str, str]) -> tuple[Optional[dict], str]:
    location, key = _source({"source": line["location"]}), line["source"]["key"]
    if review["decision"] == core.APPROVE_DECISION:
        return _promote(chunk, line, location, core.APPROVED)
    if review["decision"] == core.DENY_DECISION and chunk.env.deny_policy == "DELETE":
        batches.retrying(lambda: single._delete_version(chunk.s3, location["bucket"], location["key"], location["versionId"],
                                                action="DeleteObject (denied)"))
        return None, core.DELETED
    tags = core.verdict_tags(chunk.batch_id, line, core.DENIED)
    return _move(chunk, location, chunk.env.quarantine_bucket, zone_key(DENIED_PREFIX, chunk.batch_id, key), tags), core.DENIED


def _decide_one(chunk: Chunk, line: Mapping[str, Any], review: Mapping[str, str]) -> dict:
    try:
        with chunk.locks.hold(line["source"]["key"]):
            location, outcome = _apply_decision(chunk, line, review)
    except Exception as error:  # noqa: BLE001 - one object's failure stays with that object
        _log_failure("applying a decision", line, batches.error_of(error))
        return {**line, "review": dict(review), "outcome": core.FAILED, "heldIn": core.REVIEW_ZONE,
                "error": batches.error_of(error)}
    return {**line, "review": dict(review), "outcome": outcome, "location": location}


def decide_chunk(chunk: Chunk, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> dict:
    """Apply the reviewers' decisions to the chunk's REVIEW_PENDING objects; write decided/<chunk>."""
    routed = chunk.read(ROUTED)
    if routed is None:
        return {"chunk": chunk.request.chunk, "objects": 0, "outcomes": {}}
    name = chunk.key(ROUTED)
    core.check_lines(routed, name, ingress_bucket=None)
    core.check_review_locations(routed, name, chunk.env.review_bucket)
    pending = [line for line in routed if line.get("outcome") == core.REVIEW_PENDING]
    stored = _decisions(chunk, [line["i"] for line in pending]) if pending else {}
    timeout = core.timeout_review(now())

    def decide(line: Mapping[str, Any]) -> dict:
        return _decide_one(chunk, line, core.parse_decision(stored.get(line["i"])) or timeout)

    single.install_hooks(chunk.s3)
    decided = batches.for_each_object(pending, decide, workers=chunk.env.workers)
    decided = [line if line.get("outcome") != core.REVIEW_PENDING else
               {**line, "outcome": core.FAILED, "heldIn": core.REVIEW_ZONE} for line in decided]
    chunk.write(DECIDED, decided)
    send_events(chunk, [chunk.detail(line) for line in decided])
    return {"chunk": chunk.request.chunk, "objects": len(decided), "outcomes": core.outcome_counts(decided)}


# ---------------------------------------------------------------------------------------- report_failed
def _read_quietly(chunk: Chunk, stage: str, number: int) -> list[dict]:
    """A chunk file's lines; [] when it is missing or unreadable (report_failed must report what it can)."""
    try:
        return chunk.read(stage, number) or []
    except InvalidInputError as error:
        logger.warning("chunk file unreadable; skipped", extra={"file": chunk.key(stage, number), "error": str(error)})
        return []


def _by_index(lines: Sequence[Mapping[str, Any]]) -> dict[Any, Mapping[str, Any]]:
    return {line.get("i"): line for line in lines}


def _staged_of(number: int, chunk: Chunk) -> dict[Any, Any]:
    """The staged ref of each object of a chunk that has one (copied, staged or verdicts files)."""
    staged: dict[Any, Any] = {}
    for stage in (COPIED, STAGED, VERDICTS):
        for line in _read_quietly(chunk, stage, number):
            if line.get("staged"):
                staged[line.get("i")] = line["staged"]
    return staged


def _report_chunk(chunk: Chunk, number: int) -> tuple[list[dict], int]:
    """FAILED lines for the objects of one chunk that have no outcome yet, and how many had one."""
    manifest = _read_quietly(chunk, MANIFEST, number)
    routed, decided = _by_index(_read_quietly(chunk, ROUTED, number)), _by_index(_read_quietly(chunk, DECIDED, number))
    staged = _staged_of(number, chunk)
    reported, final = [], 0
    for line in manifest:
        index = line.get("i")
        if core.has_final_outcome(routed.get(index), decided.get(index)):
            final += 1
            continue
        held, location = core.INGRESS, None
        if (routed.get(index) or {}).get("outcome") == core.REVIEW_PENDING:
            held, location = core.REVIEW_ZONE, routed[index].get("location")
        elif staged.get(index):
            held, location = core.QUARANTINE, staged[index]
        reported.append({"i": index, "source": line.get("source"), "outcome": core.FAILED, "heldIn": held,
                         "location": location, "error": chunk.request.error})
    if manifest:
        chunk.write(REPORTED, reported, number)
    return reported, final


def report_failed(chunk: Chunk) -> dict:
    """After a step of the batch failed: a FAILED result event for every object with no outcome yet,
    held where it is; write reported/<chunk>."""
    reported: list[dict] = []
    final = 0
    for number in range(chunk.request.chunk_count):
        lines, done = _report_chunk(chunk, number)
        reported += lines
        final += done
    send_events(chunk, [chunk.detail(line) for line in reported if isinstance(line.get("source"), Mapping)])
    held: dict[str, int] = {}
    for line in reported:
        held[line["heldIn"]] = held.get(line["heldIn"], 0) + 1
    return {"chunks": chunk.request.chunk_count, "reported": len(reported), "alreadyFinal": final,
            "heldIn": dict(sorted(held.items()))}


OPERATIONS: dict[str, Callable[[Chunk], dict]] = {
    "stage_chunk": stage_chunk,
    "route_chunk": route_chunk,
    "decide_chunk": decide_chunk,
    "report_failed": report_failed,
}


def run(event: Any, *, s3: Any, events: Any, dynamodb: Any, env: TransferEnvironment) -> dict:
    """Carry out one chunk operation (``event["operation"]`` in core.CHUNK_OPERATIONS)."""
    request = core.parse_chunk_request(event)
    if env.deny_policy not in core.DENY_POLICIES:
        raise InvalidInputError(f"DENY_POLICY must be one of {', '.join(core.DENY_POLICIES)}, got {env.deny_policy!r}")
    result = OPERATIONS[request.operation](Chunk(request, env, s3, events, dynamodb))
    logger.info("chunk operation done", extra={"operation": request.operation, "batchId": request.batch_id, **result})
    return result

