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
import urllib.parse
import urllib.request
from typing import Any, Iterator

import boto3
import pytest
from botocore.stub import ANY, Stubber

import request_review
import review_api
import reviewer_identity
from pipeline_common.clients import ClientCache
from support.cognito import Pool, moto_jwks
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
    # Reviewers: a pool in moto's Cognito; the verifier gets moto's key set instead of the HTTPS fetch.
    pool = Pool(boto3.client("cognito-idp", region_name=REGION))
    for name, value in pool.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setattr(review_api, "FETCH_JWKS", lambda url: moto_jwks())
    SESSIONS.clear()
    with Stubber(sfn) as stubber:
        yield {**review_backend, "s3": s3, "stubber": stubber, "sent": sent, "pool": pool}
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


#: The ID token of each reviewer signed in during a test (by email), issued by moto's Cognito.
SESSIONS: dict[str, str] = {}
#: The reviewer of api() when a test does not name one.
REVIEWER = "reviewer@example.com"
POOL: list[Pool] = []


@pytest.fixture(autouse=True)
def _current_pool(request: pytest.FixtureRequest) -> Iterator[None]:
    POOL.clear()
    if "aws" in request.fixturenames:
        POOL.append(request.getfixturevalue("aws")["pool"])
    yield
    POOL.clear()


def session_of(email: str) -> str:
    if email not in SESSIONS:
        SESSIONS[email] = POOL[0].id_token(email)
    return SESSIONS[email]


def api(method: str, review_id: str, body: str | None = None, *, b64: bool = False, claims: dict | None = None,
        content_type: str = "application/x-www-form-urlencoded", query: dict | None = None, as_: str | None = REVIEWER,
        token: str | None = None, csrf: str | None = "auto", headers: dict | None = None) -> dict:
    """A REST API proxy integration event, sent to the real handler: signed in as ``as_`` (a reviewer,
    with a moto-issued ID token in the session cookie; ``claims={"email": ...}`` names the reviewer too)
    or with ``token``, or not at all (``as_=None``); a POST carries the session's CSRF field unless
    ``csrf`` says otherwise."""
    if claims and claims.get("email"):
        as_ = claims["email"]
    session = token if token is not None else (session_of(as_) if as_ else None)
    if method == "POST" and body is not None and csrf is not None:
        field = reviewer_identity.csrf_token(session or "") if csrf == "auto" else csrf
        body += f"&csrf={field}"
    event_headers = {"content-type": content_type, "User-Agent": "Mozilla/5.0 (test)", "Host": "reviews.example.com"}
    if session is not None:
        event_headers["Cookie"] = f"theme=dark; review_session={session}"
    event_headers.update(headers or {})
    event = {
        "resource": "/reviews/{reviewId}",
        "path": f"/reviews/{review_id}",
        "httpMethod": method,
        "headers": event_headers,
        "pathParameters": {"reviewId": review_id},
        "queryStringParameters": query,
        "body": base64.b64encode(body.encode()).decode() if (b64 and body is not None) else body,
        "isBase64Encoded": b64,
        "requestContext": {
            "stage": "prod",
            "path": f"/prod/reviews/{review_id}",
            "requestId": "api-req",
            "identity": {
                "sourceIp": "203.0.113.9",
                "caller": None,
                "cognitoIdentityId": None,
                "userAgent": "Mozilla/5.0 (test)",
            },
        },
    }
    return review_api.handler(event, FakeContext(aws_request_id=f"req-{time.monotonic_ns()}"))


def signed(event: dict, email: str = REVIEWER) -> dict:
    """``event`` with the session cookie of reviewer ``email`` and, in its form, the CSRF field."""
    token = session_of(email)
    event["headers"]["Cookie"] = f"review_session={token}"
    event["body"] += f"&csrf={reviewer_identity.csrf_token(token)}"
    return event


def verifier(pool: Pool) -> reviewer_identity.TokenVerifier:
    env = review_api.ReviewApiEnvironment.from_environment(__import__("os").environ)
    return review_api.verifier_for(review_api.settings_of(env, pool.region), lambda url: moto_jwks())


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
    alice = aws["pool"].subs["alice@example.com"]
    assert json.loads(aws["sent"][0]["output"]) == {
        "decision": "APPROVE", "reviewer": "alice@example.com", "reviewerSub": alice, "decidedAt": item["decidedAt"]
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["decidedAt"])
    assert (item["status"], item["decision"], item["reviewer"]) == ("DECIDED", "APPROVE", "alice@example.com")
    assert (item["reviewerSourceIp"], item["userAgent"]) == ("203.0.113.9", "Mozilla/5.0 (test)")
    assert (item["reviewerSub"], item["reviewerEmail"], item["reviewerGroups"]) == (alice, "alice@example.com", ["reviewers"])
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

    api_ = review_api.ReviewApi(StaleFirstRead(aws["table"], stale), aws["stubber"].client, verifier=verifier(aws["pool"]))
    response = api_.handle(signed(event), "req-race")

    assert response["statusCode"] == status
    if status == 409:
        assert "already denied by bob@example.com" in response["body"]
    assert only_item(aws) == current and aws["sent"] == []


def test_workflow_no_longer_waiting_marks_the_review_expired(aws) -> None:
    review_id = create_review(aws)
    aws["stubber"].add_client_error(
        "send_task_success", "TaskTimedOut", "Task Timed Out", 400, expected_params={"taskToken": TOKEN, "output": ANY}
    )

    response = api("POST", review_id, "decision=deny", as_="bob@example.com")

    assert response["statusCode"] == 410
    item = only_item(aws)
    assert item["status"] == "EXPIRED" and item["reviewer"] == "bob@example.com"
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
    assert json.loads(aws["sent"][1]["output"])["reviewer"] == REVIEWER
    assert only_item(aws)["status"] == "DECIDED"


def test_bad_requests_change_nothing(aws) -> None:
    review_id = create_review(aws)
    before = items(aws)

    for response in (
        api("POST", review_id, "decision=maybe"),
        api("POST", review_id, "decision=approve&decision=deny"),
        api("POST", review_id, '{"decision": "approve"}', content_type="application/json"),
    ):
        assert response["statusCode"] == 400
    no_form = api("POST", review_id, None)  # no form, so no CSRF field either
    assert no_form["statusCode"] == 403 and "did not come from the review page" in no_form["body"]
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


# ---------------------------------------------------------------------------------------- batches
BATCH = "b-20300101T000000-fedcba9876543210"


def routed_line(i: int, key: str, outcome: str = "REVIEW_PENDING") -> dict:
    return {
        "i": i,
        "source": {"bucket": "ingress", "key": key, "versionId": f"v{i}", "etag": "e", "size": 4096, "lastModified": "2030-01-01T00:00:00Z"},
        "staged": {"bucket": "quarantine", "key": f"scans/{BATCH}/{key}", "versionId": f"s{i}", "etag": "e", "size": 4096},
        "error": None,
        "integrity": {"status": "VALID", "format": "csv", "reason": "", "checksum": "ABSENT"},
        "verdict": "REVIEW" if outcome == "REVIEW_PENDING" else "CLEAN",
        "findings": {"count": 5, "types": {"CREDIT_CARD_NUMBER": 3, "EmployeeId": 2}, "maxSeverity": "HIGH", "tagValue": "CREDIT_CARD_NUMBER"},
        "reasons": ["1 HIGH-severity Macie finding(s); the finding policy requires review"],
        "outcome": outcome,
        "location": {"bucket": "review", "key": f"{BATCH}/{key}", "versionId": f"r{i}"},
    }


def create_batch_review(aws: dict, held: int) -> str:
    """``held`` objects held for review (plus one in the vault) in chunks of 100, request_review run on them;
    returns the review id of the published link. Object 0 has a hostile key."""
    lines = [routed_line(i, EVIL_KEY if i == 0 else f"data/{i:05d}.csv") for i in range(held)]
    lines.append(routed_line(held, "clean.csv", outcome="VAULT"))
    chunks = [lines[n : n + 100] for n in range(0, len(lines), 100)]
    for number, chunk in enumerate(chunks):
        body = "".join(json.dumps(line) + "\n" for line in chunk).encode()
        aws["s3"].put_object(Bucket=BATCH_BUCKET, Key=f"batches/{BATCH}/routed/{number:06d}.jsonl", Body=body)
    event = {"taskToken": TOKEN, "batchId": BATCH, "chunkCount": len(chunks), "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:p:{BATCH}"}
    assert request_review.handler(event, FakeContext())["objectCount"] == held
    (message,) = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10)["Messages"]
    aws["sqs"].delete_message(QueueUrl=aws["queue"], ReceiptHandle=message["ReceiptHandle"])
    (link,) = re.findall(r"https://reviews\.example\.com/prod/reviews/([A-Za-z0-9_-]+)", json.loads(message["Body"])["Message"])
    return link


def review_item(aws: dict) -> dict:
    (item,) = [i for i in items(aws) if i.get("batchId") == BATCH]
    return item


def decisions(aws: dict) -> dict[int, dict]:
    prefix = f"review#{BATCH}#"
    return {int(i["pk"][len(prefix):]): i for i in items(aws) if i["pk"].startswith(prefix)}


def rows(html: str) -> list[str]:
    return re.findall(r"<tr><td>.*?</tr>", html)


def test_batch_page_lists_100_objects_per_page_with_a_choice_each_and_get_changes_nothing(aws, logs) -> None:
    review_id = create_batch_review(aws, 250)
    before = items(aws)

    first = api("GET", review_id)
    third = api("GET", review_id, query={"page": "3"})
    beyond = api("GET", review_id, query={"page": "99"})
    junk = api("GET", review_id, query={"page": "-1<script>"})

    assert [r["statusCode"] for r in (first, third, beyond, junk)] == [200] * 4
    assert first["headers"]["Content-Security-Policy"] == CSP and first["headers"]["Cache-Control"] == "no-store"
    html = first["body"]
    assert len(rows(html)) == 100 and len(rows(third["body"])) == 50 and beyond["body"] == third["body"] and junk["body"] == html
    assert re.findall(r'name="o(\d+)" value="approve"', html) == [str(i) for i in range(100)]
    assert re.findall(r'name="o(\d+)" value="deny"', third["body"]) == [str(i) for i in range(200, 250)]
    assert "Page 1 of 3: objects 1 to 100." in html and "Page 3 of 3: objects 201 to 250." in third["body"]
    assert '<a href="?page=2" rel="next">Next</a>' in html and '<a href="?page=3">3</a>' in html
    assert "250 object(s) need a decision. Decided so far: 0 (0 approved, 0 denied); undecided: 250." in html
    assert "<script" not in html and "reports/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;.csv" in html
    assert "<li>CREDIT_CARD_NUMBER: 3</li>" in html and "clean.csv" not in html
    assert '<button type="submit" name="decision" value="approve">' in html and 'value="finish"' in html
    assert "undecided when the review is finished, or at the deadline, are denied" in html
    assert review_id not in html and TOKEN not in html
    assert items(aws) == before and aws["sent"] == []  # GET writes nothing, resumes nothing
    assert review_id not in logs.getvalue()


def test_per_object_decisions_are_final_and_finish_resumes_the_workflow_exactly_once(aws, logs) -> None:
    review_id = create_batch_review(aws, 250)

    saved = api("POST", review_id, "o0=approve&o1=deny&o5=approve&o7=&action=save", claims={"email": "alice@example.com"})

    assert saved["statusCode"] == 200, saved["body"]
    assert "Saved 3 decision(s) (2 approved, 1 denied)." in saved["body"]
    assert "Decided so far: 3 (2 approved, 1 denied); undecided: 247." in saved["body"]
    recorded = decisions(aws)
    assert {i: d["decision"] for i, d in recorded.items()} == {0: "APPROVE", 1: "DENY", 5: "APPROVE"}
    one = recorded[0]
    assert one["reviewer"] == "alice@example.com" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", one["decidedAt"])
    assert int(one["expiresAt"]) == int(review_item(aws)["decisionsExpireAt"])
    assert one["reviewerSourceIp"] == "203.0.113.9" and one["decisionRequestId"].startswith("req-")
    assert 'name="o0"' not in saved["body"] and "<strong>Approved</strong> by alice@example.com" in saved["body"]
    assert aws["sent"] == []

    # A decided object cannot be changed (by anyone); the others of the form are recorded.
    changed = api("POST", review_id, "o0=deny&o150=deny&action=save", claims={"email": "mallory@example.com"}, query={"page": "2"})
    assert changed["statusCode"] == 200
    assert "Saved 1 decision(s) (0 approved, 1 denied). 1 object(s) had already been decided and keep their earlier decision." in changed["body"]
    assert "Page 2 of 3" in changed["body"]
    assert decisions(aws)[0] == one and decisions(aws)[150]["reviewer"] == "mallory@example.com"

    aws["stubber"].add_response("send_task_success", {}, {"taskToken": TOKEN, "output": ANY})
    finished = api("POST", review_id, "o2=approve&action=finish", claims={"email": "alice@example.com"})

    assert finished["statusCode"] == 200, finished["body"]
    item = review_item(aws)
    (sent,) = aws["sent"]
    assert json.loads(sent["output"]) == {
        "batchId": BATCH, "decided": 5, "approved": 3, "denied": 2, "undecided": 245,
        "reviewer": "alice@example.com", "reviewerSub": aws["pool"].subs["alice@example.com"], "decidedAt": item["decidedAt"],
    }
    assert (item["status"], item["reviewer"], item["decidedCount"], item["approvedCount"]) == ("DECIDED", "alice@example.com", 5, 3)
    assert "You approved 3 and denied 2 object(s) of this review; 245 undecided object(s) are denied" in finished["body"]

    after = items(aws)
    again = api("POST", review_id, "action=finish")
    late = api("POST", review_id, "o3=approve&action=save")
    page = api("GET", review_id)
    assert [r["statusCode"] for r in (again, late, page)] == [409, 409, 409]
    assert f"already finished by alice@example.com at {item['decidedAt']}: 3 object(s) approved, 2 denied, 245 undecided" in page["body"]
    assert items(aws) == after and len(aws["sent"]) == 1
    logged = logs.getvalue()
    assert "Review finished" in logged and review_id not in logged and TOKEN not in logged


def test_approve_all_decides_every_undecided_object_then_finishes(aws) -> None:
    review_id = create_batch_review(aws, 250)
    assert api("POST", review_id, "o10=deny&action=save")["statusCode"] == 200
    aws["stubber"].add_response("send_task_success", {}, {"taskToken": TOKEN, "output": ANY})

    response = api("POST", review_id, "o20=deny&decision=approve", as_="bob@example.com", query={"page": "1"})

    assert response["statusCode"] == 200 and "You approved 248 and denied 2 object(s)" in response["body"]
    recorded = decisions(aws)
    assert len(recorded) == 250
    assert sorted(i for i, d in recorded.items() if d["decision"] == "DENY") == [10, 20]
    assert {d["reviewer"] for i, d in recorded.items() if i != 10} == {"bob@example.com"}
    (sent,) = aws["sent"]
    output = json.loads(sent["output"])
    assert (output["decided"], output["approved"], output["denied"], output["undecided"]) == (250, 248, 2, 0)
    assert review_item(aws)["status"] == "DECIDED"


def test_deciding_the_last_undecided_object_finishes_the_review(aws) -> None:
    review_id = create_batch_review(aws, 3)
    assert "undecided: 1." in api("POST", review_id, "o0=approve&o1=deny&action=save")["body"]
    assert aws["sent"] == []
    aws["stubber"].add_response("send_task_success", {}, {"taskToken": TOKEN, "output": ANY})

    last = api("POST", review_id, "o2=approve&action=save")

    assert last["statusCode"] == 200 and "Decision recorded" in last["body"]
    assert json.loads(aws["sent"][0]["output"])["decided"] == 3 and len(aws["sent"]) == 1
    assert review_item(aws)["status"] == "DECIDED"


def test_an_expired_batch_review_is_refused_and_records_nothing(aws) -> None:
    review_id = create_batch_review(aws, 5)
    pk = review_item(aws)["pk"]
    aws["table"].update_item(Key={"pk": pk}, UpdateExpression="SET expiresAt = :t", ExpressionAttributeValues={":t": int(time.time()) - 1})
    before = items(aws)

    assert api("GET", review_id)["statusCode"] == 410
    for body in ("o0=approve&action=save", "action=finish", "decision=approve"):
        assert api("POST", review_id, body)["statusCode"] == 410
    assert items(aws) == before and decisions(aws) == {} and aws["sent"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("o999=approve&action=save", "not part of this review"),
        ("o1=maybe&action=save", "approve or deny"),
        ("o1=approve&o1=deny&action=save", "more than one decision"),
        ("o1=approve", "exactly one of decision"),
        ("decision=approve&action=finish", "exactly one of decision"),
        ("action=launch", "save, finish"),
    ],
)
def test_a_bad_batch_form_changes_nothing(aws, body, message) -> None:
    review_id = create_batch_review(aws, 5)
    before = items(aws)
    response = api("POST", review_id, body)
    assert response["statusCode"] == 400 and message in response["body"]
    assert items(aws) == before and aws["sent"] == []


def test_a_review_finished_meanwhile_refuses_the_decisions_of_a_stale_request(aws) -> None:
    """The transaction's condition on the review item: no decision lands after the review is finished."""
    review_id = create_batch_review(aws, 5)
    stale = review_item(aws)
    aws["table"].update_item(
        Key={"pk": stale["pk"]},
        UpdateExpression="SET #s = :s, reviewer = :r, decidedAt = :at",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "DECIDED", ":r": "bob@example.com", ":at": "2030-01-01T00:00:00Z"},
    )
    event = {
        "httpMethod": "POST",
        "pathParameters": {"reviewId": review_id},
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "body": "o0=approve&decision=deny",
        "requestContext": {"identity": {"sourceIp": "198.51.100.1"}},
    }
    table = StaleFirstRead(aws["table"], stale)
    table.meta, table.name = aws["table"].meta, aws["table"].name
    api_ = review_api.ReviewApi(table, aws["stubber"].client, s3=aws["s3"], bucket=BATCH_BUCKET, verifier=verifier(aws["pool"]))

    response = api_.handle(signed(event), "req-race")

    assert response["statusCode"] == 409 and "already finished by bob@example.com" in response["body"]
    assert decisions(aws) == {} and aws["sent"] == []


def test_a_transient_send_failure_keeps_the_decisions_and_a_retry_finishes(aws) -> None:
    review_id = create_batch_review(aws, 5)
    aws["stubber"].add_client_error("send_task_success", "ThrottlingException", "Rate exceeded", 400)

    failed = api("POST", review_id, "o0=deny&decision=approve")

    assert failed["statusCode"] == 503
    assert review_item(aws)["status"] == "PENDING" and len(decisions(aws)) == 5
    page = api("GET", review_id)["body"]
    assert "undecided: 0." in page and 'type="radio"' not in page
    aws["stubber"].add_response("send_task_success", {}, {"taskToken": TOKEN, "output": ANY})

    retried = api("POST", review_id, "action=finish")

    assert retried["statusCode"] == 200
    assert [json.loads(s["output"])["approved"] for s in aws["sent"]] == [4, 4]
    assert review_item(aws)["status"] == "DECIDED"


def test_a_missing_objects_file_is_an_error_page_that_changes_nothing(aws, logs) -> None:
    review_id = create_batch_review(aws, 5)
    aws["s3"].delete_object(Bucket=BATCH_BUCKET, Key=f"batches/{BATCH}/review.jsonl")
    before = items(aws)
    for response in (api("GET", review_id), api("POST", review_id, "decision=approve")):
        assert response["statusCode"] == 500 and "cannot be read" in response["body"]
    assert items(aws) == before and aws["sent"] == []
    assert "The review cannot be shown" in logs.getvalue()


class FakeStack:
    """The API Gateway part of a synthesized stack, as ReviewServer reads it: /reviews/{reviewId}, GET and POST."""

    def of_type(self, type_: str) -> dict:
        integration = {"Uri": {"Fn::Join": ["", ["arn:aws:apigateway:lambda:path/functions/", {"Fn::GetAtt": ["ReviewApiFn", "Arn"]}]]}}
        return {
            "AWS::ApiGateway::Resource": {
                "Reviews": {"Properties": {"ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]}, "PathPart": "reviews"}},
                "ReviewId": {"Properties": {"ParentId": {"Ref": "Reviews"}, "PathPart": "{reviewId}"}},
            },
            "AWS::ApiGateway::Stage": {"Stage": {"Properties": {"StageName": "prod"}}},
            "AWS::ApiGateway::Method": {
                name: {"Properties": {"ResourceId": {"Ref": "ReviewId"}, "HttpMethod": name, "Integration": integration}}
                for name in ("GET", "POST")
            },
            "AWS::Lambda::Function": {"ReviewApiFn": {}},
        }.get(type_, {})


def test_the_local_review_server_serves_batch_pages_and_decisions_through_the_handler(aws) -> None:
    from macie_pipeline.local.review_server import ReviewServer

    review_id = create_batch_review(aws, 150)
    seen: list[dict] = []

    def invoke(logical: str, event: dict) -> tuple:
        seen.append(event)
        return review_api.handler(event, FakeContext()), None, ""

    server = ReviewServer(FakeStack(), invoke)
    server.start()
    token = session_of(REVIEWER)
    signed_in = {"Cookie": f"review_session={token}"}
    csrf = "&csrf=" + reviewer_identity.csrf_token(token)
    try:
        link = server.base_url + "reviews/" + review_id
        with urllib.request.urlopen(urllib.request.Request(link + "?page=2&x=%3Cy%3E", headers=signed_in), timeout=10) as page:
            html = page.read().decode()
        assert seen[-1]["queryStringParameters"] == {"page": "2", "x": "<y>"}
        assert len(rows(html)) == 50 and "Page 2 of 2: objects 101 to 150." in html

        form = (urllib.parse.urlencode({"o120": "deny", "action": "save"}) + csrf).encode()
        request = urllib.request.Request(link + "?page=2", data=form, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded", **signed_in})
        with urllib.request.urlopen(request, timeout=10) as saved:
            assert "Saved 1 decision(s)" in saved.read().decode()

        aws["stubber"].add_response("send_task_success", {}, {"taskToken": TOKEN, "output": ANY})
        request = urllib.request.Request(link, data=("decision=approve" + csrf).encode(), method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded", **signed_in})
        with urllib.request.urlopen(request, timeout=10) as done:
            assert done.status == 200 and "You approved 149 and denied 1 object(s)" in done.read().decode()
    finally:
        server.stop()
    assert [(m, s) for m, _, s in server.requests] == [("GET", 200), ("POST", 200), ("POST", 200)]
    assert len(aws["sent"]) == 1 and json.loads(aws["sent"][0]["output"])["decided"] == 150


# ---------------------------------------------------------------------------------------- sign-in
def cookies(response: dict) -> dict[str, str]:
    """name -> the whole Set-Cookie value, from a response's multiValueHeaders."""
    return {value.split("=", 1)[0]: value for value in (response.get("multiValueHeaders") or {}).get("Set-Cookie", [])}


def callback(query: dict | None, cookie: str | None) -> dict:
    event = {
        "resource": "/signed-in", "path": "/signed-in", "httpMethod": "GET", "queryStringParameters": query,
        "headers": {"Cookie": cookie} if cookie else {},
        "requestContext": {"stage": "prod", "path": "/prod/signed-in", "identity": {"sourceIp": "203.0.113.9"}},
    }
    return review_api.handler(event, FakeContext())


def test_opening_the_link_leads_through_sign_in_with_pkce_and_back_to_the_review(aws, monkeypatch) -> None:
    review_id = create_batch_review(aws, 3)
    before = items(aws)

    first = api("GET", review_id, as_=None, query={"page": "1"})

    assert first["statusCode"] == 302 and items(aws) == before
    assert "data/00001.csv" not in first["body"] and "CREDIT_CARD" not in first["body"]  # nothing before sign-in
    location = urllib.parse.urlsplit(first["headers"]["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "login.example.com", "/oauth2/authorize")
    query = dict(urllib.parse.parse_qsl(location.query))
    assert query["response_type"] == "code" and query["client_id"] == aws["pool"].client_id
    assert query["redirect_uri"] == "https://reviews.example.com/prod/signed-in" and query["scope"] == "openid email"
    assert query["code_challenge_method"] == "S256" and len(query["state"]) >= 40
    sign_in = cookies(first)["review_sign_in"]
    assert sign_in.endswith("; Path=/prod/; Max-Age=600; Secure; HttpOnly; SameSite=Lax")
    state, verifier_, back = reviewer_identity.parse_sign_in_cookie(sign_in.split(";")[0].split("=", 1)[1])
    assert state == query["state"] and back == f"/prod/reviews/{review_id}"
    assert reviewer_identity.pkce_challenge(verifier_) == query["code_challenge"]

    exchanged: list[tuple] = []

    def token_endpoint(settings, code, verifier_sent):  # the pool's /oauth2/token, as Cognito answers it
        exchanged.append((settings.token_url, code, verifier_sent))
        return session_of("alice@example.com")

    monkeypatch.setattr(reviewer_identity, "exchange_code", token_endpoint)
    cookie = "review_sign_in=" + sign_in.split(";")[0].split("=", 1)[1]
    assert callback({"code": "c0de", "state": "forged"}, cookie)["statusCode"] == 400
    assert callback({"code": "c0de", "state": state}, None)["statusCode"] == 400
    evil_back = reviewer_identity.sign_in_cookie_value(state, verifier_, "https://evil.example/")
    assert callback({"code": "c0de", "state": state}, "review_sign_in=" + evil_back)["statusCode"] == 400
    assert exchanged == []

    done = callback({"code": "c0de", "state": state}, cookie)

    assert done["statusCode"] == 302 and done["headers"]["Location"] == f"/prod/reviews/{review_id}"
    assert exchanged == [("https://login.example.com/oauth2/token", "c0de", verifier_)]
    session = cookies(done)["review_session"]
    assert session.startswith(f"review_session={session_of('alice@example.com')}; Path=/prod/; Max-Age=")
    assert session.endswith("; Secure; HttpOnly; SameSite=Lax") and 3500 < int(session.split("Max-Age=")[1].split(";")[0]) <= 3600
    assert cookies(done)["review_sign_in"].startswith("review_sign_in=; Path=/prod/; Max-Age=0")
    page = api("GET", review_id, as_="alice@example.com")
    assert page["statusCode"] == 200 and "Signed in as <strong>alice@example.com</strong>" in page["body"]
    assert f'name="csrf" value="{reviewer_identity.csrf_token(session_of("alice@example.com"))}"' in page["body"]
    assert items(aws) == before


def other_client_token(pool: Pool, email: str) -> str:
    other = pool.idp.create_user_pool_client(UserPoolId=pool.id, ClientName="other",
                                             ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    pool.user(email)
    return pool.idp.admin_initiate_auth(UserPoolId=pool.id, ClientId=other, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                        AuthParameters={"USERNAME": email, "PASSWORD": "Correct-Horse-Battery-9"})["AuthenticationResult"]["IdToken"]


def tampered(token: str) -> str:
    """The token with its payload changed (another email, more groups) and the signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(email="ceo@example.com", **{"cognito:groups": ["reviewers", "admins"]})
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def refusal_cases(pool: Pool) -> dict[str, tuple[dict, int, str]]:
    other_pool = Pool(pool.idp, name="elsewhere")
    access = pool.idp.admin_initiate_auth(
        UserPoolId=pool.id, ClientId=pool.client_id, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": REVIEWER, "PASSWORD": "Correct-Horse-Battery-9"})["AuthenticationResult"]["AccessToken"]
    from support.cognito import mint
    return {
        "not signed in": ({"as_": None}, 401, "needs a signed-in reviewer"),
        "another pool": ({"token": other_pool.id_token("alice@example.com")}, 401, "another user pool"),
        "another client": ({"token": other_client_token(pool, "alice@example.com")}, 401, "another app client"),
        "expired": ({"token": mint(pool.claims(REVIEWER, exp=int(time.time()) - 120, iat=int(time.time()) - 3800))}, 401,
                    "expired"),
        "tampered": ({"token": tampered(session_of(REVIEWER))}, 401, "signature is not valid"),
        "unknown key": ({"token": mint(pool.claims(REVIEWER), kid="other")}, 401, "not signed by a key"),
        "access token": ({"token": access}, 401, "not valid"),
        "outside the group": ({"token": pool.id_token("eve@example.com", reviewer=False)}, 403, "not in the reviewers group"),
        "cross-site origin": ({"headers": {"Origin": "https://evil.example"}}, 403, "from another site"),
        "cross-site fetch": ({"headers": {"Sec-Fetch-Site": "cross-site"}}, 403, "from another site"),
        "same-site fetch": ({"headers": {"Sec-Fetch-Site": "same-site", "Origin": "null"}}, 403, "from another site"),
        "no csrf field": ({"csrf": None}, 403, "did not come from the review page"),
        "wrong csrf field": ({"csrf": "0" * 64}, 403, "did not come from the review page"),
    }


def test_every_refused_decision_answers_a_clear_page_and_changes_nothing(aws) -> None:
    review_id = create_batch_review(aws, 3)
    session_of(REVIEWER)
    before = items(aws)
    for case, (kwargs, status, message) in refusal_cases(aws["pool"]).items():
        for body in ("o0=approve&action=save", "decision=approve"):
            response = api("POST", review_id, body, **kwargs)
            assert (response["statusCode"], message in response["body"]) == (status, True), (case, response["body"])
            assert "Nothing was changed." in response["body"] and "<!DOCTYPE html>" in response["body"]
        assert items(aws) == before and aws["sent"] == [], case
    # The same origin, as browsers send it with the form, is accepted (Origin: null from a no-referrer page).
    same = api("POST", review_id, "o0=approve&action=save", headers={"Origin": "https://reviews.example.com",
                                                                     "Sec-Fetch-Site": "same-origin"})
    assert same["statusCode"] == 200 and decisions(aws)[0]["decision"] == "APPROVE"
    null = api("POST", review_id, "o1=deny&action=save", headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert null["statusCode"] == 200 and decisions(aws)[1]["decision"] == "DENY"


def test_a_signed_in_user_outside_the_group_sees_at_most_that_the_review_exists(aws) -> None:
    review_id = create_batch_review(aws, 3)
    outsider = aws["pool"].id_token("eve@example.com", reviewer=False)
    page = api("GET", review_id, token=outsider)
    assert page["statusCode"] == 403 and "This review exists" in page["body"]
    assert "data/00001.csv" not in page["body"] and BATCH not in page["body"] and 'name="csrf"' not in page["body"]
    expired = api("GET", review_id, token=tampered(session_of(REVIEWER)))
    assert expired["statusCode"] == 302  # an invalid session leads to sign-in again


def test_the_audit_fields_come_from_the_verified_token_only(aws) -> None:
    review_id = create_batch_review(aws, 3)
    response = api("POST", review_id, "o1=deny&action=save", as_="alice@example.com",
                   headers={"X-Reviewer": "ceo@example.com", "X-Forwarded-For": "10.0.0.1"})
    assert response["statusCode"] == 200
    item = decisions(aws)[1]
    assert {k: item[k] for k in ("decision", "reviewer", "reviewerSub", "reviewerEmail", "reviewerGroups", "reviewerSourceIp")} == {
        "decision": "DENY", "reviewer": "alice@example.com", "reviewerSub": aws["pool"].subs["alice@example.com"],
        "reviewerEmail": "alice@example.com", "reviewerGroups": ["reviewers"], "reviewerSourceIp": "203.0.113.9",
    }
    assert "approvals" not in item  # a deny is no approval
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["decidedAt"])


# ---------------------------------------------------------------------------------------- four eyes
def test_four_eyes_needs_two_different_reviewers_to_approve_and_one_deny_denies(aws, monkeypatch) -> None:
    monkeypatch.setenv("REVIEW_APPROVALS_REQUIRED", "2")
    review_id = create_batch_review(aws, 4)
    alice, bob = (aws["pool"].subs.get(e) or aws["pool"].user(e) for e in ("alice@example.com", "bob@example.com"))

    first = api("POST", review_id, "o0=approve&o1=approve&o2=deny&action=save", as_="alice@example.com")

    assert first["statusCode"] == 200, first["body"]
    assert "Saved 1 decision(s) (0 approved, 1 denied). 2 approval(s) recorded that await a second reviewer." in first["body"]
    assert "On this page 2 object(s) have one approval and wait for a second reviewer; you approved 2 of them" in first["body"]
    assert "you approved 0 of them" in api("GET", review_id, as_="bob@example.com")["body"]
    recorded = decisions(aws)
    assert "decision" not in recorded[0] and set(recorded[0]["approvals"]) == {alice}
    assert recorded[0]["approvals"][alice] == {"email": "alice@example.com", "groups": ["reviewers"], "at": ANY,
                                               "sourceIp": "203.0.113.9"}
    assert recorded[2]["decision"] == "DENY"
    assert (review_item(aws)["decidedCount"], review_item(aws)["approvedCount"]) == (1, 0)

    # The same reviewer cannot count twice: refused, nothing written.
    before = items(aws)
    again = api("POST", review_id, "o0=approve&o3=approve&action=save", as_="alice@example.com")
    assert again["statusCode"] == 409 and "already approved 1 of the objects" in again["body"] and "Nothing was changed." in again["body"]
    assert items(aws) == before
    # Approve all by the same reviewer skips what they approved and does not finish while objects await a second approval.
    bulk = api("POST", review_id, "decision=approve", as_="alice@example.com")
    assert bulk["statusCode"] == 200 and "1 approval(s) recorded that await a second reviewer" in bulk["body"]
    assert "2 object(s) you had already approved await a second reviewer" in bulk["body"] and aws["sent"] == []

    second = api("POST", review_id, "o0=approve&o1=deny&action=save", as_="bob@example.com")

    assert second["statusCode"] == 200, second["body"]
    recorded = decisions(aws)
    assert recorded[0]["decision"] == "APPROVE" and set(recorded[0]["approvals"]) == {alice, bob}
    assert (recorded[0]["reviewer"], recorded[0]["reviewerSub"]) == ("bob@example.com", bob)
    assert recorded[1]["decision"] == "DENY" and set(recorded[1]["approvals"]) == {alice}  # one deny denies
    assert (review_item(aws)["decidedCount"], review_item(aws)["approvedCount"]) == (3, 1)

    aws["stubber"].add_response("send_task_success", {}, {"taskToken": TOKEN, "output": ANY})
    last = api("POST", review_id, "o3=approve&action=save", as_="bob@example.com")  # the last undecided object: finishes

    assert last["statusCode"] == 200 and "You approved 2 and denied 2 object(s)" in last["body"]
    (sent,) = aws["sent"]
    assert json.loads(sent["output"])["reviewerSub"] == bob and json.loads(sent["output"])["undecided"] == 0


def test_four_eyes_refuses_a_single_approval_of_an_earlier_review(aws, monkeypatch) -> None:
    monkeypatch.setenv("REVIEW_APPROVALS_REQUIRED", "2")
    review_id = create_review(aws)
    before = items(aws)
    refused = api("POST", review_id, "decision=approve")
    assert refused["statusCode"] == 409 and "two reviewers" in refused["body"] and items(aws) == before


def test_unreadable_pool_keys_answer_try_again_and_change_nothing(aws, monkeypatch) -> None:
    review_id = create_batch_review(aws, 3)
    session_of(REVIEWER)
    before = items(aws)

    def unreachable(url: str) -> dict:
        raise OSError("connection timed out")

    monkeypatch.setattr(review_api, "FETCH_JWKS", unreachable)
    for response in (api("GET", review_id), api("POST", review_id, "o0=approve&action=save")):
        assert response["statusCode"] == 503 and response["headers"]["Retry-After"] == "5"
    assert items(aws) == before and aws["sent"] == []
