"""Ask a human to review the objects Macie could not clear (a `.waitForTaskToken` task, see docs/CONTRACTS.md).

Stores the task token under ``review#`` + sha256(review id) (the id itself is never stored nor logged)
and publishes the review link to the SNS topic. review_api resumes the workflow with SendTaskSuccess.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from pipeline_common.clients import ClientCache, client_config
from pipeline_common.constants import TABLE_PARTITION_KEY, TABLE_TTL_ATTRIBUTE
from pipeline_common.contract import RequestReviewEnvironment
from pipeline_common.errors import InvalidInputError
from pipeline_common.log import get_logger
from pipeline_common.state_table import iso_utc as _iso
from pipeline_common.state_table import review_pk
from pipeline_common.transient import as_pipeline_error as _aws_error
from pipeline_common.transient import error_code
from review_message import fit_for_storage, message_body, review_link, review_objects, subject

logger = get_logger("request_review")

STATUS_PENDING = "PENDING"
PUT_ATTEMPTS = 3

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


def run(event: Any, *, dynamodb: Any, sns: Any, env: RequestReviewEnvironment) -> dict:
    """Store the task token under a new review id (``dynamodb`` resource) and publish the review link (``sns``)."""
    base_url = _base_url(env)
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
    try:
        sns.publish(
            TopicArn=env.topic_arn,
            Subject=subject(len(selected)),
            Message=body,
            MessageAttributes={"event": {"DataType": "String", "StringValue": "REVIEW_REQUESTED"}},
        )
    except (ClientError, BotoCoreError) as error:
        # The stored review expires through its TTL; a retry creates a fresh one.
        raise _aws_error("SNS Publish of the review request", error) from None

    logger.info(
        "Review requested",
        extra={"scanId": scan_id, "objectCount": len(selected), "storedObjects": len(stored), "expiresAt": deadline},
    )
    return {"reviewRequested": True, "objectCount": len(selected)}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: Any) -> dict:
    env = RequestReviewEnvironment.from_environment(os.environ)
    return run(event, dynamodb=_CLIENTS.resource("dynamodb"), sns=_CLIENTS.client("sns"), env=env)
