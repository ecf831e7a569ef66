"""The review flow at handler level: request_review stores and publishes, review_api shows and decides.

DynamoDB, SNS and SQS are moto. Step Functions is a botocore Stubber on the real model: moto's
SendTaskSuccess accepts anything and records nothing, so the Stubber is what proves the call (and
that no second call happens).
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from typing import Any, Iterator

import boto3
import pytest
from botocore.stub import ANY, Stubber

import request_review
import review_api
from pipeline_common.clients import ClientCache
from support.lambda_helpers import FakeContext, captured_logs

REGION = "us-east-1"
BATCH_BUCKET = "pipeline-batches"
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAfake-task-token-" + "t" * 300
EVIL_KEY = 'reports/<script>alert("x")</script>&.csv'
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


@pytest.fixture
def review_api_url() -> str:
    return "https://reviews.example.com/prod/"


@pytest.fixture
def aws(review_backend: dict, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """The shared review backend plus a stubbed Step Functions client that records SendTaskSuccess calls."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BATCH_BUCKET)
    monkeypatch.setenv("BATCH_BUCKET", BATCH_BUCKET)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    sent: list[dict] = []
    sfn.meta.events.register("before-parameter-build.sfn.SendTaskSuccess", lambda params, **_: sent.append(dict(params)))
    monkeypatch.setattr(request_review, "_CLIENTS", ClientCache(request_review._CLIENTS.config))
    monkeypatch.setattr(review_api, "_CLIENTS", ClientCache(review_api._CLIENTS.config, stepfunctions=sfn))
    with Stubber(sfn) as stubber:
        yield {**review_backend, "s3": s3, "stubber": stubber, "sent": sent}
        stubber.assert_no_pending_responses()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    with captured_logs(request_review, review_api) as stream:
        yield stream


def create_review(aws: dict) -> str:
    """Run request_review for two REVIEW objects and return the review id from the published link."""
    objects = [
        {
            "source": {"bucket": "ingress", "key": key, "versionId": "v1", "etag": "e", "size": 4096},
            "staged": {"bucket": "quarantine", "key": f"scan-7/{key}", "versionId": "v2", "etag": "e", "size": 4096},
            "integrity": {"status": "VALID"},
            "verdict": "REVIEW",
            "reasons": reasons,
            "analysis": "COMPLETE",
            "findings": {"count": 1, "types": types, "maxSeverity": severity},
        }
        for key, types, severity, reasons in [
            (
                EVIL_KEY,
                {"CREDIT_CARD_NUMBER": 3, "EmployeeId": 2},
                "HIGH",
                ["1 HIGH-severity Macie finding(s); the finding policy requires review"],
            ),
            ("notes.bin", {}, None, ["Macie skipped the object and did not analyse it (reason: UNSUPPORTED_FILE_TYPE)"]),
        ]
    ]
    event = {
        "taskToken": TOKEN,
        "scanId": "scan-7",
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:p:scan-7",
        "objects": objects,
    }
    assert request_review.handler(event, FakeContext()) == {"reviewRequested": True, "objectCount": 2}
    (message,) = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10)["Messages"]
    aws["sqs"].delete_message(QueueUrl=aws["queue"], ReceiptHandle=message["ReceiptHandle"])
    (link,) = re.findall(r"https://reviews\.example\.com/prod/reviews/([A-Za-z0-9_-]+)", json.loads(message["Body"])["Message"])
    return link


def api(method: str, review_id: str, body: str | None = None, *, b64: bool = False, claims: dict | None = None,
        user_arn: str | None = None, content_type: str = "application/x-www-form-urlencoded") -> dict:
    """A REST API proxy integration event, sent to the real handler."""
    event = {
        "resource": "/reviews/{reviewId}",
        "path": f"/reviews/{review_id}",
        "httpMethod": method,
        "headers": {"content-type": content_type, "User-Agent": "Mozilla/5.0 (test)", "Host": "reviews.example.com"},
        "pathParameters": {"reviewId": review_id},
        "queryStringParameters": None,
        "body": base64.b64encode(body.encode()).decode() if (b64 and body is not None) else body,
        "isBase64Encoded": b64,
        "requestContext": {
            "stage": "prod",
            "requestId": "api-req",
            "identity": {
                "sourceIp": "203.0.113.9",
                "userArn": user_arn,
                "caller": None,
                "cognitoIdentityId": None,
                "userAgent": "Mozilla/5.0 (test)",
            },
            "authorizer": {"claims": claims} if claims else None,
        },
    }
    return review_api.handler(event, FakeContext(aws_request_id=f"req-{time.monotonic_ns()}"))


def items(aws: dict) -> list[dict]:
    return sorted(aws["table"].scan(ConsistentRead=True)["Items"], key=lambda i: i["pk"])


def only_item(aws: dict) -> dict:
    (item,) = items(aws)
    return item


def test_review_flow_end_to_end(aws, logs) -> None:
    review_id = create_review(aws)
    before = items(aws)

    page = api("GET", review_id)

    assert page["statusCode"] == 200
    assert page["headers"] == {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": CSP,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    }
    html = page["body"]
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "reports/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;.csv" in html
    assert "notes.bin" in html and "<li>CREDIT_CARD_NUMBER: 3</li>" in html and "<li>EmployeeId: 2</li>" in html
    assert "HIGH" in html and "UNSUPPORTED_FILE_TYPE" in html
    deadline = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(before[0]["expiresAt"])))
    assert f"<strong>{deadline}</strong>" in html
    assert '<form method="post" action="">' in html
    assert '<button type="submit" name="decision" value="approve">' in html
    assert '<button type="submit" name="decision" value="deny">' in html
    assert review_id not in html and TOKEN not in html
    assert items(aws) == before  # a GET writes nothing

    aws["stubber"].add_response("send_task_success", {}, {"taskToken": TOKEN, "output": ANY})
    decided = api("POST", review_id, "decision=approve", b64=True, claims={"sub": "0f1e-uuid", "email": "alice@example.com"})

    assert decided["statusCode"] == 200, decided["body"]
    item = only_item(aws)
    assert json.loads(aws["sent"][0]["output"]) == {"decision": "APPROVE", "reviewer": "alice@example.com", "decidedAt": item["decidedAt"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["decidedAt"])
    assert (item["status"], item["decision"], item["reviewer"]) == ("DECIDED", "APPROVE", "alice@example.com")
    assert (item["reviewerSourceIp"], item["userAgent"]) == ("203.0.113.9", "Mozilla/5.0 (test)")
    assert "alice@example.com" in decided["body"] and TOKEN not in decided["body"]

    again = api("POST", review_id, "decision=deny", claims={"email": "mallory@example.com"})
    assert again["statusCode"] == 409
    assert f"already approved by alice@example.com at {item['decidedAt']}" in again["body"]
    assert api("GET", review_id)["statusCode"] == 409
    assert len(aws["sent"]) == 1 and only_item(aws) == item

    unknown = api("GET", "A" * 43)
    assert unknown["statusCode"] == 404 and unknown["headers"]["Content-Security-Policy"] == CSP
    assert api("GET", "../../etc/passwd")["statusCode"] == 404

    logged = logs.getvalue()
    assert "Review decided" in logged
    assert review_id not in logged and TOKEN not in logged and "fake-task-token" not in logged


def test_expired_review_is_gone_and_left_untouched(aws) -> None:
    review_id = create_review(aws)
    pk = only_item(aws)["pk"]
    aws["table"].update_item(Key={"pk": pk}, UpdateExpression="SET expiresAt = :t", ExpressionAttributeValues={":t": int(time.time()) - 1})
    before = items(aws)

    assert api("GET", review_id)["statusCode"] == 410
    gone = api("POST", review_id, "decision=approve")
    assert gone["statusCode"] == 410 and "closed" in gone["body"]
    assert items(aws) == before and aws["sent"] == []


class StaleFirstRead:
    """A table whose first GetItem returns an older snapshot: another request won the race meanwhile."""

    def __init__(self, table: Any, stale: dict) -> None:
        self.table, self.stale = table, stale

    def get_item(self, **kwargs: Any) -> dict:
        if self.stale is not None:
            stale, self.stale = self.stale, None
            return {"Item": stale}
        return self.table.get_item(**kwargs)

    def update_item(self, **kwargs: Any) -> dict:
        return self.table.update_item(**kwargs)


@pytest.mark.parametrize(("race", "status"), [("decided", 409), ("expired", 410)])
def test_a_lost_race_is_caught_by_the_condition(aws, race, status) -> None:
    review_id = create_review(aws)
    stale = only_item(aws)
    if race == "decided":
        aws["table"].update_item(
            Key={"pk": stale["pk"]},
            UpdateExpression="SET #s = :s, decision = :d, reviewer = :r, decidedAt = :at",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": "DECIDED", ":d": "DENY", ":r": "bob@example.com", ":at": "2030-01-01T00:00:00Z"},
        )
    else:
        aws["table"].update_item(
            Key={"pk": stale["pk"]}, UpdateExpression="SET expiresAt = :t", ExpressionAttributeValues={":t": int(time.time()) - 5}
        )
    current = only_item(aws)
    event = {
        "httpMethod": "POST",
        "pathParameters": {"reviewId": review_id},
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "body": "decision=approve",
        "requestContext": {"identity": {"sourceIp": "198.51.100.1"}},
    }

    response = review_api.ReviewApi(StaleFirstRead(aws["table"], stale), aws["stubber"].client).handle(event, "req-race")

    assert response["statusCode"] == status
    if status == 409:
        assert "already denied by bob@example.com" in response["body"]
    assert only_item(aws) == current and aws["sent"] == []


def test_workflow_no_longer_waiting_marks_the_review_expired(aws) -> None:
    review_id = create_review(aws)
    aws["stubber"].add_client_error(
        "send_task_success", "TaskTimedOut", "Task Timed Out", 400, expected_params={"taskToken": TOKEN, "output": ANY}
    )

    response = api("POST", review_id, "decision=deny", user_arn="arn:aws:iam::123456789012:user/bob")

    assert response["statusCode"] == 410
    item = only_item(aws)
    assert item["status"] == "EXPIRED" and item["reviewer"] == "arn:aws:iam::123456789012:user/bob"
    assert api("GET", review_id)["statusCode"] == 410


def test_transient_failure_rolls_back_so_the_reviewer_can_retry(aws) -> None:
    review_id = create_review(aws)
    pending = only_item(aws)
    aws["stubber"].add_client_error("send_task_success", "ThrottlingException", "Rate exceeded", 400)

    failed = api("POST", review_id, "decision=deny")

    assert failed["statusCode"] == 503 and failed["headers"]["Retry-After"] == "5"
    assert only_item(aws) == pending  # status PENDING again, no decision attributes left behind

    aws["stubber"].add_response("send_task_success", {}, {"taskToken": TOKEN, "output": ANY})
    retried = api("POST", review_id, "decision=deny")

    assert retried["statusCode"] == 200
    assert [json.loads(s["output"])["decision"] for s in aws["sent"]] == ["DENY", "DENY"]
    assert json.loads(aws["sent"][1]["output"])["reviewer"] == "anonymous@203.0.113.9"
    assert only_item(aws)["status"] == "DECIDED"


def test_bad_requests_change_nothing(aws) -> None:
    review_id = create_review(aws)
    before = items(aws)

    for response in (
        api("POST", review_id, "decision=maybe"),
        api("POST", review_id, "decision=approve&decision=deny"),
        api("POST", review_id, None),
        api("POST", review_id, '{"decision": "approve"}', content_type="application/json"),
    ):
        assert response["statusCode"] == 400
    not_allowed = api("DELETE", review_id)
    assert not_allowed["statusCode"] == 405 and not_allowed["headers"]["Allow"] == "GET, POST"
    assert items(aws) == before and aws["sent"] == []


def test_a_missing_table_name_is_a_plain_error_page(aws, logs, monkeypatch) -> None:
    """The environment is read on each request; a deployment error shows no internals to the browser."""
    monkeypatch.delenv("STATE_TABLE")
    page = api("GET", "r" * 43)
    assert page["statusCode"] == 500 and "STATE_TABLE" not in page["body"]
    failure = [json.loads(line) for line in logs.getvalue().splitlines() if "Unexpected failure" in line]
    assert len(failure) == 1 and failure[0]["errorCode"] == "InvalidEnvironment"
