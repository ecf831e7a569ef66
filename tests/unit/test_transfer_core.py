"""transfer_core without AWS: request parsing, tag merging, copy arguments, verification and error classes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

import pytest

import transfer_core
from pipeline_common.constants import META_SOURCE_ETAG, META_SOURCE_LAST_MODIFIED, META_SOURCE_VERSION, TAG_OUTCOME
from pipeline_common.errors import InvalidInputError, SourceChangedError, VerificationError

SOURCE = {"bucket": "in", "key": "a.csv", "versionId": "v1", "etag": "e1", "size": 3}


def test_parse_request_copy_and_tag():
    parsed = transfer_core.parse_request(
        {"operation": "move", "source": {**SOURCE, "etag": '"e1"'}, "destination": {"bucket": "out", "key": "x"},
         "tags": {"k": "v"}}
    )
    assert parsed == transfer_core.TransferRequest("move", SOURCE, "out", "x", {"k": "v"})
    tag = transfer_core.parse_request({"operation": "tag", "source": SOURCE})
    assert (tag.destination_bucket, tag.tags) == (None, {})


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"operation": "rename", "source": SOURCE}, "operation must be one of copy, move, tag, delete"),
        ({"operation": "copy", "source": {**SOURCE, "versionId": "null"}}, "source.versionId is required"),
        ({"operation": "copy", "source": SOURCE}, "destination {bucket, key} is required for copy"),
        ({"operation": "move", "source": SOURCE, "destination": {"bucket": "out", "key": ""}}, "destination.key"),
        ({"operation": "move", "source": SOURCE, "destination": {"bucket": "out", "key": "k" * 1025}},
         "1025 bytes in UTF-8"),
        ({"operation": "move", "source": SOURCE, "destination": {"bucket": "in", "key": "a.csv"}}, "must differ"),
        ({"operation": "tag", "source": SOURCE, "tags": {"k": 1}}, "tag 'k' must have a string value"),
        ({"operation": "tag", "source": SOURCE, "tags": {"": "v"}}, "tag key '' must be a string"),
        ({"operation": "tag", "source": SOURCE, "tags": {f"k{i}": "v" for i in range(11)}}, "11 tags given"),
    ],
)
def test_parse_request_rejects(event, message):
    with pytest.raises(InvalidInputError, match=message):
        transfer_core.parse_request(event)


def test_destination_key_of_exactly_1024_bytes_is_accepted():
    key = "é" * 512  # 1024 bytes
    parsed = transfer_core.parse_request({"operation": "copy", "source": SOURCE, "destination": {"bucket": "o", "key": key}})
    assert parsed.destination_key == key


def test_merge_tags_pipeline_wins_and_limit_keeps_sorted_source_tags():
    source = [{"Key": f"s{i}", "Value": str(i)} for i in (3, 1, 2)] + [{"Key": "verdict", "Value": "OLD"}]
    merged, dropped = transfer_core.merge_tags(source, {"verdict": "CLEAN", "scan": "x"}, limit=4)
    assert merged == {"verdict": "CLEAN", "scan": "x", "s1": "1", "s2": "2"}
    assert dropped == ["s3"]
    assert transfer_core.merge_tags([], {}, limit=10) == ({}, [])


def test_copy_extra_args():
    head = {
        "VersionId": "v1", "ETag": '"e1"', "ContentLength": 3, "Metadata": {"origin": "x"},
        "LastModified": datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc), "ContentType": "text/csv", "CacheControl": "no-store", "ContentEncoding": None,
        "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn:key", "ChecksumCRC64NVME": "abc=",
    }
    tags = {"macie-pipeline:verdict": "CLEAN", "note": "a&b=c d é"}
    args = transfer_core.copy_extra_args(head, tags, multipart=False)
    assert args == {
        "MetadataDirective": "REPLACE",
        "Metadata": {"origin": "x", META_SOURCE_VERSION: "v1", META_SOURCE_ETAG: "e1",
                     META_SOURCE_LAST_MODIFIED: "2026-03-01T12:00:05Z"},
        "TaggingDirective": "REPLACE",
        "ContentType": "text/csv",
        "CacheControl": "no-store",
        "Tagging": args["Tagging"],
        "CopySourceIfMatch": '"e1"',
    }
    assert dict(parse_qsl(args["Tagging"], keep_blank_values=True)) == tags
    assert " " not in args["Tagging"] and "+" not in args["Tagging"]
    assert transfer_core.copy_extra_args(head, tags, multipart=True)["ChecksumAlgorithm"] == "CRC64NVME"
    crc32 = {**head, "ChecksumCRC64NVME": None, "ChecksumCRC32": "q="}
    assert "ChecksumAlgorithm" not in transfer_core.copy_extra_args(crc32, {}, multipart=True)
    assert "Tagging" not in transfer_core.copy_extra_args(head, {}, multipart=False)


def _head(**fields):
    return {"ContentLength": 3, "ETag": '"e1"', "VersionId": "v", **fields}


@pytest.mark.parametrize(
    ("source", "dest", "multipart", "expected"),
    [
        (_head(), _head(), False, "etag"),
        (_head(ChecksumCRC32="c"), _head(ChecksumCRC32="c", ETag='"d"', ServerSideEncryption="aws:kms"), False, "checksum"),
        (_head(ChecksumCRC32="c", ServerSideEncryption="AES256"), _head(ChecksumCRC32="c", ETag='"x-2"'), True, "checksum"),
        (_head(), _head(ETag='"x-2"'), True, "size"),
        (_head(ETag='"e-3"'), _head(ETag='"e-3"'), False, "size"),
        (_head(ChecksumCRC32="c"), _head(ChecksumCRC32C="c", ETag='"d"', SSECustomerAlgorithm="AES256"), False, "size"),
        (_head(ChecksumCRC32="c-2", ChecksumType="COMPOSITE"), _head(ChecksumCRC32="c-2", ETag='"x-2"'), True, "size"),
    ],
    ids=["md5-etag", "kms-checksum", "multipart-checksum", "multipart-size", "multipart-source", "other-algorithm",
         "composite"],
)
def test_verify_copy_methods(source, dest, multipart, expected):
    method, note = transfer_core.verify_copy(source, dest, multipart)
    assert method == expected
    assert (note is None) == (expected != "size")


@pytest.mark.parametrize(
    ("source", "dest", "message"),
    [
        (_head(), _head(ContentLength=4), "copy has 4 bytes, source has 3"),
        (_head(), _head(ETag='"e2"'), "ETag e2 differs"),
        (_head(ChecksumSHA256="a"), _head(ChecksumSHA256="b", ServerSideEncryption="aws:kms"), "SHA256 checksum differs"),
    ],
)
def test_verify_copy_mismatches(source, dest, message):
    with pytest.raises(VerificationError, match=message):
        transfer_core.verify_copy(source, dest, multipart_copy=False)


def test_check_source_and_is_copy_of():
    transfer_core.check_source(_head(ETag='"e1"'), SOURCE)
    transfer_core.check_source(_head(ETag='"zz"'), {**SOURCE, "etag": None, "size": None})
    with pytest.raises(SourceChangedError, match="has ETag e2, expected e1"):
        transfer_core.check_source(_head(ETag='"e2"'), SOURCE)
    copy = _head(Metadata={META_SOURCE_VERSION: "v1", META_SOURCE_ETAG: "e1"})
    assert transfer_core.is_copy_of(copy, SOURCE)
    assert not transfer_core.is_copy_of(copy, {**SOURCE, "versionId": "v2"})
    assert not transfer_core.is_copy_of(copy, {**SOURCE, "etag": "e9"})
    assert not transfer_core.is_copy_of({**copy, "ContentLength": 4}, SOURCE)
    assert not transfer_core.is_copy_of(_head(), SOURCE)


@pytest.mark.parametrize(
    ("code", "status", "on_source", "expected"),
    [
        ("SlowDown", 503, False, "transient"),
        ("RequestTimeout", 400, True, "transient"),
        ("Whatever", 502, False, "transient"),
        ("NoSuchVersion", 404, True, "source-changed"),
        ("404", 404, True, "source-changed"),
        ("405", 405, True, "source-changed"),
        ("PreconditionFailed", 412, True, "source-changed"),
        ("NoSuchVersion", 404, False, None),
        ("NoSuchBucket", 404, True, None),
        ("AccessDenied", 403, True, None),
    ],
)
def test_classify_error(code, status, on_source, expected):
    assert transfer_core.classify_error(code, status, on_source=on_source) == expected


# ------------------------------------------------------------------ ordering in the vault (issue 10, item 3)
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def _versioned(last_modified, origin=None, etag="e"):
    metadata = {} if origin is None else {META_SOURCE_LAST_MODIFIED: origin}
    return {"LastModified": last_modified, "Metadata": metadata, "ETag": f'"{etag}"'}


def test_origin_is_the_ingress_last_modified_and_travels_unchanged():
    ingress = _versioned(T0)
    assert transfer_core.origin_of(ingress) == "2026-03-01T12:00:00Z"
    staged = _versioned(T0 + timedelta(minutes=5), "2026-03-01T12:00:00Z")
    reviewed = _versioned(T0 + timedelta(days=3), transfer_core.origin_of(staged))
    assert transfer_core.origin_of(reviewed) == "2026-03-01T12:00:00Z"
    # A copy older than the record it carries is impossible; the earlier of the two is taken.
    assert transfer_core.origin_of(_versioned(T0, "2027-01-01T00:00:00Z")) == "2026-03-01T12:00:00Z"


@pytest.mark.parametrize("forged", ["2099-12-31T23:59:59Z", "not a date", "", "2026-03-01T12:00:00+00:00"])
def test_an_uploader_cannot_make_a_version_look_newer(forged):
    """Metadata on the ingress version is the uploader's: a forged or malformed origin never wins."""
    assert transfer_core.origin_of(_versioned(T0, forged)) == "2026-03-01T12:00:00Z"


def test_newer_origin_decides_only_on_a_strictly_newer_recorded_origin():
    incoming = "2026-03-01T12:00:00Z"
    assert transfer_core.newer_origin(None, incoming) is None
    assert transfer_core.newer_origin(_versioned(T0, "2026-03-01T12:00:01Z"), incoming) == "2026-03-01T12:00:01Z"
    assert transfer_core.newer_origin(_versioned(T0, "2026-03-01T11:59:59Z"), incoming) is None
    assert transfer_core.newer_origin(_versioned(T0, incoming), incoming) is None  # same second: no order known
    assert transfer_core.newer_origin(_versioned(T0 + timedelta(days=9)), incoming) is None  # no record


def test_write_condition_holds_the_copy_to_what_was_current():
    assert transfer_core.write_condition(None) == {"IfNoneMatch": "*"}
    assert transfer_core.write_condition(_versioned(T0, etag="abc-2")) == {"IfMatch": '"abc-2"'}


def test_superseded_destination_is_parsed_and_diverts_with_the_superseded_tag():
    event = {"operation": "move", "source": SOURCE, "destination": {"bucket": "vault", "key": "a.csv"},
             "supersededDestination": {"bucket": "quarantine", "key": "superseded/s1/a.csv"},
             "tags": {TAG_OUTCOME: "VAULT", "k": "v"}}
    parsed = transfer_core.parse_request(event)
    assert parsed.ordered and (parsed.superseded_bucket, parsed.superseded_key) == ("quarantine", "superseded/s1/a.csv")
    diverted = parsed.diverted()
    assert (diverted.destination_bucket, diverted.destination_key) == ("quarantine", "superseded/s1/a.csv")
    assert diverted.tags == {TAG_OUTCOME: "SUPERSEDED", "k": "v"} and not diverted.ordered
    assert not transfer_core.parse_request({**event, "supersededDestination": None}).ordered


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"supersededDestination": "q/x"}, "supersededDestination must be an object"),
        ({"supersededDestination": {"bucket": "q"}}, "supersededDestination.key must be a non-empty string"),
        ({"supersededDestination": {"bucket": "vault", "key": "a.csv"}}, "must differ from destination"),
        ({"supersededDestination": {"bucket": "in", "key": "a.csv"}}, "must differ from the source"),
        ({"operation": "tag"}, "supersededDestination is for copy and move"),
    ],
)
def test_bad_superseded_destination_is_rejected(change, message):
    event = {"operation": "move", "source": SOURCE, "destination": {"bucket": "vault", "key": "a.csv"},
             "supersededDestination": {"bucket": "q", "key": "superseded/s1/a.csv"}, **change}
    with pytest.raises(InvalidInputError, match=message):
        transfer_core.parse_request(event)


def test_write_conflicts_are_412_and_409():
    assert transfer_core.is_write_conflict("PreconditionFailed", 412)
    assert transfer_core.is_write_conflict("ConditionalRequestConflict", 409)
    assert not transfer_core.is_write_conflict("AccessDenied", 403)


# ---------------------------------------------------------------------------------------------- chunk operations
def test_parse_chunk_request():
    parsed = transfer_core.parse_chunk_request({"operation": "route_chunk", "batchId": "b-1", "chunk": 3, "executionArn": "arn"})
    assert parsed == transfer_core.ChunkRequest("route_chunk", "b-1", chunk=3, execution_arn="arn")
    report = transfer_core.parse_chunk_request({"operation": "report_failed", "batchId": "b-1", "chunkCount": 2,
                                                "error": {"Error": "E"}})
    assert (report.chunk_count, report.error, report.execution_arn) == (2, {"Error": "E"}, None)
    with pytest.raises(InvalidInputError, match="chunk must be a non-negative integer, got -1"):
        transfer_core.parse_chunk_request({"operation": "stage_chunk", "batchId": "b-1", "chunk": -1})
    with pytest.raises(InvalidInputError, match="input must be an object"):
        transfer_core.parse_chunk_request([])


def test_verdict_tags_and_result_details():
    line = {"i": 0, "source": {**SOURCE, "lastModified": "t"}, "verdict": "DENY", "findings": {"tagValue": "EMAIL:2 (x)"},
            "integrity": {"status": "VALID"}, "reasons": ["r"], "outcome": "QUARANTINED", "location": {"bucket": "q"}}
    assert transfer_core.verdict_tags("b-1", line, "QUARANTINED") == {
        "macie-pipeline:scan-id": "b-1", "macie-pipeline:verdict": "DENY", "macie-pipeline:findings": "EMAIL:2 _x_",
        "macie-pipeline:outcome": "QUARANTINED"}
    assert transfer_core.result_detail(line, scan_id="b-1", execution_arn="arn") == {
        "scanId": "b-1", "executionArn": "arn", "outcome": "QUARANTINED", "verdict": "DENY", "object": SOURCE,
        "location": {"bucket": "q"}, "integrity": {"status": "VALID"}, "findings": {"tagValue": "EMAIL:2 (x)"},
        "reasons": ["r"]}
    failed = {**line, "outcome": "FAILED", "heldIn": "QUARANTINE", "error": {"Error": "ClientError", "Cause": "c"}}
    assert transfer_core.result_detail(failed, scan_id="b-1", execution_arn=None) == {
        "scanId": "b-1", "executionArn": None, "outcome": "FAILED", "heldIn": "QUARANTINE", "object": SOURCE,
        "error": "ClientError"}


def test_decisions_and_final_outcomes():
    assert transfer_core.decision_key("b-1", 7) == "review#b-1#7"
    assert transfer_core.parse_decision({"decision": "APPROVE", "reviewer": "a", "decidedAt": "t"}) == {
        "decision": "APPROVE", "reviewer": "a", "decidedAt": "t"}
    assert transfer_core.parse_decision({"decision": "approve"}) is None
    assert transfer_core.parse_decision(None) is None
    assert transfer_core.timeout_review(datetime(2025, 1, 2, 3, 4, 5, 600, tzinfo=timezone.utc)) == {
        "decision": "TIMEOUT", "reviewer": "timeout", "decidedAt": "2025-01-02T03:04:05Z"}
    assert transfer_core.has_final_outcome({"outcome": "VAULT"}, None)
    assert transfer_core.has_final_outcome({"outcome": "FAILED"}, None)
    assert not transfer_core.has_final_outcome({"outcome": "REVIEW_PENDING"}, None)
    assert transfer_core.has_final_outcome({"outcome": "REVIEW_PENDING"}, {"outcome": "DENIED"})
    assert not transfer_core.has_final_outcome(None, None)


def test_audit_fields_are_copied_when_recorded_and_never_invented():
    """Issue 12: what a decision item records of who decided is kept, bounded; a malformed or absent
    field is left out."""
    item = {"decision": "DENY", "reviewer": "a@x", "decidedAt": "t", "reviewerSub": "s", "reviewerEmail": "a@x",
            "reviewerGroups": ["reviewers", 7], "reviewerSourceIp": "", "approvals": "yes", "userAgent": "ua"}
    assert transfer_core.parse_decision(item) == {"decision": "DENY", "reviewer": "a@x", "decidedAt": "t",
                                                  "reviewerSub": "s", "reviewerEmail": "a@x"}
    many = {f"s{n:02}": {"email": f"r{n}@x", "at": f"2025-01-01T00:{n:02}:00Z", "groups": ["g"], "extra": "no"} for n in range(12)}
    approvals = transfer_core.parse_decision({"decision": "APPROVE", "approvals": many})["approvals"]
    assert list(approvals) == [f"s{n:02}" for n in range(transfer_core.MAX_APPROVALS)]
    assert approvals["s00"] == {"email": "r0@x", "at": "2025-01-01T00:00:00Z", "groups": ["g"]}


def test_plain_item_reads_every_attribute_type_a_decision_item_may_have():
    item = {"pk": {"S": "k"}, "n": {"N": "3"}, "f": {"N": "1.5"}, "ss": {"SS": ["b", "a"]}, "b": {"BOOL": True},
            "l": {"L": [{"S": "x"}, {"NULL": True}]}, "m": {"M": {"e": {"S": "y"}}}, "odd": {"X": 1}}
    assert transfer_core.plain_item(item) == {"pk": "k", "n": 3, "f": "1.5", "ss": ["a", "b"], "b": True,
                                              "l": ["x", None], "m": {"e": "y"}, "odd": None}
