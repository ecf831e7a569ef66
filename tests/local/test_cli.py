"""``python -m macie_pipeline.local run``: what a new user types, in a subprocess, on the shipped samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "macie_pipeline.local", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_samples_as_json_with_every_reviewer_denying():
    done = cli("run", "samples", "--decision", "deny", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["key"]: row for row in json.loads(done.stdout)}
    assert set(rows) == {"clean_orders.csv", "customer_payments.csv", "deploy_config.json", "ledger.parquet", "staff_roster.csv"}
    for row in rows.values():
        assert set(row) >= {"key", "integrity", "findings", "verdict", "bucket", "final_key", "tags"}
    summary = {k: (r["integrity"], r["verdict"], r["zone"]) for k, r in rows.items()}
    assert summary == {
        "clean_orders.csv": ("VALID", "CLEAN", "vault"),  # its card number is on the sample's allow list
        "customer_payments.csv": ("VALID", "REVIEW", "quarantine"),
        "deploy_config.json": ("VALID", "REVIEW", "quarantine"),
        "ledger.parquet": ("CORRUPT", "CORRUPT", "quarantine"),
        "staff_roster.csv": ("VALID", "REVIEW", "quarantine"),
    }
    assert rows["customer_payments.csv"]["findings"] == {"CREDIT_CARD_NUMBER": 3}
    assert rows["deploy_config.json"]["findings"] == {"AWS_CREDENTIALS": 1}
    assert rows["staff_roster.csv"]["findings"] == {"EmployeeId": 1}
    assert rows["clean_orders.csv"]["final_key"] == "clean_orders.csv"
    assert rows["clean_orders.csv"]["tags"]["macie-pipeline:outcome"] == "VAULT"


def test_table_output_and_clear_errors_on_bad_input(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"id\n1\n")
    done = cli("run", str(tmp_path / "a.csv"), "--decision", "approve")
    assert done.returncode == 0, done.stderr
    header, rule, row = done.stdout.splitlines()
    assert header.split()[:4] == ["key", "integrity", "findings", "verdict"]
    assert row.split()[:4] == ["a.csv", "VALID", "-", "CLEAN"]

    missing = cli("run", str(tmp_path / "nope"), str(tmp_path / "empty"))
    assert missing.returncode == 2
    assert "nope: no such file or directory" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = cli("run", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "the directory has no files" in empty.stderr
    bad_template = tmp_path / "t.json"
    bad_template.write_text("{}")
    wrong = cli("run", str(tmp_path / "a.csv"), "--template", str(bad_template))
    assert wrong.returncode == 2 and "has no Resources" in wrong.stderr
    bad_decision = cli("run", str(tmp_path / "a.csv"), "--decision", "maybe")
    assert bad_decision.returncode == 2 and "invalid choice" in bad_decision.stderr


def test_a_cdk_app_command_is_synthesized_and_run(tmp_path):
    """--app: the way a team tries its own app (here the repository's app.py, with cdk-nag)."""
    (tmp_path / "orders.csv").write_bytes(b"id,item\n1,pen\n")
    done = cli("run", str(tmp_path / "orders.csv"), "--app", f"{sys.executable} app.py", "--json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert (row["key"], row["verdict"], row["zone"]) == ("orders.csv", "CLEAN", "vault")
