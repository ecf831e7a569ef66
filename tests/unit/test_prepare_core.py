"""prepare_core without AWS: the environment, scan ids, claim items, event parsing and skip rules."""

from __future__ import annotations

import hashlib
import re

import pytest

import prepare_core
from pipeline_common.contract import PrepareScanEnvironment
from pipeline_common.errors import InvalidInputError


def test_environment_defaults_and_bad_values():
    """prepare_scan reads its settings through the contract's PrepareScanEnvironment."""
    settings = PrepareScanEnvironment.from_environment({"INGRESS_BUCKET": "in", "STATE_TABLE": "t"})
    assert settings == PrepareScanEnvironment(ingress_bucket="in", state_table="t", max_batch_objects=25,
                                              claim_ttl_seconds=7 * 24 * 3600, ingress_prefix="")
    custom = PrepareScanEnvironment.from_environment({"INGRESS_BUCKET": "in", "STATE_TABLE": "t", "MAX_BATCH_OBJECTS": "5",
                                                      "CLAIM_TTL_SECONDS": "60", "INGRESS_PREFIX": "p/"})
    assert (custom.max_batch_objects, custom.claim_ttl_seconds, custom.ingress_prefix) == (5, 60, "p/")
    with pytest.raises(ValueError, match="STATE_TABLE"):
        PrepareScanEnvironment.from_environment({"INGRESS_BUCKET": "in"})
    with pytest.raises(ValueError, match="MAX_BATCH_OBJECTS must be an integer"):
        PrepareScanEnvironment.from_environment({"INGRESS_BUCKET": "in", "STATE_TABLE": "t", "MAX_BATCH_OBJECTS": "lots"})
    with pytest.raises(ValueError, match="CLAIM_TTL_SECONDS must be at least 1"):
        PrepareScanEnvironment.from_environment({"INGRESS_BUCKET": "in", "STATE_TABLE": "t", "CLAIM_TTL_SECONDS": "0"})


@pytest.mark.parametrize(
    ("name", "hashed"),
    [("exec-1_A", False), ("a" * 64, False), ("a" * 65, True), ("run:2024-01-01", True), ("ünïcode", True), ("a b", True)],
)
def test_scan_id(name, hashed):
    scan_id = prepare_core.scan_id_for(name)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", scan_id)
    expected = "scan-" + hashlib.sha256(name.encode()).hexdigest()[:32] if hashed else name
    assert scan_id == expected


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


def test_trigger_and_request_parsing():
    assert prepare_core.trigger_of({"detail-type": "Scheduled Event", "source": "aws.events"}) == "schedule"
    assert prepare_core.trigger_of(_event()) == "object-created"
    with pytest.raises(InvalidInputError, match="got None"):
        prepare_core.trigger_of({})
    with pytest.raises(InvalidInputError, match="input must be an object"):
        prepare_core.parse_request(["event"])
    assert prepare_core.parse_request({"event": {"a": 1}, "executionName": "n"}) == ({"a": 1}, "n")


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
    assert prepare_core.object_from_version("b", version) == {"bucket": "b", "key": "k", "versionId": "v", "etag": "e-2", "size": 7}
