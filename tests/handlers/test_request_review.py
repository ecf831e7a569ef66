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


# ---------------------------------------------------------------------------------------- batches
BATCH = "b-20300101T000000-0123456789abcdef"
EXECUTION = f"arn:aws:states:us-east-1:123456789012:execution:pipeline:{BATCH}"
HOSTILE_KEY = "finance/\x1b[31m<script>alert(1)</script>\n" + "k" * 400 + ".csv"


def routed_line(i: int, outcome: str) -> dict:
    """A routed/<chunk> line (docs/batching.md): verdict line + outcome and location."""
    key = HOSTILE_KEY if i == 0 else f"data/part-{i:05d}.csv"
    held = outcome == "REVIEW_PENDING"
    severity = ("HIGH", "MEDIUM", "LOW", None)[i % 4] if held else None
    types = {"CREDIT_CARD_NUMBER": i % 7 + 1} if severity else {}
    return {
        "i": i,
        "source": {"bucket": "ingress", "key": key, "versionId": f"v{i}", "etag": "e", "size": 1000 + i, "lastModified": "2030-01-01T00:00:00Z"},
        "staged": {"bucket": "quarantine", "key": f"scans/{BATCH}/{key}", "versionId": f"s{i}", "etag": "e", "size": 1000 + i},
        "error": None,
        "integrity": {"status": "VALID", "format": "csv", "reason": "", "checksum": "ABSENT"},
        "verdict": "REVIEW" if held else "CLEAN",
        "findings": {"count": sum(types.values()), "types": types, "maxSeverity": severity, "tagValue": ""},
        "reasons": ["the finding policy requires review"] if held else [],
        "outcome": outcome,
        "location": {"bucket": "review", "key": f"{BATCH}/{key}", "versionId": f"r{i}"} if held else {"bucket": "vault", "key": key, "versionId": f"w{i}"},
    }


def write_routed(s3, chunks: list[list[dict]]) -> None:
    for number, lines in enumerate(chunks):
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        s3.put_object(Bucket=BATCH_BUCKET, Key=f"batches/{BATCH}/routed/{number:06d}.jsonl", Body=body)


def batch_event(chunk_count: int = 3, **changes) -> dict:
    return {"taskToken": TOKEN, "batchId": BATCH, "chunkCount": chunk_count, "executionArn": EXECUTION, **changes}


def three_chunks_with_250_held() -> list[list[dict]]:
    """300 objects in 3 chunks of 100; every sixth is CLEAN (in the vault), the other 250 are held."""
    lines = [routed_line(i, "VAULT" if i % 6 == 5 else "REVIEW_PENDING") for i in range(300)]
    return [lines[0:100], lines[100:200], lines[200:300]]


def test_a_batch_review_lists_the_held_objects_of_every_chunk_and_sends_one_message(aws, logs) -> None:
    chunks = three_chunks_with_250_held()
    write_routed(aws["s3"], chunks)
    before = time.time()

    result = request_review.handler(batch_event(), FakeContext())

    held = [line for chunk in chunks for line in chunk if line["outcome"] == "REVIEW_PENDING"]
    assert len(held) == 250
    assert result == {"reviewRequested": True, "batchId": BATCH, "objectCount": 250}
    stored = aws["s3"].get_object(Bucket=BATCH_BUCKET, Key=f"batches/{BATCH}/review.jsonl")["Body"].read().decode()
    assert [json.loads(line) for line in stored.splitlines()] == held  # whole routed lines, in batch order

    (item,) = aws["table"].scan()["Items"]
    assert (item["taskToken"], item["batchId"], item["scanId"], item["executionArn"]) == (TOKEN, BATCH, BATCH, EXECUTION)
    assert (item["count"], item["objectsKey"], item["status"]) == (250, f"batches/{BATCH}/review.jsonl", "PENDING")
    assert (item["decidedCount"], item["approvedCount"]) == (0, 0)
    assert "objects" not in item  # the objects live in the batch bucket, not in the item
    # The review closes a minute before the workflow's own timeout; decisions outlive it by a week.
    assert before + 3600 - 61 <= int(item["expiresAt"]) <= time.time() + 3600 - 60
    assert int(item["decisionsExpireAt"]) == int(item["expiresAt"]) + 7 * 24 * 3600

    (envelope,) = received(aws)
    assert envelope["Subject"] == "Macie pipeline: review needed for 250 object(s)"
    body = envelope["Message"]
    (link,) = re.findall(r"https://\S+", body)
    review_id = link.rsplit("/", 1)[1]
    assert item["pk"] == "review#" + hashlib.sha256(review_id.encode()).hexdigest()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", review_id) and review_id not in json.dumps(item, default=str)
    assert f"250 object(s) from batch {BATCH} need a human review" in body
    assert "Highest finding severity per object: HIGH 75, MEDIUM 50, LOW 75, none 50." in body
    assert "Objects (the first 20 of 250):" in body and "... and 230 more object(s): the review page lists every one." in body
    numbered = re.findall(r"^(\d+)\. ", body, flags=re.MULTILINE)
    assert numbered == [str(n) for n in range(1, 21)]
    assert f"Decide before {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(int(item['expiresAt'])))}." in body
    assert "denied and kept in quarantine" in body
    first = body.split("\n1. ", 1)[1].split("\n", 1)[0]
    assert first.startswith("finance/?[31m<script>alert(1)</script>?kkk") and first.count("k") < 300  # printable, cut
    assert "(1000 bytes; highest finding severity: HIGH)" in first
    assert "2. data/part-00001.csv (1001 bytes; highest finding severity: MEDIUM)" in body
    assert "Findings: CREDIT_CARD_NUMBER x2" in body
    assert "data/part-00005.csv" not in body  # a CLEAN object is not part of the review

    logged = logs.getvalue()
    assert "Review requested" in logged and review_id not in logged and "fake-task-token" not in logged


def test_a_missing_chunk_file_holds_no_object_and_nothing_held_is_its_own_error(aws) -> None:
    write_routed(aws["s3"], [[routed_line(0, "VAULT"), routed_line(1, "QUARANTINED")]])  # chunks 1 and 2: no file

    with pytest.raises(request_review.NothingToReview, match=f"no object of batch {BATCH} is held for review"):
        request_review.handler(batch_event(), FakeContext())

    assert aws["table"].scan()["Items"] == [] and received(aws) == []
    listed = aws["s3"].list_objects_v2(Bucket=BATCH_BUCKET, Prefix=f"batches/{BATCH}/review")
    assert listed["KeyCount"] == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batchId": "../../etc"}, "batchId must be 1 to 80 letters"),
        ({"batchId": ""}, "batchId must be a non-empty string"),
        ({"chunkCount": 0}, "chunkCount must be an integer from 1 to 100000"),
        ({"chunkCount": "3"}, "chunkCount must be an integer"),
        ({"chunkCount": True}, "chunkCount must be an integer"),
        ({"taskToken": None}, "taskToken must be a non-empty string"),
    ],
)
def test_a_bad_batch_payload_is_an_input_error_and_changes_nothing(aws, changes, message) -> None:
    write_routed(aws["s3"], three_chunks_with_250_held())
    with pytest.raises(InvalidInputError, match=message):
        request_review.handler(batch_event(**changes), FakeContext())
    assert aws["table"].scan()["Items"] == [] and received(aws) == []


def test_the_old_payload_still_works_beside_batches(aws) -> None:
    """Executions started before an upgrade send the objects themselves: one decision for all, as before."""
    result = request_review.handler(review_event([evaluated("a.csv", "REVIEW")]), FakeContext())
    assert result == {"reviewRequested": True, "objectCount": 1}
    (item,) = aws["table"].scan()["Items"]
    assert "batchId" not in item and [o["key"] for o in item["objects"]] == ["a.csv"]


def test_the_deadline_counts_from_when_the_workflow_started_waiting(aws) -> None:
    write_routed(aws["s3"], three_chunks_with_250_held())
    entered = time.time() - 600  # retries of this function took ten minutes
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(entered)) + ".250Z"

    request_review.handler(batch_event(stateEnteredTime=stamp), FakeContext())

    (item,) = aws["table"].scan()["Items"]
    assert int(item["expiresAt"]) == int(entered) + 3600 - 60
    with pytest.raises(InvalidInputError, match="stateEnteredTime must be an ISO 8601 time"):
        request_review.handler(batch_event(stateEnteredTime="yesterday"), FakeContext())


def test_object_summary_keeps_the_locations_of_its_types_only_when_there_are_some() -> None:
    """Issue 12: what a reviewer is shown of an object includes where each listed type was found,
    bounded; a summary without locations (the per-object workflow) is as before."""
    from review_message import object_summary

    line = {"source": {"key": "a.csv", "size": 9}, "reasons": [],
            "findings": {"count": 1, "types": {"EMAIL_ADDRESS": 12}, "maxSeverity": "LOW",
                         "locations": {"EMAIL_ADDRESS": [{"lines": [n, n]} for n in range(1, 13)], "OTHER": [{"page": 1}]}}}
    summary = object_summary(line)
    assert summary["findingLocations"] == {"EMAIL_ADDRESS": [{"lines": [n, n]} for n in range(1, 11)]}
    del line["findings"]["locations"]
    assert "findingLocations" not in object_summary(line)
