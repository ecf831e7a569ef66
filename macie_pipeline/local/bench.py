"""``python -m macie_pipeline.local bench``: what the synthesized pipeline does per 1,000 objects, and what it costs.

Runs the pipeline in the local engine on generated objects (a fixed mix, see :func:`generate_objects`)
delivered as S3 would deliver them: one "Object Created" event per object, through the intake queue
(the engine's :class:`~macie_pipeline.local.intake.IntakePump`, with the template's ``BatchSize`` and
batching window), PrepareScan starting one execution per batch (docs/batching.md); every review is
approved. Two runs side by side: the sample as synthesized (``batched``: a window of minutes, up to
10,000 objects a batch) and the sample with a window of zero (``window-zero``: ``BatchSize`` 1, one
object per scan, run on at most :data:`WINDOW_ZERO_MAX_OBJECTS` objects in waves, since the figures
are per object). It counts what AWS would bill:

* **Macie API calls** by operation: every call the local Macie serves (the workflow's ``aws-sdk``
  tasks and the handlers' boto3 calls), seen at :meth:`EngineHost.observe_calls`.
* **Standard state transitions**: the parent executions' (from their histories) plus the child
  workflows' of every Distributed Map run (STANDARD children, one per chunk; their events are kept
  per map run by the engine, :meth:`ExecutionHistory.map_runs`): one per ``*StateEntered`` event,
  plus one per retry of a task (the Step Functions pricing page,
  https://aws.amazon.com/step-functions/pricing/: "Step Functions counts a state transition each
  time a step of your workflow is executed ... including retries").
* **Child executions** of the Distributed Maps, and **Express executions** (none: the children are
  STANDARD, docs/batching.md says why).
* **Lambda invocations and GB-seconds** per function: each invocation (the intake pump's, the
  workflow's, the log subscription's and the review API's), timed in this process; memory from the
  template times the duration rounded up to 1 ms as Lambda bills. The durations are this machine's,
  in process (other threads share the interpreter), not Lambda's.
* **S3 requests by price class**, from the HTTP method of each operation in botocore's S3 model:
  PUT and POST requests and ``List*`` operations are "PUT, COPY, POST, LIST"; DELETE is free; GET
  and HEAD are "GET, SELECT and all other". Counted: the handlers' and the workflow's own requests
  (the Distributed Maps' ``s3:getObject`` item readers run through moto with boto3, so they pass the
  same hook). Not counted: the uploads into ingress (the producer's), the engine's reads, and the S3
  reads Macie makes while it analyses objects (billed to you as S3 GET/LIST requests, but the local
  Macie's reads are not Macie's).
* **SQS requests**: one ``SendMessage`` per event EventBridge delivers to the intake queue, and the
  requests Lambda's poller makes (``ReceiveMessage`` that returned messages, ``DeleteMessageBatch``,
  ``ChangeMessageVisibilityBatch``), as the pump makes them; the poller's empty long polls while the
  queue is idle (a few per minute, whatever the volume) are not counted.
* **DynamoDB request units** (on demand): one write unit per ``PutItem``/``UpdateItem``/``DeleteItem``
  and per item of a ``BatchWriteItem``, one read unit per ``GetItem``/``Query`` and per key of a
  ``BatchGetItem`` (items are under 1 KB; reads counted as strongly consistent, an upper bound).
* **EventBridge custom events** (entries of ``PutEvents``), **SNS publishes**, and every other call
  the pipeline makes (Step Functions task tokens, CloudWatch Logs...) by operation, not priced.

The dollar estimate multiplies these counts by :data:`~macie_pipeline.local.prices.PRICES`, the one
table of public prices. KMS requests (SSE-KMS with bucket keys is served inside S3), API Gateway
(two requests per review) and Macie's per-GB charge are not in it (Macie's per GB is shown for reference).
"""

from __future__ import annotations

import functools
import json
import math
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional

import botocore.session

from . import functions as local_functions
from .engine import EngineError, LocalPipeline
from .history import state_transitions
from .host import ENGINE, WORKFLOW
from .prices import PRICES, REGION, price
from .runner import Watcher
from .template import StackTemplate, load_assembly, synth_app, synth_sample

BATCHED, WINDOW_ZERO, SCHEDULE = "batched", "window-zero", "schedule"
TRIGGERS = (BATCHED, WINDOW_ZERO)  # the sample's two runs, side by side
PER = 1000  # figures are per this many objects
REGION_NOTE = f"{REGION} marginal prices"
#: The window-zero run scans at most this many objects (one execution each; its figures are per object).
WINDOW_ZERO_MAX_OBJECTS = 200
#: Window zero: objects delivered at once (bounds the engine's concurrent executions, not AWS).
WINDOW_ZERO_WAVE = 20
#: Lambda's synchronous invocation payload limit: an SQS event source cuts a batch there (6 MB).
LAMBDA_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
#: Issue 11's targets for a batch of 10,000 objects (per object; the cost per 1,000 objects).
TARGET_TRANSITIONS_PER_OBJECT = 0.05
TARGET_INVOCATIONS_PER_OBJECT = 0.05
TARGET_USD_PER_1000 = 0.03
ENGINE_TIMEOUT_SECONDS = 3600.0
#: How long a review waits for the engine's reviewer, who approves every review of the run. The
#: reviewer signs in, opens the page and approves while thousands of objects are in flight in the same
#: interpreter: at 10,000 objects 120 s was too short for one of the three reviews (148 of its objects
#: were left undecided and denied, as a review nobody finishes is).
REVIEW_WAIT_SECONDS = 900.0

# Each twenty objects: 14 clean (CSV and JSON), 4 sensitive, 2 corrupt, interleaved so that a few
# objects already hold every outcome (the first ten: 7 clean, a card, an SSN, a truncated Parquet).
_CLEAN = ("clean.csv", "clean.json")
_MIX = (*_CLEAN, "card.csv", *_CLEAN, "ssn.csv", *_CLEAN, "truncated.parquet", *_CLEAN, "card.json", *_CLEAN, "ssn.txt",
        *_CLEAN, "empty.csv", *_CLEAN)

# ---------------------------------------------------------------------- the objects
def _luhn_card(seed: int) -> str:
    """A 16-digit Visa-style number that passes the Luhn check (never the allow-listed test card)."""
    digits = [int(d) for d in f"4539{seed % 10**11:011d}"]
    total = sum(d if i % 2 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    return " ".join(text[i:i + 4] for i in range(0, 16, 4))


def _ssn(seed: int) -> str:
    area = 101 + seed % 599
    area += area == 666
    return f"{area:03d}-{10 + seed % 89:02d}-{1000 + seed % 8999:04d}"


def _body(kind: str, index: int) -> bytes:
    if kind == "truncated.parquet":
        return b"PAR1\x15\x04\x15\x10" + f"row group {index} cut short".encode()
    texts = {
        "clean.csv": f"id,item,quantity\n{index},pen,{index % 7 + 1}\n{index + 1},paper,10\n",
        "clean.json": f'{{"order": {index}, "items": ["pen", "paper"], "total": {index % 50 + 3}.50}}\n',
        "card.csv": f"name,credit card number,expiry\nAlex Doe {index},{_luhn_card(index)},12/29\n",
        "card.json": f'{{"customer": "Sam {index}", "credit card": "{_luhn_card(index * 7 + 3)}"}}\n',
        "ssn.csv": f"name,ssn\nJo Roe {index},{_ssn(index)}\n",
        "ssn.txt": f"Employee record {index}. Social security number: {_ssn(index * 3 + 1)}\n",
        "empty.csv": "",
    }
    return texts[kind].encode()


def generate_objects(count: int) -> dict[str, bytes]:
    """``count`` objects, always the same for the same count: key -> body."""
    files = {}
    for index in range(count):
        kind = _MIX[index % len(_MIX)]
        stem, extension = kind.split(".")
        files[f"bench/{index:06d}-{stem}.{extension}"] = _body(kind, index)
    return files


# ---------------------------------------------------------------------- the stacks
def _synth_window_zero_sample() -> None:
    """The sample app with a window of zero (``python -m macie_pipeline.local.bench``, a CDK app command)."""
    import aws_cdk as cdk

    from .. import sample
    from ..props import Trigger

    original = sample.SensitiveDataScanPipeline
    sample.SensitiveDataScanPipeline = functools.partial(original, trigger=Trigger.on_object_created(batch_window=cdk.Duration.seconds(0)))
    try:
        app = cdk.App()
        sample.build_app(app)
        app.synth()
    finally:
        sample.SensitiveDataScanPipeline = original


def window_zero_sample(cache_dir: Optional[Path] = None) -> StackTemplate:
    """The sample stack with a window of zero: synthesized in a subprocess, cached beside the sample's."""
    from .. import layers
    from .template import _source_fingerprint

    outdir = (Path(cache_dir) if cache_dir else layers.layer_cache_dir().parent / "local-sample-window-zero") / _source_fingerprint()
    if not (outdir / "manifest.json").is_file():
        staging = outdir.with_name(f"{outdir.name}.{time.time_ns()}")
        synth_app(f"{sys.executable} -m macie_pipeline.local.bench", staging)
        if not outdir.exists():
            staging.rename(outdir)
    return load_assembly(outdir if outdir.exists() else staging)[0]


def sample_stack(trigger: str) -> StackTemplate:
    """The sample stack a run of the sample measures (``batched``: as synthesized; ``window-zero``)."""
    return window_zero_sample() if trigger == WINDOW_ZERO else synth_sample()


def _intake(stack: StackTemplate) -> tuple[int, int]:
    """(BatchSize, MaximumBatchingWindowInSeconds) of the stack's queue event source mapping, (0, 0) if none."""
    for resource in stack.of_type("AWS::Lambda::EventSourceMapping").values():
        props = resource.get("Properties") or {}
        return int(props.get("BatchSize", 10)), int(props.get("MaximumBatchingWindowInSeconds", 0))
    return 0, 0


def trigger_of(stack: StackTemplate) -> str:
    """``batched`` (an intake queue that gathers objects), ``window-zero`` (one object per scan) or
    ``schedule`` (no intake queue: the sweep takes the ingress bucket)."""
    size, _ = _intake(stack)
    if not size:
        return SCHEDULE
    return WINDOW_ZERO if size == 1 else BATCHED


# ---------------------------------------------------------------------- counting
_S3_MODEL = None
_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
_DYNAMODB_READS = {"GetItem", "Query", "Scan"}


def s3_price_class(operation: str) -> str:
    """``put_copy_post_list``, ``get_and_other`` or ``delete_free``: the S3 request price class of an operation."""
    global _S3_MODEL
    if _S3_MODEL is None:
        _S3_MODEL = botocore.session.get_session().get_service_model("s3")
    method = _S3_MODEL.operation_model(operation).http["method"]
    if method == "DELETE":
        return "delete_free"
    if method in ("PUT", "POST") or operation.startswith("List"):
        return "put_copy_post_list"
    return "get_and_other"


def dynamodb_units(operation: str, parameters: Mapping[str, Any]) -> tuple[int, int]:
    """(write units, read units) of one DynamoDB call (items under 1 KB; see the module's docstring)."""
    if operation in _DYNAMODB_WRITES:
        return 1, 0
    if operation in _DYNAMODB_READS:
        return 0, 1
    requests = parameters.get("RequestItems") or {}
    if operation == "BatchWriteItem":
        return sum(len(items) for items in requests.values()), 0
    if operation == "BatchGetItem":
        return 0, sum(len(table.get("Keys") or []) for table in requests.values())
    if operation == "TransactWriteItems":
        return 2 * len(parameters.get("TransactItems") or []), 0
    if operation == "TransactGetItems":
        return 0, 2 * len(parameters.get("TransactItems") or [])
    return 0, 0


class _PollerClient:
    """The intake pump's SQS client, seen as Lambda's poller: its requests are counted, then made."""

    def __init__(self, client: Any, meter: "Meter") -> None:
        self._client, self._meter = client, meter

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        operation = self._client.meta.method_to_api_mapping.get(name)
        if operation is None:
            return method

        def counted(**kwargs: Any) -> Any:
            response = method(**kwargs)
            self._meter.poller_request(operation, response)
            return response

        return counted


class Meter:
    """Counts the AWS calls and Lambda invocations of one engine (see the module's docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, str, str]] = Counter()  # (caller, service, operation)
        self.event_entries = 0
        self.dynamodb = Counter({"write_units": 0, "read_units": 0})
        self.sqs: Counter[str] = Counter()  # operation (the poller's, and EventBridge's SendMessage)
        self.messages_seen: set[str] = set()
        self.intake_events: list[int] = []  # bytes of each SQS event the pump sent to its function
        self.invocations: Counter[str] = Counter()  # function role
        self.billed_ms: Counter[str] = Counter()
        self.memory_mb: dict[str, int] = {}

    def attach(self, engine: LocalPipeline) -> None:
        engine.observe_calls(self._call)
        for function in engine.functions.values():
            self._meter(function)
        pump = engine.pump
        pump.sqs = _PollerClient(pump.sqs, self)
        invoke = pump.invoke

        def sized(function: str, event: Any) -> Any:
            with self._lock:
                self.intake_events.append(len(json.dumps(event, separators=(",", ":"))))
            return invoke(function, event)

        pump.invoke = sized

    def _call(self, caller: str, service: str, operation: str, parameters: dict) -> None:
        if caller == ENGINE:
            return
        with self._lock:
            self.calls[(caller, service, operation)] += 1
            if service == "events" and operation == "PutEvents":
                self.event_entries += len(parameters.get("Entries") or [])
            elif service == "dynamodb":
                writes, reads = dynamodb_units(operation, parameters)
                self.dynamodb["write_units"] += writes
                self.dynamodb["read_units"] += reads

    def poller_request(self, operation: str, response: Mapping[str, Any]) -> None:
        """One request of Lambda's SQS poller; a message received for the first time was sent by EventBridge."""
        with self._lock:
            self.sqs[operation] += 1
            for message in response.get("Messages") or []:
                if message["MessageId"] not in self.messages_seen:
                    self.messages_seen.add(message["MessageId"])
                    self.sqs["SendMessage (EventBridge target)"] += 1

    def _meter(self, function: local_functions.LocalFunction) -> None:
        """Time each invocation inside the lock every invocation takes (waiting for it is not billed)."""
        original = function.invoke
        self.memory_mb[function.role] = function.memory_mb

        def invoke(event: Any, before: Any = None, after: Any = None) -> Any:
            with local_functions._LOCK:
                started = time.perf_counter()
                try:
                    return original(event, before, after)
                finally:
                    milliseconds = math.ceil((time.perf_counter() - started) * 1000)
                    with self._lock:
                        self.invocations[function.role] += 1
                        self.billed_ms[function.role] += milliseconds

        function.invoke = invoke  # type: ignore[method-assign]

    def api_counts(self) -> dict[str, Any]:
        macie: Counter[str] = Counter()
        s3_classes: Counter[str] = Counter({"put_copy_post_list": 0, "get_and_other": 0, "delete_free": 0})
        s3_operations: Counter[str] = Counter()
        other: Counter[str] = Counter()
        for (_, service, operation), count in self.calls.items():
            if service == "macie2":
                macie[operation] += count
            elif service == "s3":
                s3_classes[s3_price_class(operation)] += count
                s3_operations[operation] += count
            elif service not in ("lambda", "sqs", "dynamodb"):  # Lambda's Invoke is counted as invocations
                other[f"{service}.{operation}"] += count
        sqs = Counter(self.sqs)
        for (_, service, operation), count in self.calls.items():
            if service == "sqs":
                sqs[operation] += count
        dynamodb = Counter(self.dynamodb)
        for (_, service, operation), count in self.calls.items():
            if service == "dynamodb":
                dynamodb[f"{operation} calls"] += count
        return {
            "macie_calls": dict(sorted(macie.items())),
            "s3_requests": dict(s3_classes),
            "s3_operations": dict(sorted(s3_operations.items())),
            "s3_operations_by_caller": dict(sorted(
                (f"{caller} {operation}", count) for (caller, service, operation), count in self.calls.items() if service == "s3")),
            "sqs_requests": sum(sqs.values()),
            "sqs_operations": dict(sorted(sqs.items())),
            "dynamodb": dict(sorted(dynamodb.items())),
            "eventbridge_events": self.event_entries,
            "sns_publishes": sum(c for (_, s, o), c in self.calls.items() if s == "sns" and o == "Publish"),
            "other_calls": dict(sorted(other.items())),
            "workflow_calls": sum(c for (caller, _, _), c in self.calls.items() if caller == WORKFLOW),
        }

    def lambda_counts(self) -> dict[str, Any]:
        gb_seconds = {role: self.memory_mb[role] / 1024 * ms / 1000 for role, ms in self.billed_ms.items()}
        return {"lambda_invocations": dict(sorted(self.invocations.items())), "lambda_gb_seconds": dict(sorted(gb_seconds.items()))}


def transitions(history: list[dict]) -> int:
    """Billed state transitions of one execution: every state entered, plus every task retry."""
    return state_transitions(history)


def lambda_tasks(history: list[dict]) -> int:
    """Lambda invocations the workflow scheduled (retries included)."""
    return sum(
        1 for event in history
        if event["type"] == "LambdaFunctionScheduled"
        or (event["type"] == "TaskScheduled" and event.get("taskScheduledEventDetails", {}).get("resourceType") == "lambda")
    )


# ---------------------------------------------------------------------- the estimate
def cost(counts: Mapping[str, Any]) -> dict[str, float]:
    """US dollars for ``counts`` (the same shape as a report's ``totals`` or ``per_1000_objects``)."""
    s3 = counts["s3_requests"]
    lines = {
        "step_functions_standard": counts["standard_state_transitions"] * price("sfn_standard_transition"),
        "step_functions_express": counts["express_executions"] * price("sfn_express_request"),
        "lambda_requests": sum(counts["lambda_invocations"].values()) * price("lambda_request"),
        "lambda_duration": sum(counts["lambda_gb_seconds"].values()) * price("lambda_gb_second"),
        "s3_put_copy_post_list": s3["put_copy_post_list"] * price("s3_tier1_request"),
        "s3_get_and_other": s3["get_and_other"] * price("s3_tier2_request"),
        "sqs": counts["sqs_requests"] * price("sqs_request"),
        "dynamodb": counts["dynamodb"]["write_units"] * price("dynamodb_write_request_unit")
        + counts["dynamodb"]["read_units"] * price("dynamodb_read_request_unit"),
        "eventbridge": counts["eventbridge_events"] * price("eventbridge_custom_event"),
        "sns": counts["sns_publishes"] * price("sns_publish"),
    }
    lines["total"] = sum(lines.values())
    return lines


def _scaled(value: Any, factor: float) -> Any:
    if isinstance(value, Mapping):
        return {k: _scaled(v, factor) for k, v in value.items()}
    return value * factor


# ---------------------------------------------------------------------- running
class _Progress:
    """Tells a watcher how many objects of the whole run are done while one wave runs."""

    def __init__(self, watch: Optional[Watcher], done: int, total: int, wave: int) -> None:
        self._watch, self._done, self._total, self._wave = watch, done, total, wave

    def review_requested(self, link: str, message: dict) -> None:
        if self._watch is not None:
            self._watch.review_requested(link, message)

    def progress(self, finished: int, total: int) -> None:
        if self._watch is not None:
            self._watch.progress(self._done + (self._wave * finished) // max(total, 1), self._total)


def _wave(engine: LocalPipeline, files: Mapping[str, bytes], keys: list[str], trigger: str) -> list[str]:
    """Upload ``keys`` and deliver them as the trigger does; the executions PrepareScan started."""
    uploaded = [engine.upload(key, files[key]) for key in keys]
    runner = engine.runner
    if trigger == SCHEDULE:
        if not runner.sweep("all"):
            raise EngineError("The pipeline has neither an intake queue nor a schedule: nothing would start a scan")
    else:
        runner.put_object_created_events(uploaded)
        if not runner.pump_intake():
            raise EngineError("No Object Created event reached the intake queue: the pipeline has no object-created trigger")
    return runner.discover_executions()


def _drive(engine: LocalPipeline, files: Mapping[str, bytes], trigger: str, watch: Optional[Watcher]) -> list:
    """Deliver the objects (all at once, or in waves for a window of zero) and drive the executions to their end."""
    wave = WINDOW_ZERO_WAVE if trigger == WINDOW_ZERO else max(len(files), 1)
    keys, executions = list(files), []
    for start in range(0, len(keys), wave):
        arns = _wave(engine, files, keys[start:start + wave], trigger)
        progress = _Progress(watch, start, len(keys), len(keys[start:start + wave]))
        executions += engine.wait(arns, decision="approve", timeout=ENGINE_TIMEOUT_SECONDS, watch=progress)
    return executions


def _history_counts(engine: LocalPipeline, executions: list) -> dict[str, Any]:
    express = engine.deployment.stack.resources[engine.state_machine_id].get("Properties", {}).get("StateMachineType") == "EXPRESS"
    counted = sum(transitions(e.history) for e in executions)
    # The child executions of Distributed Maps (STANDARD children, docs/batching.md): their events
    # are not in the parent's history, the engine keeps them per map run (patch 6).
    runs = [run for e in executions for run in engine.history.map_runs(e.arn)]
    children = sum(transitions(run.events) for run in runs)
    child_executions = sum(run.child_executions for run in runs)
    return {
        "executions": len(executions),
        "standard_executions": 0 if express else len(executions) + child_executions,
        "standard_state_transitions": 0 if express else counted + children,
        "parent_state_transitions": counted,
        "express_executions": len(executions) if express else 0,
        "express_state_transitions": counted if express else 0,
        "map_runs": len(runs),
        "map_child_executions": child_executions,
        "map_child_state_transitions": children,
        "lambda_tasks_in_histories": sum(lambda_tasks(e.history) for e in executions) + sum(lambda_tasks(r.events) for r in runs),
    }


def _intake_report(meter: Meter, pumped: int, size: int, window: int) -> dict[str, Any]:
    """What the intake did: its batches, and how Lambda's 6 MB payload limit would cut them."""
    largest = max(meter.intake_events, default=0)
    return {
        "batch_size": size,
        "batch_window_seconds": window,
        "sqs_batches": pumped,
        "largest_sqs_event_bytes": largest,
        "events_bytes_total": sum(meter.intake_events),
        # Lambda stops gathering a batch at 6 MB of payload: the batches AWS would invoke PrepareScan with.
        "batches_at_6mb_limit": sum(math.ceil(b / LAMBDA_PAYLOAD_LIMIT_BYTES) for b in meter.intake_events),
    }


def run(stack: StackTemplate, state_machine_id: str, trigger: str, count: int, *, watch: Optional[Watcher] = None) -> dict[str, Any]:
    """Run the pipeline on ``count`` generated objects (window zero: at most :data:`WINDOW_ZERO_MAX_OBJECTS`);
    the report (counts, per 1,000 objects, dollars)."""
    if trigger not in (*TRIGGERS, SCHEDULE):
        raise ValueError(f"trigger must be one of {', '.join((*TRIGGERS, SCHEDULE))}")
    objects = min(count, WINDOW_ZERO_MAX_OBJECTS) if trigger == WINDOW_ZERO else count
    files = generate_objects(objects)
    meter = Meter()
    size, window = _intake(stack)
    started = time.monotonic()
    with LocalPipeline(stack, state_machine_id, review_wait_seconds=REVIEW_WAIT_SECONDS) as engine:
        meter.attach(engine)
        deployed = time.monotonic()
        executions = _drive(engine, files, trigger, watch)
        ran = time.monotonic()
        result = engine.result([u.version_id for u in engine.uploaded], executions)
        totals = {**_history_counts(engine, executions), **meter.api_counts(), **meter.lambda_counts()}
        pumped = len(engine.pump.batches)
    wall = time.monotonic() - started
    per_1000 = _scaled(totals, PER / objects)
    usd = cost(per_1000)
    report = {
        "trigger": trigger,
        "stack": stack.name,
        "objects_requested": count,
        "objects": objects,
        "note": f"window zero: {objects} of {count} objects (one execution each; the figures are per object)" if objects < count else "",
        "objects_per_execution_max": max(1, size) if trigger != SCHEDULE else objects,
        "intake": _intake_report(meter, pumped, size, window),
        "wall_seconds": round(wall, 1),
        "engine_seconds": round(ran - deployed, 1),
        "outcomes": dict(sorted(Counter(o.outcome or "UNKNOWN" for o in result.objects).items())),
        "failed_executions": sum(e.status != "SUCCEEDED" for e in executions),
        "totals": totals,
        "per_1000_objects": per_1000,
        "usd_per_1000_objects": usd,
        "macie_reference_usd_per_1000_objects": sum(map(len, files.values())) * PER / objects / 2**30 * price("macie_gb_inspected"),
    }
    report["targets"] = targets(report)
    return report


def targets(report: Mapping[str, Any]) -> dict[str, Any]:
    """Issue 11's targets, measured: one Macie job per execution (batch), transitions and Lambda
    invocations per object, the pipeline's own US$ per 1,000 objects (Macie's per GB left out)."""
    totals, per = report["totals"], report["per_1000_objects"]
    jobs = totals["macie_calls"].get("CreateClassificationJob", 0)
    transitions_per_object = per["standard_state_transitions"] / PER
    invocations_per_object = sum(per["lambda_invocations"].values()) / PER
    usd = report["usd_per_1000_objects"]["total"]
    return {
        "macie_jobs": jobs,
        "one_job_per_batch": jobs == totals["executions"],
        "transitions_per_object": transitions_per_object,
        "transitions_ok": transitions_per_object < TARGET_TRANSITIONS_PER_OBJECT,
        "lambda_invocations_per_object": invocations_per_object,
        "invocations_ok": invocations_per_object < TARGET_INVOCATIONS_PER_OBJECT,
        "usd_per_1000_objects": usd,
        "cost_ok": usd <= TARGET_USD_PER_1000,
    }


def prices_table() -> dict[str, Any]:
    return {name: dict(entry) for name, entry in PRICES.items()}


def prices_read() -> str:
    """The date the prices were read (the latest, if they differ)."""
    return max(entry["read"] for entry in PRICES.values())


# ---------------------------------------------------------------------- the table
def _number(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}" if abs(value) >= 1 else f"{value:.3g}"
    return f"{int(value):,}" if isinstance(value, (int, float)) else str(value)


def _group(reports: list[dict], title: str, key: str, unit: str = "") -> list[tuple[str, list[str]]]:
    """One row per name under ``per_1000_objects[key]`` (a mapping), across every report."""
    names = sorted({name for r in reports for name in r["per_1000_objects"][key]})
    return [(f"  {title} {name}{unit}", [_number(r["per_1000_objects"][key].get(name, 0)) for r in reports]) for name in names]


def _header_rows(reports: list[dict]) -> list[tuple[str, list[str]]]:
    def intake(key: str) -> list[str]:
        return [_number(r["intake"][key]) for r in reports]

    return [
        ("objects scanned", [_number(r["objects"]) for r in reports]),
        ("intake BatchSize / window (s)", [f"{r['intake']['batch_size']:,} / {r['intake']['batch_window_seconds']}" for r in reports]),
        ("executions (batches)", [_number(r["totals"]["executions"]) for r in reports]),
        ("  SQS events to PrepareScan", intake("sqs_batches")),
        ("  largest SQS event (bytes)", intake("largest_sqs_event_bytes")),
        ("  batches at Lambda's 6 MB payload limit", intake("batches_at_6mb_limit")),
        ("engine wall time, this machine (s)", [_number(r["engine_seconds"]) for r in reports]),
        ("outcomes", [", ".join(f"{k} {v}" for k, v in r["outcomes"].items()) for r in reports]),
    ]


def _target_rows(reports: list[dict]) -> list[tuple[str, list[str]]]:
    def check(key: str, ok: str, form: str) -> list[str]:
        return [f"{format(r['targets'][key], form)} {'ok' if r['targets'][ok] else 'MISSED'}" for r in reports]

    return [
        ("targets (issue 11, at 10,000 objects)", ["" for _ in reports]),
        ("  one Macie job per batch", [f"{r['targets']['macie_jobs']} job(s) {'ok' if r['targets']['one_job_per_batch'] else 'MISSED'}"
                                       for r in reports]),
        (f"  transitions per object < {TARGET_TRANSITIONS_PER_OBJECT}", check("transitions_per_object", "transitions_ok", ".4f")),
        (f"  Lambda invocations per object < {TARGET_INVOCATIONS_PER_OBJECT}",
         check("lambda_invocations_per_object", "invocations_ok", ".4f")),
        (f"  US$ per 1,000 objects <= {TARGET_USD_PER_1000}", check("usd_per_1000_objects", "cost_ok", ".4f")),
    ]


def _rows(reports: list[dict]) -> list[tuple[str, list[str]]]:
    def per(key: str) -> list[str]:
        return [_number(r["per_1000_objects"][key]) for r in reports]

    s3 = [(f"  S3 {label}", [_number(r["per_1000_objects"]["s3_requests"][name]) for r in reports])
          for name, label in (("put_copy_post_list", "PUT/COPY/POST/LIST requests"), ("get_and_other", "GET/other requests"),
                              ("delete_free", "DELETE requests (free)"))]
    usd = [(f"  {name}", [f"{r['usd_per_1000_objects'][name]:.4f}" for r in reports]) for name in reports[0]["usd_per_1000_objects"]]
    return [
        *_header_rows(reports),
        ("per 1,000 objects", ["" for _ in reports]),
        ("  Standard executions (parent + children)", per("standard_executions")),
        ("  Standard state transitions", per("standard_state_transitions")),
        ("    of the parents", per("parent_state_transitions")),
        ("    of the Distributed Map children", per("map_child_state_transitions")),
        ("  Distributed Map child executions", per("map_child_executions")),
        ("  Express executions", per("express_executions")),
        *_group(reports, "Macie", "macie_calls"),
        *_group(reports, "Lambda invocations", "lambda_invocations"),
        *_group(reports, "Lambda GB-s", "lambda_gb_seconds"),
        *s3,
        *_group(reports, "S3", "s3_operations"),
        ("  SQS requests", per("sqs_requests")),
        *_group(reports, "SQS", "sqs_operations"),
        *_group(reports, "DynamoDB", "dynamodb"),
        ("  EventBridge events", per("eventbridge_events")),
        ("  SNS publishes", per("sns_publishes")),
        *_group(reports, "other calls:", "other_calls"),
        ("US$ per 1,000 objects", ["" for _ in reports]),
        *usd,
        ("  Macie per GB (reference, not in total)", [f"{r['macie_reference_usd_per_1000_objects']:.6f}" for r in reports]),
        *_target_rows(reports),
    ]


def format_reports(reports: list[dict]) -> str:
    """The reports side by side, one column per run, with the prices' date and what was left out."""
    headers = ["", *(r["trigger"] for r in reports)]
    rows = _rows(reports)
    widths = [max(len(row[i]) for row in [headers, *[[label, *values] for label, values in rows]]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip([label, *values], widths, strict=True)).rstrip() for label, values in rows]
    lines += [f"note: {r['note']}" for r in reports if r["note"]]
    lines.append(f"Prices: {REGION_NOTE}, read {prices_read()} (macie_pipeline/local/prices.py). Lambda durations are this "
                 "machine's, in process, not Lambda's; free tiers, KMS, API Gateway and idle SQS polls are left out.")
    return "\n".join(lines)


if __name__ == "__main__":  # used by window_zero_sample() as a CDK app command
    _synth_window_zero_sample()
