"""integrity_check against moto S3: formats, stored checksums, error mapping, no contents in logs."""

from __future__ import annotations

import gzip
import io
import json
from types import SimpleNamespace

import boto3
import pandas as pd
import pytest
from botocore.exceptions import (
    EndpointConnectionError,
    FlexibleChecksumError,
    IncompleteReadError,
    ReadTimeoutError,
)
from moto import mock_aws

import integrity_check
from pipeline_common.clients import ClientCache
from pipeline_common.contract import IntegrityCheckEnvironment, InvalidEnvironment
from pipeline_common.errors import InvalidInputError, PipelineError, SourceChangedError, TransientError
from support.lambda_helpers import FakeContext, client_error

BUCKET = "staging-bucket"
BATCH = {"BATCH_BUCKET": "batch-bucket"}  # the one variable without a default
SECRET = "SECRET-7731-VALUE"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.delenv("CHUNK_ROWS", raising=False)
    monkeypatch.delenv("MAX_JSON_DOCUMENT_BYTES", raising=False)
    monkeypatch.setenv("BATCH_BUCKET", BATCH["BATCH_BUCKET"])
    integrity_check._CLIENTS.clear()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1", config=integrity_check._CLIENTS.config)
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client
    integrity_check._CLIENTS.clear()


def put(s3, key: str, body: bytes, **kwargs) -> dict:
    response = s3.put_object(Bucket=BUCKET, Key=key, Body=body, **kwargs)
    return {"bucket": BUCKET, "key": key, "versionId": response["VersionId"], "etag": response["ETag"].strip('"'),
            "size": len(body)}


def check(s3, ref: dict, original_key: str | None = None, env: dict | None = None, **kwargs) -> dict:
    event = {"object": ref, "originalKey": original_key or ref["key"]}
    return integrity_check.run(event, s3=s3, env=IntegrityCheckEnvironment.from_environment({**BATCH, **(env or {})}), **kwargs)


def parquet_bytes(rows: int) -> bytes:
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.DataFrame({"id": range(rows), "name": [f"n{i}" for i in range(rows)]}).to_parquet(
            buffer, engine="fastparquet"
        )
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- results
def test_csv_with_sha256_is_valid_and_verified(s3):
    body = b"id,name\n1,alice\n2,bob\n"
    ref = put(s3, "staged/scan-1/data.csv", body, ChecksumAlgorithm="SHA256")
    assert check(s3, ref, "incoming/data.csv") == {
        "status": "VALID", "format": "csv", "reason": "parsed 2 rows", "rows": 2, "checksum": "VERIFIED",
    }


def test_format_comes_from_the_original_key(s3):
    body = b'{"a": 1}\n{"a": 2}\n'
    ref = put(s3, "staged/scan-1/object", body, ChecksumAlgorithm="SHA256")
    result = check(s3, ref, "incoming/EVENTS.NDJSON")
    assert (result["status"], result["format"], result["rows"]) == ("VALID", "jsonl", 2)


def test_gzip_jsonl_and_parquet(s3, tmp_path):
    gz = gzip.compress(b"".join(json.dumps({"i": i}).encode() + b"\n" for i in range(1000)), mtime=0)
    result = check(s3, put(s3, "a.jsonl.gz", gz, ChecksumAlgorithm="SHA256"), env={"CHUNK_ROWS": "100"})
    assert (result["status"], result["format"], result["rows"], result["checksum"]) == (
        "VALID", "jsonl+gzip", 1000, "VERIFIED")
    result = check(s3, put(s3, "a.parquet", parquet_bytes(500), ChecksumAlgorithm="SHA256"), tmp_dir=str(tmp_path))
    assert (result["status"], result["format"], result["rows"], result["checksum"]) == (
        "VALID", "parquet", 500, "VERIFIED")
    assert list(tmp_path.iterdir()) == []


def test_default_crc32_checksum_is_verified_too(s3):
    # boto3 sends a CRC32 by default when no algorithm is chosen; it is a full-object checksum as well
    ref = put(s3, "a.tsv", b"a\tb\n1\t2\n")
    head = s3.head_object(Bucket=BUCKET, Key="a.tsv", ChecksumMode="ENABLED")
    assert "ChecksumCRC32" in head
    assert check(s3, ref)["checksum"] == "VERIFIED"


def test_stored_checksum_mismatch_is_corrupt(s3):
    body = b"id,name\n1,alice\n"
    ref = put(s3, "a.csv", body, ChecksumAlgorithm="SHA256")
    other = put(s3, "other.csv", b"id,name\n1,bob\n", ChecksumAlgorithm="SHA256")
    wrong = s3.head_object(Bucket=BUCKET, Key="other.csv", VersionId=other["versionId"], ChecksumMode="ENABLED")

    def tamper(parsed, **_):  # the stored checksum no longer matches the bytes S3 returns
        parsed["ChecksumSHA256"] = wrong["ChecksumSHA256"]

    s3.meta.events.register("after-call.s3.HeadObject", tamper)
    assert check(s3, ref) == {
        "status": "CORRUPT", "format": "csv", "reason": "checksum mismatch (SHA256)", "rows": None,
        "checksum": "MISMATCH",
    }


def test_composite_multipart_checksum_is_not_verified(s3):
    # moto 5.2.5 returns the composite value without its "-N" suffix and no ChecksumType on HeadObject;
    # the multipart "-2" ETag is what tells the checksum is composite.
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="big.csv", ChecksumAlgorithm="SHA256")
    part1 = b"a,b\n" + b"1,2\n" * (5 * 1024 * 1024 // 4)
    part2 = b"3,4\n" * 10
    parts = []
    for number, data in ((1, part1), (2, part2)):
        answer = s3.upload_part(Bucket=BUCKET, Key="big.csv", UploadId=upload["UploadId"], PartNumber=number,
                                Body=data, ChecksumAlgorithm="SHA256")
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": answer["ChecksumSHA256"]})
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key="big.csv", UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": parts})
    ref = {"bucket": BUCKET, "key": "big.csv", "versionId": done["VersionId"]}
    result = check(s3, ref, env={"CHUNK_ROWS": "100000"})
    assert result == {
        "status": "VALID", "format": "csv", "rows": (len(part1) + len(part2)) // 4 - 1, "checksum": "ABSENT",
        "reason": f"parsed {(len(part1) + len(part2)) // 4 - 1} rows; composite multipart SHA256 checksum not verified",
    }


@pytest.fixture
def logged():
    """What the function's Powertools logger writes (it holds the stdout of import time, not capsys')."""
    handler = integrity_check.logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_unknown_format_and_corrupt_object(s3, logged):
    assert check(s3, put(s3, "a.xlsx", b"PK\x03\x04"))["status"] == "UNCHECKED"
    ref = put(s3, "bad.csv", f"a,b\n1,2\n3,{SECRET},x\n".encode(), ChecksumAlgorithm="SHA256")
    result = check(s3, ref)
    assert result == {
        "status": "CORRUPT", "format": "csv", "reason": "line 3 has 3 fields, the header has 2", "rows": None,
        "checksum": "VERIFIED",
    }
    assert check(s3, put(s3, "empty.json", b""))["reason"] == "empty object"
    lines = [json.loads(line) for line in logged.getvalue().splitlines()]
    assert [line["status"] for line in lines] == ["UNCHECKED", "CORRUPT", "CORRUPT"]
    assert lines[1]["message"] == "Checked the object's integrity"
    assert lines[1]["key"] == "bad.csv" and lines[1]["level"] == "WARNING"
    assert SECRET not in logged.getvalue()


def test_env_settings(s3):
    ref = put(s3, "a.json", json.dumps(list(range(100))).encode())
    assert check(s3, ref, env={"MAX_JSON_DOCUMENT_BYTES": "50"})["status"] == "UNCHECKED"
    assert check(s3, ref, env={"MAX_JSON_DOCUMENT_BYTES": "", "CHUNK_ROWS": ""})["rows"] == 100
    with pytest.raises(InvalidEnvironment, match="CHUNK_ROWS"):
        check(s3, ref, env={"CHUNK_ROWS": "zero"})


def test_a_bad_variable_fails_each_invocation_naming_it(s3, monkeypatch):
    """The handler reads its environment when it runs (not at import); a bad value is a deployment error."""
    ref = put(s3, "a.csv", b"a\n1\n")
    monkeypatch.setattr(integrity_check, "_CLIENTS", ClientCache(integrity_check._CLIENTS.config, s3=s3))
    monkeypatch.setenv("CHUNK_ROWS", "zero")
    monkeypatch.setenv("MAX_JSON_DOCUMENT_BYTES", "0")
    with pytest.raises(InvalidEnvironment, match="CHUNK_ROWS must be an integer.*MAX_JSON_DOCUMENT_BYTES must be at least 1"):
        integrity_check.handler({"object": ref, "originalKey": "a.csv"}, FakeContext())


# ---------------------------------------------------------------------------------------------- the source changed
def test_no_such_version_is_source_changed(s3):
    ref = put(s3, "a.csv", b"a\n1\n")
    s3.delete_object(Bucket=BUCKET, Key="a.csv", VersionId=ref["versionId"])
    with pytest.raises(SourceChangedError):
        check(s3, ref)
    with pytest.raises(SourceChangedError):
        check(s3, {**put(s3, "b.csv", b"a\n1\n"), "versionId": "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd0i"})


def test_no_such_version_on_get_is_source_changed(s3):
    ref = put(s3, "a.csv", b"a\n1\n")

    def vanish(**_):  # the version disappears between HeadObject and GetObject
        s3.delete_object(Bucket=BUCKET, Key="a.csv", VersionId=ref["versionId"])

    s3.meta.events.register("before-call.s3.GetObject", vanish)
    with pytest.raises(SourceChangedError, match="NoSuchVersion"):
        check(s3, ref)


def test_other_etag_or_size_is_source_changed(s3):
    ref = put(s3, "a.csv", b"a\n1\n")
    with pytest.raises(SourceChangedError, match="ETag"):
        check(s3, {**ref, "etag": "0" * 32})
    with pytest.raises(SourceChangedError, match="size"):
        check(s3, {**ref, "size": 999})


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        {"originalKey": "a.csv"},
        {"object": {"bucket": BUCKET, "key": "a.csv"}, "originalKey": "a.csv"},  # no versionId
        {"object": {"bucket": BUCKET, "key": "a.csv", "versionId": "v"}},
        {"object": {"bucket": BUCKET, "key": "a.csv", "versionId": "v"}, "originalKey": ""},
    ],
)
def test_bad_input(event):
    with pytest.raises(InvalidInputError):
        integrity_check.run(event, s3=None, env=DEFAULTS)


# ---------------------------------------------------------------------------------------------- transient failures
DEFAULTS = IntegrityCheckEnvironment(batch_bucket="batch-bucket")
REF = {"bucket": BUCKET, "key": "a.csv", "versionId": "v1"}
EVENT = {"object": REF, "originalKey": "a.csv"}


class FakeS3:
    def __init__(self, head=None, get=None, body: bytes | None = None, body_error: Exception | None = None):
        self._head, self._get, self._body, self._body_error = head, get, body, body_error

    def head_object(self, **kwargs):
        if self._head:
            raise self._head
        return {"ContentLength": len(self._body or b""), "ETag": '"e"'}

    def get_object(self, **kwargs):
        if self._get:
            raise self._get
        return {"Body": FakeBody(self._body or b"", self._body_error)}


class FakeBody:
    def __init__(self, data: bytes, error: Exception | None):
        self._stream, self._error, self.closed = io.BytesIO(data), error, False

    def read(self, size=-1):
        chunk = self._stream.read(size)
        if not chunk and self._error:
            raise self._error
        return chunk

    def close(self):
        self.closed = True


@pytest.mark.parametrize(
    "error",
    [
        client_error("SlowDown"),
        client_error("InternalError", 500),
        client_error("ServiceUnavailable"),
        client_error("RequestTimeout", 400),
        EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"),
    ],
    ids=["SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "connection"],
)
@pytest.mark.parametrize("operation", ["head", "get"])
def test_transient_s3_errors(error, operation):
    with pytest.raises(TransientError):
        integrity_check.run(EVENT, s3=FakeS3(**{operation: error}, body=b"a\n1\n"), env=DEFAULTS)


@pytest.mark.parametrize(
    "error",
    [ReadTimeoutError(endpoint_url="https://s3"), IncompleteReadError(actual_bytes=3, expected_bytes=9),
     ConnectionResetError("reset")],
    ids=["read-timeout", "incomplete-read", "reset"],
)
def test_transient_errors_while_streaming(error):
    with pytest.raises(TransientError):
        integrity_check.run(EVENT, s3=FakeS3(body=b"a,b\n" + b"1,2\n" * 1000, body_error=error), env=DEFAULTS)


def test_transport_checksum_error_is_a_mismatch():
    error = FlexibleChecksumError(error_msg="Expected checksum x did not match calculated checksum: y")
    result = integrity_check.run(EVENT, s3=FakeS3(body=b"a,b\n1,2\n", body_error=error), env=DEFAULTS)
    assert (result["status"], result["checksum"]) == ("CORRUPT", "MISMATCH")


@pytest.mark.parametrize(
    "error, expected",
    [(client_error("AccessDenied", 403), PipelineError), (client_error("InvalidArgument", 400), InvalidInputError),
     (client_error("MethodNotAllowed", 405), SourceChangedError)],
)
def test_permanent_s3_errors(error, expected):
    with pytest.raises(expected) as caught:
        integrity_check.run(EVENT, s3=FakeS3(head=error), env=DEFAULTS)
    assert not isinstance(caught.value, TransientError)


# ---------------------------------------------------------------------------------------------- the Lambda entry point
def test_handler_entry_point(s3, monkeypatch):
    ref = put(s3, "a.txt", b"id  name\n1   alice\n", ChecksumAlgorithm="SHA256")
    monkeypatch.setattr(integrity_check, "_CLIENTS", ClientCache(integrity_check._CLIENTS.config, s3=s3))
    context = SimpleNamespace(function_name="IntegrityCheck", memory_limit_in_mb=2048, aws_request_id="req-1",
                              invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:IntegrityCheck")
    result = integrity_check.handler({"object": ref, "originalKey": "a.txt"}, context)
    assert (result["status"], result["format"], result["rows"], result["checksum"]) == (
        "VALID", "fixed-width", 1, "VERIFIED")
