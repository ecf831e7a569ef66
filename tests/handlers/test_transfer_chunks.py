"""transfer's and integrity_check's chunk operations against moto, one chunk through every step:
stage_chunk -> check_chunk -> (verdicts written by hand) -> route_chunk -> (decisions) -> decide_chunk,
with one object failing in each step while the others reach their outcome; retries; report_failed."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

import integrity_check
import transfer
from pipeline_common import batches
from pipeline_common.constants import META_SOURCE_LAST_MODIFIED, TAG_FINDINGS, TAG_OUTCOME, TAG_SCAN_ID, TAG_VERDICT
from pipeline_common.contract import EVENT_DETAIL_TYPE, EVENT_SOURCE, IntegrityCheckEnvironment, TransferEnvironment, zone_key
from pipeline_common.errors import InvalidInputError, TransientError
from support.lambda_helpers import client_error

REGION = "us-east-1"
INGRESS, QUARANTINE, REVIEW, VAULT, BATCH = "ingress", "quarantine", "review", "vault", "batch"
TABLE = "pipeline-state"
BATCH_ID = "b-20250101T000000-0123456789abcdef"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:sm:" + BATCH_ID
LONG_KEY = "long/" + "k" * (1024 - len("long/") - len(".csv")) + ".csv"  # exactly 1,024 bytes
ENVIRONMENT = {"BATCH_BUCKET": BATCH, "INGRESS_BUCKET": INGRESS, "QUARANTINE_BUCKET": QUARANTINE,
               "REVIEW_BUCKET": REVIEW, "VAULT_BUCKET": VAULT, "EVENT_BUS_NAME": "bus", "STATE_TABLE": TABLE,
               "WORKERS": "8"}

# The verdict of each object, by index (see manifest()): every verdict and every failure.
GONE_BEFORE_STAGING = 0  # its source version is deleted before stage_chunk: copy error -> FAILED (ingress)
STAGED_COPY_GONE = 1  # its staged copy is deleted before check_chunk: integrity error -> FAILED (ingress)
LONG = 2  # the 1,024-byte key, CLEAN
CORRUPT_FILE = 3  # a .json that does not parse: integrity CORRUPT, verdict CORRUPT
VAULT_DENIED = 4  # CLEAN, but the vault refuses the write: FAILED (quarantine)
FAILED_VERDICT = 5  # staged, but evaluate could not decide: FAILED (ingress), nothing moves
SUPERSEDED_KEY = 6  # CLEAN, but the vault already holds a newer upload of its key: SUPERSEDED
APPROVE_I, DENY_I, UNDECIDED_I = 7, 8, 9  # REVIEW, then the reviewer approves / denies / says nothing
DUPLICATE = (10, 11)  # two versions of one key in the batch, both DENY
COUNT = 30


def verdict_of(i: int) -> str:
    fixed = {GONE_BEFORE_STAGING: "FAILED", STAGED_COPY_GONE: "FAILED", LONG: "CLEAN", CORRUPT_FILE: "CORRUPT",
             VAULT_DENIED: "CLEAN", FAILED_VERDICT: "FAILED", SUPERSEDED_KEY: "CLEAN", APPROVE_I: "REVIEW",
             DENY_I: "REVIEW", UNDECIDED_I: "REVIEW", DUPLICATE[0]: "DENY", DUPLICATE[1]: "DENY"}
    return fixed.get(i, ("CLEAN", "REVIEW", "DENY", "CLEAN")[i % 4])


def key_of(i: int) -> str:
    if i == LONG:
        return LONG_KEY
    if i == CORRUPT_FILE:
        return "in/broken.json"
    if i in DUPLICATE:
        return "in/twice.csv"
    return f"in/file {i}.csv"


def body_of_index(i: int) -> bytes:
    return b'{"a": [1, 2' if i == CORRUPT_FILE else f"id,name\n{i},row {i}\n".encode()


class RecordingEvents:
    """An EventBridge client that records every entry sent (and can refuse some)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.refuse: set[str] = set()  # refuse the events of these object keys

    def put_events(self, Entries):  # noqa: N803 - boto3's parameter name
        results = []
        for entry in Entries:
            if json.loads(entry["Detail"])["object"]["key"] in self.refuse:
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try later"})
            else:
                self.sent.append(entry)
                results.append({"EventId": str(len(self.sent))})
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}

    def details(self) -> list[dict]:
        assert all(e["Source"] == EVENT_SOURCE and e["DetailType"] == EVENT_DETAIL_TYPE and e["EventBusName"] == "bus"
                   for e in self.sent)
        return [json.loads(e["Detail"]) for e in self.sent]

    def by_key(self) -> dict[tuple[str, str], list[dict]]:
        found: dict[tuple[str, str], list[dict]] = {}
        for detail in self.details():
            found.setdefault((detail["object"]["key"], detail["object"]["versionId"]), []).append(detail)
        return found


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setattr(batches, "RETRY_DELAY_SECONDS", 0)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (INGRESS, QUARANTINE, REVIEW, VAULT, BATCH):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
        yield {"s3": s3, "dynamodb": dynamodb, "events": RecordingEvents()}


def env(**overrides: str) -> TransferEnvironment:
    return TransferEnvironment.from_environment({**ENVIRONMENT, **overrides})


def run(aws, operation: str, chunk=0, transfer_env: TransferEnvironment | None = None, **extra) -> dict:
    event = {"operation": operation, "batchId": BATCH_ID, "executionArn": EXECUTION, **extra}
    if operation != "report_failed":
        event["chunk"] = chunk
    return transfer.run(event, s3=aws["s3"], env=transfer_env or env(), events=aws["events"], dynamodb=aws["dynamodb"])


def check(aws, chunk=0) -> dict:
    event = {"operation": "check_chunk", "batchId": BATCH_ID, "chunk": chunk}
    return integrity_check.run(event, s3=aws["s3"], env=IntegrityCheckEnvironment(batch_bucket=BATCH, workers=4))


def read(aws, stage: str, chunk=0) -> list[dict] | None:
    return batches.read_chunk(aws["s3"], BATCH, BATCH_ID, stage, chunk)


def manifest(aws, count: int = COUNT, chunk: int = 0) -> list[dict]:
    s3 = aws["s3"]
    lines = []
    for i in range(count):
        response = s3.put_object(Bucket=INGRESS, Key=key_of(i), Body=body_of_index(i), ChecksumAlgorithm="SHA256")
        source = {"bucket": INGRESS, "key": key_of(i), "versionId": response["VersionId"],
                  "etag": response["ETag"].strip('"'), "size": len(body_of_index(i)), "lastModified": "2025-01-01T00:00:00Z"}
        lines.append({"i": i, "source": source})
    batches.write_chunk(s3, BATCH, BATCH_ID, "manifest", chunk, lines)
    return lines


def findings_of(verdict: str) -> dict:
    if verdict in ("CLEAN", "FAILED"):
        return {"count": 0, "types": {}, "maxSeverity": None, "tagValue": "none"}
    return {"count": 2, "types": {"EMAIL_ADDRESS": 2}, "maxSeverity": "MEDIUM", "tagValue": "EMAIL_ADDRESS:2"}


def write_verdicts(aws, chunk: int = 0) -> list[dict]:
    lines = [{**line, "verdict": verdict_of(line["i"]), "findings": findings_of(verdict_of(line["i"])),
              "reasons": [f"because {verdict_of(line['i']).lower()}"]} for line in read(aws, "staged", chunk)]
    batches.write_chunk(aws["s3"], BATCH, BATCH_ID, "verdicts", chunk, lines)
    return lines


def tags(s3, bucket: str, key: str, version: str) -> dict:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version)["TagSet"]}


def versions(s3, bucket: str, key: str) -> list[dict]:
    listed = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    return [v for v in listed if v["Key"] == key]


def expected_tags(i: int, outcome: str) -> dict:
    return {TAG_SCAN_ID: BATCH_ID, TAG_VERDICT: verdict_of(i), TAG_FINDINGS: findings_of(verdict_of(i))["tagValue"],
            TAG_OUTCOME: outcome}


def deny_vault_writes_of(monkeypatch, s3, key: str) -> None:
    real = s3.copy_object

    def copy_object(**kwargs):
        if kwargs["Bucket"] == VAULT and kwargs["Key"] == key:
            raise client_error("AccessDenied", 403, "CopyObject")
        return real(**kwargs)

    monkeypatch.setattr(s3, "copy_object", copy_object)


def stage_and_check(aws) -> list[dict]:
    """A 30-object chunk through stage_chunk and check_chunk, with one failure in each."""
    s3 = aws["s3"]
    lines = manifest(aws)
    gone = lines[GONE_BEFORE_STAGING]["source"]
    s3.delete_object(Bucket=INGRESS, Key=gone["key"], VersionId=gone["versionId"])
    assert run(aws, "stage_chunk") == {"chunk": 0, "copied": COUNT - 1, "failed": 1}
    copied = read(aws, "copied")
    vanished = copied[STAGED_COPY_GONE]["staged"]
    s3.delete_object(Bucket=QUARANTINE, Key=vanished["key"], VersionId=vanished["versionId"])
    assert check(aws) == {"chunk": 0, "checked": COUNT - 2, "failed": 2, "valid": COUNT - 3, "corrupt": 1}
    return lines


# ------------------------------------------------------------------------------------------ the whole chunk
def test_a_chunk_through_every_step(aws, monkeypatch):
    s3, events = aws["s3"], aws["events"]
    lines = stage_and_check(aws)
    sources = {line["i"]: line["source"] for line in lines}

    # copied/: one line per object, in manifest order; the failed one says why and stays in ingress
    copied = read(aws, "copied")
    assert [line["i"] for line in copied] == list(range(COUNT))
    assert copied[GONE_BEFORE_STAGING]["staged"] is None
    assert copied[GONE_BEFORE_STAGING]["error"]["Error"] == "SourceChangedError"
    for line in copied[1:]:
        assert set(line) == {"i", "source", "staged", "error"} and line["error"] is None
        staged = line["staged"]
        assert staged["bucket"] == QUARANTINE and staged["key"] == zone_key("scans/", BATCH_ID, line["source"]["key"])
        assert set(staged) == {"bucket", "key", "versionId", "etag", "size"}
        if line["i"] != STAGED_COPY_GONE:
            assert tags(s3, QUARANTINE, staged["key"], staged["versionId"]) == {TAG_SCAN_ID: BATCH_ID, TAG_OUTCOME: "SCANNING"}
            # each copy's version id is its own (8 threads share one client; two copies share a key)
            body = s3.get_object(Bucket=QUARANTINE, Key=staged["key"], VersionId=staged["versionId"])["Body"].read()
            assert body == body_of_index(line["i"])
    assert "#sha256/" in copied[LONG]["staged"]["key"]  # scans/<id>/<1,024-byte key> would be too long
    assert copied[DUPLICATE[0]]["staged"]["key"] == copied[DUPLICATE[1]]["staged"]["key"]
    assert copied[DUPLICATE[0]]["staged"]["versionId"] != copied[DUPLICATE[1]]["staged"]["versionId"]

    # staged/: integrity per staged object; the vanished copy is an error, the broken file CORRUPT
    staged = read(aws, "staged")
    assert staged[GONE_BEFORE_STAGING]["integrity"] is None and staged[GONE_BEFORE_STAGING]["error"]
    assert staged[STAGED_COPY_GONE]["integrity"] is None
    assert staged[STAGED_COPY_GONE]["error"]["Error"] == "SourceChangedError"
    assert staged[CORRUPT_FILE]["integrity"]["status"] == "CORRUPT"
    assert staged[LONG]["integrity"] == {"status": "VALID", "format": "csv", "reason": "parsed 1 rows", "rows": 1,
                                         "checksum": "VERIFIED"}

    # the vault already holds a newer upload of one key; the vault refuses another key
    newer = s3.put_object(Bucket=VAULT, Key=key_of(SUPERSEDED_KEY), Body=b"newer",
                          Metadata={META_SOURCE_LAST_MODIFIED: "2099-01-01T00:00:00Z"})
    deny_vault_writes_of(monkeypatch, s3, key_of(VAULT_DENIED))
    write_verdicts(aws)

    result = run(aws, "route_chunk")
    routed = read(aws, "routed")
    outcome = {line["i"]: line["outcome"] for line in routed}
    expected_outcome = {}
    for i in range(COUNT):
        expected_outcome[i] = {"CLEAN": "VAULT", "REVIEW": "REVIEW_PENDING", "DENY": "QUARANTINED",
                               "CORRUPT": "QUARANTINED", "FAILED": "FAILED"}[verdict_of(i)]
    expected_outcome[VAULT_DENIED] = "FAILED"
    expected_outcome[SUPERSEDED_KEY] = "SUPERSEDED"
    assert outcome == expected_outcome
    counts: dict[str, int] = {}
    for value in expected_outcome.values():
        counts[value] = counts.get(value, 0) + 1
    assert result == {"chunk": 0, "objects": COUNT, "outcomes": dict(sorted(counts.items())), "ingressCleanupFailed": 0}
    held = {line["i"]: line.get("heldIn") for line in routed if line["outcome"] == "FAILED"}
    assert held == {GONE_BEFORE_STAGING: "INGRESS", STAGED_COPY_GONE: "INGRESS", FAILED_VERDICT: "INGRESS",
                    VAULT_DENIED: "QUARANTINE"}

    assert_routed_places(s3, routed, sources, newer["VersionId"])
    assert_route_events(events, routed, sources)

    # a retry of the whole chunk moves nothing twice (and sends every event again)
    places_before = snapshot(s3)
    events.sent.clear()
    assert run(aws, "route_chunk") == result
    assert snapshot(s3) == places_before
    # (the same places; a retried superseded promotion no longer knows which version superseded it)
    assert [(line["i"], line["outcome"], place(line["location"])) for line in read(aws, "routed")] == [
        (line["i"], line["outcome"], place(line["location"])) for line in routed]
    assert len(events.details()) == COUNT

    # the reviewer approves one object and denies another; the third is never decided
    table = aws["dynamodb"]
    for i, decision in ((APPROVE_I, "APPROVE"), (DENY_I, "DENY")):
        table.put_item(TableName=TABLE, Item={"pk": {"S": f"review#{BATCH_ID}#{i}"}, "decision": {"S": decision},
                                              "reviewer": {"S": "alice"}, "decidedAt": {"S": "2025-01-02T00:00:00Z"}})
    events.sent.clear()
    decided_result = run(aws, "decide_chunk")
    decided = {line["i"]: line for line in read(aws, "decided")}
    pending = sorted(i for i in range(COUNT) if expected_outcome[i] == "REVIEW_PENDING")
    assert sorted(decided) == pending
    assert decided[APPROVE_I]["outcome"] == "APPROVED" and decided[DENY_I]["outcome"] == "DENIED"
    assert decided[UNDECIDED_I]["outcome"] == "DENIED"
    assert decided[UNDECIDED_I]["review"]["decision"] == "TIMEOUT" and decided[UNDECIDED_I]["review"]["reviewer"] == "timeout"
    assert decided_result["objects"] == len(pending) and decided_result["outcomes"]["APPROVED"] == 1
    assert_decided_places(s3, decided, sources)
    assert_decide_events(events, decided, sources)

    # nothing is left without an outcome: report_failed reports nothing
    events.sent.clear()
    assert run(aws, "report_failed", chunkCount=1, error={"Error": "States.TaskFailed", "Cause": "x"}) == {
        "chunks": 1, "reported": 0, "alreadyFinal": COUNT, "heldIn": {}}
    assert events.sent == [] and read(aws, "reported") == []


def place(location: dict | None) -> tuple | None:
    return None if location is None else (location["bucket"], location["key"], location["versionId"])


def snapshot(s3) -> dict:
    """Every version of every zone: (bucket, key) -> sorted version ids."""
    found = {}
    for bucket in (INGRESS, QUARANTINE, REVIEW, VAULT):
        for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
            found.setdefault((bucket, version["Key"]), []).append(version["VersionId"])
    return {place: sorted(ids) for place, ids in found.items()}


def assert_routed_places(s3, routed: list[dict], sources: dict, newer_version: str) -> None:
    for line in routed:
        i, source, location = line["i"], sources[line["i"]], line["location"]
        ingress_left = [v["VersionId"] for v in versions(s3, INGRESS, source["key"])]
        if line["outcome"] == "VAULT":
            assert (location["bucket"], location["key"]) == (VAULT, source["key"])
            assert location["superseded"] is False and location["supersededBy"] is None
            assert s3.get_object(Bucket=VAULT, Key=source["key"])["Body"].read() == body_of_index(i)
            assert tags(s3, VAULT, source["key"], location["versionId"]) == expected_tags(i, "VAULT")
            assert len(versions(s3, VAULT, source["key"])) == 1
        elif line["outcome"] == "SUPERSEDED":
            assert (location["bucket"], location["key"]) == (QUARANTINE, zone_key("superseded/", BATCH_ID, source["key"]))
            assert location["superseded"] is True and location["supersededBy"]["versionId"] == newer_version
            assert tags(s3, QUARANTINE, location["key"], location["versionId"]) == expected_tags(i, "SUPERSEDED")
            assert [v["VersionId"] for v in versions(s3, VAULT, source["key"])] == [newer_version]
        elif line["outcome"] == "REVIEW_PENDING":
            assert (location["bucket"], location["key"]) == (REVIEW, zone_key("", BATCH_ID, source["key"]))
            assert tags(s3, REVIEW, location["key"], location["versionId"]) == expected_tags(i, "REVIEW_PENDING")
        elif line["outcome"] == "QUARANTINED":
            assert location == {k: line["staged"][k] for k in ("bucket", "key", "versionId")}
            assert tags(s3, QUARANTINE, location["key"], location["versionId"]) == expected_tags(i, "QUARANTINED")
        if line["outcome"] in ("VAULT", "SUPERSEDED", "REVIEW_PENDING"):  # moved: the staged copy is gone
            assert line["staged"]["versionId"] not in [v["VersionId"] for v in versions(s3, QUARANTINE, line["staged"]["key"])]
        # the scanned ingress version is deleted exactly when the object has a staged copy and a verdict
        kept = line.get("heldIn") == "INGRESS"
        assert (source["versionId"] in ingress_left) == (kept and i != GONE_BEFORE_STAGING), i
    denied = sources[VAULT_DENIED]
    staged = routed[VAULT_DENIED]["staged"]
    assert versions(s3, VAULT, denied["key"]) == []
    assert tags(s3, QUARANTINE, staged["key"], staged["versionId"]) == {TAG_SCAN_ID: BATCH_ID, TAG_OUTCOME: "SCANNING"}
    assert routed[VAULT_DENIED]["error"]["Error"] == "ClientError"


def assert_route_events(events: RecordingEvents, routed: list[dict], sources: dict) -> None:
    details = events.details()
    assert len(details) == COUNT
    by_key = events.by_key()
    for line in routed:
        source = {k: v for k, v in sources[line["i"]].items() if k != "lastModified"}
        [detail] = by_key[(source["key"], source["versionId"])]
        if line["outcome"] == "FAILED":
            assert detail == {"scanId": BATCH_ID, "executionArn": EXECUTION, "outcome": "FAILED",
                              "heldIn": line["heldIn"], "object": source, "error": line["error"]["Error"]}
        else:
            assert detail == {"scanId": BATCH_ID, "executionArn": EXECUTION, "outcome": line["outcome"],
                              "verdict": verdict_of(line["i"]), "object": source, "location": line["location"],
                              "integrity": line["integrity"], "findings": findings_of(verdict_of(line["i"])),
                              "reasons": [f"because {verdict_of(line['i']).lower()}"]}
    assert by_key[(sources[FAILED_VERDICT]["key"], sources[FAILED_VERDICT]["versionId"])][0]["error"] == "NotScanned"


def assert_decided_places(s3, decided: dict, sources: dict) -> None:
    approved = decided[APPROVE_I]
    assert (approved["location"]["bucket"], approved["location"]["key"]) == (VAULT, sources[APPROVE_I]["key"])
    assert tags(s3, VAULT, sources[APPROVE_I]["key"], approved["location"]["versionId"]) == expected_tags(APPROVE_I, "APPROVED")
    assert approved["review"] == {"decision": "APPROVE", "reviewer": "alice", "decidedAt": "2025-01-02T00:00:00Z"}
    for i in (DENY_I, UNDECIDED_I):
        location = decided[i]["location"]
        assert (location["bucket"], location["key"]) == (QUARANTINE, zone_key("denied/", BATCH_ID, sources[i]["key"]))
        assert tags(s3, QUARANTINE, location["key"], location["versionId"]) == expected_tags(i, "DENIED")
    for i in (APPROVE_I, DENY_I, UNDECIDED_I):  # moved out of the review bucket
        assert versions(s3, REVIEW, zone_key("", BATCH_ID, sources[i]["key"])) == []


def assert_decide_events(events: RecordingEvents, decided: dict, sources: dict) -> None:
    by_key = events.by_key()
    assert len(events.details()) == len(decided)
    for i, line in decided.items():
        source = {k: v for k, v in sources[i].items() if k != "lastModified"}
        [detail] = by_key[(source["key"], source["versionId"])]
        assert detail["outcome"] == line["outcome"] and detail["review"] == line["review"]
        assert detail["location"] == line["location"] and detail["verdict"] == "REVIEW"


# ------------------------------------------------------------------------------------------ decisions: DELETE
def _four_held_for_review(aws) -> None:
    """Four objects staged, checked, judged REVIEW and routed to the review bucket (REVIEW_PENDING)."""
    manifest(aws, count=4)
    run(aws, "stage_chunk")
    check(aws)
    lines = [{**line, "verdict": "REVIEW", "findings": findings_of("REVIEW"), "reasons": ["r"]} for line in read(aws, "staged")]
    batches.write_chunk(aws["s3"], BATCH, BATCH_ID, "verdicts", 0, lines)
    run(aws, "route_chunk")


def test_deny_policy_delete_deletes_denied_objects_but_never_undecided_ones(aws):
    s3 = aws["s3"]
    _four_held_for_review(aws)
    for i, decision in ((0, "DENY"), (1, "APPROVE"), (2, "MAYBE")):
        aws["dynamodb"].put_item(TableName=TABLE, Item={"pk": {"S": f"review#{BATCH_ID}#{i}"}, "decision": {"S": decision},
                                                        "reviewer": {"S": "bob"}, "decidedAt": {"S": "t"}})
    result = run(aws, "decide_chunk", transfer_env=env(DENY_POLICY="DELETE"))
    assert result == {"chunk": 0, "objects": 4, "outcomes": {"APPROVED": 1, "DELETED": 1, "DENIED": 2}}
    decided = read(aws, "decided")
    assert decided[0]["outcome"] == "DELETED" and decided[0]["location"] is None
    assert decided[2]["review"]["decision"] == "TIMEOUT"  # an unusable decision is no decision: never deleted
    assert [line["outcome"] for line in decided] == ["DELETED", "APPROVED", "DENIED", "DENIED"]
    assert s3.list_object_versions(Bucket=REVIEW).get("Versions", []) == []
    # a retry changes nothing
    before = snapshot(s3)
    assert run(aws, "decide_chunk", transfer_env=env(DENY_POLICY="DELETE")) == result
    assert snapshot(s3) == before


# ------------------------------------------------------------------------------------------ decisions: audit
def _approval(email: str, at: str, ip: str) -> dict:
    return {"M": {"email": {"S": email}, "groups": {"L": [{"S": "reviewers"}]}, "at": {"S": at}, "sourceIp": {"S": ip}}}


def test_who_decided_reaches_the_decided_line_and_the_result_event(aws):
    """Issue 12: the verified reviewer (subject, email, groups, source address) and, under four eyes,
    every approval reach decided/ and detail.review; an item written before sign-in (no audit fields)
    gives exactly the old review, nothing invented; a timeout stays as it was."""
    events, table = aws["events"], aws["dynamodb"]
    _four_held_for_review(aws)
    four_eyes = {  # two approvals; the second reached review_approvals_required and decided
        "pk": {"S": f"review#{BATCH_ID}#0"}, "decision": {"S": "APPROVE"}, "reviewer": {"S": "bo@example.com"},
        "decidedAt": {"S": "2025-01-02T00:05:00Z"}, "reviewerSourceIp": {"S": "198.51.100.2"},
        "reviewerSub": {"S": "sub-bo"}, "reviewerEmail": {"S": "bo@example.com"},
        "reviewerGroups": {"L": [{"S": "reviewers"}, {"S": "auditors"}]},
        "approvals": {"M": {"sub-bo": _approval("bo@example.com", "2025-01-02T00:05:00Z", "198.51.100.2"),
                            "sub-al": _approval("al@example.com", "2025-01-02T00:01:00Z", "198.51.100.1")}},
        "userAgent": {"S": "not copied"},
    }
    denied = {  # one deny decides; groups written as a string set
        "pk": {"S": f"review#{BATCH_ID}#1"}, "decision": {"S": "DENY"}, "reviewer": {"S": "al@example.com"},
        "decidedAt": {"S": "2025-01-02T00:02:00Z"}, "reviewerSourceIp": {"S": "198.51.100.1"},
        "reviewerSub": {"S": "sub-al"}, "reviewerEmail": {"S": "al@example.com"}, "reviewerGroups": {"SS": ["reviewers"]},
    }
    old = {"pk": {"S": f"review#{BATCH_ID}#2"}, "decision": {"S": "APPROVE"}, "reviewer": {"S": "anonymous@203.0.113.9"},
           "decidedAt": {"S": "2025-01-02T00:03:00Z"}}
    for item in (four_eyes, denied, old):
        table.put_item(TableName=TABLE, Item=item)
    events.sent.clear()
    run(aws, "decide_chunk")
    decided = read(aws, "decided")
    assert decided[0]["review"] == {
        "decision": "APPROVE", "reviewer": "bo@example.com", "decidedAt": "2025-01-02T00:05:00Z",
        "reviewerSub": "sub-bo", "reviewerEmail": "bo@example.com", "reviewerSourceIp": "198.51.100.2",
        "reviewerGroups": ["reviewers", "auditors"],
        "approvals": {
            "sub-al": {"email": "al@example.com", "at": "2025-01-02T00:01:00Z", "sourceIp": "198.51.100.1", "groups": ["reviewers"]},
            "sub-bo": {"email": "bo@example.com", "at": "2025-01-02T00:05:00Z", "sourceIp": "198.51.100.2", "groups": ["reviewers"]},
        },
    }
    assert list(decided[0]["review"]["approvals"]) == ["sub-al", "sub-bo"]  # in the order they approved
    assert decided[1]["review"] == {
        "decision": "DENY", "reviewer": "al@example.com", "decidedAt": "2025-01-02T00:02:00Z", "reviewerSub": "sub-al",
        "reviewerEmail": "al@example.com", "reviewerSourceIp": "198.51.100.1", "reviewerGroups": ["reviewers"]}
    assert decided[2]["review"] == {"decision": "APPROVE", "reviewer": "anonymous@203.0.113.9", "decidedAt": "2025-01-02T00:03:00Z"}
    assert set(decided[3]["review"]) == {"decision", "reviewer", "decidedAt"} and decided[3]["review"]["decision"] == "TIMEOUT"
    assert [line["outcome"] for line in decided] == ["APPROVED", "DENIED", "APPROVED", "DENIED"]
    by_key = events.by_key()
    for line in decided:
        [detail] = by_key[(line["source"]["key"], line["source"]["versionId"])]
        assert detail["review"] == line["review"]


def test_a_decision_that_cannot_be_read_fails_the_chunk_and_moves_nothing(aws, monkeypatch):
    manifest(aws, count=2)
    run(aws, "stage_chunk")
    check(aws)
    lines = [{**line, "verdict": "REVIEW", "findings": findings_of("REVIEW"), "reasons": []} for line in read(aws, "staged")]
    batches.write_chunk(aws["s3"], BATCH, BATCH_ID, "verdicts", 0, lines)
    run(aws, "route_chunk")
    before = snapshot(aws["s3"])

    def refuse(**kwargs):
        raise client_error("AccessDeniedException", 400, "BatchGetItem")

    monkeypatch.setattr(aws["dynamodb"], "batch_get_item", refuse)
    with pytest.raises(Exception, match="AccessDenied"):
        run(aws, "decide_chunk")
    assert snapshot(aws["s3"]) == before and read(aws, "decided") is None


# ------------------------------------------------------------------------------------------ events that fail
def test_result_events_that_cannot_be_sent_fail_the_chunk_after_writing_it(aws):
    manifest(aws, count=3)
    run(aws, "stage_chunk")
    check(aws)
    lines = [{**line, "verdict": "DENY", "findings": findings_of("DENY"), "reasons": []} for line in read(aws, "staged")]
    batches.write_chunk(aws["s3"], BATCH, BATCH_ID, "verdicts", 0, lines)
    aws["events"].refuse = {key_of(1)}  # refused when sent and when resent
    with pytest.raises(TransientError, match="1 of 3 result events were not sent"):
        run(aws, "route_chunk")
    assert [line["outcome"] for line in read(aws, "routed")] == ["QUARANTINED"] * 3
    assert len(aws["events"].sent) == 2
    aws["events"].refuse = set()
    run(aws, "route_chunk")  # the retry sends them all
    assert len(aws["events"].sent) == 5


def test_an_ingress_version_that_cannot_be_deleted_keeps_its_outcome_and_is_reported(aws, monkeypatch):
    s3 = aws["s3"]
    lines = manifest(aws, count=2)
    run(aws, "stage_chunk")
    check(aws)
    verdicts = [{**line, "verdict": "CLEAN", "findings": findings_of("CLEAN"), "reasons": []} for line in read(aws, "staged")]
    batches.write_chunk(s3, BATCH, BATCH_ID, "verdicts", 0, verdicts)
    real = s3.delete_object

    def delete_object(**kwargs):
        if kwargs["Bucket"] == INGRESS and kwargs["Key"] == key_of(1):
            raise client_error("AccessDenied", 403, "DeleteObject")
        return real(**kwargs)

    monkeypatch.setattr(s3, "delete_object", delete_object)
    result = run(aws, "route_chunk")
    assert result == {"chunk": 0, "objects": 2, "outcomes": {"VAULT": 2}, "ingressCleanupFailed": 1}
    details = aws["events"].details()
    cleanup = [d for d in details if d["outcome"] == "INGRESS_CLEANUP_FAILED"]
    assert cleanup == [{"scanId": BATCH_ID, "executionArn": EXECUTION, "outcome": "INGRESS_CLEANUP_FAILED",
                        "object": {k: lines[1]["source"][k] for k in ("bucket", "key", "versionId")}, "error": "ClientError"}]
    assert [d["outcome"] for d in details if d["outcome"] != "INGRESS_CLEANUP_FAILED"] == ["VAULT", "VAULT"]


# ------------------------------------------------------------------------------------------ missing files
def test_route_without_verdicts_moves_nothing_and_reports_every_object_failed(aws):
    s3 = aws["s3"]
    manifest(aws, count=3)
    gone = read(aws, "manifest")[2]["source"]
    s3.delete_object(Bucket=INGRESS, Key=gone["key"], VersionId=gone["versionId"])
    run(aws, "stage_chunk")
    before = snapshot(s3)
    result = run(aws, "route_chunk")
    assert result == {"chunk": 0, "objects": 3, "outcomes": {"FAILED": 3}, "ingressCleanupFailed": 0}
    assert snapshot(s3) == before
    assert [d["heldIn"] for d in aws["events"].details()] == ["QUARANTINE", "QUARANTINE", "INGRESS"]
    assert {d["error"] for d in aws["events"].details()} == {"NoVerdict"}


def test_check_chunk_needs_the_copied_file(aws):
    with pytest.raises(InvalidInputError, match=f"s3://{BATCH}/batches/{BATCH_ID}/copied/000000.jsonl does not exist"):
        check(aws)


def test_decide_without_a_routed_file_does_nothing(aws):
    assert run(aws, "decide_chunk", chunk=3) == {"chunk": 3, "objects": 0, "outcomes": {}}


# ------------------------------------------------------------------------------------------ report_failed
def test_report_failed_reports_every_object_without_an_outcome_where_it_is_held(aws):
    s3 = aws["s3"]
    manifest(aws, count=4, chunk=0)
    manifest(aws, count=2, chunk=1)  # chunk 1: staged, then nothing
    run(aws, "stage_chunk", chunk=0)
    run(aws, "stage_chunk", chunk=1)
    check(aws, 0)
    verdicts = [{**line, "verdict": ("CLEAN", "REVIEW", "DENY", "REVIEW")[line["i"]], "findings": findings_of("REVIEW"),
                 "reasons": []} for line in read(aws, "staged")]
    batches.write_chunk(s3, BATCH, BATCH_ID, "verdicts", 0, verdicts)
    run(aws, "route_chunk", chunk=0)
    # chunk 2 has a manifest and nothing else; chunk 3 has no file at all
    batches.write_chunk(s3, BATCH, BATCH_ID, "manifest", 2, [{"i": 0, "source": {"bucket": INGRESS, "key": "x", "versionId": "v"}}])
    aws["events"].sent.clear()
    error = {"Error": "States.Timeout", "Cause": "Apply decisions timed out"}
    result = run(aws, "report_failed", chunkCount=4, error=error)
    assert result == {"chunks": 4, "reported": 5, "alreadyFinal": 2, "heldIn": {"INGRESS": 1, "QUARANTINE": 2, "REVIEW": 2}}
    details = aws["events"].details()
    assert [(d["object"]["key"], d["heldIn"]) for d in details] == [
        (key_of(1), "REVIEW"), (key_of(3), "REVIEW"), (key_of(0), "QUARANTINE"), (key_of(1), "QUARANTINE"), ("x", "INGRESS")]
    assert all(d["outcome"] == "FAILED" and d["error"] == "States.Timeout" and d["executionArn"] == EXECUTION for d in details)
    reported = read(aws, "reported", 0)
    assert [(line["i"], line["heldIn"], line["error"]) for line in reported] == [(1, "REVIEW", error), (3, "REVIEW", error)]
    assert reported[0]["location"]["bucket"] == REVIEW
    assert read(aws, "reported", 3) is None


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"operation": "stage_chunk", "chunk": 0}, "batchId must be a batch id"),
        ({"operation": "stage_chunk", "batchId": "a/b", "chunk": 0}, "batchId must be a batch id"),
        ({"operation": "stage_chunk", "batchId": BATCH_ID}, "chunk must be a non-negative integer, got None"),
        ({"operation": "route_chunk", "batchId": BATCH_ID, "chunk": "1"}, "chunk must be a non-negative integer, got '1'"),
        ({"operation": "decide_chunk", "batchId": BATCH_ID, "chunk": True}, "chunk must be a non-negative integer"),
        ({"operation": "report_failed", "batchId": BATCH_ID}, "chunkCount must be a non-negative integer"),
        ({"operation": "route_chunk", "batchId": BATCH_ID, "chunk": 0, "executionArn": 5}, "executionArn must be a string"),
    ],
)
def test_bad_input_names_the_field(aws, event, message):
    with pytest.raises(InvalidInputError, match=message):
        transfer.run(event, s3=aws["s3"], env=env(), events=aws["events"], dynamodb=aws["dynamodb"])


def test_bad_lines_name_the_file_and_line(aws):
    s3 = aws["s3"]
    good = {"i": 0, "source": {"bucket": INGRESS, "key": "a", "versionId": "v1"}}
    batches.write_chunk(s3, BATCH, BATCH_ID, "manifest", 0, [good, {"i": 1, "source": {"bucket": INGRESS, "key": "b"}}])
    with pytest.raises(InvalidInputError, match=r"manifest/000000.jsonl line 2: source.versionId is required"):
        run(aws, "stage_chunk")
    batches.write_chunk(s3, BATCH, BATCH_ID, "manifest", 0, [good, {**good, "source": {**good["source"], "bucket": "other"}}])
    with pytest.raises(InvalidInputError, match=r"line 2: source.bucket is 'other', not the ingress bucket"):
        run(aws, "stage_chunk")
    batches.write_chunk(s3, BATCH, BATCH_ID, "manifest", 0, [good, good])
    with pytest.raises(InvalidInputError, match=r"line 2: i 0 appears twice"):
        run(aws, "stage_chunk")
    s3.put_object(Bucket=BATCH, Key=f"batches/{BATCH_ID}/verdicts/000000.jsonl", Body=b'{"i": 0}\nnot json\n')
    with pytest.raises(InvalidInputError, match=r"verdicts/000000.jsonl line 2 is not JSON"):
        run(aws, "route_chunk")
    batches.write_chunk(s3, BATCH, BATCH_ID, "verdicts", 0, [{**good, "staged": None, "verdict": "MAYBE"}])
    with pytest.raises(InvalidInputError, match=r"verdicts/000000.jsonl line 1: verdict must be one of"):
        run(aws, "route_chunk")
    assert aws["events"].sent == []


def test_clean_without_a_staged_copy_never_reaches_the_vault(aws):
    s3 = aws["s3"]
    [line] = manifest(aws, count=1)
    batches.write_chunk(s3, BATCH, BATCH_ID, "verdicts", 0, [{**line, "staged": None, "error": None, "verdict": "CLEAN",
                                                              "findings": findings_of("CLEAN"), "reasons": []}])
    assert run(aws, "route_chunk")["outcomes"] == {"FAILED": 1}
    assert s3.list_object_versions(Bucket=VAULT).get("Versions", []) == []
    assert versions(s3, INGRESS, line["source"]["key"])  # kept


def test_clean_naming_a_copy_other_than_this_batchs_staging_never_reaches_the_vault(aws):
    """A verdict line is only honoured for the copy staging made for this batch (quarantine
    scans/<batch>/<key>): one naming another object (here: an unscanned copy planted under another
    scan's prefix, or the ingress version itself) is FAILED and nothing moves."""
    s3 = aws["s3"]
    lines = manifest(aws, count=2)
    assert run(aws, "stage_chunk")["copied"] == 2
    check(aws)
    planted = s3.put_object(Bucket=QUARANTINE, Key="scans/another-scan/" + lines[0]["source"]["key"], Body=b"unscanned")
    staged = read(aws, "staged")
    forged = [
        {**staged[0], "staged": {**staged[0]["staged"], "key": "scans/another-scan/" + lines[0]["source"]["key"],
                                 "versionId": planted["VersionId"]}},
        {**staged[1], "staged": dict(lines[1]["source"])},
    ]
    batches.write_chunk(s3, BATCH, BATCH_ID, "verdicts", 0,
                        [{**line, "verdict": "CLEAN", "findings": findings_of("CLEAN"), "reasons": []} for line in forged])
    routed = run(aws, "route_chunk")
    assert routed["outcomes"] == {"FAILED": 2}
    assert s3.list_object_versions(Bucket=VAULT).get("Versions", []) == []
    assert [line["error"]["Error"] for line in read(aws, "routed")] == ["StagedCopyMismatch"] * 2
    for line in lines:
        assert versions(s3, INGRESS, line["source"]["key"])  # kept in ingress
