"""Canary: the moto internals the local engine replaces are still where, and what, it expects."""

from __future__ import annotations

import re
from pathlib import Path

import moto

from macie_pipeline.local import patches

ROOT = Path(__file__).resolve().parents[2]


def test_every_patch_point_exists_with_the_expected_signature():
    assert patches.check_patch_points() == []


def test_the_canary_detects_a_moved_patch_point(monkeypatch):
    monkeypatch.setitem(patches.EXPECTED_SIGNATURES, "moto.awslambda.models:LambdaFunction._no_such_method", ("event",))
    monkeypatch.setitem(patches.EXPECTED_SIGNATURES, patches._WAIT, ("env", "seconds"))
    problems = patches.check_patch_points()
    assert len(problems) == 2
    assert any("_no_such_method: not found" in p for p in problems)
    assert any("parameters ('env', 'wait_seconds'), expected ('env', 'seconds')" in p for p in problems)


def test_moto_is_pinned_exactly_where_it_is_installed_from():
    assert moto.__version__ == patches.MOTO_VERSION
    pins = re.findall(r"^moto\[all\]==([\d.]+)$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert pins == [patches.MOTO_VERSION]
    pyproject = ROOT / "pyproject.toml"
    if pyproject.exists():
        assert f'moto[all]=={patches.MOTO_VERSION}' in pyproject.read_text()
