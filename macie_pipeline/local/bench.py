"""``python -m macie_pipeline.local bench``: what the synthesized pipeline does per 1,000 objects, and what it costs.

Runs the pipeline in the local engine on generated objects (a fixed mix, see :func:`generate_objects`),
answers every review (approve), and counts what AWS would bill:

* **Macie API calls** by operation: every call the local Macie serves (the workflow's ``aws-sdk``
  tasks and the handlers' boto3 calls), seen at :meth:`EngineHost.observe_calls`.
* **Standard state transitions**, from each execution's history: one per ``*StateEntered`` event
  (every state entered, Map and Parallel states and the states inside each Map iteration included;
  ``*StateExited`` is the same step leaving, not counted again), plus one per retry of a task (a
  ``TaskScheduled`` beyond the first in a task state). The Step Functions pricing page
  (https://aws.amazon.com/step-functions/pricing/): "Step Functions counts a state transition each
  time a step of your workflow is executed ... including retries".
* **Express executions and their transitions**: executions of a state machine whose type is
  EXPRESS (none today: the pipeline is one Standard workflow without a Distributed Map).
* **Lambda invocations and GB-seconds** per function: each invocation of a handler, the workflow's
  and the review API's, timed in this process; memory from the template times the duration rounded
  up to 1 ms as Lambda bills. The durations are this machine's, in process, not Lambda's.
* **S3 requests by price class**, from the HTTP method of each operation in botocore's S3 model:
  PUT and POST requests and ``List*`` operations are "PUT, COPY, POST, LIST"; DELETE is free; GET
  and HEAD are "GET, SELECT and all other". Counted: the handlers' and the workflow's own requests
  (``aws-sdk:s3`` tasks run through moto's interpreter with boto3 clients, so they pass the same
  hook). Not counted: the uploads into ingress (the producer's), the engine's reads, and the S3
  reads Macie makes while it analyses objects (billed to you as S3 GET/LIST requests, but the local
  Macie's reads are not Macie's).
* **SQS requests** the pipeline makes (none today), **EventBridge custom events** (entries of the
  workflow's ``PutEvents``), **SNS publishes**, and every other call the pipeline makes (DynamoDB
  claims, Step Functions task tokens...) by operation, not priced.

The dollar estimate multiplies these counts by :data:`~macie_pipeline.local.prices.PRICES`, the one
table of public prices. KMS requests (SSE-KMS is served inside S3) and Macie's per-GB charge are not
in it (Macie's per GB is shown for reference).
"""

from __future__ import annotations

import functools
import math
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional

import botocore.session

from ..contract import PrepareScanEnvironment
from . import functions as local_functions
from .engine import EngineError, LocalPipeline
from .host import ENGINE, WORKFLOW
from .prices import PRICES, REGION, price
from .runner import Watcher
from .template import RULE, StackTemplate, load_assembly, synth_app

TRIGGERS = ("object-created", "schedule")
PER = 1000  # figures are per this many objects
REGION_NOTE = f"{REGION} marginal prices"
OBJECT_CREATED_WAVE = 25  # object-created: executions started at once (bounds the engine's threads, not AWS)

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
def _synth_schedule_sample() -> None:
    """The sample app with a schedule trigger at the largest batch (``python -m macie_pipeline.local.bench``)."""
    import aws_cdk as cdk

    from .. import sample
    from ..props import MAX_BATCH_OBJECTS, Trigger

    original = sample.SensitiveDataScanPipeline
    sample.SensitiveDataScanPipeline = functools.partial(original, trigger=Trigger.on_schedule(max_batch_objects=MAX_BATCH_OBJECTS))
    try:
        app = cdk.App()
        sample.build_app(app)
        app.synth()
    finally:
        sample.SensitiveDataScanPipeline = original


def schedule_sample(cache_dir: Optional[Path] = None) -> StackTemplate:
    """The sample stack, triggered on a schedule: synthesized in a subprocess, cached beside the sample's."""
    from .. import layers
    from .template import _source_fingerprint

    outdir = (Path(cache_dir) if cache_dir else layers.layer_cache_dir().parent / "local-sample-schedule") / _source_fingerprint()
    if not (outdir / "manifest.json").is_file():
        staging = outdir.with_name(f"{outdir.name}.{time.time_ns()}")
        synth_app(f"{sys.executable} -m macie_pipeline.local.bench", staging)
        if not outdir.exists():
            staging.rename(outdir)
    return load_assembly(outdir if outdir.exists() else staging)[0]


def trigger_of(stack: StackTemplate) -> str:
    """``schedule`` when one of the stack's rules runs on a schedule, else ``object-created``."""
    rules = stack.of_type(RULE).values()
    return "schedule" if any("ScheduleExpression" in (r.get("Properties") or {}) for r in rules) else "object-created"


# ---------------------------------------------------------------------- counting
_S3_MODEL = None


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


class Meter:
    """Counts the AWS calls and Lambda invocations of one engine (see the module's docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, str, str]] = Counter()  # (caller, service, operation)
        self.event_entries = 0
        self.invocations: Counter[str] = Counter()  # function role
        self.billed_ms: Counter[str] = Counter()
        self.memory_mb: dict[str, int] = {}

    def attach(self, engine: LocalPipeline) -> None:
        engine.observe_calls(self._call)
        for function in engine.functions.values():
            self._meter(function)

    def _call(self, caller: str, service: str, operation: str, parameters: dict) -> None:
        if caller == ENGINE:
            return
        with self._lock:
            self.calls[(caller, service, operation)] += 1
            if service == "events" and operation == "PutEvents":
                self.event_entries += len(parameters.get("Entries") or [])

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
            elif service != "lambda":  # Lambda's Invoke is counted as invocations
                other[f"{service}.{operation}"] += count
        return {
            "macie_calls": dict(sorted(macie.items())),
            "s3_requests": dict(s3_classes),
            "s3_operations": dict(sorted(s3_operations.items())),
            "sqs_requests": sum(c for (_, s, _), c in self.calls.items() if s == "sqs"),
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
    types = Counter(event["type"] for event in history)
    entered = sum(count for kind, count in types.items() if kind.endswith("StateEntered"))
    retries = types["TaskScheduled"] + types["LambdaFunctionScheduled"] - types["TaskStateEntered"]
    return entered + max(0, retries)


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


def max_batch_objects(engine: LocalPipeline) -> int:
    name = PrepareScanEnvironment.variable_name("max_batch_objects")
    for function in engine.functions.values():
        if function.role == PrepareScanEnvironment.FUNCTION:
            return int(function.environment.get(name, 25))
    raise EngineError("The stack has no prepare_scan function")


def _start_wave(engine: LocalPipeline, uploaded: list, trigger: str) -> list[str]:
    events = [engine.scheduled_event()] if trigger == "schedule" else [engine.object_created_event(u) for u in uploaded]
    arns = [engine.deliver(event) for event in events]
    if None in arns:
        raise EngineError(f"The pipeline has no {trigger} trigger: choose the other --trigger, or a stack that has this one")
    return arns  # type: ignore[return-value]


def _drive(engine: LocalPipeline, files: Mapping[str, bytes], trigger: str, watch: Optional[Watcher]) -> tuple[list, int]:
    """Upload and scan in waves (one scheduled batch, or a few object-created executions, at a time)."""
    wave = max_batch_objects(engine) if trigger == "schedule" else OBJECT_CREATED_WAVE
    keys, executions = list(files), []
    for start in range(0, len(keys), wave):
        uploaded = [engine.upload(key, files[key]) for key in keys[start:start + wave]]
        arns = _start_wave(engine, uploaded, trigger)
        progress = _Progress(watch, start, len(keys), len(uploaded))
        executions += engine.wait(arns, decision="approve", timeout=600.0, watch=progress)
    return executions, wave


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
        "express_executions": len(executions) if express else 0,
        "express_state_transitions": counted if express else 0,
        "map_child_executions": child_executions,
        "map_child_state_transitions": children,
        "lambda_tasks_in_histories": sum(lambda_tasks(e.history) for e in executions) + sum(lambda_tasks(r.events) for r in runs),
    }


def run(stack: StackTemplate, state_machine_id: str, trigger: str, count: int, *, watch: Optional[Watcher] = None) -> dict[str, Any]:
    """Run the pipeline on ``count`` generated objects; the report (counts, per 1,000 objects, dollars)."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}")
    files = generate_objects(count)
    meter = Meter()
    started = time.monotonic()
    with LocalPipeline(stack, state_machine_id, review_wait_seconds=120.0) as engine:
        meter.attach(engine)
        executions, wave = _drive(engine, files, trigger, watch)
        result = engine.result([u.version_id for u in engine.uploaded], executions)
        totals = {**_history_counts(engine, executions), **meter.api_counts(), **meter.lambda_counts()}
    wall = time.monotonic() - started
    per_1000 = _scaled(totals, PER / count)
    return {
        "trigger": trigger,
        "stack": stack.name,
        "objects": count,
        "objects_per_execution_max": wave if trigger == "schedule" else 1,
        "wall_seconds": round(wall, 1),
        "outcomes": dict(sorted(Counter(o.outcome or "UNKNOWN" for o in result.objects).items())),
        "failed_executions": sum(e.status != "SUCCEEDED" for e in executions),
        "totals": totals,
        "per_1000_objects": per_1000,
        "usd_per_1000_objects": cost(per_1000),
        "macie_reference_usd_per_1000_objects": sum(map(len, files.values())) * PER / count / 2**30 * price("macie_gb_inspected"),
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


def _rows(reports: list[dict]) -> list[tuple[str, list[str]]]:
    def per(key: str) -> list[str]:
        return [_number(r["per_1000_objects"][key]) for r in reports]

    s3 = [(f"  S3 {label}", [_number(r["per_1000_objects"]["s3_requests"][name]) for r in reports])
          for name, label in (("put_copy_post_list", "PUT/COPY/POST/LIST requests"), ("get_and_other", "GET/other requests"),
                              ("delete_free", "DELETE requests (free)"))]
    usd = [(f"  {name}", [f"{r['usd_per_1000_objects'][name]:.4f}" for r in reports]) for name in reports[0]["usd_per_1000_objects"]]
    return [
        ("objects scanned", [_number(r["objects"]) for r in reports]),
        ("objects per execution (at most)", [_number(r["objects_per_execution_max"]) for r in reports]),
        ("wall time, this machine (s)", [_number(r["wall_seconds"]) for r in reports]),
        ("outcomes", [", ".join(f"{k} {v}" for k, v in r["outcomes"].items()) for r in reports]),
        ("per 1,000 objects", ["" for _ in reports]),
        ("  Standard executions", per("standard_executions")),
        ("  Standard state transitions", per("standard_state_transitions")),
        ("  Express executions", per("express_executions")),
        ("  Express state transitions", per("express_state_transitions")),
        *_group(reports, "Macie", "macie_calls"),
        *_group(reports, "Lambda invocations", "lambda_invocations"),
        *_group(reports, "Lambda GB-s", "lambda_gb_seconds"),
        *s3,
        ("  SQS requests", per("sqs_requests")),
        ("  EventBridge events", per("eventbridge_events")),
        ("  SNS publishes", per("sns_publishes")),
        *_group(reports, "other calls:", "other_calls"),
        ("US$ per 1,000 objects", ["" for _ in reports]),
        *usd,
        ("  Macie per GB (reference, not in total)", [f"{r['macie_reference_usd_per_1000_objects']:.6f}" for r in reports]),
    ]


def format_reports(reports: list[dict]) -> str:
    """The reports side by side, one column per trigger."""
    headers = ["", *(r["trigger"] for r in reports)]
    rows = _rows(reports)
    widths = [max(len(row[i]) for row in [headers, *[[label, *values] for label, values in rows]]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip([label, *values], widths, strict=True)).rstrip() for label, values in rows]
    lines.append(f"Prices: {REGION_NOTE}, read {prices_read()} (macie_pipeline/local/prices.py). Lambda durations are this "
                 "machine's, in process, not Lambda's; free tiers are left out.")
    return "\n".join(lines)


if __name__ == "__main__":  # used by schedule_sample() as a CDK app command
    _synth_schedule_sample()
