"""evaluate_findings against a stubbed Macie (real macie2 model, enum-checked) and moto S3 discovery results."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any, Iterator

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from moto import mock_aws

import batch_evaluation
import evaluate_findings
import macie_results
from pipeline_common.clients import ClientCache
from pipeline_common.contract import InvalidEnvironment
from pipeline_common.errors import InvalidInputError, PipelineError, TransientError
from support.lambda_helpers import FakeContext, captured_logs

ACCOUNT = "123456789012"
REGION = "us-east-1"
JOB_ID = "3ce05dbb7ec5505def334104bf43bf6b"
STAGED_BUCKET = "quarantine-bucket"
SOURCE_BUCKET = "ingress-bucket"
RESULTS_BUCKET = "macie-results-bucket"
BATCH_BUCKET = "batch-bucket"
STATE_TABLE = "state-table"
EVENT_BUS = "default"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


# ------------------------------------------------------------------------------ enum checking
def enum_violations(shape: Any, value: Any, path: str = "") -> list[str]:
    """Every enum-typed value under ``value`` that the macie2 model does not allow."""
    if value is None or shape is None:
        return []
    kind = shape.type_name
    found: list[str] = []
    if kind == "structure" and isinstance(value, dict):
        for name, member_value in value.items():
            if name in shape.members:
                found += enum_violations(shape.members[name], member_value, f"{path}.{name}")
    elif kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            found += enum_violations(shape.member, item, f"{path}[{index}]")
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            found += enum_violations(shape.key, key, f"{path}<key>")
            found += enum_violations(shape.value, item, f"{path}.{key}")
    elif kind == "string" and shape.enum and value not in shape.enum:
        found.append(f"{path or '<root>'}={value!r} is not one of {shape.enum}")
    return found


class CheckedStubber(Stubber):
    """A Stubber that also rejects enum values outside the model, in requests and in canned responses.

    Plain Stubber already validates parameter names and types of both (botocore's ParamValidator), but
    not enum membership.
    """

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        client.meta.events.register(f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}", self._check_request)

    @staticmethod
    def _check_request(params: dict, model: Any, **_: Any) -> None:
        problems = enum_violations(model.input_shape, params)
        assert not problems, f"{model.name} request: {problems}"

    def add_response(self, method: str, service_response: dict, expected_params: dict | None = None) -> None:
        operation = self.client.meta.method_to_api_mapping[method]
        shape = self.client.meta.service_model.operation_model(operation).output_shape
        problems = enum_violations(shape, service_response)
        assert not problems, f"{operation} response: {problems}"
        super().add_response(method, service_response, expected_params)


@pytest.fixture
def macie() -> Iterator[tuple[Any, CheckedStubber]]:
    client = boto3.client("macie2", region_name=REGION)
    stubber = CheckedStubber(client)
    with stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("FINDING_POLICY", "UNKNOWN_FORMAT_POLICY", "RESULTS_BUCKET", "RESULTS_PREFIX", "CUSTOM_DATA_IDENTIFIER_NAMES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BATCH_BUCKET", BATCH_BUCKET)
    monkeypatch.setenv("STATE_TABLE", STATE_TABLE)
    monkeypatch.setenv("EVENT_BUS_NAME", EVENT_BUS)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=RESULTS_BUCKET)
        yield client


@pytest.fixture
def run(macie, s3, monkeypatch: pytest.MonkeyPatch):
    """Invoke the real handler with the stubbed Macie client and the moto S3 client."""
    client, _ = macie
    monkeypatch.setattr(evaluate_findings, "_CLIENTS", ClientCache(evaluate_findings._CLIENTS.config, macie2=client, s3=s3))
    return lambda event: evaluate_findings.handler(event, FakeContext())


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    with captured_logs(evaluate_findings) as stream:
        yield stream


# ---------------------------------------------------------------------------------- test data
def obj(key: str, integrity: str = "VALID") -> dict:
    return {
        "source": {"bucket": SOURCE_BUCKET, "key": key, "versionId": "v-src", "etag": "e1", "size": 120},
        "staged": {"bucket": STAGED_BUCKET, "key": f"scan-1/{key}", "versionId": "v-stg", "etag": "e1", "size": 120},
        "integrity": {"status": integrity, "format": "csv", "reason": "", "rows": 2, "checksum": "ABSENT"},
    }


def event(objects: list[dict], *, status: str = "COMPLETE", error: str = "NONE", complete: bool = True) -> dict:
    return {
        "scanId": "scan-1",
        "job": {"jobId": JOB_ID, "jobStatus": status, "lastRunErrorStatus": {"code": error}},
        "scanComplete": complete,
        "objects": objects,
    }


def finding(
    finding_id: str,
    key: str,
    severity: str | None = "High",
    *,
    bucket: str = STAGED_BUCKET,
    finding_type: str = "SensitiveData:S3Object/Multiple",
    version: str | None = "v-stg",
) -> dict:
    """A realistic GetFindings item for an object of the staged bucket (``version``: the analysed one)."""
    value = {
        "accountId": ACCOUNT,
        "archived": False,
        "category": "CLASSIFICATION",
        "classificationDetails": {
            "detailedResultsLocation": f"s3://{RESULTS_BUCKET}/macie/AWSLogs/{ACCOUNT}/Macie/{REGION}/{JOB_ID}/d.jsonl.gz",
            "jobArn": f"arn:aws:macie2:{REGION}:{ACCOUNT}:classification-job/{JOB_ID}",
            "jobId": JOB_ID,
            "originType": "SENSITIVE_DATA_DISCOVERY_JOB",
            "result": {
                "additionalOccurrences": False,
                "mimeType": "text/csv",
                "sizeClassified": 120,
                "status": {"code": "COMPLETE"},
                "sensitiveData": [
                    {
                        "category": "FINANCIAL_INFORMATION",
                        "detections": [{"type": "CREDIT_CARD_NUMBER", "count": 3, "occurrences": {"cells": [
                            {"row": r, "column": 3, "columnName": "card_no"} for r in (2, 5, 9)]}}],
                        "totalCount": 3,
                    }
                ],
                "customDataIdentifiers": {
                    "detections": [
                        {"name": "EmployeeId", "arn": f"arn:aws:macie2:{REGION}:{ACCOUNT}:custom-data-identifier/cdi-1", "count": 2}
                    ],
                    "totalCount": 2,
                },
            },
        },
        "count": 1,
        "id": finding_id,
        "partition": "aws",
        "region": REGION,
        "resourcesAffected": {
            "s3Bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "s3Object": {
                "key": key,
                "eTag": "e1",
                "path": f"{bucket}/{key}",
                "extension": key.rsplit(".", 1)[-1],
                "size": 120,
                "storageClass": "STANDARD",
            },
        },
        "sample": False,
        "schemaVersion": "1.0",
        "title": "The S3 object contains multiple categories of sensitive information.",
        "type": finding_type,
    }
    if severity is not None:
        value["severity"] = {"description": severity, "score": {"Low": 1, "Medium": 2, "High": 3}[severity]}
    if version is not None:
        value["resourcesAffected"]["s3Object"]["versionId"] = version
    return value


def record(
    key: str,
    code: str = "COMPLETE",
    reason: str | None = None,
    bucket: str = STAGED_BUCKET,
    *,
    version: str | None = "v-stg",
    sensitive: dict[str, int] | None = None,
    custom: int = 0,
) -> dict:
    """A sensitive data discovery result record (same structure as a finding): ``version`` is the
    analysed version, ``sensitive`` {category: totalCount} and ``custom`` what it reports."""
    status = {"code": code}
    if reason:
        status["reason"] = reason
    s3_object = {"key": key, "eTag": "e1"}
    if version is not None:
        s3_object["versionId"] = version
    result: dict[str, Any] = {"status": status, "sizeClassified": 120, "mimeType": "text/csv", "sensitiveData": []}
    for category, total in (sensitive or {}).items():
        result["sensitiveData"].append(
            {"category": category, "totalCount": total, "detections": [{"type": "CREDIT_CARD_NUMBER", "count": total}]}
        )
    if custom:
        detection = {"arn": f"arn:aws:macie2:{REGION}:{ACCOUNT}:custom-data-identifier/cdi-1", "name": "EmployeeId", "count": custom}
        result["customDataIdentifiers"] = {"totalCount": custom, "detections": [detection]}
    return {
        "classificationDetails": {
            "jobId": JOB_ID,
            "jobArn": f"arn:aws:macie2:{REGION}:{ACCOUNT}:classification-job/{JOB_ID}",
            "result": result,
        },
        "resourcesAffected": {"s3Bucket": {"name": bucket}, "s3Object": s3_object},
    }


def put_results(s3: Any, key: str, lines: list[Any]) -> None:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    s3.put_object(Bucket=RESULTS_BUCKET, Key=key, Body=gzip.compress(text.encode("utf-8"), mtime=0))


def criteria() -> dict:
    return {"findingCriteria": {"criterion": {"classificationDetails.jobId": {"eq": [JOB_ID]}}}, "maxResults": 50}


def stub_findings(stubber: CheckedStubber, pages: list[list[dict]]) -> None:
    """ListFindings returns ``pages`` of ids (with nextToken between them); GetFindings in groups of 50."""
    all_findings = [f for page in pages for f in page]
    for number, page in enumerate(pages):
        response: dict = {"findingIds": [f["id"] for f in page]}
        expected = criteria()
        if number:
            expected["nextToken"] = f"token-{number}"
        if number < len(pages) - 1:
            response["nextToken"] = f"token-{number + 1}"
        stubber.add_response("list_findings", response, expected)
    for start in range(0, len(all_findings), 50):
        group = all_findings[start : start + 50]
        stubber.add_response("get_findings", {"findings": group}, {"findingIds": [f["id"] for f in group]})


def by_key(output: dict) -> dict[str, dict]:
    return {item["source"]["key"]: item for item in output["objects"]}


# -------------------------------------------------------------------------------------- tests
def test_stubber_rejects_enum_values_outside_the_macie_model(macie) -> None:
    """The local enum check is what makes the fake findings trustworthy: prove it can fail."""
    client, stubber = macie
    bad = finding("f-1", "scan-1/a.csv")
    bad["severity"] = {"description": "Critical", "score": 4}
    with pytest.raises(AssertionError, match=r"\.findings\[0\]\.severity\.description='Critical'"):
        stubber.add_response("get_findings", {"findings": [bad]})
    stubber.add_response("list_findings", {"findingIds": []})
    with pytest.raises(AssertionError, match=r"\.sortCriteria\.orderBy='UP'"):
        client.list_findings(sortCriteria={"attributeName": "createdAt", "orderBy": "UP"})
    # A valid value passes (and uses up the queued response).
    assert client.list_findings(sortCriteria={"attributeName": "createdAt", "orderBy": "ASC"})["findingIds"] == []


def test_pages_findings_and_reads_discovery_results_with_default_policy(run, macie, s3, logs) -> None:
    _, stubber = macie
    special = ["high.csv", "clean.json", "missing.csv", "skipped.bin", "broken.csv", "nosev.csv"]
    bulk = [f"bulk/{n:02d}.csv" for n in range(52)]
    objects = [obj(key, "CORRUPT" if key == "broken.csv" else "VALID") for key in special + bulk]

    findings = [
        finding("f-high", "scan-1/high.csv", "High"),
        finding("f-broken", "scan-1/broken.csv", "High"),
        finding("f-nosev", "scan-1/nosev.csv", None),
        # Same key but another bucket, and a key outside the scan: neither may be attributed.
        finding("f-other-bucket", "scan-1/clean.json", "High", bucket=SOURCE_BUCKET),
        finding("f-outside", "scan-1/not-in-scan.csv", "High"),
    ] + [finding(f"f-bulk-{n:02d}", f"scan-1/bulk/{n:02d}.csv", "Low") for n in range(52)]
    assert len(findings) == 57
    stub_findings(stubber, [findings[:30], findings[30:]])
    stubber.add_response(
        "get_classification_export_configuration",
        {"configuration": {"s3Destination": {"bucketName": RESULTS_BUCKET, "keyPrefix": "/macie//", "kmsKeyArn": KMS_KEY}}},
        {},
    )
    prefix = f"macie/AWSLogs/{ACCOUNT}/Macie/{REGION}/{JOB_ID}/"
    put_results(
        s3,
        prefix + "part-1.jsonl.gz",
        [
            record("scan-1/high.csv"),
            record("scan-1/clean.json"),
            "{not json",
            record("scan-1/skipped.bin", "SKIPPED", "UNSUPPORTED_FILE_TYPE"),
        ],
    )
    put_results(
        s3, prefix + "part-2.jsonl.gz", [record("scan-1/broken.csv"), record("scan-1/nosev.csv")] + [record(f"scan-1/{k}") for k in bulk]
    )
    # Neither another job's results, nor a file that is not JSON Lines, nor the wrong bucket count as proof.
    put_results(s3, f"macie/AWSLogs/{ACCOUNT}/Macie/{REGION}/other-job/part-1.jsonl.gz", [record("scan-1/missing.csv")])
    put_results(s3, prefix + "manifest.json", [record("scan-1/missing.csv")])
    put_results(s3, prefix + "part-3.jsonl.gz", [record("scan-1/missing.csv", bucket=SOURCE_BUCKET)])

    output = run(event(objects))
    result = by_key(output)

    high = result["high.csv"]
    assert high["verdict"] == "REVIEW" and high["analysis"] == "COMPLETE"
    assert high["findings"] == {
        "count": 1,
        "types": {"CREDIT_CARD_NUMBER": 3, "EmployeeId": 2},
        "maxSeverity": "HIGH",
        "tagValue": "CREDIT_CARD_NUMBER:3 EmployeeId:2",
    }
    assert high["reasons"] == ["1 HIGH-severity Macie finding(s); the finding policy requires review"]
    assert high["source"] == objects[0]["source"] and high["integrity"] == objects[0]["integrity"]

    clean = result["clean.json"]
    # Two findings of the job point at objects outside the scan: attribution is not trusted, so
    # even the clean, completely analysed object needs a review.
    assert (clean["verdict"], clean["analysis"]) == ("REVIEW", "COMPLETE")
    assert clean["reasons"] == ["2 finding(s) of this job could not be attributed to a scanned object"]
    assert clean["findings"] == {"count": 0, "types": {}, "maxSeverity": None, "tagValue": "none"}

    missing = result["missing.csv"]
    assert (missing["verdict"], missing["analysis"]) == ("REVIEW", "MISSING")
    assert missing["reasons"] == ["no Macie sensitive data discovery result was found for the object, so it may not have been analysed"]

    skipped = result["skipped.bin"]
    assert (skipped["verdict"], skipped["analysis"]) == ("REVIEW", "SKIPPED")
    assert skipped["reasons"] == ["Macie skipped the object and did not analyse it (reason: UNSUPPORTED_FILE_TYPE)"]

    assert result["broken.csv"]["verdict"] == "CORRUPT"
    assert result["broken.csv"]["findings"]["count"] == 1

    nosev = result["nosev.csv"]
    assert nosev["verdict"] == "REVIEW" and nosev["findings"]["maxSeverity"] == "HIGH"
    assert "1 finding(s) had no recognised severity and were treated as HIGH" in nosev["reasons"]

    assert {result[k]["verdict"] for k in bulk} == {"REVIEW"}
    assert output["summary"] == {"CLEAN": 0, "REVIEW": 57, "DENY": 0, "CORRUPT": 1}
    assert output["reviewRequired"] is True

    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    ignored = [line for line in lines if line.get("ignoredFindings") == 2 and line["level"] == "WARNING"]
    assert len(ignored) == 1
    read = next(line for line in lines if line["message"] == "Read the discovery results")
    assert (read["files"], read["badLines"], read["resultsPrefix"]) == (3, 1, prefix)
    assert "sample" not in logs.getvalue() and "CREDIT_CARD_NUMBER" not in logs.getvalue()


def test_policy_from_env_denies_high_and_allows_low(run, macie, s3, monkeypatch) -> None:
    _, stubber = macie
    monkeypatch.setenv("FINDING_POLICY", '{"LOW": "ALLOW", "MEDIUM": "REVIEW", "HIGH": "DENY"}')
    monkeypatch.setenv("RESULTS_BUCKET", RESULTS_BUCKET)
    monkeypatch.setenv("RESULTS_PREFIX", "custom/prefix/")
    # No GetClassificationExportConfiguration stub: the env location must be used without asking Macie.
    stub_findings(stubber, [[finding("f-1", "scan-1/secret.csv", "High", finding_type="SensitiveData:S3Object/Financial"),
                             finding("f-2", "scan-1/low.csv", "Low", finding_type="SensitiveData:S3Object/Personal")]])
    put_results(
        s3, f"custom/prefix/AWSLogs/{ACCOUNT}/Macie/{REGION}/{JOB_ID}/r.jsonl.gz", [record("scan-1/secret.csv"), record("scan-1/low.csv")]
    )

    output = run(event([obj("secret.csv"), obj("low.csv")]))

    result = by_key(output)
    assert result["secret.csv"]["verdict"] == "DENY"
    assert result["secret.csv"]["reasons"] == ["1 HIGH-severity Macie finding(s); the finding policy denies them"]
    assert result["low.csv"]["verdict"] == "CLEAN"
    assert output["summary"] == {"CLEAN": 1, "REVIEW": 0, "DENY": 1, "CORRUPT": 0}
    assert output["reviewRequired"] is False


def test_custom_identifier_names_from_env_are_reported_as_given(run, macie, s3, monkeypatch) -> None:
    """The construct suffixes each custom identifier's Macie name; events carry the name the user gave."""
    _, stubber = macie
    monkeypatch.setenv("RESULTS_BUCKET", RESULTS_BUCKET)
    monkeypatch.setenv("RESULTS_PREFIX", "")
    monkeypatch.setenv("CUSTOM_DATA_IDENTIFIER_NAMES", '{"EmployeeId": "Employee number"}')
    stub_findings(stubber, [[finding("f-1", "scan-1/high.csv", "High")]])
    put_results(s3, f"AWSLogs/{ACCOUNT}/Macie/{REGION}/{JOB_ID}/r.jsonl.gz", [record("scan-1/high.csv")])

    output = run(event([obj("high.csv")]))

    assert by_key(output)["high.csv"]["findings"]["types"] == {"CREDIT_CARD_NUMBER": 3, "Employee number": 2}


ALLOW_ALL = '{"LOW": "ALLOW", "MEDIUM": "ALLOW", "HIGH": "ALLOW"}'


def test_findings_and_results_about_another_version_never_make_the_staged_version_clean(run, macie, s3, monkeypatch) -> None:
    """Issue 10, item 1: the staged copy was overwritten in quarantine before the job ran, so Macie
    analysed the replacement. Bucket and key match; only the version tells. Even with a policy that
    allows every finding, nothing about another version (or about no version) may make an object CLEAN."""
    _, stubber = macie
    monkeypatch.setenv("FINDING_POLICY", ALLOW_ALL)
    monkeypatch.setenv("RESULTS_BUCKET", RESULTS_BUCKET)
    stub_findings(
        stubber,
        [[
            finding("f-bound", "scan-1/bound.csv", "Low"),
            finding("f-other", "scan-1/other-finding.csv", "High", version="v-replacement"),
            finding("f-none", "scan-1/no-version-finding.csv", "High", version=None),
        ]],
    )
    put_results(
        s3,
        f"AWSLogs/{ACCOUNT}/Macie/{REGION}/{JOB_ID}/r.jsonl.gz",
        [
            record("scan-1/bound.csv"),
            record("scan-1/swapped.csv", version="v-replacement"),
            record("scan-1/no-version.csv", version=None),
            record("scan-1/other-finding.csv"),
            record("scan-1/no-version-finding.csv"),
            record("scan-1/both.csv"),
            record("scan-1/both.csv", version="v-replacement"),
        ],
    )
    keys = ["bound.csv", "swapped.csv", "no-version.csv", "other-finding.csv", "no-version-finding.csv", "both.csv"]

    result = by_key(run(event([obj(key) for key in keys])))

    bound = result["bound.csv"]
    assert (bound["verdict"], bound["analysis"], bound["findings"]["count"]) == ("CLEAN", "COMPLETE", 1)
    swapped = result["swapped.csv"]
    assert (swapped["verdict"], swapped["analysis"]) == ("REVIEW", "MISSING")
    assert swapped["reasons"] == [
        "no Macie sensitive data discovery result was found for the object, so it may not have been analysed",
        "1 Macie discovery result(s) for the object's key are about version v-replacement, not the staged version v-stg: "
        "they do not prove that the staged version was analysed",
    ]
    unversioned = result["no-version.csv"]
    assert (unversioned["verdict"], unversioned["analysis"]) == ("REVIEW", "MISSING")
    assert "are about version no version id, not the staged version v-stg" in unversioned["reasons"][1]
    # A finding on another version of a scanned key is not dropped: the object needs review, and the
    # finding does not count as the staged version's (its types are not reported as the object's).
    for key, version in (("other-finding.csv", "v-replacement"), ("no-version-finding.csv", "no version id")):
        item = result[key]
        assert (item["verdict"], item["analysis"], item["findings"]["count"]) == ("REVIEW", "COMPLETE", 0)
        assert item["reasons"] == [f"1 Macie finding(s) for the object's key are about version {version}, not the staged version v-stg"]
    both = result["both.csv"]
    assert (both["verdict"], both["analysis"]) == ("REVIEW", "COMPLETE")
    assert len(both["reasons"]) == 1 and "about version v-replacement" in both["reasons"][0]


def test_detections_a_discovery_result_reports_without_a_listed_finding_need_review(run, macie, s3, monkeypatch) -> None:
    """Issue 10, item 4: a finding can be suppressed, archived or listed late; the discovery result of
    the staged version still reports what Macie detected. It carries no severity, so: REVIEW."""
    _, stubber = macie
    monkeypatch.setenv("FINDING_POLICY", ALLOW_ALL)
    monkeypatch.setenv("RESULTS_BUCKET", RESULTS_BUCKET)
    # covered.csv: the finding covers both categories the result reports; partial.csv: it covers one.
    stub_findings(stubber, [[finding("f-1", "scan-1/covered.csv", "Low"), finding("f-2", "scan-1/partial.csv", "Low")]])
    put_results(
        s3,
        f"AWSLogs/{ACCOUNT}/Macie/{REGION}/{JOB_ID}/r.jsonl.gz",
        [
            record("scan-1/unlisted.csv", sensitive={"FINANCIAL_INFORMATION": 3}, custom=2),
            record("scan-1/covered.csv", sensitive={"FINANCIAL_INFORMATION": 3}, custom=2),
            record("scan-1/partial.csv", sensitive={"FINANCIAL_INFORMATION": 3, "PERSONAL_INFORMATION": 4}),
            record("scan-1/clean.csv"),
            record("scan-1/elsewhere.csv", version="v-replacement", sensitive={"CREDENTIALS": 1}),
        ],
    )

    output = run(event([obj(k) for k in ("unlisted.csv", "covered.csv", "partial.csv", "clean.csv", "elsewhere.csv")]))

    result = by_key(output)
    unlisted = result["unlisted.csv"]
    assert (unlisted["verdict"], unlisted["analysis"]) == ("REVIEW", "COMPLETE")
    assert unlisted["reasons"] == [
        "Macie's discovery result reports 5 detection(s) of CUSTOM_IDENTIFIER, FINANCIAL_INFORMATION without a listed finding"
    ]
    assert result["covered.csv"]["verdict"] == "CLEAN"
    assert result["partial.csv"]["verdict"] == "REVIEW"
    assert result["partial.csv"]["reasons"][-1] == (
        "Macie's discovery result reports 4 detection(s) of PERSONAL_INFORMATION without a listed finding"
    )
    assert (result["clean.csv"]["verdict"], result["clean.csv"]["reasons"]) == ("CLEAN", [])
    # What a result about another version reports is not the staged version's (it is not proof either).
    assert result["elsewhere.csv"]["verdict"] == "REVIEW"
    assert not any("detection(s)" in reason for reason in result["elsewhere.csv"]["reasons"])


def s3_fails(s3: Any, operation: str, code: str, status: int) -> None:
    """Make ``operation`` on the moto S3 client answer ``code`` (e.g. AccessDenied for a role without
    s3:GetObject, or without kms:Decrypt on the key that encrypts the object)."""

    def answer(**_: Any) -> tuple[AWSResponse, dict]:
        error = {"Error": {"Code": code, "Message": "denied by the test"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return AWSResponse("https://s3.local", status, {}, None), error

    s3.meta.events.register(f"before-call.s3.{operation}", answer)


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [
        ("ListObjectsV2", "AccessDenied", 403),
        ("GetObject", "AccessDenied", 403),  # S3's answer when KMS denies the decrypt
        ("ListObjectsV2", "NoSuchBucket", 404),
        ("GetClassificationExportConfiguration", "AccessDeniedException", 403),
    ],
)
def test_unreadable_discovery_results_send_every_object_to_review_and_tell_the_operators(
    run, macie, s3, logs, operation, code, status
) -> None:
    """Issue 10, item 6: the account exports its discovery results somewhere the evaluator cannot read.
    That is no proof of analysis, and no reason to fail the scan either."""
    _, stubber = macie
    stub_findings(stubber, [[finding("f-1", "scan-1/card.csv", "High")]])
    prefix = f"macie/AWSLogs/{ACCOUNT}/Macie/{REGION}/{JOB_ID}/"
    if operation == "GetClassificationExportConfiguration":
        stubber.add_client_error("get_classification_export_configuration", code, "no", status)
    else:
        stubber.add_response(
            "get_classification_export_configuration",
            {"configuration": {"s3Destination": {"bucketName": RESULTS_BUCKET, "keyPrefix": "macie", "kmsKeyArn": KMS_KEY}}},
            {},
        )
        put_results(s3, prefix + "r.jsonl.gz", [record("scan-1/a.csv"), record("scan-1/card.csv")])
        s3_fails(s3, operation, code, status)

    output = run(event([obj("a.csv"), obj("broken.csv", "CORRUPT"), obj("card.csv")]))

    result = by_key(output)
    location = None if operation == "GetClassificationExportConfiguration" else f"s3://{RESULTS_BUCKET}/{prefix}"
    where = f"at {location}" if location else "(their location could not be looked up)"
    unreadable = (
        f"the Macie sensitive data discovery results {where} could not be read ({code}), "
        "so the object cannot be shown to have been analysed"
    )
    assert (result["a.csv"]["verdict"], result["a.csv"]["analysis"], result["a.csv"]["reasons"]) == ("REVIEW", "MISSING", [unreadable])
    assert result["broken.csv"]["verdict"] == "CORRUPT" and result["broken.csv"]["reasons"].count(unreadable) == 1
    assert result["card.csv"]["verdict"] == "REVIEW" and result["card.csv"]["reasons"].count(unreadable) == 1
    summary = output["summary"]
    assert {k: summary[k] for k in ("CLEAN", "REVIEW", "DENY", "CORRUPT")} == {"CLEAN": 0, "REVIEW": 2, "DENY": 0, "CORRUPT": 1}
    results = summary["discoveryResults"]
    assert (results["readable"], results["location"], results["error"]) == (False, location, code)
    if location:
        assert results["grant"] == (
            f"s3:ListBucket on arn:aws:s3:::{RESULTS_BUCKET} (for the prefix {prefix}), "
            f"s3:GetObject on arn:aws:s3:::{RESULTS_BUCKET}/{prefix}*, and kms:Decrypt on {KMS_KEY} (allowed by the key policy too)"
        )
    else:
        assert results["grant"] == "macie2:GetClassificationExportConfiguration"
    assert output["reviewRequired"] is True
    assert '"message":"The discovery results cannot be read; every object goes to review"' in logs.getvalue()


@pytest.mark.parametrize("operation", ["ListObjectsV2", "GetObject"])
def test_a_transient_error_on_the_discovery_results_is_retried_by_the_workflow(run, macie, s3, monkeypatch, operation) -> None:
    """Only permanent errors mean "unreadable": throttling or a 5xx is raised for the workflow to retry."""
    _, stubber = macie
    monkeypatch.setenv("RESULTS_BUCKET", RESULTS_BUCKET)
    stub_findings(stubber, [[]])
    put_results(s3, f"AWSLogs/{ACCOUNT}/Macie/{REGION}/{JOB_ID}/r.jsonl.gz", [record("scan-1/a.csv")])
    s3_fails(s3, operation, "SlowDown", 503)
    with pytest.raises(TransientError, match="failed with SlowDown"):
        run(event([obj("a.csv")]))


@pytest.mark.parametrize(
    ("job", "reason"),
    [
        ({"error": "ERROR"}, "the Macie classification job reported errors while analysing objects"),
        ({"status": "CANCELLED", "complete": False}, "the Macie classification job did not complete (job status CANCELLED)"),
    ],
)
def test_job_errors_or_incomplete_scan_need_review(run, macie, s3, monkeypatch, job, reason) -> None:
    _, stubber = macie
    monkeypatch.setenv("RESULTS_BUCKET", RESULTS_BUCKET)
    stub_findings(stubber, [[]])
    put_results(s3, f"AWSLogs/{ACCOUNT}/Macie/{REGION}/{JOB_ID}/r.jsonl.gz", [record("scan-1/fine.csv")])

    output = run(event([obj("fine.csv")], **job))

    (item,) = output["objects"]
    assert (item["verdict"], item["analysis"], item["reasons"]) == ("REVIEW", "COMPLETE", [reason])


def test_without_a_results_location_nothing_counts_as_analysed(run, macie) -> None:
    _, stubber = macie
    stub_findings(stubber, [[]])
    stubber.add_response("get_classification_export_configuration", {}, {})

    output = run(event([obj("a.csv"), obj("b.csv", "CORRUPT")]))

    assert [(o["verdict"], o["analysis"]) for o in output["objects"]] == [("REVIEW", "MISSING"), ("CORRUPT", "MISSING")]


def test_errors_map_to_the_contract(run, macie, monkeypatch) -> None:
    _, stubber = macie
    monkeypatch.setenv("FINDING_POLICY", '{"HIGH": "BLOCK"}')
    with pytest.raises(InvalidInputError, match="FINDING_POLICY: unknown action 'BLOCK' for HIGH"):
        run(event([obj("a.csv")]))  # no Macie call was stubbed: validation comes first
    monkeypatch.delenv("FINDING_POLICY")

    with pytest.raises(InvalidInputError, match=r"objects\[0\]\.integrity\.status is required"):
        run(event([{**obj("a.csv"), "integrity": None}]))
    with pytest.raises(InvalidInputError, match=r"objects\[1\]\.integrity\.status must be one of VALID, CORRUPT, UNCHECKED, got 'ERROR'"):
        run(event([obj("a.csv"), obj("b.csv", "ERROR")]))

    stubber.add_client_error("list_findings", "ThrottlingException", "Rate exceeded", 429, expected_params=criteria())
    with pytest.raises(TransientError, match="ListFindings failed with ThrottlingException"):
        run(event([obj("a.csv")]))

    stubber.add_response("list_findings", {"findingIds": ["f-1"]}, criteria())
    stubber.add_client_error("get_findings", "InternalServerException", "oops", 500)
    with pytest.raises(TransientError, match="GetFindings failed with InternalServerException"):
        run(event([obj("a.csv")]))

    for code in ("ServiceQuotaExceededException", "AccessDeniedException"):
        stubber.add_client_error("list_findings", code, "no", 402 if code.startswith("Service") else 403)
        with pytest.raises(PipelineError, match=f"failed with {code}") as caught:
            run(event([obj("a.csv")]))
        assert not isinstance(caught.value, TransientError)


def test_a_bad_variable_fails_each_invocation_before_any_call(run, macie, monkeypatch) -> None:
    """The environment is read when the handler runs; text that is not JSON is named by the contract."""
    monkeypatch.setenv("FINDING_POLICY", "{HIGH: DENY}")
    monkeypatch.setenv("CUSTOM_DATA_IDENTIFIER_NAMES", "[")
    with pytest.raises(InvalidEnvironment, match="FINDING_POLICY must be JSON.*CUSTOM_DATA_IDENTIFIER_NAMES must be JSON"):
        run(event([obj("a.csv")]))  # no Macie call was stubbed


class TrickleBody:
    """A stream that serves at most ``chunk`` bytes a read and refuses to be read whole."""

    def __init__(self, data: bytes, chunk: int = 1000) -> None:
        self.data, self.chunk, self.position, self.largest = data, chunk, 0, 0

    def read(self, size: int = -1) -> bytes:
        assert size is not None and size > 0, "the body must be streamed, not read whole"
        size = min(size, self.chunk)
        self.largest = max(self.largest, size)
        piece = self.data[self.position : self.position + size]
        self.position += len(piece)
        return piece

    def close(self) -> None:
        pass


def test_discovery_records_are_streamed_across_chunk_boundaries() -> None:
    records = [record(f"scan-1/{'é' * 3000}-{n}.csv", "PARTIAL" if n % 2 else "COMPLETE") for n in range(60)]
    data = gzip.compress(("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n\nnot-json").encode("utf-8"), mtime=0)
    assert len(gzip.decompress(data)) > 4 * 64 * 1024  # several decompressed chunks, lines and characters split across them
    body = TrickleBody(data)

    parsed = list(macie_results.iter_records(body))

    assert parsed[:-1] == records and parsed[-1] is None
    assert body.position == len(data) and body.largest <= 1000


def test_job_as_step_functions_returns_it_is_understood():
    """The workflow hands over the whole DescribeClassificationJob response in Step Functions' PascalCase."""
    job_id, state, _ = evaluate_findings._parse_event(
        {
            "job": {"JobId": "abc123", "JobStatus": "COMPLETE", "LastRunErrorStatus": {"Code": "ERROR"}, "Name": "x"},
            "scanComplete": True,
            "objects": [],
        }
    )
    assert job_id == "abc123" and state.job_status == "COMPLETE" and state.job_error is True
    _, cancelled, _ = evaluate_findings._parse_event(
        {"job": {"JobId": "abc123", "JobStatus": "CANCELLED"}, "scanComplete": True, "objects": []}
    )
    assert cancelled.scan_complete is False and cancelled.job_error is False


# ============================================================================== batch operations
BATCH = "b-20240501T100000-0123456789abcdef"


class RecordingEvents:
    """PutEvents recorder (the result events of summarize)."""

    def __init__(self) -> None:
        self.entries: list[dict] = []

    def put_events(self, *, Entries: list[dict]) -> dict:  # noqa: N803 - the boto3 parameter name
        assert len(Entries) <= 10
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(n)} for n, _ in enumerate(Entries)]}


@pytest.fixture
def batch(macie, s3, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The batch bucket and the state table in moto; ``call(event)`` invokes the real handler."""
    client, stubber = macie
    s3.create_bucket(Bucket=BATCH_BUCKET)
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(TableName=STATE_TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    events = RecordingEvents()
    cache = ClientCache(evaluate_findings._CLIENTS.config, macie2=client, s3=s3, dynamodb=ddb, events=events)
    monkeypatch.setattr(evaluate_findings, "_CLIENTS", cache)
    monkeypatch.setenv("RESULTS_BUCKET", RESULTS_BUCKET)
    return {"s3": s3, "ddb": ddb, "events": events, "stubber": stubber,
            "call": lambda event: evaluate_findings.handler(event, FakeContext())}


def source(key: str, version: str = "v-src") -> dict:
    return {"bucket": SOURCE_BUCKET, "key": key, "versionId": version, "etag": "e1", "size": 120, "lastModified": "2024-05-01T10:00:00Z"}


def staged_line(i: int, key: str, *, version: str = "v-stg", integrity: str = "VALID", error: dict | None = None) -> dict:
    staged = None if error else {"bucket": STAGED_BUCKET, "key": f"scans/{BATCH}/{key}", "versionId": version, "etag": "e1", "size": 120}
    check = None if error else {"status": integrity, "format": "csv", "reason": None, "checksum": None}
    return {"i": i, "source": source(key), "staged": staged, "error": error, "integrity": check}


def put_batch_file(s3: Any, name: str, value: Any) -> None:
    body = json.dumps(value) if name.endswith(".json") else "".join(json.dumps(line) + "\n" for line in value)
    s3.put_object(Bucket=BATCH_BUCKET, Key=f"batches/{BATCH}/{name}", Body=body.encode())


def batch_lines(s3: Any, name: str) -> list[dict]:
    body = s3.get_object(Bucket=BATCH_BUCKET, Key=f"batches/{BATCH}/{name}")["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def two_chunks(s3: Any) -> None:
    """Chunk 0: a.csv (finding on its staged version), b.csv (clean); chunk 1: c.csv (finding on another
    version of its key), d.csv (its copy failed)."""
    put_batch_file(s3, "chunks.json", [{"chunk": 0, "count": 2, "bytes": 240}, {"chunk": 1, "count": 2, "bytes": 240}])
    chunk0 = [staged_line(0, "a.csv"), staged_line(1, "b.csv")]
    chunk1 = [staged_line(2, "c.csv"), staged_line(3, "d.csv", error={"Error": "SourceChangedError", "Cause": "the ETag changed"})]
    for number, lines in enumerate((chunk0, chunk1)):
        put_batch_file(s3, f"manifest/{number:06d}.jsonl", [{"i": x["i"], "source": x["source"]} for x in lines])
        put_batch_file(s3, f"staged/{number:06d}.jsonl", lines)


def stub_batch_job(batch: dict) -> None:
    stub_findings(batch["stubber"], [[
        finding("f-a", f"scans/{BATCH}/a.csv", "High"),
        finding("f-c", f"scans/{BATCH}/c.csv", "High", version="v-other"),
    ]])
    put_results(batch["s3"], f"AWSLogs/{ACCOUNT}/Macie/{REGION}/{JOB_ID}/r.jsonl.gz",
                [record(f"scans/{BATCH}/{k}.csv", sensitive={"FINANCIAL_INFORMATION": 3} if k == "a" else None, custom=2 if k == "a" else 0)
                 for k in ("a", "b", "c")])


def evaluate_event(**changes: Any) -> dict:
    return {"operation": "evaluate", "batchId": BATCH, "chunkCount": 2, "jobId": JOB_ID,
            "job": {"JobId": JOB_ID, "JobStatus": "COMPLETE", "LastRunErrorStatus": {"Code": "NONE"}}, "scanComplete": True, **changes}


def test_count_staged_counts_objects_of_missing_chunks_as_failed(batch) -> None:
    s3 = batch["s3"]
    two_chunks(s3)
    put_batch_file(s3, "chunks.json", [{"chunk": 0, "count": 2}, {"chunk": 1, "count": 2}, {"chunk": 2, "count": 5}])
    assert batch["call"]({"operation": "count_staged", "batchId": BATCH, "chunkCount": 3}) == {"staged": 3, "failed": 6}


def test_evaluate_binds_findings_to_staged_versions_chunk_by_chunk(batch) -> None:
    two_chunks(batch["s3"])
    stub_batch_job(batch)

    result = batch["call"](evaluate_event())

    assert result == {"clean": 1, "review": 2, "deny": 0, "corrupt": 0, "failed": 1, "reviewRequired": True}
    chunk0, chunk1 = batch_lines(batch["s3"], "verdicts/000000.jsonl"), batch_lines(batch["s3"], "verdicts/000001.jsonl")
    a, b = chunk0
    assert (a["i"], a["verdict"], a["findings"]["tagValue"]) == (0, "REVIEW", "CREDIT_CARD_NUMBER:3 EmployeeId:2")
    assert a["findings"]["locations"] == {"CREDIT_CARD_NUMBER": [{"row": r, "column": 3, "columnName": "card_no"} for r in (2, 5, 9)]}
    assert a["reasons"] == ["1 HIGH-severity Macie finding(s); the finding policy requires review"]
    assert a["source"] == source("a.csv") and a["staged"]["versionId"] == "v-stg"
    assert (b["verdict"], b["reasons"], b["analysis"]) == ("CLEAN", [], "COMPLETE")
    c, d = chunk1
    assert c["verdict"] == "REVIEW" and c["findings"]["count"] == 0
    assert c["reasons"] == ["1 Macie finding(s) for the object's key are about version v-other, not the staged version v-stg"]
    assert (d["verdict"], d["reasons"]) == ("FAILED", ["the object could not be staged and checked: the ETag changed"])


def test_an_error_event_of_the_job_means_no_object_is_clean(batch) -> None:
    two_chunks(batch["s3"])
    stub_batch_job(batch)
    batch["ddb"].put_item(TableName=STATE_TABLE, Item={"pk": {"S": f"job#{JOB_ID}"}, "taskToken": {"S": "t"}, "errors": {"L": [
        {"M": {"eventType": {"S": "BUCKET_ACCESS_DENIED"}, "occurredAt": {"S": "2024-05-01T10:15:00Z"}}}]}})

    result = batch["call"](evaluate_event())

    assert (result["clean"], result["review"]) == (0, 3)
    b = batch_lines(batch["s3"], "verdicts/000000.jsonl")[1]
    assert b["verdict"] == "REVIEW"
    assert b["reasons"] == ["Macie logged 1 error event(s) for the job (BUCKET_ACCESS_DENIED), so some objects may not have been analysed"]


def test_a_chunk_without_a_staged_file_and_a_job_at_the_findings_cap(batch, monkeypatch) -> None:
    s3 = batch["s3"]
    two_chunks(s3)
    s3.delete_object(Bucket=BATCH_BUCKET, Key=f"batches/{BATCH}/staged/000001.jsonl")
    stub_batch_job(batch)
    monkeypatch.setattr(batch_evaluation, "FINDINGS_CAP", 2)  # the job's 2 findings reach the cap

    result = batch["call"](evaluate_event())

    assert (result["clean"], result["failed"]) == (0, 2)
    b = batch_lines(s3, "verdicts/000000.jsonl")[1]
    assert b["verdict"] == "REVIEW" and "reached its limit of 100,000 findings" in b["reasons"][0]
    c, d = batch_lines(s3, "verdicts/000001.jsonl")
    assert (c["source"]["key"], c["verdict"], c["staged"]) == ("c.csv", "FAILED", None)
    assert c["error"]["Error"] == "ChunkNotStaged" and d["i"] == 3


def test_evaluate_without_a_job_fails_every_object_that_was_not_staged(batch) -> None:
    s3 = batch["s3"]
    put_batch_file(s3, "chunks.json", [{"chunk": 0, "count": 1}])
    put_batch_file(s3, "manifest/000000.jsonl", [{"i": 0, "source": source("a.csv")}])
    put_batch_file(s3, "staged/000000.jsonl", [staged_line(0, "a.csv", error={"Error": "AccessDenied", "Cause": "denied"})])
    result = batch["call"](evaluate_event(chunkCount=1, jobId=None, job=None, scanComplete=False))
    assert result == {"clean": 0, "review": 0, "deny": 0, "corrupt": 0, "failed": 1, "reviewRequired": False}


def test_summarize_reports_objects_with_no_outcome_once(batch) -> None:
    s3 = batch["s3"]
    two_chunks(s3)
    verdict = {"verdict": "CLEAN", "reasons": [], "findings": {"count": 0}}
    put_batch_file(s3, "verdicts/000000.jsonl", [{**staged_line(0, "a.csv"), **verdict}, {**staged_line(1, "b.csv"), **verdict}])
    put_batch_file(s3, "routed/000000.jsonl", [
        {**staged_line(0, "a.csv"), **verdict, "outcome": "PROMOTED", "location": {"bucket": "vault", "key": "a.csv"}},
        {**staged_line(1, "b.csv"), **verdict, "verdict": "REVIEW", "outcome": "REVIEW_PENDING", "location": {}},
    ])
    # Chunk 1: c.csv was evaluated but never routed; d.csv's copy failed and its FAILED line was routed.
    put_batch_file(s3, "verdicts/000001.jsonl", [{**staged_line(2, "c.csv"), **verdict}])
    put_batch_file(s3, "routed/000001.jsonl", [
        {**staged_line(3, "d.csv", error={"Error": "SourceChangedError", "Cause": "the ETag changed"}), "verdict": "FAILED",
         "outcome": "FAILED", "location": None, "heldIn": "INGRESS"},
    ])
    event = {"operation": "summarize", "batchId": BATCH, "chunkCount": 2, "executionArn": "arn:aws:states:::execution:scan:" + BATCH}

    result = batch["call"](event)

    summary = result["summary"]
    assert summary["objectCount"] == 4
    assert summary["outcomes"] == {"PROMOTED": 1, "FAILED": 3}
    assert summary["verdicts"] == {"CLEAN": 2, "REVIEW": 1, "FAILED": 1}
    assert summary["failureCount"] == 3 and summary["reportedFailed"] == 2
    assert [f["key"] for f in summary["failures"]] == ["b.csv", "c.csv", "d.csv"]
    details = [json.loads(e["Detail"]) for e in batch["events"].entries]
    assert [(d["object"]["key"], d["heldIn"], d["error"]["Error"]) for d in details] == [
        ("b.csv", "REVIEW", "NoOutcome"), ("c.csv", "QUARANTINE", "NoOutcome")]
    assert details[0]["scanId"] == BATCH and details[0]["outcome"] == "FAILED" and details[0]["executionArn"] == event["executionArn"]
    assert {e["Source"] for e in batch["events"].entries} == {"sensitive-data-scan-pipeline"}
    assert [line["i"] for line in batch_lines(s3, "reported/000000.jsonl")] == [1]
    stored = json.loads(s3.get_object(Bucket=BATCH_BUCKET, Key=f"batches/{BATCH}/summary.json")["Body"].read())
    assert stored["outcomes"] == summary["outcomes"] and len(stored["failures"]) == 3

    # A retry of the step sends no event twice.
    batch["call"](event)
    assert len(batch["events"].entries) == 2


def test_summarize_says_who_decided_bounded_for_thousands_of_objects(batch, monkeypatch) -> None:
    """Issue 12: the summary (summary.json and the notification) counts decisions per reviewer and
    lists the first decisions with the deciding reviewer's email and time (four eyes: both approvers);
    timeouts are counted, not listed; without a review nothing is added."""
    s3 = batch["s3"]
    count = 45
    monkeypatch.setattr(batch_evaluation, "SUMMARY_DECISIONS", 30)
    put_batch_file(s3, "chunks.json", [{"chunk": 0, "count": count}])
    put_batch_file(s3, "manifest/000000.jsonl", [{"i": i, "source": source(f"k{i}.csv")} for i in range(count)])
    held = {"verdict": "REVIEW", "reasons": [], "findings": {"count": 1}}
    put_batch_file(s3, "routed/000000.jsonl", [{**staged_line(i, f"k{i}.csv"), **held, "outcome": "REVIEW_PENDING",
                                                "location": {"bucket": "review", "key": f"k{i}.csv"}} for i in range(count)])

    def review(i: int) -> dict:
        if i == 0:  # four eyes
            return {"decision": "APPROVE", "reviewer": "bo@x", "reviewerEmail": "bo@x", "decidedAt": "2024-05-01T11:00:00Z",
                    "reviewerSub": "s-bo", "reviewerGroups": ["reviewers"], "reviewerSourceIp": "192.0.2.2",
                    "approvals": {"s-al": {"email": "al@x", "at": "2024-05-01T10:59:00Z"},
                                  "s-bo": {"email": "bo@x", "at": "2024-05-01T11:00:00Z"}}}
        if i == count - 1:
            return {"decision": "TIMEOUT", "reviewer": "timeout", "decidedAt": "2024-05-02T10:00:00Z"}
        if i == count - 2:  # written before reviewers signed in
            return {"decision": "DENY", "reviewer": "anonymous@192.0.2.9", "decidedAt": "2024-05-01T12:00:00Z"}
        return {"decision": ("APPROVE", "DENY")[i % 2], "reviewer": "al@x", "reviewerEmail": "al@x",
                "decidedAt": f"2024-05-01T11:{i:02d}:00Z"}

    outcome = {"APPROVE": "APPROVED", "DENY": "DENIED", "TIMEOUT": "DENIED"}
    put_batch_file(s3, "decided/000000.jsonl", [
        {**staged_line(i, f"k{i}.csv"), **held, "review": review(i), "outcome": outcome[review(i)["decision"]],
         "location": {"bucket": "vault", "key": f"k{i}.csv"}} for i in range(count)])

    summary = batch["call"]({"operation": "summarize", "batchId": BATCH, "chunkCount": 1})["summary"]

    reviews = summary["reviews"]
    assert (reviews["decided"], reviews["timedOut"]) == (count - 1, 1)
    assert reviews["byReviewer"] == {
        "al@x": {"APPROVE": 21, "DENY": 21, "firstAt": "2024-05-01T11:01:00Z", "lastAt": "2024-05-01T11:42:00Z"},
        "anonymous@192.0.2.9": {"DENY": 1, "firstAt": "2024-05-01T12:00:00Z", "lastAt": "2024-05-01T12:00:00Z"},
        "bo@x": {"APPROVE": 1, "firstAt": "2024-05-01T11:00:00Z", "lastAt": "2024-05-01T11:00:00Z"}}
    assert reviews["decisions"][0] == {"key": "k0.csv", "decision": "APPROVE", "reviewer": "bo@x",
                                       "decidedAt": "2024-05-01T11:00:00Z", "approvedBy": ["al@x", "bo@x"]}
    assert reviews["decisions"][1] == {"key": "k1.csv", "decision": "DENY", "reviewer": "al@x", "decidedAt": "2024-05-01T11:01:00Z"}
    assert len(reviews["decisions"]) == batch_evaluation.RETURNED_DECISIONS
    assert reviews["decisionsNotListed"] == count - 1 - batch_evaluation.RETURNED_DECISIONS
    stored = json.loads(s3.get_object(Bucket=BATCH_BUCKET, Key=f"batches/{BATCH}/summary.json")["Body"].read())
    assert len(stored["reviews"]["decisions"]) == 30 and stored["reviews"]["decisionsNotListed"] == count - 1 - 30
    assert stored["reviews"]["byReviewer"] == reviews["byReviewer"]
    assert "192.0.2.2" not in json.dumps(summary)  # the source address stays in the state table and the result event

    two_chunks(s3)  # a batch without a review: no reviews section
    s3.delete_object(Bucket=BATCH_BUCKET, Key=f"batches/{BATCH}/decided/000000.jsonl")
    assert "reviews" not in batch["call"]({"operation": "summarize", "batchId": BATCH, "chunkCount": 2})["summary"]


def test_batch_operations_reject_bad_requests(batch) -> None:
    with pytest.raises(InvalidInputError, match="operation must be one of count_staged, evaluate, summarize, got 'route'"):
        batch["call"]({"operation": "route"})
    with pytest.raises(InvalidInputError, match="count_staged: chunkCount must be a non-negative integer"):
        batch["call"]({"operation": "count_staged", "batchId": BATCH, "chunkCount": "2"})
    with pytest.raises(InvalidInputError, match="does not exist"):
        batch["call"]({"operation": "count_staged", "batchId": BATCH, "chunkCount": 1})
