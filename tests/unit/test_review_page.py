"""Pure parts of review_api: escaping, the form, decision parsing, reviewer identity, response headers."""

from __future__ import annotations

import base64
import re
import secrets

import pytest

from review_page import (
    PAGE_SIZE,
    BatchForm,
    FormError,
    Tally,
    display_object,
    page_number,
    pager,
    parse_batch_form,
    parse_decision,
    render_batch_decided,
    render_batch_recorded,
    render_batch_review,
    render_decided,
    render_review,
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


def test_the_forms_carry_the_csrf_field_and_say_who_is_signed_in() -> None:
    html = render_review({"objects": [], "scanId": "s"}, csrf="ab" * 32, signed_in_as="<a@example.com>")
    assert '<input type="hidden" name="csrf" value="' + "ab" * 32 + '">' in html
    assert "Signed in as <strong>&lt;a@example.com&gt;</strong>" in html
    assert 'name="csrf"' not in render_review({"objects": [], "scanId": "s"})


def test_review_id_must_look_like_a_token() -> None:
    token = secrets.token_urlsafe(32)
    assert review_id_from({"pathParameters": {"reviewId": token}}) == token
    for bad in ["", "short", "../../etc/passwd", token + "%2F", "a" * 129, None, 42]:
        assert review_id_from({"pathParameters": {"reviewId": bad}}) is None
    assert review_id_from({"pathParameters": None}) is None


# ---------------------------------------------------------------------------------- batch reviews
BATCH_ITEM = {"pk": "review#abc", "taskToken": "SECRET-TOKEN", "batchId": "b-1", "expiresAt": 1893456000, "count": 1000}


def held(i: int, key: str | None = None) -> dict:
    """A review.jsonl line (a routed line held for review), reduced to what the page reads and more."""
    return {
        "i": i,
        "source": {"bucket": "ingress", "key": key or f"lake/raw/part-{i:05d}.parquet", "versionId": "v", "size": 3 * 1024 * 1024},
        "findings": {"count": 4, "types": {"CREDIT_CARD_NUMBER": 3, "EMAIL_ADDRESS": 1}, "maxSeverity": "HIGH", "tagValue": "x"},
        "reasons": ["4 HIGH-severity Macie finding(s)"],
        "verdict": "REVIEW",
        "outcome": "REVIEW_PENDING",
    }


def batch_page(lines: list[dict], page: int, decisions: dict | None = None, tally: Tally | None = None) -> str:
    objects = [display_object(line) for line in lines[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
    return render_batch_review(BATCH_ITEM, objects, decisions or {}, page=page, tally=tally or Tally(len(lines), 0, 0))


def test_a_review_of_1000_objects_is_shown_100_per_page_with_a_pager() -> None:
    lines = [held(i) for i in range(1000)]

    pages = {page: batch_page(lines, page) for page in (1, 5, 10)}

    for page, html in pages.items():
        assert len(re.findall(r"<tr><td>", html)) == 100
        first = (page - 1) * 100
        assert re.findall(r'name="o(\d+)" value="approve"', html) == [str(i) for i in range(first, first + 100)]
        assert f"Page {page} of 10: objects {first + 1} to {first + 100}." in html
        assert html.count("<nav") == 2  # above and below the table
    assert re.findall(r'href="\?page=(\d+)"', pages[1].split("</nav>")[0]) == ["2", "3", "4", "10", "2"]
    assert re.findall(r'href="\?page=(\d+)"', pages[5].split("</nav>")[0]) == ["4", "1", "2", "3", "4", "6", "7", "8", "10", "6"]
    assert "<strong>5</strong>" in pages[5] and 'rel="next"' not in pages[10] and 'rel="prev"' in pages[10]
    assert "3.0 MiB" in pages[1] and "<li>CREDIT_CARD_NUMBER: 3</li>" in pages[1] and "<li>EMAIL_ADDRESS: 1</li>" in pages[1]
    assert "1000 object(s) need a decision. Decided so far: 0 (0 approved, 0 denied); undecided: 1000." in pages[1]
    assert all("SECRET-TOKEN" not in html and "review#abc" not in html for html in pages.values())
    # The page's size does not grow with the review: page 1 of 1,000 objects is as long as page 1 of 100.
    assert abs(len(pages[1]) - len(batch_page(lines[:100], 1))) < 1000  # the two pagers


def test_the_pager_of_a_long_review_links_the_ends_and_the_neighbourhood() -> None:
    assert pager(1, 1) == ""
    html = pager(50, 100)
    assert re.findall(r'href="\?page=(\d+)"', html) == ["49", "1", "47", "48", "49", "51", "52", "53", "100", "51"]
    assert html.count("\u2026") == 2 and "Page 50 of 100:" in html


def test_batch_page_escapes_and_cuts_hostile_keys_and_shows_decided_objects_without_a_choice() -> None:
    key = "dir/" + HOSTILE + "\x1b\n" + "x" * 500 + ".csv"
    line = held(7, key)
    line["findings"]["types"] = {"Custom" + HOSTILE: 2}
    line["findings"]["maxSeverity"] = "HIGH" + HOSTILE
    line["reasons"] = ["reason " + HOSTILE]
    decided = {8: {"decision": "DENY", "reviewer": "<b>eve</b>", "decidedAt": "2030-01-01T00:00:00Z"}}
    item_lines = [line, held(8)]

    html = render_batch_review(
        {**BATCH_ITEM, "batchId": "b" + HOSTILE}, [display_object(x) for x in item_lines], decided, page=1, tally=Tally(2, 1, 0)
    )

    tags = set(re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", html))
    assert tags <= {"html", "head", "meta", "title", "style", "body", "h1", "p", "code", "strong", "table", "thead", "tbody",
                    "tr", "th", "td", "ul", "li", "form", "button", "label", "input", "nav", "a", "span"}
    escaped = "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;"
    assert html.count(escaped) == 6  # key shown, key in the title, reason, detection type, severity, batch id
    (shown,) = re.findall(r'<code title="([^"]*)">([^<]*)</code>', html)[:1]
    assert shown[0].endswith("x" * 500 + ".csv") and "?" in shown[0]  # the whole key (control characters as ?)
    assert shown[1].endswith("\u2026") and len(shown[1]) < 200  # the row shows its beginning
    assert '<input type="radio" name="o7" value="approve">' in html and '<input type="radio" name="o7" value="deny">' in html
    assert 'name="o8"' not in html and "<strong>Denied</strong> by &lt;b&gt;eve&lt;/b&gt;" in html
    assert re.findall(r"<form[^>]*>", html) == ['<form method="post" action="">']
    assert re.findall(r'<button type="submit" name="(\w+)" value="(\w+)">', html) == [
        ("action", "save"), ("action", "finish"), ("decision", "approve"), ("decision", "deny")
    ]
    assert "SECRET-TOKEN" not in html


def test_finished_batch_pages_give_the_counts() -> None:
    item = {"batchId": "b-1", "count": 10, "decidedCount": 4, "approvedCount": 3, "reviewer": "<i>al</i>", "decidedAt": "2030-01-01T00:00:00Z"}
    decided = render_batch_decided(item)
    assert "already finished by &lt;i&gt;al&lt;/i&gt; at 2030-01-01T00:00:00Z: 3 object(s) approved, 1 denied, 6 undecided" in decided
    recorded = render_batch_recorded(Tally(10, 4, 3), "al", "2030-01-01T00:00:00Z")
    assert "<title>Decision recorded</title>" in recorded and "You approved 3 and denied 1 object(s) of this review; 6 undecided" in recorded


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("o0=approve&o12=Deny&o3=&action=save", BatchForm("save", {0: "APPROVE", 12: "DENY"})),
        ("action=finish", BatchForm("finish")),
        ("decision=approve", BatchForm("approve-all")),
        ("o4=approve&decision=deny", BatchForm("deny-all", {4: "APPROVE"})),
        ("o5=deny&o5=deny&action=approve-all&csrf=x&o=approve&o01=approve", BatchForm("approve-all", {5: "DENY"})),
    ],
)
def test_parse_batch_form(body, expected) -> None:
    assert parse_batch_form(form(body)) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("o1=approve", "exactly one of decision"),
        ("action=save&action=finish", "exactly one of decision"),
        ("action=later", "save, finish"),
        ("o1=yes&action=save", "approve or deny"),
        ("o1=approve&o1=deny&action=save", "more than one decision"),
        ("&".join(f"o{i}=approve" for i in range(300)) + "&action=save", "cannot be parsed"),
    ],
)
def test_parse_batch_form_rejects_anything_else(body, message) -> None:
    with pytest.raises(FormError, match=message):
        parse_batch_form(form(body))


def test_a_full_page_of_choices_fits_the_form() -> None:
    body = "&".join(f"o{100000 + i}=approve" for i in range(PAGE_SIZE)) + "&action=save"
    assert len(parse_batch_form(form(body, b64=True)).choices) == PAGE_SIZE


@pytest.mark.parametrize(
    ("query", "page"),
    [(None, 1), ({}, 1), ({"page": "3"}, 3), ({"page": "0"}, 1), ({"page": "-2"}, 1), ({"page": "x"}, 1), ({"page": "\u0663"}, 1),
     ({"page": "9" * 7}, 1)],
)
def test_page_number(query, page) -> None:
    assert page_number({"queryStringParameters": query}) == page


# ------------------------------------------------------------------------------ where the findings are
def located_line(i: int) -> dict:
    """A held object with 10 located occurrences of each of two types (the evaluator's cap)."""
    line = held(i)
    line["findings"] = {
        "count": 2, "maxSeverity": "HIGH", "tagValue": "x",
        "types": {"CREDIT_CARD_NUMBER": 40, "EMAIL_ADDRESS": 3, "US_SOCIAL_SECURITY_NUMBER": 2},
        "locations": {
            "CREDIT_CARD_NUMBER": [{"row": r, "column": 2, "columnName": "card<no>"} for r in range(2, 12)],
            "EMAIL_ADDRESS": [{"recordIndex": 0, "jsonPath": "$.people[0].mail"}, {"lines": [7, 8]}, {"page": 3}],
            "US_SOCIAL_SECURITY_NUMBER": [{"cellReference": "Staff!B2", "row": 2, "column": 2}, {"row": 4, "column": 5}],
            "NOT_A_TYPE_OF_THIS_OBJECT": [{"page": 1}],
        },
    }
    return line


def test_the_page_shows_where_each_type_was_found_compactly_and_escaped() -> None:
    """Issue 12: per object and type, the columns (and rows), JSON paths, line ranges and pages, in a
    few words; a column name from the file is escaped; more occurrences than located ends with …."""
    html = batch_page([located_line(0)], 1)
    assert "<li>CREDIT_CARD_NUMBER: 40 at column card&lt;no&gt; (rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), \u2026</li>" in html
    assert "<li>EMAIL_ADDRESS: 3 at JSON path $.people[0].mail; lines 7\u20138; page 3</li>" in html
    assert "<li>US_SOCIAL_SECURITY_NUMBER: 2 at cell Staff!B2; column 5 (row 4)</li>" in html
    assert "card<no>" not in html and "NOT_A_TYPE_OF_THIS_OBJECT" not in html


def test_a_page_of_100_located_objects_stays_small() -> None:
    lines = [located_line(i) for i in range(300)]
    html = batch_page(lines, 2)
    assert len(re.findall(r"<tr><td>", html)) == 100 and html.count("at column card&lt;no&gt;") == 100
    assert len(html) < 150_000  # about 1.2 KB per object


def test_the_per_object_page_shows_locations_when_the_summary_has_them() -> None:
    objects = [{"key": "a.csv", "size": 3, "findingCount": 1, "findingTypes": {"EMAIL_ADDRESS": 1},
                "findingLocations": {"EMAIL_ADDRESS": [{"lines": [4, 4]}]}, "reasons": []}]
    html = render_review({"objects": objects, "expiresAt": 0})
    assert "<li>EMAIL_ADDRESS: 1 at line 4</li>" in html
