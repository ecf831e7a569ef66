"""The reviewer's web page (API Gateway REST proxy integration, see docs/CONTRACTS.md and
docs/batching.md, "Reviews (per object)").

``GET /reviews/{reviewId}[?page=N]`` shows the objects awaiting a decision and changes nothing.

A batch review (the item has a ``batchId``): ``POST /reviews/{reviewId}[?page=N]`` with
``o<index>=approve|deny`` for objects of the page and one of ``action=save`` (record them),
``action=finish`` (record them, then finish), ``decision=approve|deny`` (record them, decide every
object still undecided the same way, then finish). Each decision is its own item, written once
(batch_review). The review finishes when asked, or when its last undecided object is decided: one
conditional UpdateItem (PENDING -> DECIDED) and one SendTaskSuccess with
``{"batchId", "decided", "approved", "denied", "undecided", "reviewer", "decidedAt"}``. Objects still
undecided then (or at the deadline) are denied by Apply decisions.

An earlier review (no ``batchId``): ``POST`` with ``decision=approve|deny`` records the one decision
once (a conditional UpdateItem) and resumes the workflow with SendTaskSuccess.

The review id and the task token never appear in a page or a log line; logs carry a short fingerprint
of the id's hash instead.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any, Callable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from batch_review import BrokenReview, DecisionWriter, Recorded, ReviewClosed, Unavailable, load_objects, read_decisions
from pipeline_common.clients import ClientCache, client_config
from pipeline_common.constants import APPROVE, DENY, REVIEW_PREFIX, TABLE_PARTITION_KEY, TABLE_TTL_ATTRIBUTE
from pipeline_common.contract import ReviewApiEnvironment
from pipeline_common.log import get_logger
from pipeline_common.state_table import iso_utc as _iso_now
from pipeline_common.state_table import review_pk
from pipeline_common.transient import error_code, is_transient
from review_page import (
    APPROVE_ALL,
    DENY_ALL,
    PAGE_SIZE,
    SAVE,
    FormError,
    Identity,
    display_object,
    page_count,
    page_number,
    parse_batch_form,
    parse_decision,
    render_batch_decided,
    render_batch_recorded,
    render_batch_review,
    render_decided,
    render_notice,
    render_recorded,
    render_review,
    request_identity,
    respond,
    review_id_from,
    tally_of,
)

logger = get_logger("review_api")

STATUS_PENDING, STATUS_DECIDED, STATUS_EXPIRED = "PENDING", "DECIDED", "EXPIRED"
# SendTaskSuccess errors meaning the workflow no longer waits for this token.
TOKEN_GONE_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
_DECISION_FIELDS = ("decision", "decidedAt", "reviewer", "reviewerSourceIp", "userAgent", "decisionRequestId")
# What finishing a batch review records on the review item (each object's decision is its own item).
_FINISH_FIELDS = ("decidedAt", "reviewer", "reviewerSourceIp", "userAgent", "decisionRequestId")

# A reviewer waits for the page: fail fast and let them try again.
_CLIENTS = ClientCache(client_config(read_timeout=10, connect_timeout=3, max_attempts=3))


_Unavailable = Unavailable  # a dependency failed transiently: answer 503 so the reviewer can try again


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


def _broken() -> dict:
    return respond(500, render_notice("Error", "The objects of this review cannot be read. Nothing was changed; contact the operators."))


def _unavailable() -> dict:
    return respond(
        503,
        render_notice("Try again", "The decision could not be recorded right now. Nothing was changed; please try again."),
        {"Retry-After": "5"},
    )


class ReviewApi:
    """``table`` is the state table (a boto3 Table resource), ``sfn`` a Step Functions client, ``s3`` an
    S3 client for the held objects of batch reviews in ``bucket`` (the batch bucket)."""

    def __init__(
        self, table: Any, sfn: Any, clock: Callable[[], float] = time.time, *, s3: Any = None, bucket: str | None = None
    ) -> None:
        self.table = table
        self.sfn = sfn
        self.clock = clock
        self.s3 = s3
        self.bucket = bucket

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
        return self._update_returning(pk, **kwargs) is not None

    def _update_returning(self, pk: str, **kwargs: Any) -> dict | None:
        """A conditional UpdateItem: the attributes it returns ({} unless asked), None when the condition failed."""
        try:
            return self.table.update_item(Key={TABLE_PARTITION_KEY: pk}, **kwargs).get("Attributes") or {}
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return None
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
            closed = self._closed(item)
            if closed is not None:
                return closed
            if method == "GET":
                return self._show(item, ref, event)
            if item.get("batchId"):
                return self._decide_batch(event, item, pk, ref, request_id)
            return self._decide(event, item, pk, ref, request_id)
        except _Unavailable as error:
            logger.warning("A dependency is unavailable", extra={"reviewRef": ref, "errorCode": str(error)})
            return _unavailable()
        except BrokenReview as error:
            logger.error("The review cannot be shown", extra={"reviewRef": ref, "reason": str(error)})
            return _broken()

    def _closed(self, item: Mapping[str, Any]) -> dict | None:
        """The answer for a review that can no longer be decided (409 decided, 410 gone), else None."""
        if item.get("status") == STATUS_DECIDED:
            return respond(409, render_batch_decided(item) if item.get("batchId") else render_decided(item))
        if item.get("status") != STATUS_PENDING or _is_expired(item, self.clock()):
            return _gone()
        return None

    def _show(self, item: Mapping[str, Any], ref: str, event: Mapping[str, Any]) -> dict:
        logger.info("Review page shown", extra={"reviewRef": ref})
        if item.get("batchId"):
            return respond(200, self._batch_page(item, page_number(event)))
        return respond(200, render_review(item))

    def _decide(self, event: Mapping[str, Any], item: Mapping[str, Any], pk: str, ref: str, request_id: str) -> dict:
        now = self.clock()
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
        closed = self._closed(current)
        if closed is not None:
            logger.info("Review was already decided or closed", extra={"reviewRef": ref, "status": closed["statusCode"]})
            return closed
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


    # ------------------------------------------------------------------------------ batch reviews
    def _batch_page(self, item: Mapping[str, Any], page: int, notice: str = "", objects: list[dict] | None = None) -> str:
        """One page of a batch review, with the recorded decisions of its objects. Reads only."""
        if objects is None:
            objects = load_objects(self.s3, str(self.bucket), item)
        page = min(page, page_count(len(objects)))
        rows = [display_object(line) for line in objects[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
        decisions = read_decisions(self.table.meta.client, self.table.name, str(item["batchId"]), [row["i"] for row in rows])
        return render_batch_review(item, rows, decisions, page=page, tally=tally_of(item), notice=notice)

    def _decide_batch(self, event: Mapping[str, Any], item: Mapping[str, Any], pk: str, ref: str, request_id: str) -> dict:
        now = self.clock()
        try:
            form = parse_batch_form(event)
        except FormError as error:
            return respond(400, render_notice("Invalid decision", str(error)))
        objects = load_objects(self.s3, str(self.bucket), item)
        indexes = [line["i"] for line in objects]
        if set(form.choices) - set(indexes):
            return respond(400, render_notice("Invalid decision", "The form names an object that is not part of this review."))
        decisions = dict(form.choices)
        if form.action in (APPROVE_ALL, DENY_ALL):
            bulk = APPROVE if form.action == APPROVE_ALL else DENY
            decisions.update({i: bulk for i in indexes if i not in form.choices})
        identity = request_identity(event)
        decided_at = _iso_now(now)
        fields = {"reviewer": identity.reviewer, "decidedAt": decided_at, "reviewerSourceIp": identity.source_ip,
                  "decisionRequestId": request_id}
        try:
            recorded = DecisionWriter(self.table.meta.client, self.table.name, item, now=now, fields=fields).write(decisions)
        except ReviewClosed:
            return self._after_conflict(pk, ref)
        logger.info(
            "Review decisions recorded",
            extra={"reviewRef": ref, "batchId": item.get("batchId"), "written": recorded.written,
                   "approved": recorded.approved, "alreadyDecided": recorded.already_decided, "reviewer": identity.reviewer},
        )
        current = self._get(pk)
        if current is None or self._closed(current) is not None:
            return self._after_conflict(pk, ref)
        if form.action == SAVE and tally_of(current).undecided > 0:
            return respond(200, self._batch_page(current, page_number(event), _saved_notice(recorded), objects))
        return self._finish_batch(current, pk, ref, request_id, identity, decided_at)

    def _finish_batch(
        self, item: Mapping[str, Any], pk: str, ref: str, request_id: str, identity: Identity, decided_at: str
    ) -> dict:
        """Close the review once (conditional update) and resume the workflow once (SendTaskSuccess)."""
        values = {":reviewer": identity.reviewer, ":decidedAt": decided_at, ":reviewerSourceIp": identity.source_ip,
                  ":userAgent": identity.user_agent, ":decisionRequestId": request_id}
        finished = self._update_returning(
            pk,
            UpdateExpression="SET #s = :decided, " + ", ".join(f"#{n} = :{n}" for n in _FINISH_FIELDS),
            ConditionExpression="#s = :pending AND #exp > :now",
            ExpressionAttributeNames={"#s": "status", "#exp": TABLE_TTL_ATTRIBUTE, **{f"#{n}": n for n in _FINISH_FIELDS}},
            ExpressionAttributeValues={**values, ":decided": STATUS_DECIDED, ":pending": STATUS_PENDING, ":now": int(self.clock())},
            ReturnValues="ALL_NEW",
        )
        if finished is None:
            return self._after_conflict(pk, ref)
        tally = tally_of(finished)
        output = {"batchId": item["batchId"], "decided": tally.decided, "approved": tally.approved, "denied": tally.denied,
                  "undecided": tally.undecided, "reviewer": identity.reviewer, "decidedAt": decided_at}
        try:
            self.sfn.send_task_success(taskToken=item["taskToken"], output=json.dumps(output))
        except (ClientError, BotoCoreError) as error:
            return self._after_send_failure(error, pk, ref, request_id)
        logger.info("Review finished", extra={"reviewRef": ref, **output})
        return respond(200, render_batch_recorded(tally, identity.reviewer, decided_at))


def _saved_notice(recorded: Recorded) -> str:
    if not recorded.written and not recorded.already_decided:
        return "No decision was chosen on this page; nothing was recorded."
    notice = f"Saved {recorded.written} decision(s) ({recorded.approved} approved, {recorded.written - recorded.approved} denied)."
    if recorded.already_decided:
        notice += f" {recorded.already_decided} object(s) had already been decided and keep their earlier decision."
    return notice


def run(event: Any, *, dynamodb: Any, sfn: Any, env: ReviewApiEnvironment, request_id: str, s3: Any = None) -> dict:
    """Answer one API Gateway request with the review items of ``env.state_table`` (``dynamodb`` resource),
    the held objects of batch reviews in ``env.batch_bucket`` (``s3``) and Step Functions (``sfn``);
    ``request_id`` is recorded with a decision."""
    api = ReviewApi(dynamodb.Table(env.state_table), sfn, s3=s3, bucket=env.batch_bucket)
    return api.handle(event if isinstance(event, Mapping) else {}, request_id)


@logger.inject_lambda_context(log_event=False)  # the event holds the review id: never log it
def handler(event: dict, context: Any) -> dict:
    request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    try:
        env = ReviewApiEnvironment.from_environment(os.environ)
        return run(
            event,
            dynamodb=_CLIENTS.resource("dynamodb"),
            sfn=_CLIENTS.client("stepfunctions"),
            env=env,
            request_id=request_id,
            s3=_CLIENTS.client("s3"),
        )
    except Exception as error:  # never show a stack trace or internals to the browser
        logger.exception("Unexpected failure", extra={"errorCode": error_code(error)})
        return respond(500, render_notice("Error", "Something went wrong. Nothing was changed; please try again later."))
