"""prepare_scan against moto: event normalisation, claims, scheduled listing and error mapping."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

import prepare_scan
from pipeline_common.contract import InvalidEnvironment
from pipeline_common.errors import InvalidInputError, TransientError
from support.lambda_helpers import client_error

INGRESS = "ingress-bucket"
TABLE = "state-table"
TTL = 3600


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("INGRESS_BUCKET", INGRESS)
    monkeypatch.setenv("STATE_TABLE", TABLE)
    monkeypatch.setenv("CLAIM_TTL_SECONDS", str(TTL))
    monkeypatch.delenv("INGRESS_PREFIX", raising=False)
    monkeypatch.delenv("MAX_BATCH_OBJECTS", raising=False)
    prepare_scan._CLIENTS.clear()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=INGRESS)
        s3.put_bucket_versioning(Bucket=INGRESS, VersioningConfiguration={"Status": "Enabled"})
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield s3, ddb
    prepare_scan._CLIENTS.clear()


def put(s3, key: str, body: bytes = b"data") -> dict:
    response = s3.put_object(Bucket=INGRESS, Key=key, Body=body)
    return {"bucket": INGRESS, "key": key, "versionId": response["VersionId"],
            "etag": response["ETag"].strip('"'), "size": len(body)}


def created_event(ref: dict) -> dict:
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {
            "version": "0",
            "bucket": {"name": ref["bucket"]},
            "object": {"key": ref["key"], "size": ref["size"], "etag": ref["etag"], "version-id": ref["versionId"],
                       "sequencer": "0062E99A88DC407460"},
            "reason": "PutObject",
        },
    }


SCHEDULED = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


def run(event: dict, name: str) -> dict:
    return prepare_scan.handler({"event": event, "executionName": name}, None)


def claim(ddb, ref: dict) -> dict | None:
    pk = "claim#" + hashlib.sha256(f"{ref['bucket']}/{ref['key']}/{ref['versionId']}".encode()).hexdigest()
    return ddb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")


def test_object_created_event_is_normalised_and_claimed(aws):
    s3, ddb = aws
    ref = put(s3, "incoming/report.csv", b"a,b\n1,2\n")
    before = int(time.time())

    result = run(created_event(ref), "exec-1")

    assert result == {"scanId": "exec-1", "trigger": "object-created", "objects": [ref], "skipped": [],
                      "objectCount": 1}
    item = claim(ddb, ref)
    assert item["scanId"] == {"S": "exec-1"}
    assert before + TTL <= int(item["expiresAt"]["N"]) <= int(time.time()) + TTL
    assert abs(datetime.fromisoformat(item["claimedAt"]["S"]).timestamp() - before) < 5
    assert set(item) == {"pk", "scanId", "claimedAt", "expiresAt"}  # the key itself is never stored


def test_duplicate_event_is_skipped_and_same_execution_reuses_its_claim(aws):
    s3, ddb = aws
    ref = put(s3, "incoming/report.csv")
    event = created_event(ref)
    assert run(event, "exec-1")["objects"] == [ref]

    duplicate = run(event, "exec-2")
    assert duplicate["objects"] == [] and duplicate["objectCount"] == 0
    assert duplicate["skipped"] == [{"key": ref["key"], "reason": "duplicate: version already claimed by scan exec-1"}]

    retried = run(event, "exec-1")  # a Lambda retry of the first execution
    assert retried["objects"] == [ref]
    assert claim(ddb, ref)["scanId"] == {"S": "exec-1"}

    # An expired claim that DynamoDB has not yet removed no longer blocks a new scan.
    ddb.update_item(TableName=TABLE, Key={"pk": claim(ddb, ref)["pk"]}, UpdateExpression="SET expiresAt = :t",
                    ExpressionAttributeValues={":t": {"N": str(int(time.time()) - 1)}})
    assert run(event, "exec-3")["objects"] == [ref]
    assert claim(ddb, ref)["scanId"] == {"S": "exec-3"}


def _event(**changes) -> dict:
    event = created_event({"bucket": INGRESS, "key": "k.csv", "versionId": "v1", "etag": "abc", "size": 3})
    for path, value in changes.items():
        target = event
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is _DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return event


_DELETE = object()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"event": _event()}, r"executionName must be a non-empty string"),
        ({"event": "Object Created", "executionName": "x"}, r"input.event must be the execution input"),
        ({"event": _event(**{"detail-type": "Object Deleted"}), "executionName": "x"},
         r"detail-type must be 'Object Created' or 'Scheduled Event', got 'Object Deleted'"),
        ({"event": _event(source="my.app"), "executionName": "x"}, r"source must be 'aws.s3'"),
        ({"event": {**SCHEDULED, "source": "aws.s3"}, "executionName": "x"}, r"source must be 'aws.events'"),
        ({"event": _event(detail=_DELETE), "executionName": "x"}, r"event.detail is missing"),
        ({"event": _event(detail__object=_DELETE), "executionName": "x"}, r"event.detail.object is missing"),
        ({"event": _event(detail__object__key=_DELETE), "executionName": "x"}, r"event.detail.object.key is missing"),
        ({"event": _event(detail__object__key=42), "executionName": "x"}, r"object.key must be a non-empty string"),
        ({"event": _event(**{"detail__object__version-id": _DELETE}), "executionName": "x"},
         r"version-id is missing or 'null': the ingress bucket must be versioned"),
        ({"event": _event(**{"detail__object__version-id": "null"}), "executionName": "x"},
         r"version-id is missing or 'null'"),
        ({"event": _event(detail__object__etag=_DELETE), "executionName": "x"}, r"event.detail.object.etag is missing"),
        ({"event": _event(detail__object__size="3"), "executionName": "x"}, r"size must be a non-negative integer"),
        ({"event": _event(detail__object__size=-1), "executionName": "x"}, r"size must be a non-negative integer"),
        ({"event": _event(detail__bucket__name="other-bucket"), "executionName": "x"},
         r"bucket 'other-bucket', not the ingress bucket 'ingress-bucket'"),
    ],
    ids=["no-execution-name", "event-not-object", "unknown-detail-type", "object-created-wrong-source",
         "schedule-wrong-source", "no-detail", "no-object", "no-key", "key-not-string", "no-version",
         "null-version", "no-etag", "size-string", "size-negative", "other-bucket"],
)
def test_malformed_events_raise_invalid_input_and_claim_nothing(aws, payload, message):
    _, ddb = aws
    with pytest.raises(InvalidInputError, match=message):
        prepare_scan.handler(payload, None)
    assert ddb.scan(TableName=TABLE)["Count"] == 0


def test_schedule_lists_latest_versions_under_prefix_with_cap_and_dedup(aws, monkeypatch):
    s3, _ = aws
    monkeypatch.setenv("INGRESS_PREFIX", "in/")
    put(s3, "in/a.csv", b"old")
    a = put(s3, "in/a.csv", b"newer content")              # only the latest version is scanned
    put(s3, "in/b.csv")
    s3.delete_object(Bucket=INGRESS, Key="in/b.csv")        # latest is a delete marker: skipped
    c = put(s3, "in/c.csv", b"c")
    put(s3, "in/folder/", b"")                              # console folder placeholder
    put(s3, "out/d.csv")                                    # outside the prefix

    everything = run(SCHEDULED, "sched-0")
    assert everything["trigger"] == "schedule"
    assert everything["objects"] == [a, c]
    assert everything["skipped"] == [{"key": "in/folder/", "reason": "folder placeholder (empty object whose key ends with '/')"}]

    # New versions, a cap of one object per batch, and the other objects still held by sched-0.
    monkeypatch.setenv("MAX_BATCH_OBJECTS", "1")
    a2, c2 = put(s3, "in/a.csv", b"v3"), put(s3, "in/c.csv", b"v2")
    first = run(SCHEDULED, "sched-1")
    assert first["objects"] == [a2] and first["objectCount"] == 1
    second = run(SCHEDULED, "sched-2")
    assert second["objects"] == [c2]
    assert {"key": "in/a.csv", "reason": "duplicate: version already claimed by scan sched-1"} in second["skipped"]


KEYS = [
    "with space/file name.csv",
    "unicodé/日本語/ファイル 😀.txt",
    "plus+sign/a+b.csv",
    "percent/100%25 done%20here%.txt",
    "/".join(["deep"] * 150) + "/leaf.json",
]


@pytest.mark.parametrize("key", KEYS, ids=["space", "unicode", "plus", "percent", "deep"])
def test_keys_round_trip_exactly_from_events(aws, key):
    s3, ddb = aws
    ref = put(s3, key)
    result = run(created_event(ref), "exec-keys")
    assert result["objects"][0]["key"] == key
    assert claim(ddb, ref)["scanId"] == {"S": "exec-keys"}


def test_keys_round_trip_exactly_from_schedule(aws):
    s3, _ = aws
    refs = [put(s3, key) for key in KEYS]
    result = run(SCHEDULED, "sched-keys")
    assert sorted(o["key"] for o in result["objects"]) == sorted(r["key"] for r in refs)
    assert {(o["key"], o["versionId"]) for o in result["objects"]} == {(r["key"], r["versionId"]) for r in refs}


def test_long_execution_name_gives_hashed_scan_id(aws):
    s3, ddb = aws
    ref = put(s3, "k.csv")
    name = "Z" * 80
    result = run(created_event(ref), name)
    assert result["scanId"] == "scan-" + hashlib.sha256(name.encode()).hexdigest()[:32]
    assert claim(ddb, ref)["scanId"] == {"S": result["scanId"]}


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ProvisionedThroughputExceededException", 400, TransientError),
        ("ThrottlingException", 400, TransientError),
        ("InternalServerError", 500, TransientError),
        ("AccessDeniedException", 400, ClientError),
        ("ResourceNotFoundException", 400, ClientError),
    ],
)
def test_dynamodb_errors_are_mapped(aws, monkeypatch, code, status, expected):
    s3, _ = aws
    ref = put(s3, "k.csv")
    client = prepare_scan._CLIENTS.client("dynamodb")

    def fail(**_):
        raise client_error(code, status)

    monkeypatch.setattr(client, "put_item", fail)
    with pytest.raises(expected) as raised:
        run(created_event(ref), "exec-err")
    assert type(raised.value) is expected


@pytest.mark.parametrize(("code", "status", "expected"), [("SlowDown", 503, TransientError), ("AccessDenied", 403, ClientError)])
def test_s3_listing_errors_are_mapped(aws, monkeypatch, code, status, expected):
    client = prepare_scan._CLIENTS.client("s3")

    def fail(**_):
        raise client_error(code, status)

    monkeypatch.setattr(client, "list_object_versions", fail)
    with pytest.raises(expected) as raised:
        run(SCHEDULED, "sched-err")
    assert type(raised.value) is expected


def test_a_missing_or_bad_variable_fails_each_invocation_naming_it(aws, monkeypatch):
    """A deployment error surfaces when the handler runs (not at import), naming every bad variable."""
    s3, ddb = aws
    ref = put(s3, "k.csv")
    monkeypatch.delenv("STATE_TABLE")
    monkeypatch.setenv("MAX_BATCH_OBJECTS", "lots")
    with pytest.raises(InvalidEnvironment, match=r"STATE_TABLE must be set; MAX_BATCH_OBJECTS must be an integer"):
        run(created_event(ref), "exec-env")
    assert ddb.scan(TableName=TABLE)["Count"] == 0
