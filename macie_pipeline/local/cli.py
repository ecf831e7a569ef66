"""``python -m macie_pipeline.local run PATH...``: try the pipeline on your own files, offline.

Uploads the files to the ingress bucket of a locally deployed pipeline (keys are the paths relative
to the directory given, or the file name for a file), runs the synthesized workflow, answers
reviews as ``--decision`` says, and prints where each object ended.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Sequence

from ..contract import PIPELINE_TAG_KEYS
from .engine import DECISIONS, EngineError, LocalPipeline, RunResult
from .macie import FINAL_STATUSES, MacieBehavior
from .template import (
    TemplateError,
    choose_pipeline,
    load_assembly,
    load_template,
    synth_app,
    synth_sample,
)

# Files the walk never uploads: version-control and OS clutter.
_SKIPPED_NAMES = {".git", ".DS_Store", "__pycache__", ".svn", ".hg"}
MAX_FILE_BYTES = 512 * 1024 * 1024
# What the pipeline's tag keys share ("macie-pipeline:"): left out of the table's tags column.
_TAG_PREFIX = os.path.commonprefix(PIPELINE_TAG_KEYS)


class UsageError(Exception):
    """Bad input: printed as one clear message, exit code 2."""


def collect_files(paths: Sequence[str]) -> dict[str, Path]:
    """Object key -> file. Keys are POSIX paths relative to each directory given (file name for a file)."""
    files: dict[str, Path] = {}
    problems = []
    for given in paths:
        entries, problem = _entries(given)
        if problem:
            problems.append(problem)
        for key, file in entries:
            problem = _key_problem(files, key, file)
            if problem:
                problems.append(problem)
            else:
                files[key] = file
    if problems:
        raise UsageError("Cannot run the pipeline on these paths:\n- " + "\n- ".join(problems))
    return files


def _entries(given: str) -> tuple[list[tuple[str, Path]], Optional[str]]:
    """(key, file) for a path given on the command line, or why it gives none."""
    path = Path(given)
    if not path.exists():
        return [], f"{given}: no such file or directory"
    if path.is_file():
        return [(path.name, path)], None
    entries = list(_walk(path))
    return entries, (None if entries else f"{given}: the directory has no files")


def _walk(directory: Path) -> Iterator[tuple[str, Path]]:
    """(key relative to ``directory``, file) of every file under it, sorted, clutter skipped."""
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_NAMES)
        for name in sorted(names):
            if name not in _SKIPPED_NAMES:
                file = Path(root) / name
                yield file.relative_to(directory).as_posix(), file


def _key_problem(files: dict[str, Path], key: str, file: Path) -> Optional[str]:
    """Why ``file`` cannot be uploaded under ``key`` next to the files collected so far (None: it can)."""
    if key in files and files[key].resolve() != file.resolve():
        return f"{key}: two different files would get this key ({files[key]} and {file})"
    if len(key.encode("utf-8")) > 1024:
        return f"{key[:60]}...: the key is longer than S3's 1024 bytes"
    if file.stat().st_size > MAX_FILE_BYTES:
        return f"{key}: larger than the local engine's {MAX_FILE_BYTES // 2**20} MiB limit"
    return None


def format_table(result: RunResult) -> str:
    headers = ["key", "integrity", "findings", "verdict", "outcome", "bucket", "final key", "tags"]
    rows = []
    for item in result.objects:
        findings = ", ".join(f"{t} x{n}" for t, n in sorted(item.findings.items())) or "-"
        tags = ", ".join(f"{k.removeprefix(_TAG_PREFIX)}={v}" for k, v in sorted(item.tags.items())) or "-"
        bucket = f"{item.zone} ({item.bucket})" if item.bucket else (item.zone or "-")
        rows.append([
            item.key, item.integrity or "-", findings, item.verdict or "-", item.outcome or "-", bucket, item.final_key or "-", tags,
        ])
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m macie_pipeline.local", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the pipeline on files", description=__doc__)
    run.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to upload")
    run.add_argument("--decision", choices=[d for d in DECISIONS if d != "manual"], default="none",
                     help="how the reviewer answers: approve, deny, or none (the review times out: denied). Default: none")
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
    run.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    run.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the executions. Default: 300")
    run.add_argument("--verbose", action="store_true", help="print the handlers' logs to stderr")
    return parser


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


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        files = collect_files(args.paths)
        bodies = {key: path.read_bytes() for key, path in files.items()}
        stack, state_machine = _stack(args)
        behavior = MacieBehavior(job_status=args.macie_status)
        echo = (lambda text: sys.stderr.write(text)) if args.verbose else None
        review_wait = 2.0 if args.decision == "none" else 120.0
        with LocalPipeline(stack, state_machine, macie=behavior, review_wait_seconds=review_wait, echo_logs=echo) as pipeline:
            result = pipeline.run(bodies, decision=args.decision, schedule=args.schedule, timeout=args.timeout)
    except (UsageError, TemplateError, EngineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([o.as_json() for o in result.objects], indent=2, ensure_ascii=False))
    else:
        print(format_table(result))
    failed = [e for e in result.executions if e.status != "SUCCEEDED"]
    for execution in failed:
        name = execution.arn.rsplit(":", 1)[-1]
        print(f"note: execution {name} {execution.status}: {execution.error}: {execution.cause}", file=sys.stderr)
    return 0
