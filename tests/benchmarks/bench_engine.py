"""Benchmark: how long the local engine takes for ``python -m macie_pipeline.local bench``, and where.

Not a test (pytest does not collect ``bench_*.py``). Run it from the repository root::

    .venv/bin/python tests/benchmarks/bench_engine.py --objects 1000                 # the engine as it is
    .venv/bin/python tests/benchmarks/bench_engine.py --objects 10000 --sqs-speedup  # with the proposed SQS patch
    .venv/bin/python tests/benchmarks/bench_engine.py --objects 1000 --profile /tmp/p  # cProfile, every thread

Runs the batched sample (one batch) in process and prints the time of each phase (deploy, upload,
Object Created events, intake pump, the execution, reading the results) and the bench's per-1,000
figures as JSON. ``--profile`` writes ``<prefix>.main`` and ``<prefix>.threads`` (cProfile of the
main thread, and of every other thread merged: moto runs executions, map runs and handlers in threads).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from macie_pipeline.local import bench  # noqa: E402
from macie_pipeline.local.template import choose_pipeline  # noqa: E402


class _Phases:
    """Times each phase of bench's delivery (wraps the runner's steps)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + round(time.monotonic() - started, 2)

        setattr(owner, name, timed)


def _profile_threads(prefix: str):
    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def run(self):  # noqa: ANN001
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = run

    def dump() -> None:
        stats = None
        for profile in profiles:
            profile.create_stats()
            if profile.stats:
                stats = pstats.Stats(profile) if stats is None else stats.add(profile)
        if stats is not None:
            stats.dump_stats(f"{prefix}.threads")

    return dump


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--trigger", choices=bench.TRIGGERS, default=bench.BATCHED)
    parser.add_argument("--sqs-speedup", action="store_true", help="install moto_sqs_speedup for this run")
    parser.add_argument("--profile", metavar="PREFIX", help="write cProfile stats of every thread")
    args = parser.parse_args()
    if args.sqs_speedup:
        import moto_sqs_speedup

        moto_sqs_speedup.install()
    from macie_pipeline.local import runner

    phases = _Phases()
    for name, label in (("upload", "upload"), ("put_object_created_events", "object created events"),
                        ("pump_intake", "intake pump"), ("wait", "executions"), ("discover_executions", "discover")):
        phases.wrap(runner.Runner, name, label)
    from macie_pipeline.local import inspection

    phases.wrap(inspection.Inspector, "result", "read results")
    stack, state_machine = choose_pipeline([bench.sample_stack(args.trigger)], None, None)
    dump = None
    main_profile = None
    if args.profile:
        dump = _profile_threads(args.profile)
        main_profile = cProfile.Profile()
        main_profile.enable()
    started = time.monotonic()
    try:
        report = bench.run(stack, state_machine, args.trigger, args.objects)
    finally:
        if main_profile is not None:
            main_profile.disable()
            main_profile.dump_stats(f"{args.profile}.main")
        if dump is not None:
            dump()
    print(json.dumps({
        "objects": report["objects"], "sqs_speedup": args.sqs_speedup, "wall_seconds": round(time.monotonic() - started, 1),
        "engine_seconds": report["engine_seconds"], "phases_seconds": phases.seconds, "outcomes": report["outcomes"],
        "intake": report["intake"], "targets": report["targets"],
    }, indent=2))


if __name__ == "__main__":
    main()
