"""Benchmark: ``python -m macie_pipeline.local run`` on a generated 50 MB CSV, clean and with card numbers.

Not a test (pytest does not collect ``bench_*.py``). Run it from the repository root::

    .venv/bin/python tests/benchmarks/bench_local_run.py                  # 50 MB, clean and with cards
    .venv/bin/python tests/benchmarks/bench_local_run.py --size-mb 10 --only clean

Each case runs the CLI in its own subprocess (``--decision deny --json``); wall time is measured around
it and peak RSS is the child's ``ru_maxrss`` (``resource.getrusage(RUSAGE_CHILDREN)``, read after each
child exits: the largest child so far, so cases run from the smallest expected peak up). The whole
engine is in that child: synth of the sample stack, moto, the upload, the handlers and the local Macie.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = "id,name,email_domain,amount,ratio,city,comment\n"
CARD = "4539 1488 0343 6467"  # a valid (Luhn) test Visa number


def _row(rng: random.Random, i: int) -> str:
    return (f"{i},name-{i % 9973},example-{i % 97}.org,{rng.randrange(10**7) / 100:.2f},{rng.random()!r},"
            f"city-{i % 131},free text for row {i}\n")


def generate(path: Path, size_mb: float, *, cards_every: int = 0) -> int:
    """Write a CSV of about ``size_mb`` MB (a card number every ``cards_every`` rows if set); its data rows."""
    rng = random.Random(13)
    target = int(size_mb * 1_000_000)
    rows = written = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(HEADER.replace("comment", "comment,card_number") if cards_every else HEADER)
        while written < target:
            lines = []
            for i in range(rows, rows + 10_000):
                line = _row(rng, i)
                if cards_every:
                    line = line[:-1] + ("," + CARD if i % cards_every == 0 else ",") + "\n"
                lines.append(line)
            block = "".join(lines)
            out.write(block)
            written += len(block)
            rows += 10_000
    return rows


def run_cli(path: Path, timeout: float) -> dict:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    command = [sys.executable, "-m", "macie_pipeline.local", "run", str(path), "--decision", "deny", "--json",
               "--timeout", str(timeout)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
    try:
        outcome = [(item.get("key"), item.get("outcome")) for item in json.loads(done.stdout)]
    except ValueError:
        outcome = done.stdout[-500:] + done.stderr[-2000:]
    return {"exit": done.returncode, "seconds": round(elapsed, 1), "peak_rss_mb": round(peak_mb), "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=50)
    parser.add_argument("--only", choices=["clean", "cards"])
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    cases = {"clean": 0, "cards": 1000}
    with tempfile.TemporaryDirectory() as tmp:
        for name, every in cases.items():
            if args.only and name != args.only:
                continue
            path = Path(tmp) / f"{name}.csv"
            rows = generate(path, args.size_mb, cards_every=every)
            print(f"{name}: {path.stat().st_size / 1e6:.1f} MB, {rows} rows", flush=True)
            print(json.dumps(run_cli(path, args.timeout)), flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
