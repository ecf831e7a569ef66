"""The local Amazon Macie: detection rules, job scoping and life cycle, wire shapes, and the pipeline's
own reader of Macie results (``lambda/evaluate_findings/macie_results.py``) run against it."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import random
import warnings

import boto3
import pandas
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ParamValidationError
from moto import mock_aws

import macie_results
from macie_pipeline.local import awsmodel
from macie_pipeline.local.detection import (
    MANAGED_IDENTIFIERS,
    AllowListSpec,
    CustomIdentifierSpec,
    detect,
    extract_text,
    finding_type,
    luhn_valid,
    severity,
)
from macie_pipeline.local.macie import LocalMacie, MacieBehavior

ACCOUNT = "123456789012"
REGION = "us-east-1"
QUARANTINE = "quarantine-bucket"
RESULTS = "discovery-results-bucket"
SCAN_TAG = "macie-pipeline:scan-id"
CARD = b"name,card\nAlex Doe,4539 1488 0343 6467\n"
MANAGED = list(MANAGED_IDENTIFIERS.values())
EMPLOYEE = CustomIdentifierSpec(
    id="cdi-employee",
    arn=f"arn:aws:macie2:{REGION}:{ACCOUNT}:custom-data-identifier/cdi-employee",
    name="EmployeeId",
    regex=r"EMP-[0-9]{6}",
    keywords=("employee",),
    ignore_words=("EMP-000000",),
    maximum_match_distance=20,
)
TEST_CARDS = AllowListSpec(
    id="a" * 22, arn=f"arn:aws:macie2:{REGION}:{ACCOUNT}:allow-list/{'a' * 22}", name="TestCards", regex=r"4111-?1111-?1111-?1111"
)


def found(text: str, *, custom=(), allow=()) -> dict[str, int]:
    return {d.type: d.count for d in detect(text, managed=MANAGED, custom=custom, allow_lists=allow)}


# ----------------------------------------------------------------------------------------- detection
def test_card_numbers_need_a_valid_luhn_digit_and_are_named_by_keyword_proximity():
    assert found("card 4539 1488 0343 6467") == {"CREDIT_CARD_NUMBER": 1}
    assert found("card 4539 1488 0343 6468") == {}  # check digit off by one
    assert found("card 4539 1488 0343 6467 5") == {}  # not a card-shaped number
    assert found("order 4539148803436467 shipped") == {"CREDIT_CARD_NUMBER_(NO_KEYWORD)": 1}
    assert found("VISA" + " " * 30 + "4539148803436467") == {"CREDIT_CARD_NUMBER": 1}  # 30 characters away
    assert found("visa" + " " * 31 + "4539148803436467") == {"CREDIT_CARD_NUMBER_(NO_KEYWORD)": 1}
    assert found("4539148803436467" + " " * 30 + "visa") == {"CREDIT_CARD_NUMBER": 1}  # after the number counts too
    # In CSV data the column name is a keyword for every value of the column.
    cells = extract_text(b"id,card_number\n1,378282246310005\n2,5555-5555-5555-4444\n", "p.csv").content
    assert [(d.type, d.count, d.occurrences[1]) for d in detect(cells, managed=MANAGED)] == [
        ("CREDIT_CARD_NUMBER", 2, ("cells", {"row": 3, "column": 2, "columnName": "card_number"}))
    ]


def test_social_security_numbers_outside_the_issued_ranges_are_rejected():
    assert found("SSN: 123-45-6789, ssn 123 45 6780") == {"USA_SOCIAL_SECURITY_NUMBER": 2}
    for invalid in ("000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000"):
        assert found(f"ssn {invalid}") == {}, invalid
    assert found("ref 123-45-6789") == {}  # a keyword is required
    assert found("ssn 123-45 6789") == {}  # mixed separators


def test_custom_identifier_keyword_must_precede_within_the_maximum_match_distance():
    # maximum_match_distance 20, counted from the end of the keyword to the end of the match (10 characters).
    assert found("Employee" + " " * 10 + "EMP-123456", custom=[EMPLOYEE]) == {"EmployeeId": 1}
    assert found("employee" + " " * 11 + "EMP-123456", custom=[EMPLOYEE]) == {}
    assert found("EMP-123456 employee", custom=[EMPLOYEE]) == {}
    assert found("employee EMP-000000 and employee EMP-000001", custom=[EMPLOYEE]) == {"EmployeeId": 1}
    case_sensitive = dataclasses.replace(EMPLOYEE, ignore_words=("emp-000000",))
    assert found("employee EMP-000000", custom=[case_sensitive]) == {"EmployeeId": 1}
    # An ignore word excludes every match that contains it.
    suffixed = dataclasses.replace(EMPLOYEE, regex=r"EMP-[0-9]{6}-[A-Z]{2}", ignore_words=("000000",))
    assert found("employee EMP-000000-AB employee EMP-000001-AB", custom=[suffixed]) == {"EmployeeId": 1}
    # A keyword in a JSON field name counts for the field's value, wherever it is in the path.
    fields = extract_text(b'[{"employee": {"ids": ["EMP-123456"]}}]', "staff.json").content
    [detection] = detect(fields, custom=[EMPLOYEE])
    assert detection.occurrences == [("records", {"recordIndex": 0, "jsonPath": "$[0].employee.ids[0]"})]


def test_allow_lists_suppress_managed_and_custom_matches_only_on_a_complete_match():
    text = "card 4111-1111-1111-1111 card 4539 1488 0343 6467 employee EMP-482913"
    assert found(text, custom=[EMPLOYEE]) == {"CREDIT_CARD_NUMBER": 2, "EmployeeId": 1}
    assert found(text, custom=[EMPLOYEE], allow=[TEST_CARDS]) == {"CREDIT_CARD_NUMBER": 1, "EmployeeId": 1}
    words = AllowListSpec(id="b" * 22, arn="arn:b", name="Words", words=("emp-482913",))
    assert found(text, custom=[EMPLOYEE], allow=[words]) == {"CREDIT_CARD_NUMBER": 2}
    partial = AllowListSpec(id="c" * 22, arn="arn:c", name="Partial", words=("EMP-48",), regex=r"4539")
    assert found(text, custom=[EMPLOYEE], allow=[partial]) == {"CREDIT_CARD_NUMBER": 2, "EmployeeId": 1}


def test_severity_and_finding_type():
    def scored(text: str, custom=()) -> tuple[str, str]:
        detections = detect(text, managed=MANAGED, custom=custom)
        return severity(detections), finding_type(detections)

    secret = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert scored(secret) == ("HIGH", "SensitiveData:S3Object/Credentials")
    assert scored("card 4539 1488 0343 6467") == ("HIGH", "SensitiveData:S3Object/Financial")
    assert scored("mail a@example.com " * 99) == ("MEDIUM", "SensitiveData:S3Object/Personal")
    assert scored("mail a@example.com " * 100) == ("HIGH", "SensitiveData:S3Object/Personal")
    assert scored("employee EMP-123456", [EMPLOYEE]) == ("MEDIUM", "SensitiveData:S3Object/CustomIdentifier")
    assert scored("a@example.com employee EMP-123456", [EMPLOYEE]) == ("MEDIUM", "SensitiveData:S3Object/Multiple")
    assert scored("card 4539 1488 0343 6467 employee EMP-123456", [EMPLOYEE]) == ("HIGH", "SensitiveData:S3Object/Multiple")


def test_what_cannot_be_read_is_skipped_with_macies_reason():
    frame = io.BytesIO()
    with warnings.catch_warnings():  # pandas deprecates its fastparquet engine; the local extra has no pyarrow
        warnings.simplefilter("ignore")
        pandas.DataFrame({"name": ["Alex"], "card_number": ["4539 1488 0343 6467"]}).to_parquet(frame, engine="fastparquet")
    parquet = extract_text(frame.getvalue(), "ledger.parquet")
    assert [d.occurrences for d in detect(parquet.content, managed=MANAGED)] == [
        [("records", {"recordIndex": 0, "jsonPath": "$.card_number"})]
    ]
    cases = {
        "ledger.parquet": (b"PAR1\x15\x04\x15\x10not really parquet", ("SKIPPED", "UNABLE_TO_PARSE_FILE", "application/parquet")),
        "a.csv.gz": (b"\x1f\x8b\x08\x00broken", ("SKIPPED", "MALFORMED_FILE", "application/gzip")),
        "b.csv.gz": (gzip.compress(CARD), ("COMPLETE", None, "application/gzip")),
        "photo.jpg": (b"\xff\xd8\xff\xe0\x00\x10JFIF", ("SKIPPED", "UNSUPPORTED_FILE_TYPE_EXCEPTION", "application/octet-stream")),
        "c.json": (b'{"a": ', ("SKIPPED", "UNABLE_TO_PARSE_FILE", "application/json")),
        "d.jsonl": (b'{"a": 1}\n{"a": \n', ("PARTIAL", "UNABLE_TO_PARSE_FILE", "application/json")),
        "empty.csv": (b"", ("COMPLETE", None, "text/csv")),
    }
    for key, (data, expected) in cases.items():
        extraction = extract_text(data, key)
        assert (extraction.status, extraction.reason, extraction.mime_type) == expected, key
    assert detect(extract_text(gzip.compress(CARD), "b.csv.gz").content, managed=MANAGED)[0].type == "CREDIT_CARD_NUMBER"


# ------------------------------------------------------------------------------------ the local service
@pytest.fixture
def env():
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        key_arn = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
        s3.create_bucket(Bucket=QUARANTINE)
        s3.put_bucket_versioning(Bucket=QUARANTINE, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket=RESULTS)
        yield s3, key_arn


def make_macie(s3, key_arn=None, **behavior) -> LocalMacie:
    macie = LocalMacie(account_id=ACCOUNT, region=REGION, s3_client=s3, custom_identifiers=[EMPLOYEE],
                       allow_lists=[TEST_CARDS], behavior=MacieBehavior(**behavior))
    if key_arn:
        macie.call("PutClassificationExportConfiguration",
                   {"configuration": {"s3Destination": {"bucketName": RESULTS, "keyPrefix": "macie/", "kmsKeyArn": key_arn}}})
    return macie


def put(s3, key: str, body: bytes, scan_id: str | None = "scan-1") -> None:
    s3.put_object(Bucket=QUARANTINE, Key=key, Body=body, **({"Tagging": f"{SCAN_TAG}={scan_id}"} if scan_id else {}))


def job_request(scan_id: str = "scan-1", token: str | None = None, extra_terms=()) -> dict:
    """CreateClassificationJob as the pipeline's workflow sends it (after the Step Functions renaming)."""
    sfn = {
        "ClientToken": token or scan_id,
        "JobType": "ONE_TIME",
        "Name": f"sensitive-data-scan-{scan_id}",
        "SamplingPercentage": 100,
        "ManagedDataIdentifierSelector": "RECOMMENDED",
        "CustomDataIdentifierIds": [EMPLOYEE.id],
        "AllowListIds": [TEST_CARDS.id],
        "S3JobDefinition": {
            "BucketDefinitions": [{"AccountId": ACCOUNT, "Buckets": [QUARANTINE]}],
            "Scoping": {"Includes": {"And": [
                {"TagScopeTerm": {
                    "Comparator": "EQ", "Key": "TAG", "TagValues": [{"Key": SCAN_TAG, "Value": scan_id}], "Target": "S3_OBJECT",
                }},
                *extra_terms,
            ]}},
        },
        "Tags": {"Team": "data"},
    }
    params = awsmodel.sfn_params_to_api("macie2", "createClassificationJob", sfn)
    awsmodel.validate_input("macie2", "CreateClassificationJob", params)
    return params


def finish(macie: LocalMacie, job_id: str) -> dict:
    return macie.call("DescribeClassificationJob", {"jobId": job_id})


def analysed_keys(macie: LocalMacie) -> set[str]:
    return {f["resourcesAffected"]["s3Object"]["key"] for f in macie.findings.values()}


def result_records(s3) -> list[dict]:
    records = []
    for entry in s3.list_objects_v2(Bucket=RESULTS).get("Contents") or []:
        body = s3.get_object(Bucket=RESULTS, Key=entry["Key"])["Body"].read()
        records += [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]
    return records


def test_job_is_scoped_by_tag_and_reads_current_versions(env):
    s3, key_arn = env
    macie = make_macie(s3, key_arn)
    put(s3, "a.csv", b"name\nnobody\n")
    put(s3, "a.csv", CARD)  # the current version is the one analysed
    put(s3, "a.csv.bak", CARD, scan_id=None)
    put(s3, "other-scan.csv", CARD, scan_id="scan-2")
    put(s3, "roster.txt", b"employee EMP-482913 joined\n")
    job_id = macie.call("CreateClassificationJob", job_request())["jobId"]
    assert finish(macie, job_id)["jobStatus"] == "COMPLETE"
    assert analysed_keys(macie) == {"a.csv", "roster.txt"}
    assert {r["resourcesAffected"]["s3Object"]["key"] for r in result_records(s3)} == {"a.csv", "roster.txt"}
    card = next(f for f in macie.findings.values() if f["resourcesAffected"]["s3Object"]["key"] == "a.csv")
    current = s3.head_object(Bucket=QUARANTINE, Key="a.csv")
    assert card["resourcesAffected"]["s3Object"]["versionId"] == current["VersionId"]
    assert card["resourcesAffected"]["s3Object"]["tags"] == [{"key": SCAN_TAG, "value": "scan-1"}]
    assert (card["type"], card["severity"], card["classificationDetails"]["jobId"]) == (
        "SensitiveData:S3Object/Financial", {"description": "High", "score": 3}, job_id)

    # Same tag, but only the .csv extension is in scope: a.csv.bak stays out although it is tagged.
    put(s3, "b.csv", CARD, scan_id="scan-3")
    put(s3, "b.csv.bak", CARD, scan_id="scan-3")
    extension = {"SimpleScopeTerm": {"Comparator": "EQ", "Key": "OBJECT_EXTENSION", "Values": ["csv"]}}
    second = macie.call("CreateClassificationJob", job_request("scan-3", extra_terms=[extension]))["jobId"]
    finish(macie, second)
    assert {f["resourcesAffected"]["s3Object"]["key"] for f in macie.findings.values()
            if f["classificationDetails"]["jobId"] == second} == {"b.csv"}


def test_a_job_reads_the_listing_once_and_each_object_with_two_requests(env, monkeypatch):
    """Classification lists the bucket (one request a page) and reads tags only where the scope needs
    them: an object outside a key-prefix term costs nothing; one in scope is GetObjectTagging + GetObject."""
    s3, _ = env
    macie = make_macie(s3)
    for n in range(6):
        put(s3, f"in/{n}.csv", CARD if n % 2 else b"a,b\n1,2\n")
    for n in range(4):
        put(s3, f"out/{n}.csv", CARD)
    calls: list[str] = []
    original = type(s3)._make_api_call
    monkeypatch.setattr(type(s3), "_make_api_call", lambda client, operation, params: (calls.append(operation), original(client, operation, params))[1])
    prefix = {"SimpleScopeTerm": {"Comparator": "STARTS_WITH", "Key": "OBJECT_KEY", "Values": ["in/"]}}
    job_id = macie.call("CreateClassificationJob", job_request(extra_terms=[prefix]))["jobId"]
    finish(macie, job_id)
    reads = [c for c in calls if c in ("ListObjectsV2", "HeadObject", "GetObjectTagging", "GetObject")]
    assert sorted(set(reads)) == ["GetObject", "GetObjectTagging", "ListObjectsV2"]
    assert (reads.count("ListObjectsV2"), reads.count("GetObjectTagging"), reads.count("GetObject")) == (1, 6, 6)
    assert len(analysed_keys(macie)) == 3
    finding = next(iter(macie.findings.values()))["resourcesAffected"]["s3Object"]
    assert finding["versionId"] == s3.head_object(Bucket=QUARANTINE, Key=finding["key"])["VersionId"]
    assert finding["tags"] == [{"key": SCAN_TAG, "value": "scan-1"}] and finding["size"] == len(CARD)


def numeric_rows(count: int = 300) -> list[dict]:
    """Realistic clean metrics: latencies and ratios with 16-17 significant digits, tiny values in
    scientific notation, byte counts and epoch milliseconds, signed deltas."""
    rng = random.Random(20240611)
    rows = [{"request_id": 1, "latency_s": 0.4539148803436467, "ratio": 4539148803436467.5, "delta": -0.4539148803436467,
             "tiny": 4.539148803436467e-05, "bytes": 1048576, "ts_ms": 1718100000000}]
    for n in range(2, count + 1):
        rows.append({
            "request_id": n,
            "latency_s": rng.random(),
            "ratio": rng.lognormvariate(0, 2),
            "delta": rng.uniform(-1, 1),
            "tiny": rng.random() * 1e-5,
            "bytes": rng.randrange(0, 10**9),
            "ts_ms": 1718100000000 + rng.randrange(0, 10**8),
        })
    return rows


def test_clean_numeric_data_has_no_findings_while_card_numbers_in_ordinary_separators_do(env):
    """Issue 10, item 11: digits of a larger number (a fraction, an exponent) are not card numbers or
    SSNs. Fails before the fix: fractional parts such as 0.4539148803436467 were card numbers."""
    s3, key_arn = env
    rows = numeric_rows()
    fractions = [repr(v).split(".")[1] for row in rows for v in row.values() if isinstance(v, float) and "e" not in repr(v)]
    # The data would trip a detector that ignores number boundaries: many fractions look like card numbers.
    assert sum(1 for f in fractions if len(f) >= 13 and f[0] in "3456" and luhn_valid(f)) >= 10
    frame = pandas.DataFrame(rows)
    parquet = io.BytesIO()
    with warnings.catch_warnings():  # pandas deprecates its fastparquet engine; the local extra has no pyarrow
        warnings.simplefilter("ignore")
        frame.to_parquet(parquet, engine="fastparquet")
    text = "".join(f"request {r['request_id']} latency={r['latency_s']} tiny={r['tiny']} ssn-check={r['delta']}\n" for r in rows)
    numeric = {
        "metrics.csv": frame.to_csv(index=False, float_format=repr).encode(),
        "metrics.parquet": parquet.getvalue(),
        "metrics.json": json.dumps(rows).encode(),
        "metrics.log": text.encode(),
    }
    cards = b"card 4539 1488 0343 6467\nvisa: 4539-1488-0343-6467.\npayment card,4539148803436467\nCard No.4539148803436467\n"
    macie = make_macie(s3, key_arn)
    for key, body in {**numeric, "cards.txt": cards}.items():
        put(s3, key, body)
    job_id = macie.call("CreateClassificationJob", job_request())["jobId"]
    finish(macie, job_id)

    assert analysed_keys(macie) == {"cards.txt"}
    [finding] = macie.findings.values()
    assert finding["classificationDetails"]["result"]["sensitiveData"][0]["detections"][0]["count"] == 4
    records = {r["resourcesAffected"]["s3Object"]["key"]: r for r in result_records(s3)}
    assert set(records) == {*numeric, "cards.txt"}
    for key, item in records.items():
        # Every discovery result names the version Macie analysed (the current one), as findings do.
        assert item["resourcesAffected"]["s3Object"]["versionId"] == s3.head_object(Bucket=QUARANTINE, Key=key)["VersionId"]
        result = item["classificationDetails"]["result"]
        assert result["status"] == {"code": "COMPLETE"}, key
        if key in numeric:
            assert (result["sensitiveData"], result["customDataIdentifiers"]["totalCount"]) == ([], 0), key
    reported = records["cards.txt"]["classificationDetails"]["result"]["sensitiveData"]
    assert [(d["category"], d["totalCount"]) for d in reported] == [("FINANCIAL_INFORMATION", 4)]


def test_create_is_idempotent_on_the_client_token_and_throttles_as_configured(env):
    s3, _ = env
    macie = make_macie(s3, throttle_creates=2)
    for _ in range(2):
        with pytest.raises(ClientError) as throttled:
            macie.call("CreateClassificationJob", job_request())
        assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
        assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert macie.jobs == {}
    first = macie.call("CreateClassificationJob", job_request())
    assert macie.call("CreateClassificationJob", job_request()) == first
    assert list(macie.jobs) == [first["jobId"]]
    changed = {**job_request(), "name": "another name"}
    with pytest.raises(ClientError) as conflict:
        macie.call("CreateClassificationJob", changed)
    assert conflict.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert macie.call("CreateClassificationJob", job_request(token="another-token"))["jobId"] != first["jobId"]
    assert len(macie.jobs) == 2
    with pytest.raises(ClientError) as invalid:
        macie.call("CreateClassificationJob", {**job_request(token="t3"), "samplingPercentage": 50})
    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as bad_enum:
        macie.call("CreateClassificationJob", {**job_request(token="t4"), "jobType": "ONCE"})
    assert "ONCE" in bad_enum.value.response["Error"]["Message"]


def statuses(macie: LocalMacie, job_id: str, polls: int) -> list[str]:
    return [finish(macie, job_id)["jobStatus"] for _ in range(polls)]


def test_job_status_is_steered_and_findings_appear_only_on_completion(env):
    s3, key_arn = env
    put(s3, "a.csv", CARD)

    slow = make_macie(s3, key_arn, running_polls=2, last_run_error=True)
    job_id = slow.call("CreateClassificationJob", job_request())["jobId"]
    assert statuses(slow, job_id, 2) == ["RUNNING", "RUNNING"] and slow.findings == {}
    done = finish(slow, job_id)
    assert (done["jobStatus"], done["lastRunErrorStatus"]) == ("COMPLETE", {"code": "ERROR"})
    assert len(slow.findings) == 1
    finish(slow, job_id)
    assert len(slow.findings) == 1  # classified once

    cancelled = make_macie(s3, job_status="CANCELLED")
    job_id = cancelled.call("CreateClassificationJob", job_request())["jobId"]
    assert statuses(cancelled, job_id, 2) == ["CANCELLED", "CANCELLED"] and cancelled.findings == {}

    paused = make_macie(s3, job_status="PAUSED")
    job_id = paused.call("CreateClassificationJob", job_request())["jobId"]
    assert statuses(paused, job_id, 3) == ["PAUSED"] * 3
    assert paused.call("UpdateClassificationJob", {"jobId": job_id, "jobStatus": "CANCELLED"}) == {}
    assert statuses(paused, job_id, 1) == ["CANCELLED"]
    with pytest.raises(ClientError) as again:
        paused.call("UpdateClassificationJob", {"jobId": job_id, "jobStatus": "CANCELLED"})
    assert again.value.response["Error"]["Code"] == "ValidationException"
    assert paused.findings == {}

    user_paused = make_macie(s3, job_status="USER_PAUSED")
    job_id = user_paused.call("CreateClassificationJob", job_request())["jobId"]
    described = finish(user_paused, job_id)
    assert described["jobStatus"] == "USER_PAUSED" and set(described["userPausedDetails"]) == {"jobPausedAt", "jobExpiresAt"}
    user_paused.call("UpdateClassificationJob", {"jobId": job_id, "jobStatus": "RUNNING"})
    assert statuses(user_paused, job_id, 1) == ["COMPLETE"] and len(user_paused.findings) == 1

    failing = make_macie(s3, fail_operations={"GetFindings": "InternalServerException"})
    with pytest.raises(ClientError) as error:
        failing.call("GetFindings", {"findingIds": ["x"]})
    assert (error.value.response["Error"]["Code"], error.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InternalServerException", 500)
    with pytest.raises(ClientError) as missing:
        failing.call("DescribeClassificationJob", {"jobId": "nope"})
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_identifier_allow_list_session_and_job_list_operations(env):
    s3, _ = env
    words = AllowListSpec(id="b" * 22, arn=f"arn:aws:macie2:{REGION}:{ACCOUNT}:allow-list/{'b' * 22}", name="Words",
                          words=("x",), s3_words_list=("words-bucket", "allow.txt"))
    macie = LocalMacie(account_id=ACCOUNT, region=REGION, s3_client=s3, custom_identifiers=[EMPLOYEE], allow_lists=[TEST_CARDS, words])
    identifier = macie.call("GetCustomDataIdentifier", {"id": EMPLOYEE.id})
    assert (identifier["regex"], identifier["keywords"], identifier["ignoreWords"], identifier["maximumMatchDistance"]) == (
        r"EMP-[0-9]{6}", ["employee"], ["EMP-000000"], 20)
    batch = macie.call("BatchGetCustomDataIdentifiers", {"ids": [EMPLOYEE.id, "gone"]})
    assert ([c["name"] for c in batch["customDataIdentifiers"]], batch["notFoundIdentifierIds"]) == (["EmployeeId"], ["gone"])
    assert macie.call("GetAllowList", {"id": TEST_CARDS.id})["criteria"] == {"regex": TEST_CARDS.regex}
    criteria = macie.call("GetAllowList", {"id": words.id})["criteria"]
    assert criteria == {"s3WordsList": {"bucketName": "words-bucket", "objectKey": "allow.txt"}}
    sample = "employee EMP-123456, EMP-654321, employee EMP-000000"
    test = {
        "regex": EMPLOYEE.regex, "keywords": ["employee"], "ignoreWords": ["EMP-000000"], "maximumMatchDistance": 20, "sampleText": sample,
    }
    assert macie.call("TestCustomDataIdentifier", test) == {"matchCount": 1}
    assert macie.call("TestCustomDataIdentifier", {"regex": EMPLOYEE.regex, "sampleText": sample}) == {"matchCount": 3}
    with pytest.raises(ClientError) as conflict:
        macie.call("EnableMacie", {})
    assert conflict.value.response["Error"]["Code"] == "ConflictException"
    for token in ("first", "second"):
        macie.call("CreateClassificationJob", job_request(token=token))
    page = macie.call("ListClassificationJobs", {"maxResults": 1})
    rest = macie.call("ListClassificationJobs", {"maxResults": 1, "nextToken": page["nextToken"]})
    assert [i["jobId"] for i in page["items"] + rest["items"]] == list(macie.jobs) and "nextToken" not in rest

    disabled = LocalMacie(account_id=ACCOUNT, region=REGION, s3_client=s3, enabled=False)
    with pytest.raises(ClientError) as denied:
        disabled.call("GetMacieSession", {})
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    disabled.call("EnableMacie", {"findingPublishingFrequency": "ONE_HOUR"})
    session = disabled.call("GetMacieSession", {})
    assert (session["status"], session["findingPublishingFrequency"]) == ("ENABLED", "ONE_HOUR")


def test_the_output_checker_rejects_what_botocore_would_silently_mangle():
    describe = ("macie2", "DescribeClassificationJob")
    good = {"jobId": "j", "jobStatus": "COMPLETE", "createdAt": "2024-05-01T10:00:00.000Z", "lastRunErrorStatus": {"code": "NONE"}}
    assert awsmodel.output_problems(describe, good) == []
    assert awsmodel.output_problems(describe, {**good, "JobStatus": "COMPLETE"}) == [
        "JobStatus: unknown member of DescribeClassificationJobResponse (members: allowListIds, clientToken, createdAt, "
        "customDataIdentifierIds, description, initialRun, jobArn, jobId, jobStatus, jobType, lastRunErrorStatus, lastRunTime, "
        "managedDataIdentifierIds, managedDataIdentifierSelector, name, s3JobDefinition, samplingPercentage, scheduleFrequency, "
        "statistics, tags, userPausedDetails)"
    ]
    assert awsmodel.output_problems(describe, {**good, "lastRunErrorStatus": {"code": "FAILED"}}) == [
        "lastRunErrorStatus.code: 'FAILED' is not one of ['ERROR', 'NONE']"
    ]
    assert len(awsmodel.output_problems(describe, {**good, "createdAt": 1714557600})) == 1  # Macie sends ISO 8601
    assert len(awsmodel.output_problems(("macie2", "GetFindings"), {"findings": [{"count": "1"}]})) == 1
    with pytest.raises(ValueError):
        awsmodel.parse_wire_output("macie2", "DescribeClassificationJob", {**good, "jobStatus": "DONE"})
    parsed = awsmodel.parse_wire_output("macie2", "DescribeClassificationJob", good)
    assert parsed["createdAt"].isoformat() == "2024-05-01T10:00:00+00:00"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 200
    # Step Functions names: members renamed, map keys (tags) untouched, timestamps stay strings.
    assert awsmodel.api_output_to_sfn("macie2", "describeClassificationJob", {**good, "tags": {"team": "x"}}) == {
        "JobId": "j", "JobStatus": "COMPLETE", "CreatedAt": "2024-05-01T10:00:00.000Z", "LastRunErrorStatus": {"Code": "NONE"},
        "Tags": {"team": "x"},
    }
    assert job_request()["tags"] == {"Team": "data"}
    with pytest.raises(ParamValidationError) as invalid:
        awsmodel.validate_input("macie2", "UpdateClassificationJob", {"jobId": "j", "jobStatus": "STOPPED", "extra": 1})
    assert "extra" in str(invalid.value) and "STOPPED" in str(invalid.value)


# ------------------------------------------------------------------------- the pipeline's Macie reader
def routed_macie_client(macie: LocalMacie, calls: list[str]):
    """A real boto3 macie2 client (botocore validates and builds each request) answered by ``macie``."""
    client = boto3.client("macie2", region_name=REGION)

    def keep_params(params, context, **_):
        context["local_params"] = params

    def answer(model, context, **_):
        calls.append(model.name)
        params = context["local_params"]
        awsmodel.validate_input("macie2", model.name, params)
        try:
            wire = macie.call(model.name, params)
        except ClientError as error:
            return AWSResponse("https://macie2.local", error.response["ResponseMetadata"]["HTTPStatusCode"], {}, None), error.response
        return AWSResponse("https://macie2.local", 200, {}, None), awsmodel.parse_wire_output("macie2", model.name, wire)

    client.meta.events.register_last("before-parameter-build.macie2.*", keep_params)
    client.meta.events.register("before-call.macie2.*", answer)
    return client


def test_the_pipeline_reads_every_finding_and_discovery_record(env):
    s3, key_arn = env
    macie = make_macie(s3, key_arn)
    cards = [f"batch/card-{i:02}.csv" for i in range(55)]
    for key in cards:
        put(s3, key, CARD)
    put(s3, "batch/clean.csv", b"id,item\n1,pen\n")
    put(s3, "batch/test-card.csv", b"id,card\n1,4111-1111-1111-1111\n")  # allow-listed
    put(s3, "batch/ledger.parquet", b"PAR1\x15\x04\x15\x10not really parquet")
    put(s3, "batch/later.csv", CARD, scan_id="scan-2")
    job_id = macie.call("CreateClassificationJob", job_request())["jobId"]
    finish(macie, job_id)

    calls: list[str] = []
    client = routed_macie_client(macie, calls)
    findings = list(macie_results.get_findings(client, macie_results.list_finding_ids(client, job_id)))
    assert calls == ["ListFindings", "GetFindings", "ListFindings", "GetFindings"]  # pages of 50, batches of 50
    assert sorted(macie_results.finding_location(f) for f in findings) == [(QUARANTINE, key) for key in cards]
    assert {f["severity"]["description"] for f in findings} == {"High"}
    assert all(f["createdAt"].tzinfo is not None for f in findings)  # parsed as boto3 parses it

    location = macie_results.results_location(client)
    assert location == macie_results.ResultsLocation(RESULTS, "macie/", key_arn)
    prefix = macie_results.job_results_prefix(location.key_prefix, ACCOUNT, REGION, job_id)
    wanted = {(QUARANTINE, key) for key in [*cards, "batch/clean.csv", "batch/test-card.csv", "batch/ledger.parquet", "batch/later.csv"]}
    analysis, stats = macie_results.read_analysis(s3, location, prefix, wanted)
    assert {where: [(r.status, r.reason) for r in records] for where, records in analysis.items()} == {
        **{(QUARANTINE, key): [("COMPLETE", None)] for key in [*cards, "batch/clean.csv", "batch/test-card.csv"]},
        (QUARANTINE, "batch/ledger.parquet"): [("SKIPPED", "UNABLE_TO_PARSE_FILE")],
    }
    # Each record is bound to the version Macie analysed, and carries what it detected there.
    for (_, key), [record] in analysis.items():
        assert record.version_id == s3.head_object(Bucket=QUARANTINE, Key=key)["VersionId"]
        assert record.reported == ({"FINANCIAL_INFORMATION": 1} if key in cards else {}), key
    assert (stats.records, stats.matched, stats.bad_lines, stats.bad_files) == (58, 58, 0, 0)
    [results_file] = s3.list_objects_v2(Bucket=RESULTS, Prefix=prefix)["Contents"]
    head = s3.head_object(Bucket=RESULTS, Key=results_file["Key"])
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)
    assert findings[0]["classificationDetails"]["detailedResultsLocation"] == f"s3://{RESULTS}/{results_file['Key']}"

    # Without an export configuration Macie answers with an empty body, and the reader finds no location.
    assert macie_results.results_location(routed_macie_client(make_macie(s3), calls)) is None


def test_a_job_says_complete_only_once_its_results_are_written(env, monkeypatch):
    """Macie reports COMPLETE after the analysis: a DescribeClassificationJob while the job's objects
    are being analysed sees RUNNING (else a workflow would evaluate results that are not there yet)."""
    s3, key_arn = env
    put(s3, "a.csv", CARD)
    put(s3, "b.csv", CARD)
    macie = make_macie(s3, key_arn, running_polls=0)
    job_id = macie.call("CreateClassificationJob", job_request())["jobId"]
    seen = []
    analyse = macie._classify_object

    def observed(*args, **kwargs):
        seen.append(finish(macie, job_id)["jobStatus"])  # a concurrent poll, from inside the analysis
        return analyse(*args, **kwargs)

    monkeypatch.setattr(macie, "_classify_object", observed)
    assert finish(macie, job_id)["jobStatus"] == "COMPLETE"
    assert seen == ["RUNNING", "RUNNING"] and len(result_records(s3)) == 2
