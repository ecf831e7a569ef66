"""Benchmark: chunked (integrity_core) vs whole-file pandas.read_fwf on a generated fixed-width file.

Not a test (pytest does not collect ``bench_*.py``). Run it from the repository root::

    .venv/bin/python tests/benchmarks/bench_integrity.py            # ~80 MB file
    .venv/bin/python tests/benchmarks/bench_integrity.py --size-mb 20 --chunk-rows 50000

Each measurement runs in a fresh subprocess so peak RSS (``resource.getrusage(...).ru_maxrss``) belongs
to that mode alone; the RSS after imports is reported too, since pandas/numpy themselves take ~100 MB.
Wall time is measured without tracemalloc; the tracemalloc peak (Python/numpy allocations only, not
pandas' C buffers) comes from a second run of the same mode.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE_DIR = ROOT / "lambda" / "integrity_check"

WIDTHS = (10, 24, 14, 18, 8, 30)  # id, name, amount, city, code, comment
HEADER = ("id", "name", "amount", "city", "code", "comment")


def _row(i: int) -> str:
    values = (str(i), f"name-{i % 9973}", f"{i * 3.25:.2f}", f"city-{i % 131}", f"C{i % 97}", f"free text {i}")
    return "".join(value.ljust(width) for value, width in zip(values, WIDTHS, strict=True)) + "\n"


def generate(path: Path, size_mb: float) -> tuple[int, int]:
    """Write a fixed-width file of about ``size_mb`` MB; return (bytes, data rows)."""
    target = int(size_mb * 1_000_000)
    rows = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("".join(h.ljust(w) for h, w in zip(HEADER, WIDTHS, strict=True)) + "\n")
        written = 0
        while written < target:
            block = "".join(_row(i) for i in range(rows, rows + 10_000))
            out.write(block)
            written += len(block)
            rows += 10_000
    return path.stat().st_size, rows


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(mode: str, path: str, chunk_rows: int, trace: bool) -> dict:
    sys.path.insert(0, str(CORE_DIR))
    import tracemalloc

    import pandas as pd

    import integrity_core

    baseline = _maxrss_mb()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    if mode == "chunked":
        with open(path, "rb") as stream:
            result = integrity_core.check_object(stream, path, size=os.path.getsize(path), chunk_rows=chunk_rows)
        rows = result["rows"]
        assert result["status"] == "VALID", result
    elif mode == "whole":
        with open(path, "rb") as stream:
            frame = pd.read_fwf(stream, dtype=str, na_filter=False, encoding="utf-8")
        rows = len(frame)
        del frame
    else:
        raise SystemExit(f"unknown mode {mode}")
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    return {"mode": mode, "rows": rows, "seconds": elapsed, "tracemalloc_peak_mb": peak and peak / 1e6,
            "maxrss_mb": _maxrss_mb(), "rss_after_imports_mb": baseline}


def run_child(mode: str, path: Path, chunk_rows: int, trace: bool) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--path", str(path), "--chunk-rows", str(chunk_rows)]
    if trace:
        command.append("--trace")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=80.0)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--child", choices=["chunked", "whole"])
    parser.add_argument("--path")
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path, args.chunk_rows, args.trace)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-integrity-") as directory:
        path = Path(directory) / "generated.txt"
        size, rows = generate(path, args.size_mb)
        print(f"fixed-width file: {size / 1e6:.1f} MB, {rows} data rows, chunk_rows={args.chunk_rows}")
        print(f"{'mode':<8} {'rows':>9} {'wall s':>8} {'peak RSS MB':>12} {'RSS after imports':>18} "
              f"{'RSS growth':>11} {'tracemalloc peak MB':>20}")
        for mode in ("chunked", "whole"):
            timed = run_child(mode, path, args.chunk_rows, trace=False)
            traced = run_child(mode, path, args.chunk_rows, trace=True)
            assert timed["rows"] == rows == traced["rows"], (timed, rows)
            print(f"{mode:<8} {timed['rows']:>9} {timed['seconds']:>8.2f} {timed['maxrss_mb']:>12.1f} "
                  f"{timed['rss_after_imports_mb']:>18.1f} {timed['maxrss_mb'] - timed['rss_after_imports_mb']:>11.1f} "
                  f"{traced['tracemalloc_peak_mb']:>20.1f}")


if __name__ == "__main__":
    main()
