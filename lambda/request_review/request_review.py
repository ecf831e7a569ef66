"""Ask a human to review the objects Macie could not clear (a `.waitForTaskToken` task, see docs/CONTRACTS.md).

Stores the task token under ``review#`` + sha256(review id) (the id itself is never stored nor logged)
and publishes the review link to the SNS topic. review_api resumes the workflow with SendTaskSuccess.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any, Mapping

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline_common.constants import TABLE_PARTITION_KEY, TABLE_TTL_ATTRIBUTE
from pipeline_common.errors import InvalidInputError
from pipeline_common.log import get_logger
from pipeline_common.state_table import iso_utc as _iso, review_pk
from pipeline_common.transient import as_pipeline_error as _aws_error, error_code

from review_message import fit_for_storage, message_body, review_link, review_objects, subject

logger = get_logger("request_review")

STATUS_PENDING = "PENDING"
DEFAULT_TIMEOUT_SECONDS = 86_400
PUT_ATTEMPTS = 3

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)
_RESOURCES: dict[str, Any] = {}


def _table(name: str) -> Any:
    if "dynamodb" not in _RESOURCES:
        _RESOURCES["dynamodb"] = boto3.resource("dynamodb", config=_CONFIG)
    return _RESOURCES["dynamodb"].Table(name)


def _sns() -> Any:
    if "sns" not in _RESOURCES:
        _RESOURCES["sns"] = boto3.client("sns", config=_CONFIG)
    return _RESOURCES["sns"]


def _settings(env: Mapping[str, str]) -> tuple[str, str, str, int]:
    missing = [name for name in ("STATE_TABLE", "TOPIC_ARN", "REVIEW_API_URL") if not env.get(name)]
    if missing:
        raise InvalidInputError("missing configuration: " + ", ".join(missing))
    url = env["REVIEW_API_URL"].strip()
    if not url.startswith(("https://", "http://")):
        raise InvalidInputError("REVIEW_API_URL must be an http(s) URL")
    raw_timeout = env.get("REVIEW_TIMEOUT_SECONDS") or str(DEFAULT_TIMEOUT_SECONDS)
    try:
        timeout = int(raw_timeout)
    except ValueError:
        raise InvalidInputError(f"REVIEW_TIMEOUT_SECONDS must be a whole number of seconds, got {raw_timeout!r}") from None
    if timeout <= 0:
        raise InvalidInputError("REVIEW_TIMEOUT_SECONDS must be positive")
    return env["STATE_TABLE"], env["TOPIC_ARN"], url, timeout


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


def request_review(event: Any, *, env: Mapping[str, str], table: Any = None, sns: Any = None) -> dict:
    table_name, topic_arn, base_url, timeout = _settings(env)
    task_token, scan_id, execution_arn, objects = _parse_event(event)
    selected = review_objects(objects)
    if not selected:
        raise InvalidInputError("no object has the REVIEW verdict, so there is nothing to review")
    stored, omitted = fit_for_storage(selected)
    table = table if table is not None else _table(table_name)
    sns = sns if sns is not None else _sns()

    now = time.time()
    expires_at = int(now) + timeout
    item = {
        "taskToken": task_token,
        "scanId": scan_id,
        "executionArn": execution_arn,
        "objects": stored,
        "omittedObjects": omitted,
        "status": STATUS_PENDING,
        "createdAt": _iso(now),
        TABLE_TTL_ATTRIBUTE: expires_at,
    }
    for attempt in range(1, PUT_ATTEMPTS + 1):
        review_id = secrets.token_urlsafe(32)
        item[TABLE_PARTITION_KEY] = review_pk(review_id)
        try:
            table.put_item(Item=item, ConditionExpression="attribute_not_exists(#pk)", ExpressionAttributeNames={"#pk": TABLE_PARTITION_KEY})
            break
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException" and attempt < PUT_ATTEMPTS:
                continue  # an id collision: practically impossible, but never overwrite another review
            raise _aws_error("DynamoDB PutItem of the review", error) from None
        except BotoCoreError as error:
            raise _aws_error("DynamoDB PutItem of the review", error) from None

    deadline = _iso(expires_at)
    body = message_body(
        selected,
        link=review_link(base_url, review_id),
        deadline=deadline,
        scan_id=scan_id,
    )
    try:
        sns.publish(
            TopicArn=topic_arn,
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
    return request_review(event, env=os.environ)
