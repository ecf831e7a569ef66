"""prepare_core without AWS: the environment, scan ids, claim items, event parsing and skip rules."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

import prepare_core
from pipeline_common.contract import PrepareScanEnvironment
from pipeline_common.errors import InvalidInputError


def test_environment_defaults_and_bad_values():
    """prepare_scan reads its settings through the contract's PrepareScanEnvironment."""
    base = {"INGRESS_BUCKET": "in", "STATE_TABLE": "t", "BATCH_BUCKET": "b", "STATE_MACHINE_ARN": "arn"}
    settings = PrepareScanEnvironment.from_environment(base)
    assert (settings.max_batch_objects, settings.chunk_objects, settings.chunk_bytes) == (10_000, 200, 2 * 1024**3)
    assert (settings.lost_event_age_seconds, settings.claim_ttl_seconds, settings.ingress_prefix) == (3600, 7 * 24 * 3600, "")
    custom = PrepareScanEnvironment.from_environment({**base, "MAX_BATCH_OBJECTS": "5", "CLAIM_TTL_SECONDS": "60", "INGRESS_PREFIX": "p/"})
    assert (custom.max_batch_objects, custom.claim_ttl_seconds, custom.ingress_prefix) == (5, 60, "p/")
    with pytest.raises(ValueError, match="STATE_TABLE"):
        PrepareScanEnvironment.from_environment({"INGRESS_BUCKET": "in"})
    with pytest.raises(ValueError, match="MAX_BATCH_OBJECTS must be an integer"):
        PrepareScanEnvironment.from_environment({**base, "MAX_BATCH_OBJECTS": "lots"})
    with pytest.raises(ValueError, match="CLAIM_TTL_SECONDS must be at least 1"):
        PrepareScanEnvironment.from_environment({**base, "CLAIM_TTL_SECONDS": "0"})


def test_claim_item_and_key():
    ref = {"bucket": "b", "key": "dir/a b+c%20é", "versionId": "v.1"}
    item = prepare_core.claim_item(ref, "scan-1", now=1_700_000_000.9, ttl_seconds=3600)
    digest = hashlib.sha256("b/dir/a b+c%20é/v.1".encode("utf-8")).hexdigest()
    assert item == {
        "pk": {"S": "claim#" + digest},
        "scanId": {"S": "scan-1"},
        "claimedAt": {"S": "2023-11-14T22:13:20+00:00"},
        "expiresAt": {"N": str(1_700_000_000 + 3600)},
    }
    assert prepare_core.claim_pk("b", "k", "v1") != prepare_core.claim_pk("b", "k", "v2")
    assert prepare_core.claim_condition_values("s", 12.7) == {":scan": {"S": "s"}, ":now": {"N": "12"}}


def _event(**object_fields):
    obj = {"key": "a+b%20c.csv", "version-id": "v1", "etag": '"abc"', "size": 0, **object_fields}
    return {"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name": "in"}, "object": obj}}


def test_object_from_event_keeps_the_key_as_is_and_unquotes_the_etag():
    ref = prepare_core.object_from_event(_event(), "in")
    assert ref == {"bucket": "in", "key": "a+b%20c.csv", "versionId": "v1", "etag": "abc", "size": 0}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"size": True}, "size must be a non-negative integer"),
        ({"version-id": ""}, "version-id must be a non-empty string"),
        ({"etag": '""'}, "etag must be a non-empty string"),
        ({"key": "k" * 1025}, "longer than 1024 bytes"),
    ],
)
def test_object_from_event_rejects_bad_fields(fields, message):
    with pytest.raises(InvalidInputError, match=message):
        prepare_core.object_from_event(_event(**fields), "in")


def test_trigger_parsing():
    assert prepare_core.trigger_of({"detail-type": "Scheduled Event", "source": "aws.events"}) == "schedule"
    assert prepare_core.trigger_of(_event()) == "object-created"
    with pytest.raises(InvalidInputError, match="got None"):
        prepare_core.trigger_of({})


@pytest.mark.parametrize(
    ("key", "size", "storage", "expected"),
    [
        ("in/a.csv", 10, "STANDARD", None),
        ("in/dir/", 0, None, "folder placeholder"),
        ("in/dir/", 5, None, None),
        ("out/a.csv", 10, None, "outside the ingress prefix"),
        ("in/a.csv", 10, "DEEP_ARCHIVE", "storage class DEEP_ARCHIVE"),
        ("in/a.csv", 10, "GLACIER_IR", None),
    ],
)
def test_skip_reason(key, size, storage, expected):
    reason = prepare_core.skip_reason(key, size, "in/", storage)
    assert reason is None if expected is None else expected in reason


def test_object_from_version():
    version = {"Key": "k", "VersionId": "v", "ETag": '"e-2"', "Size": 7, "IsLatest": True}
    assert prepare_core.object_from_version("b", version) == {"bucket": "b", "key": "k", "versionId": "v", "etag": "e-2", "size": 7,
                                                              "lastModified": None}
    moment = datetime(2024, 5, 1, 10, 0, 0, 900000, tzinfo=timezone(timedelta(hours=2)))
    assert prepare_core.object_from_version("b", {**version, "LastModified": moment})["lastModified"] == "2024-05-01T08:00:00Z"


def test_event_kind_names_what_it_got():
    assert prepare_core.event_kind({"Records": [{"eventSource": "aws:sqs"}]}) == "sqs"
    assert prepare_core.event_kind({"source": "sensitive-data-scan-pipeline.sweep", "sweep": "all"}) == "sweep"
    for event, text in (({"Records": []}, r"keys \[Records\]"), ("x", "got str"), ({"source": "aws.s3"}, '"source": "aws.s3"')):
        with pytest.raises(InvalidInputError, match=text):
            prepare_core.event_kind(event)


def test_sweep_mode_and_trigger():
    assert prepare_core.sweep_trigger({}, prepare_core.sweep_mode({"sweep": "all"})) == "schedule"
    assert prepare_core.sweep_trigger({}, "lost") == "sweep"
    assert prepare_core.sweep_trigger({"trigger": "sweep"}, "all") == "sweep"
    with pytest.raises(InvalidInputError, match="trigger must be schedule or sweep"):
        prepare_core.sweep_trigger({"trigger": "object-created"}, "all")
    with pytest.raises(InvalidInputError, match="got None"):
        prepare_core.sweep_mode({})


def test_record_object():
    body = {**_event(), "time": "2024-05-01T10:00:00Z"}
    ref = prepare_core.record_object({"body": json.dumps(body)}, "in")
    assert ref == {"bucket": "in", "key": "a+b%20c.csv", "versionId": "v1", "etag": "abc", "size": 0, "lastModified": "2024-05-01T10:00:00Z"}
    for record, message in (({}, "no body"), ({"body": "{"}, "not JSON"), ({"body": "[]"}, "must be an EventBridge event object"),
                            ({"body": json.dumps({"detail-type": "Scheduled Event", "source": "aws.events"})}, "Object Created")):
        with pytest.raises(InvalidInputError, match=message):
            prepare_core.record_object(record, "in")


def test_batch_id_is_the_time_and_a_digest_of_the_sorted_seeds():
    batch = prepare_core.batch_id(1_714_557_600.5, ["m-2", "m-1"])
    assert batch == "b-20240501T100000-" + hashlib.sha256(b"m-1\nm-2").hexdigest()[:16]
    assert batch == prepare_core.batch_id(1_714_557_600, ["m-1", "m-2"])
    assert len(batch) <= 80  # a valid execution name


def test_chunks_by_count_and_bytes():
    refs = [{"size": s} for s in (10, 10, 10, 500, 10)]
    assert [len(c) for c in prepare_core.chunked(refs, 2, 100)] == [2, 1, 1, 1]
    assert [len(c) for c in prepare_core.chunked(refs, 10, 1000)] == [5]
    assert prepare_core.chunked([], 2, 100) == []
    files, index = prepare_core.manifest(prepare_core.chunked([{"bucket": "b", "key": f"k{n}", "versionId": "v", "size": 1} for n in range(3)], 2, 10))
    assert index == [{"chunk": 0, "count": 2, "bytes": 2}, {"chunk": 1, "count": 1, "bytes": 1}]
    assert files[1] == [{"i": 2, "source": {"bucket": "b", "key": "k2", "versionId": "v", "etag": None, "size": 1, "lastModified": None}}]


def test_execution_input_and_arn():
    assert prepare_core.execution_input("b-1", "sweep", "bb", 3, 1, 2) == {
        "batchId": "b-1", "trigger": "sweep", "manifest": {"bucket": "bb", "chunks": "batches/b-1/chunks.json"},
        "objectCount": 3, "chunkCount": 1, "skipped": 2,
    }
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:scan"
    assert prepare_core.execution_arn(arn, "b-1") == "arn:aws:states:us-east-1:123456789012:execution:scan:b-1"
    with pytest.raises(InvalidInputError, match="not a state machine ARN"):
        prepare_core.execution_arn("arn:aws:lambda:us-east-1:1:function:f", "b-1")


def test_claim_age():
    assert prepare_core.claim_age({"claimedAt": {"S": "2023-11-14T22:13:20+00:00"}}, 1_700_000_000 + 60) == 60
    assert prepare_core.claim_age({"claimedAt": {"S": "2023-11-14T22:13:20"}}, 1_700_000_000) == 0
    assert prepare_core.claim_age({}, 1.0) is None and prepare_core.claim_age({"claimedAt": {"S": "x"}}, 1.0) is None
