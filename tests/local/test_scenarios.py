"""The synthesized pipeline, executed end to end in moto by the local engine: every path, fail closed.

Each scenario runs the definition and Lambda assets that ``cdk synth`` wrote (docs/batching.md: the
intake queue, PrepareScan, one execution per batch with Distributed Maps over chunk files, one
Macie job per batch, per-object review), checks where every object ended and which result events
were sent, and then the invariants: nothing in the vault without a CLEAN verdict bound to the
staged version or an approval, exactly one outcome per uploaded version (events and batch files
agree), nothing lost. The last test fails if any state of the two synthesized definitions (the
Distributed Maps' children included) was never entered.

The scale scenario (1,000 objects with 1,024-byte keys) is in test_scale.py.
"""

from __future__ import annotations

import json
import time

import aws_cdk as cdk
import pytest

from macie_pipeline import (
    CustomDataIdentifier,
    DenyPolicy,
    SensitiveDataScanPipeline,
    Trigger,
)
from macie_pipeline.asl import walk_states
from macie_pipeline.contract import States
from macie_pipeline.local.engine import COVERAGE, LocalPipeline
from macie_pipeline.local.macie import MacieBehavior
from macie_pipeline.local.template import choose_pipeline, load_assembly, synth_sample

CLEAN = b"id,item,quantity\n1,pen,3\n2,paper,10\n"
CARD = b"name,card\nAlex Doe,4539 1488 0343 6467\n"
SECRET = json.dumps({"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}).encode()
CORRUPT_PARQUET = b"PAR1\x15\x04\x15\x10not really parquet"
DEFINITIONS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def sample():
    return choose_pipeline([synth_sample()], None, None)


@pytest.fixture(scope="module")
def options(tmp_path_factory):
    """A second configuration: scheduled batches of up to 50, denied objects deleted."""
    outdir = tmp_path_factory.mktemp("options-assembly")
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "OptionsStack")
    SensitiveDataScanPipeline(
        stack,
        "Gate",
        trigger=Trigger.on_schedule(max_batch_objects=50),
        deny_policy=DenyPolicy.DELETE,
        custom_data_identifiers=[CustomDataIdentifier(name="EmployeeId", regex=r"EMP-[0-9]{6}", keywords=["employee"])],
    )
    app.synth()
    return choose_pipeline(load_assembly(outdir), None, None)


def run(target, files, *, decision="approve", macie=None, setup=None, schedule=False, review_wait=30.0,
        delete_allowed=False, job_wait=None):
    """Run one scenario in a fresh engine; returns (result, engine). Checks the invariants."""
    stack, state_machine = target
    extra = {} if job_wait is None else {"job_wait_seconds": job_wait}
    with LocalPipeline(stack, state_machine, macie=macie, review_wait_seconds=review_wait, **extra) as engine:
        DEFINITIONS[stack.name] = engine.definition
        if setup:
            setup(engine)
        result = engine.run(files, decision=decision, schedule=schedule)
        violations = engine.invariant_violations(delete_allowed=delete_allowed, stored=result.stored)
        vault = [s for s in result.stored if s["zone"] == "vault"]
    assert violations == []
    engine.vault_contents = vault
    return result, engine


def scan(engine, uploads, *, decision="approve", timeout=120.0):
    """Deliver the uploads' Object Created events (intake queue), pump, and wait for the batches started."""
    engine.put_object_created_events(uploads)
    engine.pump_intake()
    return engine.wait(engine.discover_executions(), decision=decision, timeout=timeout)


def outcomes(result, key=None):
    return [e["detail"]["outcome"] for e in result.events
            if key is None or (e["detail"].get("object") or {}).get("key") == key]


def entered(result):
    """States entered by the executions of a run, the children of their Distributed Maps included."""
    return {s for execution in result.executions for s in (*execution.states, *execution.map_states)}


# ------------------------------------------------------------------------------------ happy paths
def test_clean_object_is_promoted_to_the_vault(sample):
    result, engine = run(sample, {"orders/clean.csv": CLEAN})
    item = result.by_key("orders/clean.csv")
    assert (item.integrity, item.verdict, item.outcome, item.zone, item.final_key) == (
        "VALID", "CLEAN", "VAULT", "vault", "orders/clean.csv")
    assert item.findings == {}
    assert item.tags["macie-pipeline:outcome"] == "VAULT" and item.tags["macie-pipeline:verdict"] == "CLEAN"
    assert outcomes(result) == ["VAULT"]
    assert [e.status for e in result.executions] == ["SUCCEEDED"]
    assert [n["event"] for n in result.notifications] == ["SCAN_FINISHED"]
    assert len(engine.macie.jobs) == 1
    # The Macie job was scoped by the scan-id tag, as the definition asks.
    creates = [c for c in engine.sdk_calls if c[1] == "CreateClassificationJob"]
    scope = creates[0][2]["s3JobDefinition"]["scoping"]["includes"]["and"][0]["tagScopeTerm"]
    assert scope["tagValues"][0]["key"] == "macie-pipeline:scan-id"
    assert {States.COPY_TO_QUARANTINE, States.CHECK_INTEGRITY, States.ROUTE_CHUNK} <= entered(result)


def test_finding_then_approval_reaches_the_vault_through_the_review_page(sample):
    result, engine = run(sample, {"payments.csv": CARD}, decision="approve")
    item = result.by_key("payments.csv")
    assert item.verdict == "REVIEW" and item.outcome == "APPROVED" and item.zone == "vault"
    assert item.findings == {"CREDIT_CARD_NUMBER": 1}
    # The run's generated reviewer, signed in through the local sign-in page.
    assert item.review["decision"] == "APPROVE" and item.review["reviewer"] == engine.runner.reviewer().email
    assert outcomes(result) == ["REVIEW_PENDING", "APPROVED"]
    assert [n["event"] for n in result.notifications] == ["REVIEW_REQUESTED", "SCAN_FINISHED"]
    # The reviewer's browser: the link leads to the sign-in, then the page (changes nothing), then POST once.
    assert [(m, s) for m, p, s in engine.server.requests if "/reviews/" in p] == [("GET", 302), ("GET", 200), ("POST", 200)]
    assert engine.vault_contents[0]["sha256"] == engine.uploaded[0].sha256
    assert States.APPLY_DECISIONS_TO_CHUNK in entered(result)


def test_denied_object_stays_in_quarantine(sample):
    result, _ = run(sample, {"secret.json": SECRET}, decision="deny")
    item = result.by_key("secret.json")
    assert item.findings == {"AWS_CREDENTIALS": 1}
    assert (item.outcome, item.zone) == ("DENIED", "quarantine")
    assert item.final_key.startswith("denied/") and item.final_key.endswith("/secret.json")
    assert item.review["decision"] == "DENY"


def test_custom_identifier_finding_needs_review(sample):
    text = b"roster\nemployee EMP-482913 joined\nemployee EMP-000000 is ignored\n"
    result, _ = run(sample, {"roster.txt": text}, decision="deny")
    item = result.by_key("roster.txt")
    assert item.verdict == "REVIEW" and item.findings == {"EmployeeId": 1}
    assert item.outcome == "DENIED"


def test_per_object_decisions_through_the_review_page(sample):
    """A reviewer approves some objects, denies some and leaves some undecided (denied, kept in quarantine)."""
    files = {f"held/card-{i}.csv": CARD.replace(b"Alex", f"Alex{i}".encode()) for i in range(6)}
    files["held/clean.csv"] = CLEAN
    choices = {"held/card-0.csv": "approve", "held/card-1.csv": "approve", "held/card-2.csv": "deny",
               "held/card-3.csv": "deny"}  # card-4, card-5: undecided
    result, engine = run(sample, files, decision=choices)
    fate = {o.key: (o.outcome, o.zone) for o in result.objects}
    assert fate == {
        "held/card-0.csv": ("APPROVED", "vault"), "held/card-1.csv": ("APPROVED", "vault"),
        "held/card-2.csv": ("DENIED", "quarantine"), "held/card-3.csv": ("DENIED", "quarantine"),
        "held/card-4.csv": ("DENIED", "quarantine"), "held/card-5.csv": ("DENIED", "quarantine"),
        "held/clean.csv": ("VAULT", "vault"),
    }
    reviewers = {o.key: (o.review or {}).get("reviewer") for o in result.objects if o.key.startswith("held/card")}
    assert reviewers["held/card-0.csv"] == reviewers["held/card-2.csv"] == engine.runner.reviewer().email
    assert {reviewers["held/card-4.csv"], reviewers["held/card-5.csv"]} == {"timeout"}  # denied, never decided
    assert {o.final_key.split("/")[0] for o in result.objects if o.outcome == "DENIED"} == {"denied"}
    # One review for the batch: sign-in, the page once, then one POST with the choices that finishes it.
    assert [n["event"] for n in result.notifications].count("REVIEW_REQUESTED") == 1
    assert [(m, s) for m, p, s in engine.server.requests if "/reviews/" in p] == [("GET", 302), ("GET", 200), ("POST", 200)]
    assert len(engine.macie.jobs) == 1


def test_no_answer_until_the_timeout_is_a_denial_that_never_deletes(options):
    files = {"late.csv": CARD}
    result, _ = run(options, files, decision="none", schedule=True, review_wait=1)
    item = result.by_key("late.csv")
    assert (item.outcome, item.zone) == ("DENIED", "quarantine")
    assert item.review["decision"] == "TIMEOUT" and item.review["reviewer"] == "timeout"
    assert "Review timed out" in entered(result)


def test_explicit_denial_deletes_when_configured(options):
    result, _ = run(options, {"card.csv": CARD}, decision="deny", schedule=True, delete_allowed=True)
    item = result.by_key("card.csv")
    assert (item.outcome, item.zone) == ("DELETED", "deleted")
    assert outcomes(result) == ["REVIEW_PENDING", "DELETED"]


# ---------------------------------------------------------------------------- integrity and Macie
def test_corrupt_and_empty_objects_are_quarantined(sample):
    result, _ = run(sample, {"ledger.parquet": CORRUPT_PARQUET, "empty.csv": b""})
    for key in ("ledger.parquet", "empty.csv"):
        item = result.by_key(key)
        assert (item.integrity, item.verdict, item.outcome, item.zone) == ("CORRUPT", "CORRUPT", "QUARANTINED", "quarantine")
        assert item.final_key.startswith("scans/")


def test_cancelled_macie_job_sends_everything_to_review(sample):
    result, engine = run(sample, {"clean.csv": CLEAN}, decision="deny", macie=MacieBehavior(job_status="CANCELLED"))
    item = result.by_key("clean.csv")
    assert item.verdict == "REVIEW" and item.outcome == "DENIED" and item.zone == "quarantine"
    assert "Scan incomplete" in entered(result)


def test_job_paused_by_quota_past_the_maximum_wait_is_cancelled_and_held_for_review(sample):
    """Macie pauses the job (quota) and never resumes it: one notification, polls up to the maximum
    wait, then the job is cancelled and every object is REVIEW (never the vault)."""
    result, engine = run(sample, {"clean.csv": CLEAN}, decision="deny", macie=MacieBehavior(job_status="PAUSED"),
                         job_wait=0.05)
    item = result.by_key("clean.csv")
    assert (item.verdict, item.outcome, item.zone) == ("REVIEW", "DENIED", "quarantine")
    cancels = [c for c in engine.sdk_calls if c[1] == "UpdateClassificationJob"]
    assert [c[2]["jobStatus"] for c in cancels] == ["CANCELLED"]
    assert {"Notify job paused", "Cancel Macie job", "Scan incomplete"} <= entered(result)
    assert [n["event"] for n in result.notifications].count("JOB_PAUSED") == 1
    describes = [c for c in engine.sdk_calls if c[1] == "DescribeClassificationJob"]
    assert len(describes) >= 34  # the poll limit of the sample's max_scan_wait
    assert engine.vault_contents == []


def test_job_paused_by_quota_then_resumed_completes(sample):
    result, engine = run(sample, {"clean.csv": CLEAN}, macie=MacieBehavior(job_status="PAUSED", run_seconds=0.2, resume_after_seconds=0.5),
                         job_wait=0.2)
    assert result.by_key("clean.csv").outcome == "VAULT"
    assert "Notify job paused" in entered(result) and "Cancel Macie job" not in entered(result)
    assert [n["event"] for n in result.notifications] == ["JOB_PAUSED", "SCAN_FINISHED"]


def test_slow_job_is_polled_until_complete(sample):
    result, engine = run(sample, {"clean.csv": CLEAN}, macie=MacieBehavior(running_polls=3, run_seconds=None), job_wait=0.05)
    assert result.by_key("clean.csv").outcome == "VAULT"
    assert len([c for c in engine.sdk_calls if c[1] == "DescribeClassificationJob"]) >= 4


def test_a_lost_completion_event_is_recovered_by_the_poll_backstop(sample):
    """Macie's JOB_COMPLETED never reaches CloudWatch Logs: the wait times out (the backstop) and the
    workflow describes the job itself."""
    result, engine = run(sample, {"clean.csv": CLEAN}, macie=MacieBehavior(run_seconds=0.2, lose_events=("JOB_COMPLETED",)),
                         job_wait=1.0)
    assert result.by_key("clean.csv").outcome == "VAULT"
    [execution] = result.executions
    timed_out = [e for e in execution.history if e.get("type") == "TaskTimedOut"]
    assert timed_out, "the job's wait should have ended by its timeout (the backstop)"
    assert execution.states.count(States.DESCRIBE_MACIE_JOB) >= 1


def test_throttled_job_creation_is_retried_and_creates_one_job(sample):
    files = {f"t/clean-{i}.csv": CLEAN.replace(b"pen", f"pen{i}".encode()) for i in range(5)}
    result, engine = run(sample, files, macie=MacieBehavior(throttle_creates=2))
    assert {o.outcome for o in result.objects} == {"VAULT"}
    creates = [c[2]["clientToken"] for c in engine.sdk_calls if c[1] == "CreateClassificationJob"]
    assert len(creates) == 3 and len(set(creates)) == 1
    assert len(engine.macie.jobs) == 1
    assert sum(1 for kind, _ in engine.waits if kind == "retry") >= 2


# ------------------------------------------------------------------ one object fails, the rest go on
def _vault_put(engine, key):
    vault = engine.zones["vault"]
    return lambda p: p.get("Bucket") == vault and p.get("Key") == key


def _staged_read(engine, key):
    quarantine = engine.zones["quarantine"]
    return lambda p: p.get("Bucket") == quarantine and str(p.get("Key", "")).endswith("/" + key)


ONE_OBJECT_FAILURES = {
    # step: (body of the failing object, decision, (service, operation, code, match factory), held in, zones)
    "copy": (CLEAN, "approve", ("s3", "CopyObject", "AccessDenied",
                                lambda e, k: lambda p: p.get("Bucket") == e.zones["quarantine"] and p.get("Key", "").endswith("/" + k)),
             "ingress"),
    "integrity": (CLEAN, "approve", ("s3", "GetObject", "AccessDenied", _staged_read), "ingress"),
    "routing": (CLEAN, "approve", ("s3", "CopyObject", "AccessDenied", _vault_put), "quarantine"),
    "decision": (CARD, "approve", ("s3", "CopyObject", "AccessDenied", _vault_put), "review"),
}


@pytest.mark.parametrize("step", list(ONE_OBJECT_FAILURES))
def test_one_object_failing_in_a_step_is_held_while_the_others_reach_their_outcome(sample, step):
    body, decision, (service, operation, code, match), held = ONE_OBJECT_FAILURES[step]
    files = {f"ok/clean-{i}.csv": CLEAN.replace(b"pen", f"pen{i}".encode()) for i in range(3)}
    files["ok/card.csv"] = CARD
    files["bad.csv"] = body

    def setup(engine):
        # the match names one object's calls (the handler's worker threads make them)
        engine.fail_call(service, operation, code, caller="handlers", status=403, match=match(engine, "bad.csv"))

    result, engine = run(sample, files, decision=decision, setup=setup)
    assert [e.status for e in result.executions] == ["SUCCEEDED"]
    bad = result.by_key("bad.csv")
    assert bad.outcome == "FAILED" and outcomes(result, "bad.csv")[-1] == "FAILED"
    assert f"held in {held}" in bad.reason
    assert bad.zone in (held, "several")  # several: ingress and the staged copy kept for forensics
    assert not [v for v in engine.vault_contents if v["key"] == "bad.csv"]
    assert {o.outcome for o in result.objects if o.key.startswith("ok/clean")} == {"VAULT"}
    assert result.by_key("ok/card.csv").outcome == "APPROVED"
    [summary] = [json.loads(n["message"]) for n in result.notifications if n["event"] == "SCAN_FINISHED"]
    assert "FAILED" in json.dumps(summary["summary"])


CHUNK_FAILURES = {
    # A whole chunk's handler crashes (after its retries): caught in its child workflow, objects held.
    "stage": ("transfer", "stage_chunk", CLEAN, "Chunk not staged", "ingress"),
    "integrity": ("integrity_check", "check_chunk", CLEAN, "Chunk not staged", "ingress"),
    "route": ("transfer", "route_chunk", CLEAN, "Chunk not routed", "quarantine"),
    "decide": ("transfer", "decide_chunk", CARD, "Chunk not decided", "review"),
}


def _fail_on(role, predicate, error_type="RuntimeError"):
    def setup(engine):
        def hook(event):
            if predicate(event):
                from macie_pipeline.local.functions import InjectedFault

                raise InjectedFault(error_type)
        engine.before_invoke(role, hook)
    return setup


@pytest.mark.parametrize("step", list(CHUNK_FAILURES))
def test_a_chunk_whose_handler_crashes_is_held_and_the_batch_finishes(sample, step):
    role, operation, body, reached, held = CHUNK_FAILURES[step]
    result, engine = run(sample, {"object.csv": body}, decision="approve",
                         setup=_fail_on(role, lambda e: e.get("operation") == operation))
    assert [e.status for e in result.executions] == ["SUCCEEDED"]
    assert reached in entered(result)
    item = result.by_key("object.csv")
    assert item.outcome == "FAILED" and f"held in {held}" in item.reason
    assert "VAULT" not in outcomes(result) and "APPROVED" not in outcomes(result)
    if step in ("stage", "integrity"):
        assert "No Macie job" in entered(result) and not engine.macie.jobs


def test_a_failed_step_fails_the_batch_closed(sample):
    """The evaluator crashes (every retry): Report failed batch sends FAILED for every object, held where it is."""
    files = {"a.csv": CLEAN, "b.csv": CARD}
    result, engine = run(sample, files, setup=_fail_on("evaluate_findings", lambda e: e.get("operation") == "evaluate"))
    assert [e.status for e in result.executions] == ["FAILED"]
    assert {"Report failed batch", "Notify scan failure", "Scan failed"} <= entered(result)
    assert {o.outcome for o in result.objects} == {"FAILED"}
    assert all("held in quarantine" in o.reason for o in result.objects)
    assert [n["event"] for n in result.notifications].count("SCAN_FAILED") == 1
    assert engine.vault_contents == []


def test_transient_handler_errors_are_retried(sample):
    def setup(engine):
        engine.fail("transfer", "TransientError", times=2)
        engine.fail("integrity_check", "TransientError", times=1)
    result, engine = run(sample, {"clean.csv": CLEAN}, setup=setup)
    assert result.by_key("clean.csv").outcome == "VAULT"
    assert [e.status for e in result.executions] == ["SUCCEEDED"]
    assert sum(1 for kind, _ in engine.waits if kind == "retry") == 3


def test_throttled_lambda_invocations_are_retried(sample):
    """Lambda throttles the workflow's first two invocations (Copy to quarantine, in the map's child):
    Step Functions names the error Lambda.TooManyRequestsException, which every Lambda task retries."""
    def setup(engine):
        engine.fail_call("lambda", "Invoke", "TooManyRequestsException", times=2, caller="workflow", status=429)
    result, engine = run(sample, {"clean.csv": CLEAN}, setup=setup)
    assert result.by_key("clean.csv").outcome == "VAULT"
    assert [e.status for e in result.executions] == ["SUCCEEDED"]
    assert sum(1 for kind, _ in engine.waits if kind == "retry") == 2
    events = [e for run_ in engine.host.map_runs.values() for e in run_.events] + result.executions[0].history
    failed = [e for e in events if e.get("type") == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["Lambda.TooManyRequestsException"] * 2


def test_unknown_verdict_in_the_batch_files_never_reaches_the_vault(sample):
    """Someone rewrites the verdict lines (PROBABLY_FINE): routing refuses the chunk, the object is held."""
    def setup(engine):
        def tamper(event):
            if event.get("operation") != "route_chunk":
                return
            s3, bucket = engine._s3, engine.deployment.batch_bucket
            key = f"batches/{event['batchId']}/verdicts/{event['chunk']:06d}.jsonl"
            lines = [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()]
            body = "".join(json.dumps({**line, "verdict": "PROBABLY_FINE"}) + "\n" for line in lines)
            s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        engine.before_invoke("transfer", tamper)
    result, engine = run(sample, {"clean.csv": CLEAN}, setup=setup)
    item = result.by_key("clean.csv")
    assert item.outcome == "FAILED" and item.zone == "several"  # the ingress version and the staged copy, both kept
    assert "Chunk not routed" in entered(result)
    assert engine.vault_contents == []


def test_ingress_cleanup_failure_is_reported_and_leaves_a_duplicate_not_a_loss(sample):
    def setup(engine):
        ingress = engine.zones["ingress"]
        engine.fail_call("s3", "DeleteObject", "AccessDenied", caller="handlers", status=403,
                         match=lambda p: p.get("Bucket") == ingress)
    result, engine = run(sample, {"clean.csv": CLEAN}, setup=setup)
    item = result.by_key("clean.csv")
    assert item.outcome == "VAULT" and item.zone == "several"  # vault, and the reported ingress leftover
    assert "INGRESS_CLEANUP_FAILED" in outcomes(result)
    assert [e.status for e in result.executions] == ["SUCCEEDED"]


def test_invalid_input_is_reported_and_moves_nothing(sample):
    stack, state_machine = sample
    with LocalPipeline(stack, state_machine) as engine:
        arn = engine.start({"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name": engine.zones["ingress"]}}})
        [execution] = engine.wait([arn])
        notes = engine.notifications
    assert execution.status == "FAILED" and "Invalid input" in execution.states
    COVERAGE.update(execution.states)
    assert [n["event"] for n in notes] == ["INVALID_INPUT"]


def test_a_batch_with_no_object_is_nothing_to_scan(sample):
    stack, state_machine = sample
    with LocalPipeline(stack, state_machine) as engine:
        bucket = engine.deployment.batch_bucket
        arn = engine.start({"batchId": "b-empty", "trigger": "sweep", "objectCount": 0, "chunkCount": 0,
                            "manifest": {"bucket": bucket, "chunks": "batches/b-empty/chunks.json"}})
        [execution] = engine.wait([arn])
    assert execution.status == "SUCCEEDED" and "Nothing to scan" in execution.states
    COVERAGE.update(execution.states)


# ------------------------------------------------------------------------- verdicts nobody can forge
def _held_reasons(result, key):
    return next(e["detail"]["reasons"] for e in result.events
                if e["detail"]["outcome"] == "REVIEW_PENDING" and e["detail"]["object"]["key"] == key)


def test_a_staged_copy_replaced_in_quarantine_before_the_job_is_never_promoted(sample):
    """Someone with s3:PutObject on quarantine overwrites scans/<batch>/<key> (scan tag and all) with a
    harmless file after staging, so Macie analyses the replacement. The staged version is the one
    that would move on: no result about it means review, never the vault."""
    def setup(engine):
        def replace_staged_copies(event):
            s3, bucket = engine._s3, engine.deployment.batch_bucket
            key = f"batches/{event['batchId']}/copied/{event['chunk']:06d}.jsonl"
            for raw in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines():
                staged = json.loads(raw)["staged"]
                tags = s3.get_object_tagging(Bucket=staged["bucket"], Key=staged["key"], VersionId=staged["versionId"])["TagSet"]
                s3.put_object(Bucket=staged["bucket"], Key=staged["key"], Body=CLEAN,
                              Tagging="&".join(f"{t['Key']}={t['Value']}" for t in tags))
        # Between Copy to quarantine and Start Macie job: the staged version is pinned in copied/.
        engine.before_invoke("integrity_check", replace_staged_copies)
    result, engine = run(sample, {"payments.csv": CARD}, decision="deny", setup=setup)
    item = result.by_key("payments.csv")
    assert (item.verdict, item.outcome, item.zone) == ("REVIEW", "DENIED", "quarantine")
    assert engine.vault_contents == [] and "VAULT" not in outcomes(result)
    assert any("not the staged version" in reason for reason in _held_reasons(result, "payments.csv"))
    assert engine.macie.findings == {}  # Macie saw only the harmless replacement


def test_detections_of_a_finding_not_yet_listed_still_need_review(sample):
    """The discovery result reports a card number, but the job's finding is not listed (suppressed,
    archived or late): the object is held for review, not promoted."""
    def setup(engine):
        engine.before_invoke("evaluate_findings", lambda event: engine.macie.findings.clear())
    result, engine = run(sample, {"payments.csv": CARD}, decision="deny", setup=setup)
    item = result.by_key("payments.csv")
    assert (item.verdict, item.outcome, item.zone) == ("REVIEW", "DENIED", "quarantine")
    assert _held_reasons(result, "payments.csv") == [
        "Macie's discovery result reports 1 detection(s) of FINANCIAL_INFORMATION without a listed finding"
    ]


def test_unreadable_discovery_results_send_objects_to_review_and_tell_the_operators(sample):
    """The evaluator may not list the discovery results (AccessDenied): no scan failure, every object
    to review, and the scan summary notification says what to grant."""
    def setup(engine):
        batch_bucket = engine.deployment.batch_bucket

        def deny_listing(event):
            if event.get("operation") == "evaluate":
                engine.fail_call("s3", "ListObjectsV2", "AccessDenied", caller="handlers", status=403,
                                 match=lambda p: p.get("Bucket") != batch_bucket)
        engine.before_invoke("evaluate_findings", deny_listing)
    result, engine = run(sample, {"clean.csv": CLEAN}, decision="deny", setup=setup)
    item = result.by_key("clean.csv")
    assert (item.verdict, item.outcome, item.zone) == ("REVIEW", "DENIED", "quarantine")
    assert [e.status for e in result.executions] == ["SUCCEEDED"]
    [reason] = _held_reasons(result, "clean.csv")
    assert "could not be read (AccessDenied)" in reason
    [finished] = [json.loads(n["message"]) for n in result.notifications if n["event"] == "SCAN_FINISHED"]
    results = finished["summary"]["discoveryResults"]
    assert (results["readable"], results["error"]) == (False, "AccessDenied")
    assert results["location"] in reason and "s3:ListBucket" in results["grant"]


# --------------------------------------------------------------------------- duplicates and races
def test_duplicate_events_have_one_outcome_per_version(sample):
    """The same Object Created event three times: twice in one queue batch, once more after the first
    batch started. One batch scans the version; the duplicate is skipped."""
    stack, state_machine = sample
    with LocalPipeline(stack, state_machine) as engine:
        DEFINITIONS[stack.name] = engine.definition
        uploaded = engine.upload("twice.csv", CLEAN)
        other = engine.upload("once.csv", CLEAN.replace(b"pen", b"ink"))
        engine.put_object_created_events([uploaded, uploaded, other])
        engine.pump_intake()
        first = engine.discover_executions()
        engine.put_object_created_events([uploaded])
        engine.pump_intake()
        executions = engine.wait(first + engine.discover_executions())
        violations = engine.invariant_violations()
        events = engine.events
    assert violations == []
    assert all(e.status == "SUCCEEDED" for e in executions)
    by_key = sorted((e["detail"]["object"]["key"], e["detail"]["outcome"]) for e in events)
    assert by_key == [("once.csv", "VAULT"), ("twice.csv", "VAULT")]


def test_a_lost_event_is_caught_by_the_sweep_for_lost_events(sample):
    """An upload whose Object Created event never arrived: the SweepRule's sweep ({"sweep": "lost"})
    claims it once it is older than LOST_EVENT_AGE_SECONDS; objects whose events arrived are not rescanned."""
    stack, state_machine = sample
    with LocalPipeline(stack, state_machine) as engine:
        DEFINITIONS[stack.name] = engine.definition
        engine.set_environment("prepare_scan", LOST_EVENT_AGE_SECONDS="1")
        seen = engine.upload("seen.csv", CLEAN)
        lost = engine.upload("lost.csv", CLEAN.replace(b"pen", b"ink"))
        first = scan(engine, [seen])
        time.sleep(1.1)
        fired = engine.sweep("lost")
        assert fired, "the sample has a sweep for lost events"
        later = engine.wait(engine.discover_executions())
        violations = engine.invariant_violations()
        events = engine.events
    assert violations == []
    assert [e.status for e in first + later] == ["SUCCEEDED", "SUCCEEDED"]
    outcome = {(e["detail"]["object"]["key"], e["detail"]["object"]["versionId"]): e["detail"]["outcome"] for e in events}
    assert outcome == {("seen.csv", seen.version_id): "VAULT", ("lost.csv", lost.version_id): "VAULT"}
    assert json.loads(later[0].history[0]["executionStartedEventDetails"]["input"])["trigger"] == "sweep"


def test_object_overwritten_while_scanned_promotes_the_scanned_version(sample):
    stack, state_machine = sample
    with LocalPipeline(stack, state_machine) as engine:
        def upload_a_newer_version(event):
            if len(engine.uploaded) == 1:
                engine.upload("data.csv", b"id,item\n9,newer version\n")
        engine.before_invoke("evaluate_findings", upload_a_newer_version)
        first = engine.upload("data.csv", CLEAN)
        scan(engine, [first])
        vault_after_first = [v["sha256"] for v in engine.stored_versions() if v["zone"] == "vault"]
        newer = engine.uploaded[1]
        scan(engine, [newer])  # the newer version's own event
        violations = engine.invariant_violations()
        vault = [(v["sha256"], v["isLatest"]) for v in engine.stored_versions() if v["zone"] == "vault"]
    assert violations == []
    assert vault_after_first == [first.sha256]
    assert sorted(vault) == sorted([(first.sha256, False), (newer.sha256, True)])


def test_object_deleted_while_scanned_is_still_accounted_for(sample):
    def setup(engine):
        engine.before_invoke("evaluate_findings", lambda event: engine._s3.delete_object(Bucket=engine.zones["ingress"], Key="gone.csv"))
    result, engine = run(sample, {"gone.csv": CLEAN}, setup=setup)
    assert result.by_key("gone.csv").zone == "vault"
    assert result.by_key("gone.csv").outcome == "VAULT"


def test_odd_keys_keep_their_exact_names(sample):
    keys = ["with space.csv", "ünïcødé/データ.csv", "a+b=c.csv", "100%25 off.csv", "/".join(["deep"] * 30) + "/x.csv"]
    result, _ = run(sample, {k: CLEAN for k in keys})
    assert {(o.key, o.zone, o.final_key) for o in result.objects} == {(k, "vault", k) for k in keys}


def _long_key(prefix: str, suffix: str = ".csv") -> str:
    """A key of exactly 1,024 bytes (S3's limit), with multi-byte characters."""
    body = prefix + "é" * 200
    return body + "k" * (1024 - len(body.encode()) - len(suffix)) + suffix


def test_a_long_key_goes_through_staging_review_denied_and_superseded(sample):
    """Keys of 1,024 bytes: staged (scans/<batch>/#sha256/...), held for review, denied, superseded;
    the original key travels in the events and the vault keeps it whole."""
    clean_key, held_key = _long_key("long/clean-"), _long_key("long/held-")
    assert len(clean_key.encode()) == len(held_key.encode()) == 1024
    stack, state_machine = sample
    with LocalPipeline(stack, state_machine) as engine:
        DEFINITIONS[stack.name] = engine.definition
        older = engine.upload(clean_key, CLEAN)
        time.sleep(1.05 - time.time() % 1)
        newer = engine.upload(clean_key, NEWER)
        held = engine.upload(held_key, CARD)
        scan(engine, [newer, held], decision="deny")
        scan(engine, [older])  # scanned late: kept aside in superseded/
        violations = engine.invariant_violations()
        stored = engine.stored_versions()
        events = engine.events
        staged_keys = [line["staged"]["key"] for arn in engine.history.arns
                       for line in _lines(engine, arn, "copied")]
    assert violations == []
    assert all(k.startswith("scans/") and "/#sha256/" in k for k in staged_keys)
    zones = {(s["zone"], s["key"].split("/")[0], s["key"].split("/")[-2] if "/#sha256/" in s["key"] else None)
             for s in stored if s["zone"] != "ingress"}
    assert ("vault", "long", None) in zones
    assert ("quarantine", "denied", "#sha256") in zones and ("quarantine", "superseded", "#sha256") in zones
    by_version = {e["detail"]["object"]["versionId"]: e["detail"] for e in events
                  if e["detail"]["outcome"] in ("VAULT", "DENIED", "SUPERSEDED")}
    assert by_version[newer.version_id]["outcome"] == "VAULT"
    assert by_version[held.version_id]["outcome"] == "DENIED"
    assert by_version[held.version_id]["object"]["key"] == held_key
    assert by_version[older.version_id]["outcome"] == "SUPERSEDED"
    assert [e["detail"]["outcome"] for e in events if e["detail"]["object"]["key"] == held_key] == ["REVIEW_PENDING", "DENIED"]


def _lines(engine, arn, stage):
    from macie_pipeline.local import batchfiles

    return list(batchfiles.stage_lines(engine._s3, engine.deployment.batch_bucket, arn.rsplit(":", 1)[-1], stage))


# ---------------------------------------------------------------------------------- schedules
def test_scheduled_batch_of_fifty_objects_uses_one_macie_job(options):
    files = {f"batch/clean-{i:02}.csv": CLEAN.replace(b"pen", f"pen{i}".encode()) for i in range(20)}
    files.update({f"batch/card-{i:02}.csv": CARD.replace(b"Alex", f"Alex{i}".encode()) for i in range(30)})
    result, engine = run(options, files, decision="approve", schedule=True)
    assert len(result.executions) == 1 and result.executions[0].status == "SUCCEEDED"
    assert len(engine.macie.jobs) == 1
    assert {o.outcome for o in result.objects if "clean" in o.key} == {"VAULT"}
    assert {o.outcome for o in result.objects if "card" in o.key} == {"APPROVED"}
    assert [n["event"] for n in result.notifications].count("REVIEW_REQUESTED") == 1


def test_the_schedule_sweeps_more_objects_than_one_listing_page(options):
    """The sweep pages ListObjectVersions (page size capped at 40 here; moto's default page is 1,000):
    all 130 objects are scanned, 50 per batch (max_batch_objects), one Macie job per batch."""
    files = {f"sweep/clean-{i:03}.csv": CLEAN.replace(b"pen", f"pen{i}".encode()) for i in range(130)}
    pages = []

    def setup(engine):
        engine.page_size("s3", "ListObjectVersions", "MaxKeys", 40)
        engine.observe_calls(lambda caller, service, op, params: pages.append(params)
                             if (caller, op) == ("prepare_scan", "ListObjectVersions") else None)

    result, engine = run(options, files, schedule=True, setup=setup)
    assert {o.outcome for o in result.objects} == {"VAULT"} and len(result.objects) == 130
    assert len(pages) >= 4  # 130 versions at 40 a page
    counts = sorted(json.loads(e.history[0]["executionStartedEventDetails"]["input"])["objectCount"] for e in result.executions)
    assert counts == [30, 50, 50] and len(engine.macie.jobs) == 3


# ------------------------------------------------------------- an older version promoted late (issue 10)
NEWER = b"id,item,quantity\n1,pen,4\n"


def _older_then_newer(engine, key, older_body, newer_body):
    """Two uploads of ``key`` a second apart (S3's LastModified has a one-second resolution)."""
    older = engine.upload(key, older_body)
    time.sleep(1.05 - time.time() % 1)
    return older, engine.upload(key, newer_body)


def _superseded_scenario(target, older_body, *, delete_allowed=False):
    """The newer version is scanned and promoted first; then the older one's scan reaches promotion."""
    stack, state_machine = target
    with LocalPipeline(stack, state_machine) as engine:
        DEFINITIONS[stack.name] = engine.definition
        older, newer = _older_then_newer(engine, "orders/late.csv", older_body, NEWER)
        [first] = scan(engine, [newer])
        [late] = scan(engine, [older])
        violations = engine.invariant_violations(delete_allowed=delete_allowed)
        stored = engine.stored_versions()
        events = engine.events
    assert violations == []
    return older, newer, (first, late), stored, events


def _assert_kept_aside(older, newer, stored, events, outcome_of_newer):
    vault = [s for s in stored if s["zone"] == "vault"]
    assert [(v["sha256"], v["isLatest"]) for v in vault] == [(newer.sha256, True)]  # the older never became current
    kept = [s for s in stored if s["sha256"] == older.sha256]
    assert [(k["zone"], k["key"].split("/")[0], k["tags"]["macie-pipeline:outcome"]) for k in kept] == [
        ("quarantine", "superseded", "SUPERSEDED")]
    by_version = {(e["detail"].get("object") or {}).get("versionId"): e["detail"] for e in events
                  if e["detail"]["outcome"] in (outcome_of_newer, "SUPERSEDED")}
    assert by_version[newer.version_id]["outcome"] == outcome_of_newer
    report = by_version[older.version_id]
    assert report["outcome"] == "SUPERSEDED" and report["location"]["key"] == kept[0]["key"]
    assert report["location"]["supersededBy"]["key"] == "orders/late.csv"


def test_a_clean_older_version_scanned_late_never_replaces_the_newer_one_in_the_vault(sample):
    older, newer, executions, stored, events = _superseded_scenario(sample, CLEAN)
    _assert_kept_aside(older, newer, stored, events, "VAULT")
    assert [e.status for e in executions] == ["SUCCEEDED", "SUCCEEDED"]


def test_an_older_version_approved_after_a_newer_one_was_promoted_is_kept_aside(sample):
    older, newer, executions, stored, events = _superseded_scenario(sample, CARD)
    _assert_kept_aside(older, newer, stored, events, "VAULT")
    assert [e.status for e in executions] == ["SUCCEEDED", "SUCCEEDED"]
    report = next(e["detail"] for e in events if e["detail"]["outcome"] == "SUPERSEDED")
    assert report["review"]["decision"] == "APPROVE"


def test_the_invariant_checker_catches_a_vault_bypass_and_a_lost_object(sample):
    """The checker can fail: bytes put into the vault behind the workflow's back, and an object destroyed."""
    stack, state_machine = sample
    with LocalPipeline(stack, state_machine) as engine:
        engine.run({"card.csv": CARD, "doomed.csv": CLEAN.replace(b"pen", b"ink")}, decision="deny")
        s3 = engine._s3
        s3.put_object(Bucket=engine.zones["vault"], Key="card.csv", Body=CARD)  # the bypass
        for version in s3.list_object_versions(Bucket=engine.zones["vault"], Prefix="doomed.csv")["Versions"]:
            s3.delete_object(Bucket=engine.zones["vault"], Key="doomed.csv", VersionId=version["VersionId"])
        violations = engine.invariant_violations()
    assert len(violations) == 3, violations
    assert any(v.startswith("card.csv (") and "is in 2 places: quarantine:denied/" in v for v in violations)
    assert any(v.startswith("doomed.csv (") and v.endswith("is in 0 places: nowhere") for v in violations)
    assert any(v.startswith("vault:card.csv (") and v.endswith("has no CLEAN verdict or approval") for v in violations)


def test_the_invariant_checker_catches_a_missing_outcome_event(sample):
    """A version whose result event never came (the batch files say VAULT) is reported."""
    stack, state_machine = sample
    with LocalPipeline(stack, state_machine) as engine:
        engine.run({"quiet.csv": CLEAN})
        engine.inspector._events.clear()
        violations = engine.invariant_violations()
    assert len(violations) == 1 and violations[0].startswith("quiet.csv (") and "has 0 outcomes" in violations[0]


# ------------------------------------------------------------------------------------- coverage
def test_zz_every_state_of_both_definitions_was_entered():
    """Runs last in this file: the scenarios above (and test_scale.py, test_review_browser.py) together
    enter every state, the Distributed Maps' children included."""
    assert set(DEFINITIONS) == {"SensitiveDataScanPipelineSample", "OptionsStack"}, "run the whole file"
    every = {name for definition in DEFINITIONS.values() for _, name, _ in walk_states(definition["States"])}
    never = sorted(every - set(COVERAGE))
    assert never == []
