"""The reviewer's web page (API Gateway REST proxy integration, see docs/CONTRACTS.md).

``GET /reviews/{reviewId}`` shows the objects awaiting a decision and changes nothing.
``POST /reviews/{reviewId}`` with ``decision=approve|deny`` records the decision once (a conditional
UpdateItem) and resumes the workflow with SendTaskSuccess. The review id and the task token never
appear in a page or a log line; logs carry a short fingerprint of the id's hash instead.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any, Callable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from pipeline_common.clients import ClientCache, client_config
from pipeline_common.constants import REVIEW_PREFIX, TABLE_PARTITION_KEY, TABLE_TTL_ATTRIBUTE
from pipeline_common.contract import ReviewApiEnvironment
from pipeline_common.log import get_logger
from pipeline_common.state_table import iso_utc as _iso_now
from pipeline_common.state_table import review_pk
from pipeline_common.transient import error_code, is_transient
from review_page import (
    FormError,
    parse_decision,
    render_decided,
    render_notice,
    render_recorded,
    render_review,
    request_identity,
    respond,
    review_id_from,
)

logger = get_logger("review_api")

STATUS_PENDING, STATUS_DECIDED, STATUS_EXPIRED = "PENDING", "DECIDED", "EXPIRED"
# SendTaskSuccess errors meaning the workflow no longer waits for this token.
TOKEN_GONE_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
_DECISION_FIELDS = ("decision", "decidedAt", "reviewer", "reviewerSourceIp", "userAgent", "decisionRequestId")

# A reviewer waits for the page: fail fast and let them try again.
_CLIENTS = ClientCache(client_config(read_timeout=10, connect_timeout=3, max_attempts=3))


class _Unavailable(Exception):
    """A dependency failed transiently: answer 503 so the reviewer can try again."""


def _is_expired(item: Mapping[str, Any], now: float) -> bool:
    try:
        expires_at = int(item.get(TABLE_TTL_ATTRIBUTE))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True
    return expires_at <= now


def _not_found() -> dict:
    return respond(404, render_notice("Review not found", "This review link is not valid. Check that you copied the whole link."))


def _gone() -> dict:
    return respond(
        410,
        render_notice(
            "Review expired",
            "This review is closed: its deadline passed or the pipeline stopped waiting. The objects stay quarantined.",
        ),
    )


def _unavailable() -> dict:
    return respond(
        503,
        render_notice("Try again", "The decision could not be recorded right now. Nothing was changed; please try again."),
        {"Retry-After": "5"},
    )


class ReviewApi:
    def __init__(self, table: Any, sfn: Any, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.sfn = sfn
        self.clock = clock

    # ------------------------------------------------------------------------------------ storage
    def _get(self, pk: str) -> dict | None:
        try:
            response = self.table.get_item(Key={TABLE_PARTITION_KEY: pk}, ConsistentRead=True)
        except (ClientError, BotoCoreError) as error:
            if is_transient(error):
                raise _Unavailable(error_code(error)) from None
            raise
        return response.get("Item")

    def _update(self, pk: str, **kwargs: Any) -> bool:
        """A conditional UpdateItem; False when the condition failed."""
        try:
            self.table.update_item(Key={TABLE_PARTITION_KEY: pk}, **kwargs)
            return True
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            if is_transient(error):
                raise _Unavailable(error_code(error)) from None
            raise
        except BotoCoreError as error:
            raise _Unavailable(error_code(error)) from None

    # ----------------------------------------------------------------------------------- requests
    def handle(self, event: Mapping[str, Any], request_id: str) -> dict:
        method = str(event.get("httpMethod") or "").upper()
        if method not in ("GET", "POST"):
            return respond(
                405, render_notice("Method not allowed", "Use the review link in a web browser."), {"Allow": "GET, POST"}
            )
        review_id = review_id_from(event)
        if review_id is None:
            return _not_found()
        pk = review_pk(review_id)
        ref = pk[len(REVIEW_PREFIX) :][:12]  # a fingerprint for the logs; the id cannot be derived from it
        try:
            item = self._get(pk)
            if item is None:
                logger.info("Unknown review", extra={"reviewRef": ref, "method": method})
                return _not_found()
            if method == "GET":
                return self._show(item, ref)
            return self._decide(event, item, pk, ref, request_id)
        except _Unavailable as error:
            logger.warning("A dependency is unavailable", extra={"reviewRef": ref, "errorCode": str(error)})
            return _unavailable()

    def _show(self, item: Mapping[str, Any], ref: str) -> dict:
        if item.get("status") == STATUS_DECIDED:
            return respond(409, render_decided(item))
        if item.get("status") != STATUS_PENDING or _is_expired(item, self.clock()):
            return _gone()
        logger.info("Review page shown", extra={"reviewRef": ref})
        return respond(200, render_review(item))

    def _decide(self, event: Mapping[str, Any], item: Mapping[str, Any], pk: str, ref: str, request_id: str) -> dict:
        now = self.clock()
        if item.get("status") == STATUS_DECIDED:
            return respond(409, render_decided(item))
        if item.get("status") != STATUS_PENDING or _is_expired(item, now):
            return _gone()
        try:
            decision = parse_decision(event)
        except FormError as error:
            return respond(400, render_notice("Invalid decision", str(error)))
        identity = request_identity(event)
        decided_at = _iso_now(now)

        names = {"#s": "status", "#exp": TABLE_TTL_ATTRIBUTE, **{f"#{n}": n for n in _DECISION_FIELDS}}
        recorded = self._update(
            pk,
            UpdateExpression="SET #s = :decided, " + ", ".join(f"#{n} = :{n}" for n in _DECISION_FIELDS),
            ConditionExpression="#s = :pending AND #exp > :now",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                ":decided": STATUS_DECIDED,
                ":pending": STATUS_PENDING,
                ":now": int(now),
                ":decision": decision,
                ":decidedAt": decided_at,
                ":reviewer": identity.reviewer,
                ":reviewerSourceIp": identity.source_ip,
                ":userAgent": identity.user_agent,
                ":decisionRequestId": request_id,
            },
        )
        if not recorded:
            return self._after_conflict(pk, ref)

        output = json.dumps({"decision": decision, "reviewer": identity.reviewer, "decidedAt": decided_at})
        try:
            self.sfn.send_task_success(taskToken=item["taskToken"], output=output)
        except (ClientError, BotoCoreError) as error:
            return self._after_send_failure(error, pk, ref, request_id)

        logger.info(
            "Review decided",
            extra={"reviewRef": ref, "decision": decision, "reviewer": identity.reviewer, "scanId": item.get("scanId")},
        )
        return respond(200, render_recorded(decision, identity.reviewer, decided_at))

    def _after_conflict(self, pk: str, ref: str) -> dict:
        """The conditional update failed: somebody decided first, or the review expired meanwhile."""
        current = self._get(pk)
        if current is None:
            return _not_found()
        if current.get("status") == STATUS_DECIDED:
            logger.info("Review was already decided", extra={"reviewRef": ref})
            return respond(409, render_decided(current))
        if current.get("status") != STATUS_PENDING or _is_expired(current, self.clock()):
            return _gone()
        return _unavailable()  # a concurrent attempt was rolled back: the reviewer may try again

    def _after_send_failure(self, error: BaseException, pk: str, ref: str, request_id: str) -> dict:
        code = error_code(error)
        mine = {":decided": STATUS_DECIDED, ":rid": request_id}
        condition = "#s = :decided AND #decisionRequestId = :rid"
        if code in TOKEN_GONE_ERRORS:
            logger.warning("The workflow no longer waits for this review", extra={"reviewRef": ref, "errorCode": code})
            self._update(
                pk,
                UpdateExpression="SET #s = :expired",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status", "#decisionRequestId": "decisionRequestId"},
                ExpressionAttributeValues={**mine, ":expired": STATUS_EXPIRED},
            )
            return _gone()
        # Undo the decision so that it can be made again, unless another request owns it meanwhile.
        rolled_back = self._update(
            pk,
            UpdateExpression="SET #s = :pending REMOVE " + ", ".join(f"#{n}" for n in _DECISION_FIELDS),
            ConditionExpression=condition,
            ExpressionAttributeNames={"#s": "status", **{f"#{n}": n for n in _DECISION_FIELDS}},
            ExpressionAttributeValues={**mine, ":pending": STATUS_PENDING},
        )
        logger.error(
            "SendTaskSuccess failed; the decision was rolled back",
            extra={"reviewRef": ref, "errorCode": code, "rolledBack": rolled_back, "transient": is_transient(error)},
        )
        if is_transient(error):
            return _unavailable()
        return respond(
            500, render_notice("Error", "The decision could not be passed to the pipeline. Nothing was changed; contact the operators.")
        )


def run(event: Any, *, dynamodb: Any, sfn: Any, env: ReviewApiEnvironment, request_id: str) -> dict:
    """Answer one API Gateway request with the review items of ``env.state_table`` (``dynamodb`` resource)
    and Step Functions (``sfn``); ``request_id`` is recorded with a decision."""
    api = ReviewApi(dynamodb.Table(env.state_table), sfn)
    return api.handle(event if isinstance(event, Mapping) else {}, request_id)


@logger.inject_lambda_context(log_event=False)  # the event holds the review id: never log it
def handler(event: dict, context: Any) -> dict:
    request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    try:
        env = ReviewApiEnvironment.from_environment(os.environ)
        return run(
            event, dynamodb=_CLIENTS.resource("dynamodb"), sfn=_CLIENTS.client("stepfunctions"), env=env, request_id=request_id
        )
    except Exception as error:  # never show a stack trace or internals to the browser
        logger.exception("Unexpected failure", extra={"errorCode": error_code(error)})
        return respond(500, render_notice("Error", "Something went wrong. Nothing was changed; please try again later."))
