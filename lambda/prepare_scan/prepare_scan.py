"""The batcher (docs/batching.md, Intake): claims object versions, writes a batch's manifest to the
batch bucket and starts one execution per batch.

Two entry points:
- an SQS batch of S3 ``Object Created`` events (the intake queue): one batch per invocation;
  returns ``{"batchItemFailures": [...]}`` (records that are not usable events, or every record when
  the batch could not be written or started, so that SQS delivers them again);
- a sweep ``{"source": "sensitive-data-scan-pipeline.sweep", "sweep": "all" | "lost"}``: every page of
  ListObjectVersions over the ingress bucket, one batch per ``max_batch_objects``.

Each version is claimed in DynamoDB (``claim#<sha256>``, scanId = batch id) so that a duplicate event,
or a sweep while a batch holds the version, never scans it twice.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, NoReturn, Sequence

from botocore.exceptions import BotoCoreError, ClientError

import prepare_core
from pipeline_common.batches import write_chunk, write_index
from pipeline_common.clients import ClientCache, client_config
from pipeline_common.contract import MANIFEST, PrepareScanEnvironment
from pipeline_common.errors import TransientError
from pipeline_common.log import get_logger
from pipeline_common.transient import error_code, is_transient

logger = get_logger("prepare_scan")

_EXTRA_TRANSIENT_CODES = frozenset({"RequestTimeoutException"})
CLAIM_WORKERS = 16
# A sweep claims this many versions at a time (and checks the Lambda's remaining time in between).
CLAIM_GROUP = 500
LIST_PAGE_SIZE = 1000
# A sweep starts no new work when the invocation has less than this left.
MIN_REMAINING_MS = 60_000

_CLIENTS = ClientCache(client_config(read_timeout=30, max_pool_connections=CLAIM_WORKERS + 4))

# What claiming one version gave.
CLAIMED, DUPLICATE, PENDING = "claimed", "duplicate", "pending"


def _reraise(error: Exception, action: str) -> NoReturn:
    """Raise TransientError for retryable failures (throttling, 5xx, network), else ``error`` as is."""
    if is_transient(error) or error_code(error) in _EXTRA_TRANSIENT_CODES:
        raise TransientError(f"{action} failed with {error_code(error)}; retry") from error
    raise error


@dataclass
class Claimer:
    """Claims versions for one batch id; takes over claims of batches whose execution does not exist."""

    dynamodb: Any
    sfn: Any
    env: PrepareScanEnvironment
    clock: Callable[[], float] = time.time
    _executions: dict[str, bool] = field(default_factory=dict)

    def claim_all(self, refs: Sequence[Mapping[str, Any]], batch: str) -> list[tuple[str, str | None]]:
        """(CLAIMED | DUPLICATE | PENDING, holder) for each ref, in order, 16 at a time."""
        if len(refs) <= 1:
            return [self.claim(ref, batch) for ref in refs]
        with ThreadPoolExecutor(max_workers=min(CLAIM_WORKERS, len(refs))) as pool:
            return list(pool.map(lambda ref: self.claim(ref, batch), refs))

    def claim(self, ref: Mapping[str, Any], batch: str) -> tuple[str, str | None]:
        now = self.clock()
        old = self._put(ref, batch, now, prepare_core.CLAIM_CONDITION, prepare_core.claim_condition_values(batch, now))
        if old is None:
            return CLAIMED, None
        holder = (old.get("scanId") or {}).get("S")
        if not holder or self._execution_exists(holder):
            return DUPLICATE, holder
        age = prepare_core.claim_age(old, now)
        if age is not None and age < prepare_core.TAKEOVER_GRACE_SECONDS:
            # Its batcher may still be about to start it: try again later.
            return PENDING, holder
        again = self._put(ref, batch, now, prepare_core.TAKEOVER_CONDITION, prepare_core.takeover_condition_values(holder))
        if again is not None:  # someone else took it over first
            return DUPLICATE, (again.get("scanId") or {}).get("S")
        logger.info("claim taken over from a batch that never started",
                    extra={"key": ref["key"], "versionId": ref["versionId"], "from": holder, "batchId": batch})
        return CLAIMED, holder

    def _put(self, ref: Mapping[str, Any], batch: str, now: float, condition: str, values: dict) -> dict | None:
        """Conditional PutItem of the claim; None when written, else the item that holds it."""
        try:
            self.dynamodb.put_item(
                TableName=self.env.state_table,
                Item=prepare_core.claim_item(ref, batch, now, self.env.claim_ttl_seconds),
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return error.response.get("Item") or {}
            _reraise(error, "DynamoDB PutItem (claim)")
        except BotoCoreError as error:
            _reraise(error, "DynamoDB PutItem (claim)")
        return None

    def _execution_exists(self, scan_id: str) -> bool:
        """Whether the execution named ``scan_id`` exists (cached per scan id for the invocation)."""
        if scan_id not in self._executions:
            arn = prepare_core.execution_arn(self.env.state_machine_arn, scan_id)
            try:
                self.sfn.describe_execution(executionArn=arn)
                self._executions[scan_id] = True
            except ClientError as error:
                if error_code(error) != "ExecutionDoesNotExist":
                    _reraise(error, "Step Functions DescribeExecution")
                self._executions[scan_id] = False
            except BotoCoreError as error:
                _reraise(error, "Step Functions DescribeExecution")
        return self._executions[scan_id]


def start_batch(
    clients: Any, env: PrepareScanEnvironment, batch: str, trigger: str, refs: Sequence[Mapping[str, Any]], skipped: int
) -> dict[str, Any]:
    """Write the manifest and chunk index of ``refs`` and start the execution named ``batch``; an
    execution of that name with the same input already running counts as started."""
    s3, sfn = clients.client("s3"), clients.client("stepfunctions")
    files, index = prepare_core.manifest(prepare_core.chunked(refs, env.chunk_objects, env.chunk_bytes))
    try:
        for number, lines in enumerate(files):
            write_chunk(s3, env.batch_bucket, batch, MANIFEST, number, lines)
        write_index(s3, env.batch_bucket, batch, index)
    except (ClientError, BotoCoreError) as error:
        _reraise(error, "S3 PutObject (batch manifest)")
    payload = prepare_core.execution_input(batch, trigger, env.batch_bucket, len(refs), len(index), skipped)
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    try:
        sfn.start_execution(stateMachineArn=env.state_machine_arn, name=batch, input=text)
    except ClientError as error:
        if error_code(error) != "ExecutionAlreadyExists" or not _same_input(sfn, env, batch, payload):
            _reraise(error, "Step Functions StartExecution")
    except BotoCoreError as error:
        _reraise(error, "Step Functions StartExecution")
    logger.info("batch started", extra={"batchId": batch, "trigger": trigger, "objectCount": len(refs),
                                        "chunkCount": len(index), "skipped": skipped})
    return payload


def _same_input(sfn: Any, env: PrepareScanEnvironment, batch: str, payload: Mapping[str, Any]) -> bool:
    arn = prepare_core.execution_arn(env.state_machine_arn, batch)
    existing = sfn.describe_execution(executionArn=arn).get("input") or "null"
    return json.loads(existing) == payload


# ---------------------------------------------------------------------------------------- SQS
@dataclass
class _Intake:
    """What the records of one SQS batch name: versions (first occurrence order) and their messages."""

    refs: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    messages: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    skipped: int = 0


def _read_records(records: Sequence[Any], env: PrepareScanEnvironment) -> _Intake:
    intake = _Intake()
    for number, record in enumerate(records):
        message_id = str(record.get("messageId") or f"record-{number}")
        intake.message_ids.append(message_id)
        try:
            ref = prepare_core.record_object(record, env.ingress_bucket)
        except prepare_core.InvalidInputError as error:
            logger.warning("unusable SQS record", extra={"messageId": message_id, "reason": str(error)})
            intake.failures.append(message_id)
            continue
        reason = prepare_core.skip_reason(ref["key"], ref["size"], env.ingress_prefix, suffix=env.ingress_suffix)
        if reason is not None:
            intake.skipped += 1
            logger.info("object skipped", extra={"key": ref["key"], "versionId": ref["versionId"], "reason": reason})
            continue
        version = prepare_core.version_id_of(ref)
        intake.refs.setdefault(version, ref)
        intake.messages.setdefault(version, []).append(message_id)
    return intake


def run_sqs(event: Mapping[str, Any], *, clients: Any, env: PrepareScanEnvironment, clock: Callable[[], float]) -> dict:
    records = event["Records"]
    intake = _read_records(records, env)
    sent = [int(r.get("attributes", {}).get("SentTimestamp", 0) or 0) for r in records if isinstance(r, Mapping)]
    moment = min((s for s in sent if s > 0), default=0) / 1000 or clock()
    batch = prepare_core.batch_id(moment, intake.message_ids)
    logger.append_keys(batchId=batch)
    failures = list(intake.failures)
    try:
        claimer = Claimer(clients.client("dynamodb"), clients.client("stepfunctions"), env, clock)
        versions = list(intake.refs)
        results = claimer.claim_all([intake.refs[v] for v in versions], batch)
        claimed = [intake.refs[v] for v, (state, _) in zip(versions, results, strict=True) if state == CLAIMED]
        duplicates = sum(1 for state, _ in results if state == DUPLICATE)
        for version, (state, holder) in zip(versions, results, strict=True):
            if state == PENDING:
                logger.info("version held by a batch that has not started yet; retried later",
                            extra={"key": version[1], "versionId": version[2], "holder": holder})
                failures.extend(intake.messages[version])
            elif state == DUPLICATE:
                logger.info("duplicate: version already claimed", extra={"key": version[1], "versionId": version[2],
                                                                         "holder": holder})
        if claimed:
            start_batch(clients, env, batch, prepare_core.TRIGGER_OBJECT_CREATED, claimed, intake.skipped + duplicates)
        else:
            logger.info("nothing claimed; no batch started", extra={"records": len(records), "duplicates": duplicates})
    except Exception:  # noqa: BLE001 - the whole batch goes back to the queue
        logger.exception("the batch could not be claimed, written or started; every record is retried",
                         extra={"records": len(records)})
        failures = intake.message_ids
    unique = list(dict.fromkeys(failures))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in unique]}


# ---------------------------------------------------------------------------------------- sweeps
@dataclass
class _Sweep:
    clients: Any
    env: PrepareScanEnvironment
    trigger: str
    claimer: Claimer
    clock: Callable[[], float]
    batches: list[str] = field(default_factory=list)
    claimed_total: int = 0
    skipped: int = 0
    duplicates: int = 0
    pending: list[dict] = field(default_factory=list)  # claimed, not yet started
    batch: str | None = None
    batch_skipped: int = 0

    def take(self, refs: list[dict]) -> None:
        """Claim ``refs`` (at most what fits in the current batch) for the current batch."""
        if self.batch is None:
            # The first version, and a nonce: two sweeps in one second (a retry) never share a batch id.
            self.batch = prepare_core.batch_id(self.clock(), [prepare_core.version_seed(refs[0]), uuid.uuid4().hex])
        for ref, (state, holder) in zip(refs, self.claimer.claim_all(refs, self.batch), strict=True):
            if state == CLAIMED:
                self.pending.append(ref)
            else:
                self.duplicates += 1
                self.batch_skipped += 1
                logger.info("version already claimed", extra={"key": ref["key"], "versionId": ref["versionId"],
                                                              "holder": holder, "state": state})
        if len(self.pending) >= self.env.max_batch_objects:
            self.flush()

    def room(self) -> int:
        return self.env.max_batch_objects - len(self.pending)

    def flush(self) -> None:
        if self.pending and self.batch:
            start_batch(self.clients, self.env, self.batch, self.trigger, self.pending, self.batch_skipped)
            self.batches.append(self.batch)
            self.claimed_total += len(self.pending)
        self.pending, self.batch, self.batch_skipped = [], None, 0


def _latest_versions(s3: Any, env: PrepareScanEnvironment, page_size: int) -> Iterator[dict[str, Any]]:
    """Every latest, non-delete-marker version under the ingress prefix, in key order, every page."""
    paginator = s3.get_paginator("list_object_versions")
    kwargs: dict[str, Any] = {"Bucket": env.ingress_bucket, "PaginationConfig": {"PageSize": page_size}}
    if env.ingress_prefix:
        kwargs["Prefix"] = env.ingress_prefix
    try:
        for page in paginator.paginate(**kwargs):
            for version in page.get("Versions", []):
                if version.get("IsLatest"):
                    yield version
    except (ClientError, BotoCoreError) as error:
        _reraise(error, "S3 ListObjectVersions")


def _candidates(sweep: _Sweep, mode: str, page_size: int) -> Iterator[dict]:
    """The versions a sweep claims (skip rules and, for ``lost``, the age filter applied)."""
    env = sweep.env
    cutoff = sweep.clock() - env.lost_event_age_seconds
    for version in _latest_versions(sweep.clients.client("s3"), env, page_size):
        ref = prepare_core.object_from_version(env.ingress_bucket, version)
        if mode == prepare_core.SWEEP_LOST and not prepare_core.older_than(version.get("LastModified"), cutoff):
            continue
        reason = prepare_core.skip_reason(
            ref["key"], ref["size"], env.ingress_prefix, version.get("StorageClass"), suffix=env.ingress_suffix
        )
        if reason is not None:
            sweep.skipped += 1
            sweep.batch_skipped += 1
            logger.info("object skipped", extra={"key": ref["key"], "versionId": ref["versionId"], "reason": reason})
            continue
        yield ref


def _time_left(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return float(remaining()) if callable(remaining) else float("inf")


def run_sweep(
    event: Mapping[str, Any], *, clients: Any, env: PrepareScanEnvironment, context: Any, clock: Callable[[], float],
    page_size: int = LIST_PAGE_SIZE,
) -> dict:
    mode = prepare_core.sweep_mode(event)
    trigger = prepare_core.sweep_trigger(event, mode)
    claimer = Claimer(clients.client("dynamodb"), clients.client("stepfunctions"), env, clock)
    sweep = _Sweep(clients, env, trigger, claimer, clock)
    group: list[dict] = []
    last_key: str | None = None
    stopped = False
    for ref in _candidates(sweep, mode, page_size):
        group.append(ref)
        if len(group) < min(CLAIM_GROUP, sweep.room()):
            continue
        stopped = _time_left(context) < MIN_REMAINING_MS
        if stopped:
            break
        sweep.take(group)
        last_key, group = ref["key"], []
    stopped = stopped or bool(group) and _time_left(context) < MIN_REMAINING_MS
    if group and not stopped:
        sweep.take(group)
        last_key = group[-1]["key"]
    sweep.flush()
    extra = {"sweep": mode, "batches": len(sweep.batches), "claimed": sweep.claimed_total, "lastKey": last_key}
    if stopped:
        logger.warning("sweep stopped early: the invocation is about to time out; the next sweep goes on", extra=extra)
    else:
        logger.info("sweep finished", extra=extra)
    return {"batches": sweep.batches, "claimed": sweep.claimed_total, "skipped": sweep.skipped, "duplicates": sweep.duplicates}


def run(
    event: Any, *, clients: Any, env: PrepareScanEnvironment, context: Any = None,
    clock: Callable[[], float] = time.time, page_size: int = LIST_PAGE_SIZE,
) -> dict[str, Any]:
    """An SQS batch of S3 events or a sweep event (see the module docstring)."""
    logger.remove_keys(["batchId"])
    kind = prepare_core.event_kind(event)
    if kind == prepare_core.KIND_SQS:
        return run_sqs(event, clients=clients, env=env, clock=clock)
    return run_sweep(event, clients=clients, env=env, context=context, clock=clock, page_size=page_size)


def handler(event: Any, context: Any) -> dict[str, Any]:
    env = PrepareScanEnvironment.from_environment(os.environ)
    return run(event, clients=_CLIENTS, env=env, context=context)
