"""integrity_check check_chunk against moto: every staged object of a chunk checked, failures per object."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

import integrity_check
from pipeline_common import batches
from pipeline_common.contract import IntegrityCheckEnvironment
from pipeline_common.errors import InvalidInputError
from support.lambda_helpers import client_error

BATCH, QUARANTINE = "batch", "quarantine"
BATCH_ID = "b-20250101T000000-00000000000000aa"
ENV = IntegrityCheckEnvironment(batch_bucket=BATCH, workers=3)


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setattr(batches, "RETRY_DELAY_SECONDS", 0)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (BATCH, QUARANTINE):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield client


def staged_line(s3, i: int, key: str, body: bytes) -> dict:
    response = s3.put_object(Bucket=QUARANTINE, Key=f"scans/{BATCH_ID}/{i}", Body=body, ChecksumAlgorithm="SHA256")
    staged = {"bucket": QUARANTINE, "key": f"scans/{BATCH_ID}/{i}", "versionId": response["VersionId"],
              "etag": response["ETag"].strip('"'), "size": len(body)}
    return {"i": i, "source": {"bucket": "ingress", "key": key, "versionId": f"v{i}"}, "staged": staged, "error": None}


def check(s3, chunk=0):
    return integrity_check.run({"operation": "check_chunk", "batchId": BATCH_ID, "chunk": chunk}, s3=s3, env=ENV)


def test_every_staged_object_is_checked_and_failures_stay_with_their_object(s3, monkeypatch):
    lines = [staged_line(s3, i, f"in/{i}.csv", f"a,b\n{i},2\n".encode()) for i in range(6)]
    lines.append(staged_line(s3, 6, "in/6.json", b"{not json"))
    lines.append({"i": 7, "source": {"bucket": "ingress", "key": "in/7.csv", "versionId": "v7"}, "staged": None,
                  "error": {"Error": "SourceChangedError", "Cause": "gone"}})
    s3.delete_object(Bucket=QUARANTINE, Key=lines[2]["staged"]["key"], VersionId=lines[2]["staged"]["versionId"])
    # one object's read is throttled once (retried in the chunk), another's always (its error)
    real, throttled = s3.get_object, {"once": True}

    def get_object(**kwargs):
        if kwargs.get("Key") == lines[3]["staged"]["key"] and throttled.pop("once", False):
            raise client_error("SlowDown", 503, "GetObject")
        if kwargs.get("Key") == lines[4]["staged"]["key"]:
            raise client_error("SlowDown", 503, "GetObject")
        return real(**kwargs)

    monkeypatch.setattr(s3, "get_object", get_object)
    batches.write_chunk(s3, BATCH, BATCH_ID, "copied", 0, lines)
    assert check(s3) == {"chunk": 0, "checked": 5, "failed": 3, "corrupt": 1, "valid": 4}
    staged = batches.read_chunk(s3, BATCH, BATCH_ID, "staged", 0)
    assert [line["i"] for line in staged] == list(range(8))
    assert staged[0] == {**lines[0], "integrity": {"status": "VALID", "format": "csv", "reason": "parsed 1 rows",
                                                   "rows": 1, "checksum": "VERIFIED"}}
    assert staged[2]["integrity"] is None and staged[2]["error"]["Error"] == "SourceChangedError"
    assert staged[3]["integrity"]["status"] == "VALID"
    assert staged[4]["integrity"] is None and staged[4]["error"]["Error"] == "TransientError"
    assert staged[6]["integrity"]["status"] == "CORRUPT"
    assert staged[7] == {**lines[7], "integrity": None}  # passed through


def test_the_single_object_payload_still_works(s3):
    line = staged_line(s3, 0, "in/a.csv", b"a\n1\n")
    result = integrity_check.run({"object": line["staged"], "originalKey": "in/a.csv"}, s3=s3, env=ENV)
    assert result["status"] == "VALID"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"operation": "check", "batchId": BATCH_ID, "chunk": 0}, "operation must be one of check_chunk"),
        ({"operation": "check_chunk", "chunk": 0}, "batchId must be a batch id"),
        ({"operation": "check_chunk", "batchId": BATCH_ID, "chunk": "0"}, "chunk must be a non-negative integer"),
        ({"operation": "check_chunk", "batchId": BATCH_ID, "chunk": 0}, "copied/000000.jsonl does not exist"),
    ],
)
def test_bad_input(s3, event, message):
    with pytest.raises(InvalidInputError, match=message):
        integrity_check.run(event, s3=s3, env=ENV)


def test_a_malformed_line_names_the_file_and_line(s3):
    good = staged_line(s3, 0, "in/a.csv", b"a\n1\n")
    batches.write_chunk(s3, BATCH, BATCH_ID, "copied", 0, [good, {**good, "i": 1, "staged": {"bucket": QUARANTINE}}])
    with pytest.raises(InvalidInputError, match=r"copied/000000.jsonl line 2: staged.key must be a non-empty string"):
        check(s3)
