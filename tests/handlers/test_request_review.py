"""request_review against moto DynamoDB, SNS and an SQS queue subscribed to the topic."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from typing import Iterator

import boto3
import pytest
from botocore.stub import Stubber

import request_review
from pipeline_common.clients import ClientCache
from pipeline_common.contract import InvalidEnvironment, RequestReviewEnvironment
from pipeline_common.errors import InvalidInputError, TransientError
from support.lambda_helpers import FakeContext, captured_logs

REGION = "us-east-1"
BATCH_BUCKET = "pipeline-batches"
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAfake-task-token-" + "x" * 200


@pytest.fixture
def review_api_url() -> str:
    return "https://abc123.execute-api.us-east-1.amazonaws.com/prod/"


@pytest.fixture
def aws(review_backend: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The review backend plus the batch bucket (moto S3)."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BATCH_BUCKET)
    monkeypatch.setenv("BATCH_BUCKET", BATCH_BUCKET)
    monkeypatch.setattr(request_review, "_CLIENTS", ClientCache(request_review._CLIENTS.config))
    return {**review_backend, "s3": s3}


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    with captured_logs(request_review) as stream:
        yield stream


def evaluated(key: str, verdict: str, types: dict[str, int] | None = None, severity: str | None = None) -> dict:
    return {
        "source": {"bucket": "ingress", "key": key, "versionId": "v1", "etag": "e1", "size": 2048},
        "staged": {"bucket": "quarantine", "key": f"scan-1/{key}", "versionId": "v2", "etag": "e1", "size": 2048},
        "integrity": {"status": "VALID", "format": "csv", "reason": "", "rows": 10, "checksum": "ABSENT"},
        "verdict": verdict,
        "reasons": ["1 HIGH-severity Macie finding(s); the finding policy requires review"] if verdict == "REVIEW" else [],
        "analysis": "COMPLETE",
        "findings": {"count": 1 if types else 0, "types": types or {}, "maxSeverity": severity},
    }


def review_event(objects: list[dict]) -> dict:
    return {
        "taskToken": TOKEN,
        "scanId": "scan-1",
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:pipeline:scan-1",
        "objects": objects,
    }


def received(aws: dict) -> list[dict]:
    messages = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.mark.parametrize("base_url", ["https://abc123.execute-api.us-east-1.amazonaws.com/prod/", "https://abc123.execute-api.us-east-1.amazonaws.com/prod"])
def test_stores_a_hashed_review_and_publishes_the_link(aws, logs, monkeypatch, base_url) -> None:
    monkeypatch.setenv("REVIEW_API_URL", base_url)
    objects = [
        evaluated("reports/<script>alert(1)</script>.csv", "REVIEW", {"CREDIT_CARD_NUMBER": 3, "EmployeeId": 2}, "HIGH"),
        evaluated("clean.csv", "CLEAN"),
        evaluated("partial.pdf", "REVIEW"),
    ]
    before = time.time()

    result = request_review.handler(review_event(objects), FakeContext())

    assert result == {"reviewRequested": True, "objectCount": 2}
    (envelope,) = received(aws)
    assert envelope["Subject"] == "Macie pipeline: review needed for 2 object(s)"
    assert envelope["MessageAttributes"]["event"] == {"Type": "String", "Value": "REVIEW_REQUESTED"}
    body = envelope["Message"]
    links = re.findall(r"https://\S+", body)
    assert len(links) == 1
    match = re.fullmatch(r"https://abc123\.execute-api\.us-east-1\.amazonaws\.com/prod/reviews/([A-Za-z0-9_-]{43})", links[0])
    assert match, links[0]
    review_id = match.group(1)
    assert "reports/<script>alert(1)</script>.csv" in body and "CREDIT_CARD_NUMBER x3" in body and "EmployeeId x2" in body
    assert "clean.csv" not in body

    items = aws["table"].scan()["Items"]
    assert len(items) == 1
    item = items[0]
    assert item["pk"] == "review#" + hashlib.sha256(review_id.encode()).hexdigest()
    assert review_id not in json.dumps(item, default=str)
    assert (item["taskToken"], item["scanId"], item["status"]) == (TOKEN, "scan-1", "PENDING")
    assert item["executionArn"].endswith(":execution:pipeline:scan-1")
    assert before + 3600 - 1 <= int(item["expiresAt"]) <= time.time() + 3600
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(item["expiresAt"])))
    assert f"Decide before {deadline}." in body
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["createdAt"])
    assert [o["key"] for o in item["objects"]] == ["reports/<script>alert(1)</script>.csv", "partial.pdf"]
    assert item["objects"][0] == {
        "key": "reports/<script>alert(1)</script>.csv",
        "size": 2048,
        "reasons": ["1 HIGH-severity Macie finding(s); the finding policy requires review"],
        "findingCount": 1,
        "findingTypes": {"CREDIT_CARD_NUMBER": 3, "EmployeeId": 2},
        "maxSeverity": "HIGH",
    }

    logged = logs.getvalue()
    assert "Review requested" in logged
    assert review_id not in logged and TOKEN not in logged and "fake-task-token" not in logged


def test_nothing_to_review_is_an_input_error_and_changes_nothing(aws) -> None:
    with pytest.raises(InvalidInputError, match="no object has the REVIEW verdict"):
        request_review.handler(review_event([evaluated("a.csv", "CLEAN"), evaluated("b.csv", "DENY")]), FakeContext())
    with pytest.raises(InvalidInputError, match="taskToken must be a non-empty string"):
        request_review.handler({**review_event([evaluated("a.csv", "REVIEW")]), "taskToken": ""}, FakeContext())
    assert aws["table"].scan()["Items"] == [] and received(aws) == []


def test_throttled_publish_is_transient(aws) -> None:
    sns = boto3.client("sns", region_name=REGION)
    with Stubber(sns) as stubber:
        stubber.add_client_error("publish", "Throttled", "Rate exceeded", 400)
        with pytest.raises(TransientError, match="SNS Publish of the review request failed with Throttled"):
            request_review.run(review_event([evaluated("a.csv", "REVIEW")]), dynamodb=boto3.resource("dynamodb", region_name=REGION),
                               sns=sns, env=RequestReviewEnvironment.from_environment(os.environ))
        stubber.assert_no_pending_responses()


def test_a_missing_or_bad_variable_fails_each_invocation_and_changes_nothing(aws, monkeypatch) -> None:
    """A deployment error, named by the contract, surfaces when the handler runs."""
    monkeypatch.delenv("TOPIC_ARN")
    monkeypatch.setenv("REVIEW_TIMEOUT_SECONDS", "0")
    with pytest.raises(InvalidEnvironment, match="TOPIC_ARN must be set; REVIEW_TIMEOUT_SECONDS must be at least 1"):
        request_review.handler(review_event([evaluated("a.csv", "REVIEW")]), FakeContext())
    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:review-requests")
    monkeypatch.setenv("REVIEW_TIMEOUT_SECONDS", "3600")
    monkeypatch.setenv("REVIEW_API_URL", "ftp://reviews.example.com/")
    with pytest.raises(InvalidInputError, match="REVIEW_API_URL must be an http"):
        request_review.handler(review_event([evaluated("a.csv", "REVIEW")]), FakeContext())
    assert aws["table"].scan()["Items"] == [] and received(aws) == []
