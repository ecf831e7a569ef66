"""transfer against moto: copy/move/tag/delete of pinned versions, multipart path, retries and error mapping."""

from __future__ import annotations

import json
import os
import time
import types
import urllib.parse

import boto3
import pytest
import s3transfer.copies
from botocore.exceptions import ClientError
from moto import mock_aws

import transfer
from pipeline_common.constants import (
    META_SOURCE_ETAG,
    META_SOURCE_LAST_MODIFIED,
    META_SOURCE_VERSION,
    TAG_FINDINGS,
    TAG_OUTCOME,
    TAG_SCAN_ID,
    TAG_VERDICT,
)
from pipeline_common.contract import TransferEnvironment
from pipeline_common.errors import InvalidInputError, SourceChangedError, TransientError, VerificationError
from support.lambda_helpers import client_error

SRC = "ingress-bucket"
DST = "clean-bucket"
PIPELINE_TAGS = {TAG_SCAN_ID: "scan-1", TAG_VERDICT: "CLEAN"}
HEADERS = {
    "ContentType": "text/csv; charset=utf-8",
    "ContentEncoding": "identity",
    "ContentDisposition": 'attachment; filename="r.csv"',
    "ContentLanguage": "en-GB",
    "CacheControl": "no-store",
}


# The function's environment as the construct sets it (the single-object operations read none of it).
ENVIRONMENT = {"BATCH_BUCKET": "batch-bucket", "INGRESS_BUCKET": SRC, "QUARANTINE_BUCKET": "quarantine-bucket",
               "REVIEW_BUCKET": "review-bucket", "VAULT_BUCKET": DST, "EVENT_BUS_NAME": "default",
               "STATE_TABLE": "pipeline-state"}
TRANSFER_ENV = TransferEnvironment.from_environment(ENVIRONMENT)


@pytest.fixture
def s3(monkeypatch):
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    transfer._CLIENTS.clear()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (SRC, DST):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield client
    transfer._CLIENTS.clear()


_HEADS: dict[str, dict] = {}  # HeadObject of every version put, by version id (a move deletes the source)


def put(s3, key: str, body: bytes, *, bucket: str = SRC, tagging: str | None = None, **kwargs) -> dict:
    if tagging:
        kwargs["Tagging"] = tagging
    response = s3.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)
    _HEADS[response["VersionId"]] = s3.head_object(Bucket=bucket, Key=key, VersionId=response["VersionId"])
    return {"bucket": bucket, "key": key, "versionId": response["VersionId"], "etag": response["ETag"].strip('"'),
            "size": len(body)}


def request(operation: str, source: dict, dest_key: str | None = "out/report.csv", tags: dict | None = None) -> dict:
    event = {"operation": operation, "source": source, "tags": PIPELINE_TAGS if tags is None else tags}
    if dest_key is not None:
        event["destination"] = {"bucket": DST, "key": dest_key}
    return event


def versions(s3, bucket: str, key: str | None = None) -> list[dict]:
    listed = s3.list_object_versions(Bucket=bucket, **({"Prefix": key} if key else {}))
    return [v for v in listed.get("Versions", []) if key is None or v["Key"] == key]


def tags_of(s3, bucket: str, key: str, version_id: str) -> dict:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version_id)["TagSet"]}


def body_of(s3, bucket: str, key: str, version_id: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read()


def source_head(s3, source: dict) -> dict:
    """The source version's HeadObject, as it was at upload."""
    return _HEADS[source["versionId"]]


def assert_faithful_copy(s3, result: dict, source_body: bytes, source: dict, user_metadata: dict, expected_tags: dict):
    head = s3.head_object(Bucket=DST, Key=result["key"], VersionId=result["versionId"])
    origin = source_head(s3, source)["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert head["Metadata"] == {**user_metadata, META_SOURCE_VERSION: source["versionId"], META_SOURCE_ETAG: source["etag"],
                                META_SOURCE_LAST_MODIFIED: origin}
    for header, value in HEADERS.items():
        assert head[header] == value, header
    assert "ServerSideEncryption" not in head  # no SSE argument passed; this destination has no default key
    assert tags_of(s3, DST, result["key"], result["versionId"]) == expected_tags
    assert body_of(s3, DST, result["key"], result["versionId"]) == source_body
    assert (result["etag"], result["size"]) == (head["ETag"].strip('"'), len(source_body))


def test_move_preserves_everything_and_deletes_only_the_pinned_version(s3):
    body = b"id,name\n1,alice\n"
    source = put(s3, "in/report.csv", body, tagging="owner=alice&project=x%20y", Metadata={"origin": "upload"}, **HEADERS)
    newer = put(s3, "in/report.csv", b"an overwrite that must stay")

    result = transfer.handler(request("move", source, tags={**PIPELINE_TAGS, "owner": "pipeline"}), None)

    assert result["bucket"] == DST and result["key"] == "out/report.csv" and result["verification"] == "etag"
    assert_faithful_copy(s3, result, body, source, {"origin": "upload"},
                         {**PIPELINE_TAGS, "owner": "pipeline", "project": "x y"})
    remaining = versions(s3, SRC, "in/report.csv")
    assert [v["VersionId"] for v in remaining] == [newer["versionId"]]
    assert body_of(s3, SRC, "in/report.csv", newer["versionId"]) == b"an overwrite that must stay"


def test_multipart_copy_preserves_everything_and_verifies(s3, monkeypatch):
    monkeypatch.setattr(transfer, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    monkeypatch.setattr(transfer, "MULTIPART_CHUNKSIZE", 5 * 1024 * 1024)
    # Older s3transfer releases (as in the Lambda runtime) do not tag multipart copies: the handler must.
    monkeypatch.setattr(s3transfer.copies.CopyCompleteMultipartUploadTask, "_apply_tags", lambda *args, **kwargs: None)
    body = os.urandom(6 * 1024 * 1024 + 17)
    source = put(s3, "in/big.bin", body, tagging="owner=alice", Metadata={"origin": "upload"}, **HEADERS)

    result = transfer.handler(request("move", source, dest_key="out/big.bin"), None)

    assert result["etag"].endswith("-2")  # two UploadPartCopy parts: the multipart path ran
    assert_faithful_copy(s3, result, body, source, {"origin": "upload"}, {**PIPELINE_TAGS, "owner": "alice"})
    # moto gives multipart copies no checksum and their ETag depends on the part layout: size only.
    assert result["verification"] == "size" and "multipart" in result["verificationNote"]
    assert versions(s3, SRC, "in/big.bin") == []


def test_zero_byte_object_copies(s3):
    source = put(s3, "in/empty.csv", b"")
    result = transfer.handler(request("copy", source, dest_key="out/empty.csv", tags={}), None)
    assert (result["size"], result["etag"], result["verification"]) == (0, "d41d8cd98f00b204e9800998ecf8427e", "etag")
    assert body_of(s3, DST, "out/empty.csv", result["versionId"]) == b""
    assert len(versions(s3, SRC, "in/empty.csv")) == 1  # copy leaves the source in place


def test_kms_destination_default_encryption_applies_and_checksum_verifies(s3):
    key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    s3.put_bucket_encryption(Bucket=DST, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}}]})
    source = put(s3, "in/k.csv", b"kms content")
    result = transfer.handler(request("copy", source), None)
    head = s3.head_object(Bucket=DST, Key=result["key"], VersionId=result["versionId"])
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(key_id)
    assert result["verification"] == "checksum"  # KMS ETags are not content digests


def test_tag_merge_over_the_limit_keeps_pipeline_tags_and_logs_dropped_keys_only(s3, caplog):
    source_tags = "&".join(f"s{i}=secret-value-{i}" for i in range(9)) + f"&{TAG_VERDICT}=OLD"
    source = put(s3, "in/t.csv", b"t", tagging=source_tags.replace(":", "%3A"))
    pipeline = {TAG_SCAN_ID: "scan-1", TAG_VERDICT: "CLEAN", TAG_FINDINGS: "0", TAG_OUTCOME: "released"}

    result = transfer.handler(request("copy", source, tags=pipeline), None)

    tags = tags_of(s3, DST, result["key"], result["versionId"])
    assert tags == {**pipeline, **{f"s{i}": f"secret-value-{i}" for i in range(6)}}
    dropped = [r for r in caplog.records if hasattr(r, "droppedTagKeys")]
    assert [(r.levelname, r.droppedTagKeys) for r in dropped] == [("WARNING", ["s6", "s7", "s8"])]
    assert all("secret-value" not in json.dumps(vars(r), default=str) for r in caplog.records)


def test_source_version_is_not_what_the_scan_saw(s3):
    source = put(s3, "in/r.csv", b"original")
    put(s3, "in/r.csv", b"overwritten")
    for changed, message in [
        ({**source, "etag": "0" * 32}, "has ETag"),
        ({**source, "size": 999}, "has 8 bytes, expected 999"),
    ]:
        with pytest.raises(SourceChangedError, match=message):
            transfer.handler(request("move", changed), None)
    s3.delete_object(Bucket=SRC, Key="in/r.csv", VersionId=source["versionId"])
    with pytest.raises(SourceChangedError, match="no longer exists"):
        transfer.handler(request("copy", source), None)
    assert versions(s3, DST) == []


def test_retry_of_a_move_finds_the_finished_copy(s3):
    source = put(s3, "in/m.csv", b"move me", tagging="owner=alice")
    first = transfer.handler(request("copy", source), None)      # a copy whose move then crashed
    second = transfer.handler(request("move", source), None)     # the retry reuses it, then deletes the source
    third = transfer.handler(request("move", source), None)      # a retry after the source was deleted
    assert second["versionId"] == first["versionId"] == third["versionId"]
    assert (third["etag"], third["size"]) == (source["etag"], source["size"])
    assert third["verification"] == "size" and "earlier attempt" in third["verificationNote"]
    assert len(versions(s3, DST, "out/report.csv")) == 1
    assert versions(s3, SRC, "in/m.csv") == []

    put(s3, "out/report.csv", b"somebody else's object", bucket=DST)
    with pytest.raises(SourceChangedError, match="no longer exists"):
        transfer.handler(request("move", source), None)
    with pytest.raises(SourceChangedError):
        transfer.handler(request("copy", source), None)  # only a move may find an earlier copy


@pytest.mark.parametrize(
    "key",
    ["with space/a b.csv", "unicodé/日本語 😀.txt", "plus+sign/a+b%2B.csv", "percent/100%25%20x%.txt",
     "/".join(["deep"] * 150) + "/leaf.json"],
    ids=["space", "unicode", "plus", "percent", "deep"],
)
def test_odd_keys_round_trip(s3, key):
    source = put(s3, key, b"k")
    result = transfer.handler(request("move", source, dest_key="staged/" + key), None)
    assert result["key"] == "staged/" + key
    assert [v["Key"] for v in versions(s3, DST)] == ["staged/" + key]
    assert versions(s3, SRC) == []


def test_destination_key_too_long_copies_nothing(s3):
    source = put(s3, "in/x.csv", b"x")
    with pytest.raises(InvalidInputError, match="1026 bytes in UTF-8"):
        transfer.handler(request("move", source, dest_key="é" * 513), None)  # 513 characters, 1026 bytes
    assert versions(s3, DST) == [] and len(versions(s3, SRC)) == 1


def test_failed_verification_removes_the_copy_and_keeps_the_source(s3, monkeypatch):
    source = put(s3, "in/v.csv", b"verify me")
    client = transfer._CLIENTS.client("s3")
    real_head = client.head_object

    def corrupt_destination_head(**kwargs):
        response = real_head(**kwargs)
        if kwargs["Bucket"] == DST:
            response["ContentLength"] += 1
        return response

    monkeypatch.setattr(client, "head_object", corrupt_destination_head)
    with pytest.raises(VerificationError, match="copy has 10 bytes, source has 9"):
        transfer.handler(request("move", source), None)
    assert versions(s3, DST) == []
    assert [v["VersionId"] for v in versions(s3, SRC)] == [source["versionId"]]


def test_tag_operation_tags_the_pinned_version_in_place(s3):
    source = put(s3, "in/t.csv", b"old", tagging="owner=alice")
    newer = put(s3, "in/t.csv", b"new")
    result = transfer.handler(request("tag", source, dest_key=None), None)
    assert result == source
    assert tags_of(s3, SRC, "in/t.csv", source["versionId"]) == {**PIPELINE_TAGS, "owner": "alice"}
    assert tags_of(s3, SRC, "in/t.csv", newer["versionId"]) == {}


def test_delete_removes_exactly_the_pinned_version_and_is_idempotent(s3):
    source = put(s3, "in/d.csv", b"old")
    newer = put(s3, "in/d.csv", b"new")
    event = request("delete", source, dest_key=None)
    assert transfer.handler(event, None) == {"deleted": True, **source}
    assert transfer.handler(event, None) == {"deleted": True, **source}  # already absent: still success
    assert [v["VersionId"] for v in versions(s3, SRC)] == [newer["versionId"]]


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("SlowDown", 503, TransientError),
        ("InternalError", 500, TransientError),
        ("RequestTimeout", 400, TransientError),
        ("PreconditionFailed", 412, SourceChangedError),
        ("NoSuchVersion", 404, SourceChangedError),
        ("AccessDenied", 403, ClientError),
        ("NoSuchBucket", 404, ClientError),
    ],
)
def test_copy_errors_are_mapped_and_the_source_stays(s3, monkeypatch, code, status, expected):
    source = put(s3, "in/e.csv", b"e")
    client = transfer._CLIENTS.client("s3")

    def fail(**_):
        raise client_error(code, status)

    monkeypatch.setattr(client, "copy_object", fail)
    with pytest.raises(expected) as raised:
        transfer.handler(request("move", source), None)
    assert type(raised.value) is expected
    assert [v["VersionId"] for v in versions(s3, SRC)] == [source["versionId"]]


@pytest.mark.parametrize(("code", "status", "expected"), [("Throttling", 503, TransientError), ("AccessDenied", 403, ClientError)])
def test_source_head_errors_are_mapped(s3, monkeypatch, code, status, expected):
    source = put(s3, "in/h.csv", b"h")

    def fail(**_):
        raise client_error(code, status)

    monkeypatch.setattr(transfer._CLIENTS.client("s3"), "head_object", fail)
    with pytest.raises(expected) as raised:
        transfer.handler(request("copy", source), None)
    assert type(raised.value) is expected


# ------------------------------------------------------------------ ordering in the vault (issue 10, item 3)
QUARANTINE = "quarantine-bucket"
KEY = "orders/k.csv"


@pytest.fixture
def zones(s3):
    """``s3`` plus a quarantine bucket: SRC is ingress, DST the vault."""
    s3.create_bucket(Bucket=QUARANTINE)
    s3.put_bucket_versioning(Bucket=QUARANTINE, VersioningConfiguration={"Status": "Enabled"})
    return s3


def _next_second() -> None:
    """S3's LastModified has a one-second resolution: make the next upload a later second."""
    time.sleep(1.05 - (time.time() % 1))


def stage(s3, ingress: dict, scan: str) -> dict:
    """The workflow's "Copy to quarantine" (scans/<scan>/<key>)."""
    event = {"operation": "copy", "source": ingress, "destination": {"bucket": QUARANTINE, "key": f"scans/{scan}/{KEY}"},
             "tags": {TAG_SCAN_ID: scan, TAG_OUTCOME: "SCANNING"}}
    return transfer.run(event, s3=s3, env=TRANSFER_ENV)


def promotion(staged: dict, scan: str) -> dict:
    """The workflow's "Promote to vault" (and, from the review bucket, "Promote approved object")."""
    return {"operation": "move", "source": staged, "destination": {"bucket": DST, "key": KEY},
            "supersededDestination": {"bucket": QUARANTINE, "key": f"superseded/{scan}/{KEY}"},
            "tags": {TAG_SCAN_ID: scan, TAG_VERDICT: "CLEAN", TAG_OUTCOME: "VAULT"}}


def promote(s3, staged: dict, scan: str) -> dict:
    return transfer.run(promotion(staged, scan), s3=s3, env=TRANSFER_ENV)


def vault_bodies(s3) -> list[bytes]:
    """Bodies of the vault's versions of KEY, current first."""
    listed = sorted(versions(s3, DST, KEY), key=lambda v: not v["IsLatest"])
    return [body_of(s3, DST, KEY, v["VersionId"]) for v in listed]


def two_versions(s3) -> tuple[dict, dict]:
    """An older and a newer ingress version of KEY (a second apart), each staged by its own scan."""
    older = put(s3, KEY, b"id\n1 older\n")
    _next_second()
    newer = put(s3, KEY, b"id\n2 newer\n")
    return stage(s3, older, "scan-old"), stage(s3, newer, "scan-new")


def test_the_ingress_last_modified_is_recorded_at_staging_whatever_the_uploader_wrote(zones):
    forged = put(zones, KEY, b"x", Metadata={META_SOURCE_LAST_MODIFIED: "2099-12-31T23:59:59Z"})
    staged = stage(zones, forged, "scan-1")
    head = zones.head_object(Bucket=QUARANTINE, Key=staged["key"], VersionId=staged["versionId"])
    assert head["Metadata"][META_SOURCE_LAST_MODIFIED] == source_head(zones, forged)["LastModified"].strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    promoted = promote(zones, staged, "scan-1")
    vault_head = zones.head_object(Bucket=DST, Key=KEY, VersionId=promoted["versionId"])
    assert vault_head["Metadata"][META_SOURCE_LAST_MODIFIED] == head["Metadata"][META_SOURCE_LAST_MODIFIED]


def test_an_older_version_promoted_after_a_newer_one_is_kept_aside_not_made_current(zones):
    """Fails before issue 10: the older version became the vault's current version."""
    staged_old, staged_new = two_versions(zones)
    first = promote(zones, staged_new, "scan-new")
    late = promote(zones, staged_old, "scan-old")

    assert vault_bodies(zones) == [b"id\n2 newer\n"]  # the vault never held the older version
    assert (first["bucket"], first["superseded"], first["supersededBy"]) == (DST, False, None)
    assert late["superseded"] is True
    assert (late["bucket"], late["key"]) == (QUARANTINE, f"superseded/scan-old/{KEY}")
    assert late["supersededBy"] == {"bucket": DST, "key": KEY, "versionId": first["versionId"],
                                    "sourceLastModified": zones.head_object(Bucket=DST, Key=KEY)["Metadata"][
                                        META_SOURCE_LAST_MODIFIED]}
    assert body_of(zones, QUARANTINE, late["key"], late["versionId"]) == b"id\n1 older\n"
    assert tags_of(zones, QUARANTINE, late["key"], late["versionId"])[TAG_OUTCOME] == "SUPERSEDED"
    assert versions(zones, QUARANTINE, staged_old["key"]) == []  # moved, not copied: one place only


def test_a_newer_version_replaces_an_older_one(zones):
    staged_old, staged_new = two_versions(zones)
    assert promote(zones, staged_old, "scan-old")["superseded"] is False
    assert promote(zones, staged_new, "scan-new")["superseded"] is False
    assert vault_bodies(zones) == [b"id\n2 newer\n", b"id\n1 older\n"]


def test_retry_after_a_superseded_move_finds_the_version_where_it_was_kept(zones):
    staged_old, staged_new = two_versions(zones)
    promote(zones, staged_new, "scan-new")
    late = promote(zones, staged_old, "scan-old")
    again = promote(zones, staged_old, "scan-old")  # the source version is gone now
    assert (again["superseded"], again["key"], again["versionId"]) == (True, late["key"], late["versionId"])


def _emulate_conditional_copy(s3, observer) -> list[dict]:
    """S3's conditional CopyObject, which moto 5.2.5 ignores: If-Match / If-None-Match checked against the
    destination's current version (looked up with ``observer``, another client), 412 when it fails."""
    seen = []

    def check(params, model, **_):
        headers = params["headers"]
        seen.append({h: headers[h] for h in ("If-Match", "If-None-Match") if h in headers})
        bucket, key = params["url_path"].lstrip("/").split("/", 1)  # path-style URL of the test client
        try:
            etag = observer.head_object(Bucket=bucket, Key=urllib.parse.unquote(key))["ETag"]
        except ClientError:
            etag = None
        failed = ("If-Match" in headers and headers["If-Match"] != etag) or ("If-None-Match" in headers and etag)
        if failed:
            response = {"Error": {"Code": "PreconditionFailed", "Message": "At least one of the pre-conditions you "
                                  "specified did not hold"}, "ResponseMetadata": {"HTTPStatusCode": 412}}
            return types.SimpleNamespace(status_code=412, headers={}), response
        return None

    s3.meta.events.register("before-call.s3.CopyObject", check)
    return seen


def test_two_promotions_racing_for_a_key_never_make_the_older_one_current(zones):
    """The newer version is promoted between the older one's decision and its copy: the older one's
    conditional copy fails, and the retry the workflow makes keeps it aside."""
    staged_old, staged_new = two_versions(zones)
    promote(zones, staged_new, "scan-new")
    vault_before = zones.head_object(Bucket=DST, Key=KEY)
    # Start over with an older version already in the vault and the newer one not yet promoted.
    older_in_vault = put(zones, KEY, b"id\n0 oldest\n", bucket=DST,
                         Metadata={META_SOURCE_LAST_MODIFIED: "2000-01-01T00:00:00Z"})
    racer = boto3.client("s3", region_name="us-east-1")
    newer_staged = {"bucket": DST, "key": KEY, "versionId": vault_before["VersionId"]}
    raced = []

    def newer_promotion_lands_first(**_):
        if not raced:  # the concurrent promotion: the newer version's copy becomes current again
            raced.append(racer.copy_object(Bucket=DST, Key=KEY, MetadataDirective="COPY",
                                           CopySource={"Bucket": DST, "Key": KEY, "VersionId": newer_staged["versionId"]}))

    zones.meta.events.register("before-call.s3.CopyObject", newer_promotion_lands_first)
    sent = _emulate_conditional_copy(zones, racer)

    with pytest.raises(TransientError, match="changed while this version was promoted"):
        promote(zones, staged_old, "scan-old")
    assert sent == [{"If-Match": '"' + older_in_vault["etag"] + '"'}]
    assert vault_bodies(zones)[0] == b"id\n2 newer\n"
    assert len(versions(zones, QUARANTINE, staged_old["key"])) == 1  # the source is untouched

    retried = promote(zones, staged_old, "scan-old")
    assert retried["superseded"] is True and retried["key"] == f"superseded/scan-old/{KEY}"
    assert vault_bodies(zones)[0] == b"id\n2 newer\n"
    assert sent[-1] == {}  # the copy aside is unconditional (quarantine, not the vault)


def test_a_first_promotion_of_a_key_copies_only_if_none_is_there(zones, monkeypatch):
    """Multipart: the condition goes on CompleteMultipartUpload, which moto does check (If-None-Match)."""
    monkeypatch.setattr(transfer, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    monkeypatch.setattr(transfer, "MULTIPART_CHUNKSIZE", 5 * 1024 * 1024)
    staged = stage(zones, put(zones, KEY, os.urandom(5 * 1024 * 1024 + 1)), "scan-big")
    racer = boto3.client("s3", region_name="us-east-1")

    def another_promotion_lands_first(params, **_):
        assert params["headers"]["If-None-Match"] == "*"
        racer.put_object(Bucket=DST, Key=KEY, Body=b"landed first")

    zones.meta.events.register("before-call.s3.CompleteMultipartUpload", another_promotion_lands_first)
    with pytest.raises(TransientError, match="PreconditionFailed"):
        promote(zones, staged, "scan-big")
    assert vault_bodies(zones) == [b"landed first"]
    assert len(versions(zones, QUARANTINE, staged["key"])) == 1


def test_a_single_part_copy_carries_its_tags_without_a_second_tagging_request(s3, monkeypatch):
    """CopyObject sets the tags (Tagging, TaggingDirective REPLACE): no PutObjectTagging per object
    (it was 2 of the 4 PUT-class requests per object in make bench). A multipart copy still sets them."""
    from botocore.client import BaseClient

    calls: list[str] = []
    real = BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        calls.append(operation_name)
        return real(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    source = put(s3, "in/small.csv", b"id\n1\n", tagging="owner=alice")
    result = transfer.handler(request("move", source, tags=PIPELINE_TAGS), None)
    assert tags_of(s3, DST, result["key"], result["versionId"]) == {**PIPELINE_TAGS, "owner": "alice"}
    assert "CopyObject" in calls and "PutObjectTagging" not in calls
