"""Ask a human to review the objects Macie could not clear (a `.waitForTaskToken` task, see docs/CONTRACTS.md
and docs/batching.md, "Reviews (per object)").

Stores the task token under ``review#`` + sha256(review id) (the id itself is never stored nor logged)
and publishes the review link to the SNS topic. review_api resumes the workflow with SendTaskSuccess.

Two payloads:

* a batch (``{"taskToken", "batchId", "chunkCount", "executionArn"}``, optionally ``"stateEnteredTime":
  "$$.State.EnteredTime"`` so that the review closes before the task times out even after retries of
  this function): the objects held for review are
  the ``routed/<chunk>`` lines whose outcome is REVIEW_PENDING; they are written to
  ``batches/<batch id>/review.jsonl`` and the reviewer decides object by object (review_api);
* the earlier, single-scan payload (``{"taskToken", "scanId", "executionArn", "objects"}``), still
  sent by executions started before an upgrade: the objects travel in the item, one decision for all.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from pipeline_common.batches import dumps_line, read_chunk
from pipeline_common.clients import ClientCache, client_config
from pipeline_common.constants import TABLE_PARTITION_KEY, TABLE_TTL_ATTRIBUTE
from pipeline_common.contract import REVIEW_OBJECTS, ROUTED, RequestReviewEnvironment, batch_key
from pipeline_common.errors import InvalidInputError, PipelineError
from pipeline_common.log import get_logger
from pipeline_common.state_table import iso_utc as _iso
from pipeline_common.state_table import review_pk
from pipeline_common.transient import as_pipeline_error as _aws_error
from pipeline_common.transient import error_code
from review_message import (
    batch_message_body,
    fit_for_storage,
    message_body,
    object_summary,
    review_link,
    review_objects,
    subject,
)

logger = get_logger("request_review")

STATUS_PENDING = "PENDING"
PUT_ATTEMPTS = 3
#: The routed outcome of an object held in the review bucket until a reviewer decides.
REVIEW_PENDING = "REVIEW_PENDING"
#: A batch id is the execution's name (docs/batching.md): it becomes part of item keys and S3 keys.
BATCH_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
MAX_CHUNKS = 100_000
CHUNK_READERS = 8
#: A batch review closes this long before the workflow's own timeout would (the task's clock starts
#: before this function runs), so that no decision is recorded after Apply decisions has read them.
DEADLINE_MARGIN_SECONDS = 60
#: Per-object decisions outlive the review by this long: Apply decisions reads them after the review.
DECISION_RETENTION_SECONDS = 7 * 24 * 3600


class NothingToReview(PipelineError):
    """No object of the batch is held for review (each REVIEW object failed to route, for instance):
    there is nothing to wait for. The workflow catches this error name and goes on without a review."""

_CLIENTS = ClientCache(client_config(read_timeout=20))


def _base_url(env: RequestReviewEnvironment) -> str:
    url = env.review_api_url.strip()
    if not url.startswith(("https://", "http://")):
        raise InvalidInputError("REVIEW_API_URL must be an http(s) URL")
    return url


def _parse_event(event: Any) -> tuple[str, str, str, list]:
    if not isinstance(event, Mapping):
        raise InvalidInputError("the event must be an object with taskToken, scanId, executionArn and objects")
    problems = [
        f"{name} must be a non-empty string"
        for name in ("taskToken", "scanId", "executionArn")
        if not isinstance(event.get(name), str) or not event.get(name)
    ]
    if not isinstance(event.get("objects"), list):
        problems.append("objects must be a list")
    if problems:
        raise InvalidInputError("; ".join(problems))
    return event["taskToken"], event["scanId"], event["executionArn"], event["objects"]


def _store(table: Any, item: dict) -> str:
    """Store ``item`` under a new random review id (never overwriting another review); returns the id."""
    attempt = 1
    while True:
        review_id = secrets.token_urlsafe(32)
        item[TABLE_PARTITION_KEY] = review_pk(review_id)
        try:
            table.put_item(
                Item=item,
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": TABLE_PARTITION_KEY},
            )
            return review_id
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException" and attempt < PUT_ATTEMPTS:
                attempt += 1
                continue  # an id collision: practically impossible, but never overwrite another review
            raise _aws_error("DynamoDB PutItem of the review", error) from None
        except BotoCoreError as error:
            raise _aws_error("DynamoDB PutItem of the review", error) from None


def run(event: Any, *, dynamodb: Any, sns: Any, env: RequestReviewEnvironment, s3: Any = None) -> dict:
    """Store the task token under a new review id (``dynamodb`` resource) and publish the review link (``sns``);
    a batch's held objects are read from and written to the batch bucket (``s3``)."""
    base_url = _base_url(env)
    if isinstance(event, Mapping) and "batchId" in event:
        return _run_batch(event, base_url, dynamodb=dynamodb, sns=sns, s3=s3, env=env)
    task_token, scan_id, execution_arn, objects = _parse_event(event)
    selected = review_objects(objects)
    if not selected:
        raise InvalidInputError("no object has the REVIEW verdict, so there is nothing to review")
    stored, omitted = fit_for_storage(selected)

    now = time.time()
    expires_at = int(now) + env.review_timeout_seconds
    review_id = _store(
        dynamodb.Table(env.state_table),
        {
            "taskToken": task_token,
            "scanId": scan_id,
            "executionArn": execution_arn,
            "objects": stored,
            "omittedObjects": omitted,
            "status": STATUS_PENDING,
            "createdAt": _iso(now),
            TABLE_TTL_ATTRIBUTE: expires_at,
        },
    )

    deadline = _iso(expires_at)
    body = message_body(
        selected,
        link=review_link(base_url, review_id),
        deadline=deadline,
        scan_id=scan_id,
    )
    _publish(sns, env.topic_arn, subject(len(selected)), body)

    logger.info(
        "Review requested",
        extra={"scanId": scan_id, "objectCount": len(selected), "storedObjects": len(stored), "expiresAt": deadline},
    )
    return {"reviewRequested": True, "objectCount": len(selected)}


def _publish(sns: Any, topic_arn: str, title: str, body: str) -> None:
    try:
        sns.publish(
            TopicArn=topic_arn,
            Subject=title,
            Message=body,
            MessageAttributes={"event": {"DataType": "String", "StringValue": "REVIEW_REQUESTED"}},
        )
    except (ClientError, BotoCoreError) as error:
        # The stored review expires through its TTL; a retry creates a fresh one.
        raise _aws_error("SNS Publish of the review request", error) from None


# ---------------------------------------------------------------------------------------- batches
def _parse_batch_event(event: Mapping[str, Any]) -> tuple[str, str, int, str]:
    problems = [
        f"{name} must be a non-empty string"
        for name in ("taskToken", "batchId", "executionArn")
        if not isinstance(event.get(name), str) or not event.get(name)
    ]
    batch_id, chunk_count = event.get("batchId"), event.get("chunkCount")
    if isinstance(batch_id, str) and batch_id and not BATCH_ID_PATTERN.fullmatch(batch_id):
        problems.append("batchId must be 1 to 80 letters, digits, '-' or '_'")
    if not isinstance(chunk_count, int) or isinstance(chunk_count, bool) or not 1 <= chunk_count <= MAX_CHUNKS:
        problems.append(f"chunkCount must be an integer from 1 to {MAX_CHUNKS}")
    if problems:
        raise InvalidInputError("; ".join(problems))
    return event["taskToken"], batch_id, chunk_count, event["executionArn"]


def held_objects(s3: Any, bucket: str, batch_id: str, chunk_count: int) -> list[dict]:
    """The routed lines whose outcome is REVIEW_PENDING, in batch order (a missing chunk file has none)."""

    def held(chunk: int) -> list[dict]:
        lines = read_chunk(s3, bucket, batch_id, ROUTED, chunk) or []
        return [line for line in lines if line.get("outcome") == REVIEW_PENDING and isinstance(line.get("i"), int)]

    with ThreadPoolExecutor(max_workers=min(CHUNK_READERS, chunk_count)) as pool:
        return [line for lines in pool.map(held, range(chunk_count)) for line in lines]


def _write_objects(s3: Any, bucket: str, key: str, lines: list[dict]) -> None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"".join(dumps_line(line) for line in lines), ContentType="application/x-ndjson")
    except (ClientError, BotoCoreError) as error:
        raise _aws_error(f"S3 PutObject of {key}", error) from None


def _batch_deadline(now: float, timeout: int, entered: Any) -> int:
    """When the review closes: the approval timeout less a margin, counted from when the workflow
    started waiting (``stateEnteredTime``, optional, ``$$.State.EnteredTime``) or else from now."""
    start = now
    if isinstance(entered, str):
        try:
            start = min(now, datetime.fromisoformat(entered.replace("Z", "+00:00")).timestamp())
        except ValueError:
            raise InvalidInputError("stateEnteredTime must be an ISO 8601 time") from None
    return int(start) + max(timeout - DEADLINE_MARGIN_SECONDS, (timeout + 1) // 2)


def _run_batch(event: Mapping[str, Any], base_url: str, *, dynamodb: Any, sns: Any, s3: Any, env: RequestReviewEnvironment) -> dict:
    """One review for a whole batch: review.jsonl, one review item, one message."""
    task_token, batch_id, chunk_count, execution_arn = _parse_batch_event(event)
    now = time.time()
    expires_at = _batch_deadline(now, env.review_timeout_seconds, event.get("stateEnteredTime"))
    held = held_objects(s3, env.batch_bucket, batch_id, chunk_count)
    if not held:
        raise NothingToReview(f"no object of batch {batch_id} is held for review (outcome {REVIEW_PENDING})")
    objects_key = batch_key(batch_id, REVIEW_OBJECTS)
    _write_objects(s3, env.batch_bucket, objects_key, held)

    review_id = _store(
        dynamodb.Table(env.state_table),
        {
            "taskToken": task_token,
            "batchId": batch_id,
            "scanId": batch_id,
            "executionArn": execution_arn,
            "count": len(held),
            "objectsKey": objects_key,
            "decidedCount": 0,
            "approvedCount": 0,
            "status": STATUS_PENDING,
            "createdAt": _iso(now),
            "decisionsExpireAt": expires_at + DECISION_RETENTION_SECONDS,
            TABLE_TTL_ATTRIBUTE: expires_at,
        },
    )
    deadline = _iso(expires_at)
    summaries = [object_summary(line) for line in held]
    body = batch_message_body(summaries, link=review_link(base_url, review_id), deadline=deadline, batch_id=batch_id)
    _publish(sns, env.topic_arn, subject(len(held)), body)
    logger.info("Review requested", extra={"batchId": batch_id, "objectCount": len(held), "expiresAt": deadline})
    return {"reviewRequested": True, "batchId": batch_id, "objectCount": len(held)}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: Any) -> dict:
    env = RequestReviewEnvironment.from_environment(os.environ)
    return run(event, dynamodb=_CLIENTS.resource("dynamodb"), sns=_CLIENTS.client("sns"), env=env, s3=_CLIENTS.client("s3"))
