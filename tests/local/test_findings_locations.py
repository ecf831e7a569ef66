"""Issue 12, end to end in the local engine: where the findings are reaches the reviewer (review.jsonl
and the review page) and the result events, and no sensitive value of the scanned file appears
anywhere the pipeline writes for people: review.jsonl, the page's HTML, the result events, the
notifications or the handlers' logs."""

from __future__ import annotations

import json

import pytest

from macie_pipeline.local.engine import LocalPipeline
from macie_pipeline.local.template import choose_pipeline, synth_sample

#: Card numbers (valid check digits) and a secret key, the values that must never be shown.
CARDS = ("4539 1488 0343 6467", "4539148803436467", "5555-5555-5555-4444", "5555555555554444", "378282246310005")
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PAYMENTS = ("name,card_no\nAlex Doe,4539 1488 0343 6467\nSam Roe,5555-5555-5555-4444\nKim Poe,378282246310005\n").encode()
KEYS = json.dumps({"deploy": {"aws_secret_access_key": SECRET}}).encode()
NOTES = f"meeting notes\n\nthe visa card {CARDS[0]} was charged twice\n".encode()
VALUES = (*CARDS, SECRET, "4539 1488", "6467")


@pytest.fixture(scope="module")
def sample():
    return choose_pipeline([synth_sample()], None, None)


def test_locations_reach_the_reviewer_and_no_value_appears_anywhere(sample):
    stack, state_machine = sample
    logs: list[str] = []
    pages: list[str] = []
    review_files: list[str] = []
    with LocalPipeline(stack, state_machine, review_wait_seconds=30, echo_logs=logs.append) as engine:

        def keep_review_file(result):
            bucket = engine.deployment.batch_bucket
            listed = engine._s3.list_objects_v2(Bucket=bucket, Prefix="batches/").get("Contents", [])
            for item in listed:
                if item["Key"].endswith("/review.jsonl"):
                    review_files.append(engine._s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode())
            return result

        respond = engine.server.respond

        def keep_page(*args):  # every response of the review API, as the browser gets it
            status, headers, data = respond(*args)
            pages.append(data.decode("utf-8", "replace"))
            return status, headers, data

        engine.after_invoke("request_review", keep_review_file)
        engine.server.respond = keep_page
        result = engine.run({"payments.csv": PAYMENTS, "keys.json": KEYS, "notes.txt": NOTES}, decision="approve")
        assert engine.invariant_violations(stored=result.stored) == []

    assert {o.key: o.outcome for o in result.objects} == {"payments.csv": "APPROVED", "keys.json": "APPROVED",
                                                          "notes.txt": "APPROVED"}
    [review_file] = review_files
    held = {line["source"]["key"]: line for line in map(json.loads, review_file.splitlines())}
    cards = held["payments.csv"]["findings"]["locations"]["CREDIT_CARD_NUMBER"]
    assert cards == [{"row": r, "column": 2, "columnName": "card_no"} for r in (2, 3, 4)]
    assert held["notes.txt"]["findings"]["locations"]["CREDIT_CARD_NUMBER"] == [{"lines": [3, 3]}]
    [secret_type] = held["keys.json"]["findings"]["locations"]
    assert held["keys.json"]["findings"]["locations"][secret_type] == [
        {"recordIndex": 0, "jsonPath": "$.deploy.aws_secret_access_key"}]
    page = next(p for p in pages if "payments.csv" in p)
    assert "CREDIT_CARD_NUMBER: 3 at column card_no (rows 2, 3, 4)" in page
    assert "CREDIT_CARD_NUMBER: 1 at line 3" in page and "at JSON path $.deploy.aws_secret_access_key" in page
    events = [e["detail"] for e in result.events]
    approved = [d for d in events if d["outcome"] == "APPROVED"]
    assert {d["object"]["key"] for d in approved} == {"payments.csv", "keys.json", "notes.txt"}
    assert all(d["findings"]["locations"] for d in approved)

    everything = {"review.jsonl": review_file, "page HTML": "\n".join(pages), "result events": json.dumps(events),
                  "notifications": json.dumps(result.notifications), "logs": "\n".join(logs)}
    assert logs and pages and events and result.notifications
    for where, text in everything.items():
        for value in VALUES:
            assert value not in text, f"{value!r} appears in the {where}"
