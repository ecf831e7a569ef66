"""Turn synthesized state machines back into plain ASL, and validate ASL offline.

The reassembly of a synthesized definition (intrinsics replaced by deterministic placeholders)
lives in the library, :mod:`macie_pipeline.asl` (the diagram generator uses it too); it is
re-exported here so tests keep importing it from ``support.asl``.

:func:`run_asl_validator` runs the repo-local ``asl-validator`` npm CLI.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from macie_pipeline import asl as _library
from macie_pipeline.asl import *  # noqa: F403 - the library's names, re-exported for the tests

__all__ = [*_library.__all__, "asl_validator_path", "run_asl_validator", "AslValidatorMissing"]

_REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------
# asl-validator (npm)
# --------------------------------------------------------------------------


class AslValidatorMissing(RuntimeError):
    """node_modules/.bin/asl-validator is not installed."""


def asl_validator_path(repo_root: Path | None = None) -> Path:
    path = (repo_root or _REPO_ROOT) / "node_modules" / ".bin" / "asl-validator"
    if not path.exists():
        raise AslValidatorMissing(
            f"{path} is missing: run `npm ci` at the repository root "
            "(package.json pins asl-validator as a devDependency)"
        )
    return path


def run_asl_validator(definition: dict, timeout: float = 60) -> tuple[bool, str]:
    """Validate ``definition`` with asl-validator 4.0.0: ``(ok, combined output)``.

    Runs ``asl-validator --json-path <tmpfile>``; exit code 0 means valid, 1 invalid,
    2 a program error (reported as not ok). Note: in 4.0.0 the CLI's
    ``--no-arn-check``/``--no-path-check`` flags have no effect, so they are not offered.
    """
    validator = asl_validator_path()
    with tempfile.TemporaryDirectory(prefix="asl-") as tmp:
        path = Path(tmp) / "definition.asl.json"
        path.write_text(json.dumps(definition, indent=2))
        proc = subprocess.run(
            [str(validator), "--json-path", str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp,
        )
    output = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0, output
