"""``python -m macie_pipeline.local run PATH...``: try the pipeline on your own files, offline.

Uploads the files to the ingress bucket of a locally deployed pipeline (keys are the paths relative
to the directory given, or the file name for a file), runs the synthesized workflow, answers
reviews as ``--decision`` says, and prints where each object ended.

``python -m macie_pipeline.local bench`` counts what the pipeline does per 1,000 generated objects
and what that costs (see :mod:`macie_pipeline.local.bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import webbrowser
from pathlib import Path
from typing import Callable, Optional, Sequence, TextIO, TypeVar

from ..contract import PIPELINE_TAG_KEYS
from . import bench
from .engine import EngineError, LocalPipeline, RunResult
from .files import UsageError, collect_files, read_files
from .macie import FINAL_STATUSES, MacieBehavior
from .results import ObjectResult
from .template import TemplateError, choose_pipeline, load_assembly, load_template, synth_app, synth_sample

# What the pipeline's tag keys share ("macie-pipeline:"): left out of the table's tags column.
_TAG_PREFIX = os.path.commonprefix(PIPELINE_TAG_KEYS)
IN_VAULT = ("VAULT", "APPROVED")
#: ``run --timeout`` when not given: a base, plus twice what an object takes the engine on 2 cores
#: (3,470 objects finished in 14 min 27 s of a 10,000-object bench run: about 0.25 s each).
DEFAULT_TIMEOUT = 300.0
TIMEOUT_PER_OBJECT = 0.5

EXIT_OK, EXIT_FAIL_ON, EXIT_USAGE, EXIT_PIPELINE_FAILED = 0, 1, 2, 3
T = TypeVar("T")

_DESCRIPTION = """\
Try the pipeline on your own files, offline: the synthesized stack runs in a local engine (moto, the
Lambda handlers in process, a local Macie), nothing reaches AWS.

Each file becomes an object in the ingress bucket (its key: the path relative to the directory
given, or the file name), is scanned, and ends in the vault, the review bucket or quarantine.
"""

_EPILOG = """\
examples:
  python -m macie_pipeline.local samples                         # copy the sample files (fake data) into samples/
  python -m macie_pipeline.local run samples/                    # the shipped samples; reviews time out (denied)
  python -m macie_pipeline.local run data/ --decision approve    # reviewers approve everything held
  python -m macie_pipeline.local run data/ --decision manual     # open each review page and decide yourself
  python -m macie_pipeline.local run data/ --app "python app.py" # your own CDK app, your own policy
  python -m macie_pipeline.local run data/ --json --fail-on held # for CI: exit 1 if anything is not in the vault

exit codes:
  0  the pipeline ran (and --fail-on, if given, found nothing)
  1  --fail-on found an object it names
  2  bad input: a path, a file, a template or an option (one message says what)
  3  an execution of the pipeline failed or did not finish, or an object failed: objects are held, see the notes
"""


# ---------------------------------------------------------------------- output
def _cell(text: object) -> str:
    """A table cell on one line: control characters (a newline in a file name) shown escaped."""
    value = str(text)
    return value if value.isprintable() else value.encode("unicode_escape").decode("ascii")


_SCAN_ID = re.compile(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
REASON_WIDTH = 60


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(result: RunResult, *, tags: bool = False) -> str:
    """One row per object. Without ``tags`` (--verbose), scan ids in keys are cut to 8 characters and
    reasons to 60: the full values are in ``--json``."""
    headers = ["key", "integrity", "findings", "verdict", "outcome", "where", "final key", "reason"]
    if tags:
        headers.append("tags")
    rows = [_row(item, tags) for item in result.objects]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "\n".join(lines)


def _row(item: ObjectResult, tags: bool) -> list[str]:
    findings = ", ".join(f"{t} x{n}" for t, n in sorted(item.findings.items())) or "-"
    final_key, reason = item.final_key or "-", item.reason or "-"
    if not tags:
        final_key, reason = _SCAN_ID.sub(r"\1…", final_key), _short(reason, REASON_WIDTH)
    row = [item.key, item.integrity or "-", findings, item.verdict or "-", item.outcome or "-", item.zone or "-", final_key, reason]
    if tags:
        row.append(", ".join(f"{k.removeprefix(_TAG_PREFIX)}={v}" for k, v in sorted(item.tags.items())) or "-")
    return [_cell(c) for c in row]


def summary_line(result: RunResult) -> str:
    """``5 objects: 2 in the vault (1 approved), 3 quarantined``: counts per outcome."""
    counts: dict[str, int] = {}
    for item in result.objects:
        counts[item.outcome or "UNKNOWN"] = counts.get(item.outcome or "UNKNOWN", 0) + 1
    words = {"VAULT": "in the vault", "APPROVED": "approved (in the vault)", "REVIEW_PENDING": "waiting for review",
             "QUARANTINED": "quarantined", "DENIED": "denied (quarantined)", "DELETED": "denied and deleted",
             "FAILED": "failed (held)", "NOT_SCANNED": "not scanned"}
    order = [*words, *sorted(set(counts) - set(words))]  # the vault first, then the ways an object is held
    parts = [f"{counts[outcome]} {words.get(outcome, outcome.lower())}" for outcome in order if outcome in counts]
    total = len(result.objects)
    return f"{total} object{'s' if total != 1 else ''}: " + (", ".join(parts) or "none")


def fail_on_matches(result: RunResult, condition: Optional[str]) -> list[ObjectResult]:
    """The objects ``--fail-on`` names: ``held`` (not in the vault), ``review`` (needed a person's
    review), ``any`` (anything but a clean scan that reached the vault)."""
    if condition is None:
        return []
    tests = {
        "held": lambda o: o.outcome not in IN_VAULT,
        "review": lambda o: o.verdict == "REVIEW",
        "any": lambda o: o.verdict != "CLEAN" or o.outcome not in IN_VAULT,
    }
    return [o for o in result.objects if tests[condition](o)]


class ConsoleWatcher:
    """Progress on stderr for runs longer than a few seconds; review links for ``--decision manual``."""

    def __init__(self, stream: TextIO, *, manual: bool, open_browser: bool, after_seconds: float = 3.0,
                 what: str = "execution(s)") -> None:
        self._stream = stream
        self._what = what
        self._manual = manual
        self._open_browser = open_browser
        self._started = time.monotonic()
        self._after = after_seconds
        self._last = 0.0
        self._tty = stream.isatty()

    def review_requested(self, link: str, message: dict) -> None:
        if not self._manual:
            return
        self._stream.write(f"review requested: open {link} and decide (waiting up to --timeout)\n")
        sign_in = message.get("signIn") or {}
        if sign_in:
            self._stream.write(f"sign in as {sign_in['email']} with password {sign_in['password']} (a generated local reviewer)\n")
        self._stream.flush()
        if self._open_browser:
            webbrowser.open(link)

    def progress(self, finished: int, total: int) -> None:
        now = time.monotonic()
        elapsed = now - self._started
        if elapsed < self._after or now - self._last < (1.0 if self._tty else 10.0):
            return
        self._last = now
        line = f"running: {finished}/{total} {self._what} finished, {elapsed:.0f} s"
        self._stream.write(f"\r{line}" if self._tty else f"{line}\n")
        self._stream.flush()

    def done(self) -> None:
        if self._tty and self._last:
            self._stream.write("\n")


def _samples(target: Path) -> int:
    try:
        written = write_samples(target)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {len(written)} sample files to {target}/: " + ", ".join(p.name for p in written))
    return EXIT_OK


# ---------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m macie_pipeline.local", description=_DESCRIPTION,
                                     epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,samples,bench}")
    samples = commands.add_parser("samples", help="copy the sample files (fake data) into a folder to try",
                                  description="Copy the shipped sample files (every value in them is fake) into DIR.")
    samples.add_argument("dir", nargs="?", default="samples", type=Path, metavar="DIR", help="Default: samples")
    run = commands.add_parser("run", help="run the pipeline on files", description=_DESCRIPTION, epilog=_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to upload")
    run.add_argument("--decision", choices=["approve", "deny", "none", "manual"], default="none",
                     help="how reviews are answered: approve, deny, none (nobody answers: the review times out and "
                          "the object is denied), or manual (the review page's link is printed and opened; you decide, "
                          "within --timeout). Default: none")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--app", metavar="CMD", help="a CDK app command (as in cdk.json), synthesized with CDK_OUTDIR")
    source.add_argument("--template", metavar="T", type=Path, help="a synthesized template (assets next to it, or --assets)")
    source.add_argument("--assembly", metavar="DIR", type=Path, help="a synthesized cloud assembly (cdk.out)")
    run.add_argument("--assets", metavar="DIR", type=Path, help="the asset folder of --template (default: its folder)")
    run.add_argument("--stack", help="the stack to use when the app has several")
    run.add_argument("--pipeline", metavar="PATH", help="the construct path of the pipeline when a stack has several")
    run.add_argument("--schedule", action="store_true", help="one scheduled batch instead of one execution per object")
    run.add_argument("--macie-status", default="COMPLETE", choices=FINAL_STATUSES,
                     help="the status the local Macie job reaches. Default: COMPLETE")
    run.add_argument("--json", action="store_true", help="print a JSON list (with tags and reasons) instead of a table")
    run.add_argument("--fail-on", choices=["held", "review", "any"],
                     help="exit 1 if an object is held (not in the vault), needed review, or is anything but clean")
    run.add_argument("--timeout", type=float, default=None,
                     help="seconds to wait for the executions (with --decision manual: for you). Default: "
                          f"{DEFAULT_TIMEOUT:.0f} plus {TIMEOUT_PER_OBJECT} per object (the engine runs about 4 objects a second)")
    run.add_argument("--verbose", action="store_true", help="print the handlers' logs to stderr and tags in the table")
    _bench_parser(commands)
    return parser


_BENCH_DESCRIPTION = """\
Count what the synthesized pipeline does per 1,000 objects, offline, and what that would cost: Macie
API calls, Standard state transitions (parents and Distributed Map children), Lambda invocations and
GB-seconds, S3 requests by price class, SQS requests, DynamoDB request units, EventBridge events and
SNS publishes, and the US$ they add up to at the public prices in macie_pipeline/local/prices.py
(us-east-1, the date they were read).

Generated objects (the same for the same N): 70% clean CSV and JSON, 20% with sensitive data (card
numbers and SSNs next to their keywords), 10% corrupt (truncated Parquet, 0 bytes), each delivered
as an Object Created event through the intake queue. Reviews are approved. Lambda durations are
measured in this process: they are not Lambda's.

Runs: batched is the sample as synthesized (a batching window of minutes, up to 10,000 objects per
batch, one Macie job per batch); window-zero is the sample with Trigger.on_object_created(
batch_window=Duration.seconds(0)): one object per scan, measured on at most 200 objects. Without
--app or --assembly both are measured, side by side; with them, the stack's own.
"""


def _bench_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("bench", help="count what the pipeline does and costs per 1,000 objects",
                                 description=_BENCH_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1000, metavar="N", help="objects to generate and scan. Default: 1000")
    parser.add_argument("--trigger", choices=[*bench.TRIGGERS, "both"],
                        help="which trigger to measure. Default: both for the sample stack; the stack's own with --app/--assembly")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--app", metavar="CMD", help="a CDK app command (as in cdk.json), synthesized with CDK_OUTDIR")
    source.add_argument("--assembly", metavar="DIR", type=Path, help="a synthesized cloud assembly (cdk.out)")
    parser.add_argument("--stack", help="the stack to use when the app has several")
    parser.add_argument("--pipeline", metavar="PATH", help="the construct path of the pipeline when a stack has several")
    parser.add_argument("--json", action="store_true", help="print one JSON object with every figure and the prices table")
    parser.set_defaults(template=None, assets=None)


def samples_dir() -> Path:
    """The shipped sample files: inside the installed package, or the repository's samples/."""
    here = Path(__file__).resolve().parents[1]
    return next((d for d in (here / "_samples", here.parent / "samples") if d.is_dir()), here / "_samples")


def write_samples(target: Path) -> list[Path]:
    """Copy the sample files into ``target`` (created if needed); never overwrite a different file."""
    source = samples_dir()
    files = sorted(p for p in source.iterdir() if p.is_file())
    if not files:
        raise UsageError(f"no sample files found in {source}")
    clashes = [target / f.name for f in files if (target / f.name).exists() and (target / f.name).read_bytes() != f.read_bytes()]
    if clashes:
        raise UsageError("These files exist and differ from the samples (nothing was written):\n- " + "\n- ".join(map(str, clashes)))
    target.mkdir(parents=True, exist_ok=True)
    for file in files:
        (target / file.name).write_bytes(file.read_bytes())
    return [target / f.name for f in files]


def _stack(args: argparse.Namespace):
    if args.template:
        stacks = [load_template(args.template, args.assets)]
    elif args.assembly:
        stacks = load_assembly(args.assembly)
    elif args.app:
        outdir = Path(tempfile.mkdtemp(prefix="macie-pipeline-local-"))
        stacks = synth_app(args.app, outdir)
    else:
        stacks = [synth_sample()]
    return choose_pipeline(stacks, args.stack, args.pipeline)


def run_timeout(given: float | None, objects: int) -> float:
    """``--timeout`` as given, else enough for ``objects`` at the engine's speed: a few thousand files
    take tens of minutes on 2 cores, and a fixed 300 s gave up on them (printing nothing)."""
    return given if given is not None else DEFAULT_TIMEOUT + TIMEOUT_PER_OBJECT * objects


def _run(args: argparse.Namespace) -> tuple[RunResult, list[str]]:
    collected = collect_files(args.paths)
    for note in collected.skipped:
        print(f"note: {_cell(note)}", file=sys.stderr)
    bodies = read_files(collected.files)
    stack, state_machine = _stack(args)
    behavior = MacieBehavior(job_status=args.macie_status)
    echo = (lambda text: sys.stderr.write(text)) if args.verbose else None
    timeout = run_timeout(args.timeout, len(bodies))
    review_wait = {"none": 2.0, "manual": timeout}.get(args.decision, 120.0)
    watcher = ConsoleWatcher(sys.stderr, manual=args.decision == "manual", open_browser=sys.stdout.isatty(), what="object(s)")
    with LocalPipeline(stack, state_machine, macie=behavior, review_wait_seconds=review_wait, echo_logs=echo) as pipeline:
        try:
            result = pipeline.run(bodies, decision=args.decision, schedule=args.schedule, timeout=timeout, watch=watcher)
        finally:
            watcher.done()
    return result, collected.skipped


def _bench_targets(args: argparse.Namespace) -> list[tuple[str, object, str]]:
    """(trigger, stack, state machine) of each run: the sample and its scheduled twin, or the stack given."""
    if args.app or args.assembly:
        stack, state_machine = _stack(args)
        kind = bench.trigger_of(stack)
        if args.trigger not in (None, "both", kind):
            raise UsageError(f"the stack is triggered on {kind}: --trigger {args.trigger} needs a stack with that trigger")
        return [(kind, stack, state_machine)]
    triggers = bench.TRIGGERS if args.trigger in (None, "both") else (args.trigger,)
    return [(trigger, *choose_pipeline([bench.sample_stack(trigger)], None, None)) for trigger in triggers]


def _bench_runs(args: argparse.Namespace) -> list[dict]:
    reports = []
    for trigger, stack, state_machine in _bench_targets(args):
        watcher = ConsoleWatcher(sys.stderr, manual=False, open_browser=False, what=f"object(s) ({trigger})")
        try:
            reports.append(bench.run(stack, state_machine, trigger, args.objects, watch=watcher))  # type: ignore[arg-type]
        finally:
            watcher.done()
    return reports


def _attempt(work: Callable[[], T]) -> tuple[Optional[T], int]:
    """``work()``, or None and the exit code for the error it raised (its message printed on stderr)."""
    try:
        return work(), EXIT_OK
    except (UsageError, TemplateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return None, EXIT_USAGE
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return None, EXIT_PIPELINE_FAILED


def _bench(args: argparse.Namespace) -> int:
    if args.objects < 1:
        print("error: --objects must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    reports, code = _attempt(lambda: _bench_runs(args))
    if reports is None:
        return code
    if args.json:
        print(json.dumps({"prices_read": bench.prices_read(), "prices": bench.prices_table(), "runs": reports}, indent=2))
    else:
        print(bench.format_reports(reports))
    return EXIT_PIPELINE_FAILED if any(r["failed_executions"] for r in reports) else EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "samples":
        return _samples(args.dir)
    if args.command == "bench":
        return _bench(args)
    return _run_command(args)


def _run_command(args: argparse.Namespace) -> int:
    ran, code = _attempt(lambda: _run(args))
    if ran is None:
        return code
    result, _ = ran
    return report(result, json_output=args.json, verbose=args.verbose, fail_on=args.fail_on)


def report(result: RunResult, *, json_output: bool = False, verbose: bool = False, fail_on: Optional[str] = None) -> int:
    """Print a run's result (stdout: the table or JSON; stderr: notes, notifications people must act
    on, what ``--fail-on`` found) and return the exit code."""
    if json_output:
        print(json.dumps([o.as_json() for o in result.objects], indent=2, ensure_ascii=False))
        print(summary_line(result), file=sys.stderr)
    else:
        print(format_table(result, tags=verbose))
        print(summary_line(result))
    failed = [e for e in result.executions if e.status != "SUCCEEDED"]
    for execution in failed:
        name = execution.arn.rsplit(":", 1)[-1]
        print(f"note: execution {name} {execution.status}: {execution.error}: {execution.cause}", file=sys.stderr)
    for message in result.notifications:
        if message.get("event") not in ("REVIEW_REQUESTED", "SCAN_FINISHED"):  # what people must act on
            print(f"notification ({message.get('event')}): {message.get('subject')}: {message.get('message')}", file=sys.stderr)
    held = [o for o in result.objects if o.outcome == "FAILED"]
    if held and not failed:  # the batch went on without them: people must still act on these
        print(f"note: {len(held)} object(s) failed and are held; see the scan summary notification", file=sys.stderr)
    if failed or held:
        return EXIT_PIPELINE_FAILED
    matches = fail_on_matches(result, fail_on)
    for item in matches:
        print(f"--fail-on {fail_on}: {_cell(item.key)} ({item.outcome}, verdict {item.verdict})", file=sys.stderr)
    return EXIT_FAIL_ON if matches else EXIT_OK
