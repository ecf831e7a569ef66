"""Pure parts of review_api: escaping, the form, decision parsing, reviewer identity, response headers."""

from __future__ import annotations

import base64
import re
import secrets

import pytest

from review_page import (
    FormError,
    parse_decision,
    render_decided,
    render_review,
    request_identity,
    respond,
    review_id_from,
)

HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


def form(body: str | None, *, b64: bool = False, content_type: str | None = "application/x-www-form-urlencoded") -> dict:
    headers = {"Content-Type": content_type} if content_type else {}
    if b64 and body is not None:
        body = base64.b64encode(body.encode()).decode()
    return {"httpMethod": "POST", "headers": headers, "body": body, "isBase64Encoded": b64}


def test_review_page_escapes_every_value_and_offers_both_decisions() -> None:
    item = {
        "pk": "review#abc",
        "taskToken": "SECRET-TOKEN",
        "scanId": "scan" + HOSTILE,
        "expiresAt": 1893456000,
        "omittedObjects": 3,
        "objects": [
            {
                "key": "dir/" + HOSTILE + ".csv",
                "size": 1024,
                "reasons": ["reason " + HOSTILE],
                "findingCount": 2,
                "findingTypes": {"Custom" + HOSTILE: 2, "CREDIT_CARD_NUMBER": 3},
                "maxSeverity": "HIGH" + HOSTILE,
            }
        ],
    }

    html = render_review(item)

    assert html.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    tags = set(re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", html))
    assert tags <= {"html", "head", "meta", "title", "style", "body", "h1", "p", "code", "strong", "table", "thead",
                    "tbody", "tr", "th", "td", "ul", "li", "form", "button"}
    escaped = "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;"
    assert html.count(escaped) == 5  # key, reason, detection type, severity, scan id
    assert "<li>CREDIT_CARD_NUMBER: 3</li>" in html and "1024 bytes" in html
    assert "2030-01-01 00:00:00 UTC" in html and "3 more object(s)" in html and "4 object(s) need a decision" in html
    assert re.findall(r"<form[^>]*>", html) == ['<form method="post" action="">']
    assert re.findall(r'<button[^>]*name="decision"[^>]*value="(\w+)"', html) == ["approve", "deny"]
    assert "SECRET-TOKEN" not in html and "review#abc" not in html


def test_decided_page_names_the_escaped_reviewer() -> None:
    html = render_decided({"decision": "DENY", "reviewer": "<b>eve</b>", "decidedAt": "2030-01-01T00:00:00Z"})
    assert "already denied by &lt;b&gt;eve&lt;/b&gt; at 2030-01-01T00:00:00Z" in html and "<b>" not in html


def test_responses_carry_the_security_headers() -> None:
    response = respond(404, "<p>x</p>", {"Allow": "GET, POST"})
    assert response == {
        "statusCode": 404,
        "headers": {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
            "Allow": "GET, POST",
        },
        "body": "<p>x</p>",
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (form("decision=approve"), "APPROVE"),
        (form("decision=deny", b64=True), "DENY"),
        (form("decision=Approve+", content_type="application/x-www-form-urlencoded; charset=UTF-8"), "APPROVE"),
        (form("decision=deny", content_type=None), "DENY"),
    ],
)
def test_parse_decision_accepts_the_form(event, expected) -> None:
    assert parse_decision(event) == expected


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (form("decision=maybe"), "approve or deny"),
        (form("decision=approve&decision=deny"), "exactly one decision"),
        (form("DECISION=approve"), "exactly one decision"),
        (form(""), "exactly one decision"),
        (form(None), "exactly one decision"),
        (form('{"decision":"approve"}', content_type="application/json"), "x-www-form-urlencoded"),
        ({**form("decision=approve"), "body": "%%%not base64", "isBase64Encoded": True}, "not valid base64"),
        (form("decision=approve&pad=" + "x" * 5000), "too large"),
        ({**form(None), "body": base64.b64encode(b"decision=\xff\xfe").decode(), "isBase64Encoded": True}, "cannot be parsed"),
    ],
)
def test_parse_decision_rejects_anything_else(event, message) -> None:
    with pytest.raises(FormError, match=message):
        parse_decision(event)


def identity_event(*, claims=None, user_arn=None, source_ip="192.0.2.7", headers=None) -> dict:
    return {
        "headers": headers or {},
        "requestContext": {
            "identity": {"sourceIp": source_ip, "userArn": user_arn, "caller": None, "cognitoIdentityId": None},
            "authorizer": {"claims": claims} if claims is not None else None,
        },
    }


def test_reviewer_identity_comes_from_api_gateway_not_from_the_client() -> None:
    spoof = {"X-Reviewer": "ceo@example.com", "user-agent": "UA/1.0"}
    event = identity_event(claims={"email": "a@example.com", "sub": "s-1"}, user_arn="arn:x", headers=spoof)
    assert request_identity(event).reviewer == "a@example.com"
    assert request_identity(identity_event(claims={"sub": "s-1"}, user_arn="arn:x")).reviewer == "s-1"
    assert request_identity(identity_event(user_arn="arn:aws:iam::123456789012:user/bob")).reviewer == "arn:aws:iam::123456789012:user/bob"
    anonymous = request_identity(identity_event(headers=spoof))
    assert (anonymous.reviewer, anonymous.source_ip, anonymous.user_agent) == ("anonymous@192.0.2.7", "192.0.2.7", "UA/1.0")
    assert request_identity({}).reviewer == "anonymous@unknown"


def test_review_id_must_look_like_a_token() -> None:
    token = secrets.token_urlsafe(32)
    assert review_id_from({"pathParameters": {"reviewId": token}}) == token
    for bad in ["", "short", "../../etc/passwd", token + "%2F", "a" * 129, None, 42]:
        assert review_id_from({"pathParameters": {"reviewId": bad}}) is None
    assert review_id_from({"pathParameters": None}) is None
