"""The synthesized pipeline, executed end to end in moto by the local engine: every path, fail closed.

Each scenario runs the definition and Lambda assets that ``cdk synth`` wrote, checks where every
object ended and which result events were sent, and then the invariants: each uploaded version is
in exactly one place, and nothing reached the vault without a CLEAN verdict or an approval. The
last test fails if any state of the two synthesized definitions was never entered.
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
    target = choose_pipeline([synth_sample()], None, None)
    return target


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
        delete_allowed=False):
    """Run one scenario in a fresh engine; returns (result, engine). Checks the invariants."""
    stack, state_machine = target
    with LocalPipeline(stack, state_machine, macie=macie, review_wait_seconds=review_wait) as engine:
        DEFINITIONS[stack.name] = engine.definition
        if setup:
            setup(engine)
        result = engine.run(files, decision=decision, schedule=schedule)
        violations = engine.invariant_violations(delete_allowed=delete_allowed)
        vault = [s for s in engine.stored_versions() if s["zone"] == "vault"]
    assert violations == []
    engine.vault_contents = vault
    return result, engine


def outcomes(result, key=None):
    return [e["detail"]["outcome"] for e in result.events
            if key is None or (e["detail"].get("object") or {}).get("key") == key]


def entered(result):
    return {s for execution in result.executions for s in execution.states}


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


def test_finding_then_approval_reaches_the_vault_through_the_review_page(sample):
    result, engine = run(sample, {"payments.csv": CARD}, decision="approve")
    item = result.by_key("payments.csv")
    assert item.verdict == "REVIEW" and item.outcome == "APPROVED" and item.zone == "vault"
    assert item.findings == {"CREDIT_CARD_NUMBER": 1}
    assert item.review["decision"] == "APPROVE" and item.review["reviewer"] == "anonymous@127.0.0.1"
    assert outcomes(result) == ["REVIEW_PENDING", "APPROVED"]
    assert [n["event"] for n in result.notifications] == ["REVIEW_REQUESTED", "SCAN_FINISHED"]
    # The reviewer's browser: GET the page (changes nothing), then POST once.
    assert [(m, s) for m, _, s in engine.server.requests] == [("GET", 200), ("POST", 200)]
    assert engine.vault_contents[0]["sha256"] == engine.uploaded[0].sha256


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


def test_no_answer_until_the_timeout_is_a_denial_that_never_deletes(options):
    files = {"late.csv": CARD}
    result, _ = run(options, files, decision="none", schedule=True, review_wait=1)
    item = result.by_key("late.csv")
    assert (item.outcome, item.zone) == ("DENIED", "quarantine")
    assert item.review["decision"] == "TIMEOUT"
    assert "Review timed out" in entered(result)


def test_explicit_denial_deletes_when_configured(options):
    result, _ = run(options, {"card.csv": CARD}, decision="deny", schedule=True, delete_allowed=True)
    item = result.by_key("card.csv")
    assert (item.outcome, item.zone) == ("DELETED", "deleted")
    assert "Delete denied object" in entered(result)


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


def test_job_paused_past_the_maximum_wait_is_cancelled(sample):
    result, engine = run(sample, {"clean.csv": CLEAN}, decision="deny", macie=MacieBehavior(job_status="PAUSED"))
    assert result.by_key("clean.csv").verdict == "REVIEW"
    describes = [c for c in engine.sdk_calls if c[1] == "DescribeClassificationJob"]
    assert len(describes) == 360  # 6 h / 1 min, then the job is cancelled
    cancels = [c for c in engine.sdk_calls if c[1] == "UpdateClassificationJob"]
    assert [c[2]["jobStatus"] for c in cancels] == ["CANCELLED"]
    assert "Cancel Macie job" in entered(result)
    assert sum(1 for kind, _ in engine.waits if kind == "wait") == 360


def test_slow_job_is_polled_until_complete(sample):
    result, engine = run(sample, {"clean.csv": CLEAN}, macie=MacieBehavior(running_polls=3))
    assert result.by_key("clean.csv").outcome == "VAULT"
    assert len([c for c in engine.sdk_calls if c[1] == "DescribeClassificationJob"]) == 4


def test_throttled_job_creation_is_retried_and_creates_one_job(sample):
    result, engine = run(sample, {"clean.csv": CLEAN}, macie=MacieBehavior(throttle_creates=2))
    assert result.by_key("clean.csv").outcome == "VAULT"
    creates = [c[2]["clientToken"] for c in engine.sdk_calls if c[1] == "CreateClassificationJob"]
    assert len(creates) == 3 and len(set(creates)) == 1
    assert len(engine.macie.jobs) == 1
    assert sum(1 for kind, _ in engine.waits if kind == "retry") >= 2


# ------------------------------------------------------------------------------ failures fail closed
def _fail_on(role, predicate, error_type="RuntimeError"):
    def setup(engine):
        def hook(event):
            if predicate(event):
                from macie_pipeline.local.functions import InjectedFault

                raise InjectedFault(error_type)
        engine.before_invoke(role, hook)
    return setup


STEP_FAILURES = {
    # A crash before the objects are known: a scan failure (not "invalid input"); nothing was moved.
    "prepare_scan": ("prepare_scan", lambda e: True, CLEAN, "Notify scan failure"),
    "stage copy": ("transfer", lambda e: e.get("operation") == "copy", CLEAN, "Report staging failed"),
    "integrity": ("integrity_check", lambda e: True, CLEAN, "Report staging failed"),
    "evaluate": ("evaluate_findings", lambda e: True, CLEAN, "Report failed objects"),
    "promote": (
        "transfer",
        lambda e: e.get("operation") == "move" and "item" not in e and (e.get("tags") or {}).get("macie-pipeline:outcome") == "VAULT",
        CLEAN,
        "Report routing failed",
    ),
    "quarantine tag": ("transfer", lambda e: e.get("operation") == "tag", CORRUPT_PARQUET, "Report routing failed"),
    "hold for review": (
        "transfer", lambda e: (e.get("tags") or {}).get("macie-pipeline:outcome") == "REVIEW_PENDING", CARD, "Report routing failed",
    ),
    "request review": ("request_review", lambda e: True, CARD, "Review request failed"),
    "approve": ("transfer", lambda e: (e.get("tags") or {}).get("macie-pipeline:outcome") == "APPROVED", CARD, "Report decision failed"),
}


@pytest.mark.parametrize("step", list(STEP_FAILURES))
def test_a_lambda_error_in_each_step_fails_closed(sample, step):
    role, predicate, body, reached = STEP_FAILURES[step]
    key = "object.parquet" if body == CORRUPT_PARQUET else "object.csv"
    result, engine = run(sample, {key: body}, decision="approve", setup=_fail_on(role, predicate))
    assert [e.status for e in result.executions] == ["FAILED"]
    assert reached in entered(result)
    item = result.by_key(key)
    # "several": the original in ingress and the staged copy in quarantine (see invariant_violations).
    assert item.zone in ("ingress", "quarantine", "review", "several"), item
    assert "VAULT" not in outcomes(result) and "APPROVED" not in outcomes(result)
    assert [n["event"] for n in result.notifications].count("SCAN_FAILED") == 1
    if role == "prepare_scan":
        assert "Invalid input" not in entered(result) and item.zone == "ingress"
    else:
        assert "FAILED" in outcomes(result)


def test_transient_handler_errors_are_retried(sample):
    def setup(engine):
        engine.fail("transfer", "TransientError", times=2)
        engine.fail("integrity_check", "TransientError", times=1)
    result, engine = run(sample, {"clean.csv": CLEAN}, setup=setup)
    assert result.by_key("clean.csv").outcome == "VAULT"
    assert [e.status for e in result.executions] == ["SUCCEEDED"]
    assert sum(1 for kind, _ in engine.waits if kind == "retry") == 3


def test_throttled_lambda_invocations_are_retried(sample):
    """Lambda throttles the workflow's first two invocations (Prepare scan): Step Functions names the
    error Lambda.TooManyRequestsException, which every Lambda task retries before any Catch."""
    def setup(engine):
        engine.fail_call("lambda", "Invoke", "TooManyRequestsException", times=2, caller="workflow", status=429)
    result, engine = run(sample, {"clean.csv": CLEAN}, setup=setup)
    assert result.by_key("clean.csv").outcome == "VAULT"
    assert [e.status for e in result.executions] == ["SUCCEEDED"]
    assert sum(1 for kind, _ in engine.waits if kind == "retry") == 2
    failed = [e for e in result.executions[0].history if e.get("type") == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["Lambda.TooManyRequestsException"] * 2


def test_unknown_verdict_from_a_faulty_evaluator_never_reaches_the_vault(sample):
    def setup(engine):
        def tamper(result):
            for obj in result["objects"]:
                obj["verdict"] = "PROBABLY_FINE"
            return result
        engine.after_invoke("evaluate_findings", tamper)
    result, _ = run(sample, {"clean.csv": CLEAN}, setup=setup)
    assert "Unknown verdict" in entered(result)
    assert result.by_key("clean.csv").zone == "quarantine"
    assert [e.status for e in result.executions] == ["FAILED"]


REPORT_FAILURES = [
    # (stack, body, decision, PutEvents calls that succeed first, state reached)
    ("sample", CLEAN, "approve", 0, "Report promoted failed"),
    ("sample", CORRUPT_PARQUET, "approve", 0, "Report quarantined failed"),
    ("sample", CARD, "approve", 0, "Report held for review failed"),
    ("sample", CARD, "approve", 1, "Report approved failed"),
    ("sample", CARD, "deny", 1, "Report denied failed"),
    ("options", CARD, "deny", 1, "Report deleted failed"),
]


@pytest.mark.parametrize("stack_name,body,decision,skip,reached", REPORT_FAILURES, ids=[r[4] for r in REPORT_FAILURES])
def test_a_result_event_that_cannot_be_sent_fails_the_execution(request, stack_name, body, decision, skip, reached):
    target = request.getfixturevalue(stack_name)

    def setup(engine):
        engine.fail_call("events", "PutEvents", "InternalException", caller="workflow", skip=skip)

    key = "object.parquet" if body == CORRUPT_PARQUET else "object.csv"
    result, _ = run(target, {key: body}, decision=decision, setup=setup, schedule=stack_name == "options",
                    delete_allowed=True)
    assert reached in entered(result)
    assert [e.status for e in result.executions] == ["FAILED"]
    assert "Failure event not sent" in entered(result)
    assert [n["event"] for n in result.notifications][-1] == "SCAN_FAILED"


def test_ingress_cleanup_failure_is_reported_and_leaves_a_duplicate_not_a_loss(sample):
    def setup(engine):
        engine.fail_call("s3", "DeleteObject", "InternalError", caller="workflow")
    result, engine = run(sample, {"clean.csv": CLEAN}, setup=setup)
    item = result.by_key("clean.csv")
    assert item.outcome == "VAULT" and item.zone == "several"  # vault, and the reported ingress leftover
    assert {"Report ingress cleanup failed", "Notify ingress cleanup failed", "Ingress version kept"} <= entered(result)
    assert "INGRESS_CLEANUP_FAILED" in outcomes(result)
    assert "INGRESS_CLEANUP_FAILED" in [n["event"] for n in result.notifications]
    # S3's InternalError is not in S3's API model: Step Functions names it S3.S3Exception, which is
    # retried (MaxAttempts 4) before the catch.
    assert sum(1 for kind, _ in engine.waits if kind == "retry") == 4
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


# ------------------------------------------------------------------------- verdicts nobody can forge
def _held_reasons(result, key):
    return next(e["detail"]["reasons"] for e in result.events
                if e["detail"]["outcome"] == "REVIEW_PENDING" and e["detail"]["object"]["key"] == key)


def test_a_staged_copy_replaced_in_quarantine_before_the_job_is_never_promoted(sample):
    """Someone with s3:PutObject on quarantine overwrites scans/<scan>/<key> (scan tag and all) with a
    harmless file after staging, so Macie analyses the replacement. The staged version is the one
    that would move on: no result about it means review, never the vault."""
    def setup(engine):
        def replace_staged_copy(event):
            staged = event["object"]
            s3 = engine._s3
            tags = s3.get_object_tagging(Bucket=staged["bucket"], Key=staged["key"], VersionId=staged["versionId"])["TagSet"]
            s3.put_object(Bucket=staged["bucket"], Key=staged["key"], Body=CLEAN,
                          Tagging="&".join(f"{t['Key']}={t['Value']}" for t in tags))
        # Between Copy to quarantine and Start Macie job: the staged version is pinned in the event.
        engine.before_invoke("integrity_check", replace_staged_copy)
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
        engine.before_invoke(
            "evaluate_findings",
            lambda event: engine.fail_call("s3", "ListObjectsV2", "AccessDenied", caller="handlers", status=403),
        )
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
def test_the_same_event_delivered_twice_has_one_outcome(sample):
    stack, state_machine = sample
    with LocalPipeline(stack, state_machine) as engine:
        uploaded = engine.upload("twice.csv", CLEAN)
        event = engine.object_created_event(uploaded)
        first = engine.deliver(event)
        executions = engine.wait([first, engine.deliver(event)])
        violations = engine.invariant_violations()
        events = engine.events
    assert violations == []
    assert [e.status for e in executions] == ["SUCCEEDED", "SUCCEEDED"]
    # The two executions race; whichever claims the version first scans it, the other has nothing to do.
    assert sorted("Nothing to scan" in e.states for e in executions) == [False, True]
    assert [e["detail"]["outcome"] for e in events] == ["VAULT"]


def test_object_overwritten_while_scanned_promotes_the_scanned_version(sample):
    def setup(engine):
        def upload_a_newer_version(event):
            if len(engine.uploaded) == 1:
                engine.upload("data.csv", b"id,item\n9,newer version\n")

        engine.before_invoke("evaluate_findings", upload_a_newer_version)
    result, engine = run(sample, {"data.csv": CLEAN}, setup=setup)
    first, newer = engine.uploaded
    assert [v["sha256"] for v in engine.vault_contents] == [first.sha256]
    assert result.by_key("data.csv").outcome == "VAULT"
    # The newer upload is untouched in ingress, waiting for its own event (invariants checked by run).


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


def test_scheduled_batch_of_fifty_objects_uses_one_macie_job(options):
    files = {f"batch/clean-{i:02}.csv": CLEAN.replace(b"pen", f"pen{i}".encode()) for i in range(20)}
    files.update({f"batch/card-{i:02}.csv": CARD.replace(b"Alex", f"Alex{i}".encode()) for i in range(30)})
    result, engine = run(options, files, decision="approve", schedule=True)
    assert len(result.executions) == 1 and result.executions[0].status == "SUCCEEDED"
    assert len(engine.macie.jobs) == 1
    assert {o.outcome for o in result.objects if "clean" in o.key} == {"VAULT"}
    assert {o.outcome for o in result.objects if "card" in o.key} == {"APPROVED"}
    assert [n["event"] for n in result.notifications].count("REVIEW_REQUESTED") == 1
    assert "Not under review" in entered(result)


# ------------------------------------------------------------- an older version promoted late (issue 10)
NEWER = b"id,item,quantity\n1,pen,4\n"


def _older_then_newer(engine, key, older_body, newer_body):
    """Two uploads of ``key`` a second apart (S3's LastModified has a one-second resolution)."""
    older = engine.upload(key, older_body)
    time.sleep(1.05 - time.time() % 1)
    return older, engine.upload(key, newer_body)


def _scan(engine, uploaded, decision="approve"):
    [execution] = engine.wait([engine.deliver(engine.object_created_event(uploaded))], decision=decision)
    return execution


def _superseded_scenario(target, older_body, *, setup=None, delete_allowed=False):
    """The newer version is scanned and promoted first; then the older one's scan reaches promotion."""
    stack, state_machine = target
    with LocalPipeline(stack, state_machine) as engine:
        DEFINITIONS[stack.name] = engine.definition
        older, newer = _older_then_newer(engine, "orders/late.csv", older_body, NEWER)
        first = _scan(engine, newer)
        if setup:
            setup(engine)
        late = _scan(engine, older)
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
    assert {"Superseded?", "Report superseded"} <= set(executions[1].states)


def test_an_older_version_approved_after_a_newer_one_was_promoted_is_kept_aside(sample):
    older, newer, executions, stored, events = _superseded_scenario(sample, CARD)
    _assert_kept_aside(older, newer, stored, events, "VAULT")
    assert [e.status for e in executions] == ["SUCCEEDED", "SUCCEEDED"]
    assert {"Approved version superseded?", "Report approved superseded"} <= set(executions[1].states)
    report = next(e["detail"] for e in events if e["detail"]["outcome"] == "SUPERSEDED")
    assert report["review"]["decision"] == "APPROVE"


@pytest.mark.parametrize("body,reached", [(CLEAN, "Report superseded failed"), (CARD, "Report approved superseded failed")])
def test_a_superseded_event_that_cannot_be_sent_fails_the_execution(sample, body, reached):
    def setup(engine):
        # The older version's scan: a held-for-review event first when it goes through review.
        engine.fail_call("events", "PutEvents", "InternalException", caller="workflow", skip=1 if body == CARD else 0)

    older, newer, executions, stored, _ = _superseded_scenario(sample, body, setup=setup)
    assert executions[1].status == "FAILED" and reached in executions[1].states
    assert [s["zone"] for s in stored if s["sha256"] == older.sha256] == ["quarantine"]
    assert [s["sha256"] for s in stored if s["zone"] == "vault"] == [newer.sha256]


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


# ------------------------------------------------------------------------------------- coverage
def test_zz_every_state_of_both_definitions_was_entered():
    """Runs last in this file: the scenarios above together enter every state."""
    assert set(DEFINITIONS) == {"SensitiveDataScanPipelineSample", "OptionsStack"}, "run the whole file"
    every = {name for definition in DEFINITIONS.values() for _, name, _ in walk_states(definition["States"])}
    never = sorted(every - set(COVERAGE))
    assert never == []
