"""prepare_scan, the batcher, against moto: SQS batches, claims (duplicates, takeover), manifests,
sweeps over every page of ListObjectVersions, and error handling."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from moto import mock_aws

import prepare_scan
from pipeline_common.contract import InvalidEnvironment
from pipeline_common.errors import InvalidInputError
from support.lambda_helpers import client_error

REGION = "us-east-1"
INGRESS = "ingress-bucket"
BATCHES = "batch-bucket"
TABLE = "state-table"
TTL = 3600
SWEEP = "sensitive-data-scan-pipeline.sweep"


@pytest.fixture
def aws(monkeypatch):
    for name in ("INGRESS_PREFIX", "MAX_BATCH_OBJECTS", "CHUNK_OBJECTS", "CHUNK_BYTES", "LOST_EVENT_AGE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INGRESS_BUCKET", INGRESS)
    monkeypatch.setenv("BATCH_BUCKET", BATCHES)
    monkeypatch.setenv("STATE_TABLE", TABLE)
    monkeypatch.setenv("CLAIM_TTL_SECONDS", str(TTL))
    prepare_scan._CLIENTS.clear()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=INGRESS)
        s3.put_bucket_versioning(Bucket=INGRESS, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket=BATCHES)
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sfn = boto3.client("stepfunctions", region_name=REGION)
        definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        arn = sfn.create_state_machine(name="scan", definition=definition, roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", arn)
        yield {"s3": s3, "ddb": ddb, "sfn": sfn, "arn": arn}
    prepare_scan._CLIENTS.clear()


# ------------------------------------------------------------------------------------ helpers
def ref(key: str, version: str = "v1", size: int = 10) -> dict:
    return {"bucket": INGRESS, "key": key, "versionId": version, "etag": "e-" + version, "size": size}


def eventbridge(r: dict, time_text: str = "2024-05-01T10:00:00Z") -> dict:
    return {
        "version": "0", "id": "evt", "detail-type": "Object Created", "source": "aws.s3", "time": time_text,
        "detail": {"version": "0", "bucket": {"name": r["bucket"]},
                   "object": {"key": r["key"], "size": r["size"], "etag": r["etag"], "version-id": r["versionId"]},
                   "reason": "PutObject"},
    }


def record(message_id: str, body: dict | str, sent: int = 1_714_557_600_000) -> dict:
    return {
        "messageId": message_id, "receiptHandle": "rh", "eventSource": "aws:sqs",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"SentTimestamp": str(sent), "ApproximateReceiveCount": "1"},
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:intake",
    }


def sqs(*records: dict) -> dict:
    return {"Records": list(records)}


def claim_pk(r: dict) -> str:
    return "claim#" + hashlib.sha256(f"{r['bucket']}/{r['key']}/{r['versionId']}".encode()).hexdigest()


def claim(ddb, r: dict) -> dict | None:
    return ddb.get_item(TableName=TABLE, Key={"pk": {"S": claim_pk(r)}}, ConsistentRead=True).get("Item")


def executions(aws) -> list[dict]:
    listed = aws["sfn"].list_executions(stateMachineArn=aws["arn"])["executions"]
    return [aws["sfn"].describe_execution(executionArn=e["executionArn"]) for e in listed]


def read_json(aws, key: str):
    return json.loads(aws["s3"].get_object(Bucket=BATCHES, Key=key)["Body"].read())


def read_lines(aws, key: str) -> list[dict]:
    body = aws["s3"].get_object(Bucket=BATCHES, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


# ------------------------------------------------------------------------------------ SQS intake
def test_a_batch_of_1000_events_with_duplicates_and_a_bad_record_is_one_execution_of_5_chunks(aws):
    refs = [ref(f"in/{n:04d}.csv", f"v{n}") for n in range(1000)]
    records = [record(f"m-{n:04d}", eventbridge(r)) for n, r in enumerate(refs)]
    records += [record(f"dup-{n}", eventbridge(refs[n])) for n in range(0, 50, 5)]  # several events for one version
    records.insert(500, record("bad-1", "{not json"))
    records.insert(7, record("bad-2", {"detail-type": "Object Deleted", "source": "aws.s3"}))

    result = prepare_scan.handler(sqs(*records), None)

    assert result == {"batchItemFailures": [{"itemIdentifier": "bad-2"}, {"itemIdentifier": "bad-1"}]}
    (execution,) = executions(aws)
    batch = execution["name"]
    assert batch.startswith("b-20240501T100000-") and len(batch) == len("b-20240501T100000-") + 16
    assert json.loads(execution["input"]) == {
        "batchId": batch, "trigger": "object-created",
        "manifest": {"bucket": BATCHES, "chunks": f"batches/{batch}/chunks.json"},
        "objectCount": 1000, "chunkCount": 5, "skipped": 0,
    }
    assert read_json(aws, f"batches/{batch}/chunks.json") == [{"chunk": n, "count": 200, "bytes": 2000} for n in range(5)]
    lines = [line for n in range(5) for line in read_lines(aws, f"batches/{batch}/manifest/{n:06d}.jsonl")]
    assert [line["i"] for line in lines] == list(range(1000))
    assert lines[3] == {"i": 3, "source": {**refs[3], "lastModified": "2024-05-01T10:00:00Z"}}
    assert aws["ddb"].scan(TableName=TABLE, Select="COUNT")["Count"] == 1000
    assert claim(aws["ddb"], refs[0])["scanId"] == {"S": batch}

    # SQS delivers the same batch again (say the response was lost): same batch id, nothing new.
    again = prepare_scan.handler(sqs(*records), None)
    assert again["batchItemFailures"] == [{"itemIdentifier": "bad-2"}, {"itemIdentifier": "bad-1"}]
    assert {e["name"] for e in executions(aws)} == {batch}


def test_a_window_of_zero_gives_one_object_per_batch_and_duplicate_events_one_outcome(aws):
    one = ref("in/a.csv")
    assert prepare_scan.handler(sqs(record("m-1", eventbridge(one))), None) == {"batchItemFailures": []}
    (execution,) = executions(aws)
    assert json.loads(execution["input"])["objectCount"] == 1 and json.loads(execution["input"])["chunkCount"] == 1

    # The same version in a later event (another batch): a duplicate, no second execution.
    assert prepare_scan.handler(sqs(record("m-2", eventbridge(one), sent=1_714_557_700_000)), None) == {"batchItemFailures": []}
    assert len(executions(aws)) == 1
    # Skipped objects (folder placeholder, outside the prefix) start nothing and are not retried.
    folder = {**ref("in/dir/"), "size": 0}
    assert prepare_scan.handler(sqs(record("m-3", eventbridge(folder))), None) == {"batchItemFailures": []}
    assert len(executions(aws)) == 1


def test_an_object_larger_than_a_chunk_is_a_chunk_of_its_own(aws, monkeypatch):
    monkeypatch.setenv("CHUNK_BYTES", "100")
    refs = [ref("in/a", "v1", 40), ref("in/b", "v2", 40), ref("in/big", "v3", 500), ref("in/c", "v4", 70), ref("in/d", "v5", 30)]
    prepare_scan.handler(sqs(*[record(f"m-{n}", eventbridge(r)) for n, r in enumerate(refs)]), None)
    (execution,) = executions(aws)
    batch = execution["name"]
    assert read_json(aws, f"batches/{batch}/chunks.json") == [
        {"chunk": 0, "count": 2, "bytes": 80}, {"chunk": 1, "count": 1, "bytes": 500}, {"chunk": 2, "count": 2, "bytes": 100},
    ]


def _hold(ddb, r: dict, scan_id: str, age_seconds: int) -> None:
    claimed = datetime.now(timezone.utc) - timedelta(seconds=age_seconds)
    ddb.put_item(TableName=TABLE, Item={
        "pk": {"S": claim_pk(r)}, "scanId": {"S": scan_id}, "claimedAt": {"S": claimed.isoformat(timespec="seconds")},
        "expiresAt": {"N": str(int(time.time()) + TTL)},
    })


def test_claims_of_a_batch_that_never_started_are_taken_over(aws):
    ddb = aws["ddb"]
    stale, fresh, running = ref("in/stale.csv"), ref("in/fresh.csv"), ref("in/running.csv")
    _hold(ddb, stale, "b-20240101T000000-dead000000000000", age_seconds=3600)   # batcher died long ago
    _hold(ddb, fresh, "b-20240101T000000-soon000000000000", age_seconds=10)     # batcher may be starting it now
    aws["sfn"].start_execution(stateMachineArn=aws["arn"], name="b-running", input="{}")
    _hold(ddb, running, "b-running", age_seconds=3600)                         # its execution exists

    result = prepare_scan.handler(sqs(record("m-1", eventbridge(stale)), record("m-2", eventbridge(fresh)),
                                      record("m-3", eventbridge(running))), None)

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}  # retried after the visibility timeout
    batch = next(e["name"] for e in executions(aws) if e["name"] != "b-running")
    assert claim(ddb, stale)["scanId"] == {"S": batch}
    assert claim(ddb, fresh)["scanId"] == {"S": "b-20240101T000000-soon000000000000"}
    assert claim(ddb, running)["scanId"] == {"S": "b-running"}
    input_ = json.loads(next(e for e in executions(aws) if e["name"] == batch)["input"])
    assert (input_["objectCount"], input_["skipped"]) == (1, 1)


def test_a_batch_that_cannot_be_written_or_started_is_retried_whole(aws, monkeypatch):
    records = [record("m-1", eventbridge(ref("in/a"))), record("m-2", eventbridge(ref("in/b"))), record("bad", "[]")]
    s3 = prepare_scan._CLIENTS.client("s3")
    monkeypatch.setattr(s3, "put_object", lambda **_: (_ for _ in ()).throw(client_error("SlowDown", 503)))
    result = prepare_scan.handler(sqs(*records), None)
    assert result == {"batchItemFailures": [{"itemIdentifier": m} for m in ("m-1", "m-2", "bad")]}
    assert executions(aws) == []
    monkeypatch.undo()

    # The retry (same messages): same batch id, its own claims are reused, and it starts.
    monkeypatch.setenv("STATE_MACHINE_ARN", aws["arn"])
    for name, value in (("INGRESS_BUCKET", INGRESS), ("BATCH_BUCKET", BATCHES), ("STATE_TABLE", TABLE)):
        monkeypatch.setenv(name, value)
    assert prepare_scan.handler(sqs(*records), None) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert json.loads(executions(aws)[0]["input"])["objectCount"] == 2


def test_execution_already_exists_with_the_same_input_is_success(aws, monkeypatch):
    sfn = prepare_scan._CLIENTS.client("stepfunctions")
    real = sfn.start_execution
    calls = []

    def start(**kwargs):
        calls.append(kwargs["name"])
        if len(calls) > 1:
            raise client_error("ExecutionAlreadyExists", 400, "StartExecution")
        return real(**kwargs)

    monkeypatch.setattr(sfn, "start_execution", start)
    records = [record("m-1", eventbridge(ref("in/a")))]
    assert prepare_scan.handler(sqs(*records), None) == {"batchItemFailures": []}
    assert prepare_scan.handler(sqs(*records), None) == {"batchItemFailures": []}
    assert len(calls) == 2 and calls[0] == calls[1]
    # Another input under the same name is a real conflict: the batch is retried.
    execution = executions(aws)[0]
    monkeypatch.setattr(sfn, "describe_execution", lambda **_: {**execution, "input": '{"other": 1}'})
    assert prepare_scan.handler(sqs(*records), None) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


# ------------------------------------------------------------------------------------ sweeps
def _put(s3, key: str, body: bytes = b"data") -> dict:
    response = s3.put_object(Bucket=INGRESS, Key=key, Body=body)
    return {"bucket": INGRESS, "key": key, "versionId": response["VersionId"], "etag": response["ETag"].strip('"'), "size": len(body)}


def _sweep(mode: str, context=None, page_size: int = 2, **changes) -> dict:
    env = prepare_scan.PrepareScanEnvironment.from_environment({**__import__("os").environ, **changes})
    return prepare_scan.run({"source": SWEEP, "sweep": mode}, clients=prepare_scan._CLIENTS, env=env, context=context,
                            page_size=page_size)


def _manifest_keys(aws, batch: str) -> list[str]:
    index = read_json(aws, f"batches/{batch}/chunks.json")
    return [line["source"]["key"] for c in index for line in read_lines(aws, f"batches/{batch}/manifest/{c['chunk']:06d}.jsonl")]


def test_sweep_all_pages_through_every_latest_version_and_starts_one_batch_per_max(aws, monkeypatch):
    s3 = aws["s3"]
    monkeypatch.setenv("INGRESS_PREFIX", "in/")
    _put(s3, "in/a.csv", b"old")
    _put(s3, "in/a.csv", b"newer")                   # only the latest version
    _put(s3, "in/b.csv")
    s3.delete_object(Bucket=INGRESS, Key="in/b.csv")  # latest is a delete marker
    for n in range(6):
        _put(s3, f"in/f{n}.csv")
    _put(s3, "in/folder/", b"")                       # folder placeholder: skipped
    _put(s3, "out/x.csv")                             # outside the prefix
    pages = []
    s3_client = prepare_scan._CLIENTS.client("s3")
    s3_client.meta.events.register("after-call.s3.ListObjectVersions", lambda **kw: pages.append(1))

    result = _sweep("all", MAX_BATCH_OBJECTS="3")

    assert len(pages) > 3  # page size 2: the listing took several pages
    assert (result["claimed"], result["skipped"], result["duplicates"]) == (7, 1, 0)
    assert len(result["batches"]) == 3
    keys = [k for batch in result["batches"] for k in _manifest_keys(aws, batch)]
    assert keys == ["in/a.csv"] + [f"in/f{n}.csv" for n in range(6)]
    inputs = {e["name"]: json.loads(e["input"]) for e in executions(aws)}
    assert [inputs[b]["objectCount"] for b in result["batches"]] == [3, 3, 1]
    assert {inputs[b]["trigger"] for b in result["batches"]} == {"schedule"}

    # A second sweep finds every version claimed.
    again = _sweep("all")
    assert (again["batches"], again["claimed"], again["duplicates"]) == ([], 0, 7)


def test_sweep_lost_takes_only_old_versions_never_claimed(aws):
    s3 = aws["s3"]
    old = [_put(s3, f"old/{n}.csv") for n in range(3)]
    _put(s3, "new/1.csv")
    prepare_scan.handler(sqs(record("m-1", eventbridge(old[0]))), None)  # its event arrived: claimed

    def age(parsed, **_):
        for version in parsed.get("Versions", []):
            if version["Key"].startswith("old/"):
                version["LastModified"] = datetime.now(timezone.utc) - timedelta(hours=2)

    prepare_scan._CLIENTS.client("s3").meta.events.register("after-call.s3.ListObjectVersions", age)
    result = _sweep("lost")

    assert (result["claimed"], result["duplicates"]) == (2, 1)
    (batch,) = result["batches"]
    assert _manifest_keys(aws, batch) == ["old/1.csv", "old/2.csv"]
    assert json.loads(next(e for e in executions(aws) if e["name"] == batch)["input"])["trigger"] == "sweep"


def test_sweep_stops_starting_work_when_the_invocation_is_almost_out_of_time(aws):
    for n in range(3):
        _put(aws["s3"], f"in/{n}.csv")
    assert _sweep("all", context=Context(30_000)) == {"batches": [], "claimed": 0, "skipped": 0, "duplicates": 0}
    assert aws["ddb"].scan(TableName=TABLE, Select="COUNT")["Count"] == 0
    assert _sweep("all", context=Context(600_000))["claimed"] == 3


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"detail-type": "Scheduled Event", "source": "aws.events"}, r"got an object with keys \[detail-type, source\]"),
        ({"event": {}, "executionName": "x"}, r"got an object with keys \[event, executionName\]"),
        ([1, 2], r"got a list of 2 item\(s\)"),
        ({"Records": [{"eventSource": "aws:s3"}]}, r"SQS batch of S3 events or a sweep event"),
        ({"source": SWEEP, "sweep": "some"}, r"sweep must be one of all, lost, got 'some'"),
    ],
)
def test_other_events_are_invalid_input_naming_what_was_received(aws, event, message):
    with pytest.raises(InvalidInputError, match=message):
        prepare_scan.handler(event, None)


def test_a_missing_or_bad_variable_fails_each_invocation_naming_it(aws, monkeypatch):
    monkeypatch.delenv("BATCH_BUCKET")
    monkeypatch.setenv("CHUNK_OBJECTS", "lots")
    with pytest.raises(InvalidEnvironment, match=r"BATCH_BUCKET must be set; CHUNK_OBJECTS must be an integer"):
        prepare_scan.handler(sqs(record("m-1", eventbridge(ref("in/a")))), None)
