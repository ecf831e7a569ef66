"""``python -m macie_pipeline.local run``: what a new user types, in a subprocess, on the shipped samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from macie_pipeline.local.sign_in import ReviewerBrowser

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
    # who decided: the run's generated, signed-in reviewer, as the result event records it
    review = rows["customer_payments.csv"]["review"]
    assert review["decision"] == "DENY" and review["reviewer"] == review["reviewerEmail"]
    assert "@" in review["reviewer"] and review["reviewerSub"] and "reviewers" in review["reviewerGroups"]
    assert "review" not in rows["clean_orders.csv"]


def test_table_output_and_clear_errors_on_bad_input(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"id\n1\n")
    done = cli("run", str(tmp_path / "a.csv"), "--decision", "approve")
    assert done.returncode == 0, done.stderr
    header, rule, row, summary = done.stdout.splitlines()
    assert header.split()[:4] == ["key", "integrity", "findings", "verdict"]
    assert row.split()[:4] == ["a.csv", "VALID", "-", "CLEAN"]
    assert summary == "1 object: 1 in the vault"

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


def _without_jsii_silencing() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE")}


def test_odd_paths_get_one_clear_line_and_nothing_hangs(tmp_path):
    odd = tmp_path / "odd"
    (odd / "sub").mkdir(parents=True)
    (tmp_path / "real").mkdir()
    (odd / "ok.csv").write_bytes(b"a,b\n1,2\n")
    (tmp_path / "real" / "r.csv").write_bytes(b"a\n1\n")
    (odd / "linked").symlink_to(tmp_path / "real")  # a linked directory is walked
    (odd / "sub" / "up").symlink_to(odd)  # ... once, even when a link leads back
    (odd / "broken").symlink_to(tmp_path / "nowhere")
    (odd / "loop1").symlink_to(odd / "loop2")
    (odd / "loop2").symlink_to(odd / "loop1")
    os.mkfifo(odd / "pipe")  # reading it would block forever
    (odd / "new\nline.csv").write_bytes(b"n\n1\n")

    bad = cli("run", str(odd / "broken"), str(odd / "pipe"), str(odd / "loop1"), str(tmp_path / "nope"))
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.splitlines() == [
        "error: Cannot run the pipeline on these paths:",
        f"- {odd / 'broken'}: broken symbolic link (to {tmp_path / 'nowhere'})",
        f"- {odd / 'pipe'}: not a regular file (a FIFO): only files and directories can be scanned",
        f"- {odd / 'loop1'}: symbolic link loop",
        f"- {tmp_path / 'nope'}: no such file or directory",
    ]

    env = dict(_without_jsii_silencing(), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "macie_pipeline.local", "run", str(odd), "--decision", "approve"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: {odd / 'broken'}: skipped, broken symbolic link (to {tmp_path / 'nowhere'})",
        f"note: {odd / 'loop1'}: skipped, symbolic link loop",
        f"note: {odd / 'loop2'}: skipped, symbolic link loop",
        f"note: {odd / 'pipe'}: skipped, a FIFO",
        f"note: {odd / 'sub' / 'up'}: skipped, a link to a directory already included ({odd})",
    ]
    assert "Node" not in done.stderr and "b'!!" not in done.stderr, "the jsii banner must not reach the user"
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["key", "integrity", "findings", "verdict", "outcome", "where", "final", "key", "reason"]
    keys = sorted(line.split()[0] for line in lines[2:-1])
    assert keys == ["linked/r.csv", "new\\nline.csv", "ok.csv"], "one row per object, the newline shown escaped"
    assert lines[-1] == "3 objects: 3 in the vault"


def test_fail_on_reasons_and_summary_for_ci(tmp_path):
    (tmp_path / "cards.csv").write_bytes(b"name,card\nAda,5555-5555-5555-4444\n")
    (tmp_path / "clean.csv").write_bytes(b"id,item\n1,pen\n")
    held = cli("run", str(tmp_path), "--decision", "deny", "--json", "--fail-on", "held")
    assert held.returncode == 1, held.stderr
    rows = {row["key"]: row for row in json.loads(held.stdout)}
    assert (rows["cards.csv"]["outcome"], rows["clean.csv"]["outcome"]) == ("DENIED", "VAULT")
    assert rows["cards.csv"]["reason"] == "1 HIGH-severity Macie finding(s); the finding policy requires review"
    assert "--fail-on held: cards.csv (DENIED, verdict REVIEW)" in held.stderr
    assert "clean.csv (" not in held.stderr
    assert "2 objects: 1 in the vault, 1 denied (quarantined)" in held.stderr

    clean_only = cli("run", str(tmp_path / "clean.csv"), "--fail-on", "any")
    assert clean_only.returncode == 0, clean_only.stderr
    assert clean_only.stdout.splitlines()[-1] == "1 object: 1 in the vault"


def test_manual_decision_prints_the_review_link_and_waits_for_a_person(tmp_path):
    import re
    import urllib.error
    import urllib.request

    (tmp_path / "cards.csv").write_bytes(b"name,card\nAda,5555-5555-5555-4444\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "macie_pipeline.local", "run", str(tmp_path / "cards.csv"),
                                "--decision", "manual", "--json", "--timeout", "300"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        link = credentials = None
        for line in process.stderr:
            found = re.search(r"open (http://127\.0\.0\.1:\d+/\S+)", line)
            link = found.group(1) if found else link
            signed = re.search(r"sign in as (\S+) with password (\S+)", line)
            if signed:
                credentials = signed.groups()
                break
        assert link and credentials, "the review link and the generated reviewer's sign-in are printed"
        # The link alone shows nothing: it leads to the sign-in.
        with pytest.raises(urllib.error.HTTPError) as not_signed_in:
            urllib.request.urlopen(urllib.request.Request(link, data=b"decision=approve", method="POST"), timeout=30)
        assert not_signed_in.value.code == 401
        person = ReviewerBrowser(*credentials)
        status, page = person.open(link)
        assert status == 200 and "cards.csv" in page and f"Signed in as <strong>{credentials[0]}</strong>" in page
        assert person.post_form(link, page, {"decision": "approve"})[0] == 200
        stdout, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    [row] = json.loads(stdout)
    assert (row["verdict"], row["outcome"], row["zone"]) == ("REVIEW", "APPROVED", "vault")


def test_help_shows_examples_and_exit_codes_in_plain_text():
    done = cli("run", "--help")
    assert done.returncode == 0
    assert "examples:" in done.stdout and "exit codes:" in done.stdout and "--fail-on" in done.stdout
    assert "``" not in done.stdout and ":param" not in done.stdout


def test_a_missing_extra_is_named_with_the_command_that_installs_it():
    """As without ``pip install 'macie-pipeline[local]'``: boto3 and moto cannot be imported."""
    blocked = "import sys, runpy; sys.modules['boto3'] = None; sys.modules['moto'] = None; " \
              "sys.argv = ['macie_pipeline.local', 'run', 'samples']; runpy.run_module('macie_pipeline.local', run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", blocked], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "error: the local engine needs the [local] extra (missing: boto3, moto): pip install 'macie-pipeline[local]'\n"
    library = subprocess.run([sys.executable, "-c", "import sys; sys.modules['boto3'] = None\n"
                              "from macie_pipeline.local import LocalPipeline"],
                             cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120)
    assert library.returncode == 1
    assert "macie_pipeline.local needs the [local] extra (boto3 is missing): pip install 'macie-pipeline[local]'" in library.stderr


def test_a_failed_execution_is_exit_3_with_the_notification_people_must_act_on(capsys):
    """A real failure (the evaluator crashes in the engine): the batch fails, the CLI's report names it."""
    from macie_pipeline.local import LocalPipeline, MacieBehavior, choose_pipeline, synth_sample
    from macie_pipeline.local.cli import EXIT_PIPELINE_FAILED, report

    stack, state_machine = choose_pipeline([synth_sample()], None, None)
    with LocalPipeline(stack, state_machine, macie=MacieBehavior(job_status="COMPLETE")) as engine:
        engine.fail("evaluate_findings")
        result = engine.run({"orders.csv": b"id,item\n1,pen\n"}, decision="none", timeout=120)
    assert report(result) == EXIT_PIPELINE_FAILED
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "1 object: 1 failed (held)"
    assert "FAILED" in out.splitlines()[2] and "held in quarantine" in out.splitlines()[2]  # staged before the crash
    assert "note: execution" in err and "FAILED" in err
    assert "notification (SCAN_FAILED): Sensitive data scan FAILED: objects held, action needed:" in err


def test_an_object_failing_alone_is_exit_3_while_its_batch_goes_on(capsys):
    """The integrity check crashes on the only chunk: the execution succeeds, the object is held in ingress."""
    from macie_pipeline.local import LocalPipeline, MacieBehavior, choose_pipeline, synth_sample
    from macie_pipeline.local.cli import EXIT_PIPELINE_FAILED, report

    stack, state_machine = choose_pipeline([synth_sample()], None, None)
    with LocalPipeline(stack, state_machine, macie=MacieBehavior(job_status="COMPLETE")) as engine:
        engine.fail("integrity_check")
        result = engine.run({"orders.csv": b"id,item\n1,pen\n"}, decision="none", timeout=120)
    assert [e.status for e in result.executions] == ["SUCCEEDED"]
    assert report(result) == EXIT_PIPELINE_FAILED
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "1 object: 1 failed (held)"
    assert "held in ingress" in out.splitlines()[2]
    assert "1 object(s) failed and are held" in err


def test_progress_counts_objects_not_executions():
    """The watcher hears objects finished out of objects uploaded (one batch holds them all)."""
    from macie_pipeline.local import LocalPipeline, choose_pipeline, synth_sample

    heard = []

    class Watch:
        def review_requested(self, link, message):
            pass

        def progress(self, finished, total):
            heard.append((finished, total))

    stack, state_machine = choose_pipeline([synth_sample()], None, None)
    files = {f"p/{i}.csv": f"id,item\n{i},pen\n".encode() for i in range(4)}
    with LocalPipeline(stack, state_machine) as engine:
        result = engine.run(files, decision="none", timeout=120, watch=Watch())
    assert len(result.executions) == 1
    assert {total for _, total in heard} == {4}
    assert heard[-1] == (4, 4) and heard[0][0] == 0
    assert [f for f, _ in heard] == sorted(f for f, _ in heard)


def test_the_default_timeout_grows_with_the_files_given():
    """A fixed 300 s gave up on a directory of a few thousand files, which take the engine tens of minutes."""
    from macie_pipeline.local.cli import run_timeout

    assert run_timeout(None, 5) == 302.5
    assert run_timeout(None, 3000) == 1800.0  # 3,000 files at about 0.25 s each need ~750 s
    assert run_timeout(60.0, 3000) == 60.0  # what the user says wins
