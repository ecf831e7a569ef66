"""The reviewer's web page (API Gateway REST proxy integration, see docs/CONTRACTS.md,
docs/batching.md, "Reviews (per object)", and docs/reviewer-sign-in.md).

Every request needs a signed-in reviewer (reviewer_identity): ``GET`` without a valid session is a
302 to the user pool's managed login (code flow with PKCE), ``GET /signed-in`` is its callback; a
member of the reviewers group sees the page, anybody else at most that the review exists. A ``POST``
also needs the page's CSRF field and a same-site request; refusals write nothing.

``GET /reviews/{reviewId}[?page=N]`` shows the objects awaiting a decision and changes nothing.

A batch review (the item has a ``batchId``): ``POST /reviews/{reviewId}[?page=N]`` with
``o<index>=approve|deny`` for objects of the page and one of ``action=save`` (record them),
``action=finish`` (record them, then finish), ``decision=approve|deny`` (record them, decide every
object still undecided the same way, then finish; under four eyes "approve all" finishes only when
nothing is left undecided). Each decision is its own item, decided once (batch_review; with
``REVIEW_APPROVALS_REQUIRED`` 2 an approval needs a second, different reviewer). The review
finishes when asked, or when its last undecided object is decided: one conditional UpdateItem
(PENDING -> DECIDED) and one SendTaskSuccess with ``{"batchId", "decided", "approved", "denied",
"undecided", "reviewer", "reviewerSub", "decidedAt"}``. Objects still undecided then (or at the
deadline) are denied by Apply decisions.

An earlier review (no ``batchId``): ``POST`` with ``decision=approve|deny`` records the one decision
once (a conditional UpdateItem) and resumes the workflow with SendTaskSuccess.

The review id and the task token never appear in a page or a log line; logs carry a short fingerprint
of the id's hash instead.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import time
import uuid
from typing import Any, Callable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

import reviewer_identity as signin
from batch_review import (
    AlreadyApproved,
    BrokenReview,
    DecisionWriter,
    Recorded,
    ReviewClosed,
    Unavailable,
    load_objects,
    read_decisions,
)
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
    MAX_USER_AGENT,
    PAGE_SIZE,
    SAVE,
    FormError,
    display_object,
    form_value,
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
    respond,
    review_id_from,
    tally_of,
)

logger = get_logger("review_api")

STATUS_PENDING, STATUS_DECIDED, STATUS_EXPIRED = "PENDING", "DECIDED", "EXPIRED"
# SendTaskSuccess errors meaning the workflow no longer waits for this token.
TOKEN_GONE_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
_DECISION_FIELDS = ("decision", "decidedAt", "reviewer", "reviewerSub", "reviewerEmail", "reviewerGroups", "reviewerSourceIp",
                    "userAgent", "decisionRequestId")
# What finishing a batch review records on the review item (each object's decision is its own item).
_FINISH_FIELDS = ("decidedAt", "reviewer", "reviewerSub", "reviewerEmail", "reviewerGroups", "reviewerSourceIp", "userAgent",
                  "decisionRequestId")
#: The callback of the sign-in (GET ``/signed-in?code&state``), beside ``/reviews/{reviewId}``.
SIGNED_IN_PATH = "/signed-in"

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


def _refused(status: int, title: str, message: str) -> dict:
    return respond(status, render_notice(title, message + " Nothing was changed."))


def _redirect(location: str, cookies: list[str]) -> dict:
    response = respond(302, render_notice("Sign-in", "Continue to the sign-in page."), {"Location": location})
    response["multiValueHeaders"] = {"Set-Cookie": cookies}
    return response


def stage_prefix(event: Mapping[str, Any]) -> str:
    """The part of the public path before the resource path (``/review`` for the API's stage), so
    that cookies are scoped to this API's stage only."""
    context = event.get("requestContext") if isinstance(event.get("requestContext"), Mapping) else {}
    public, resource = context.get("path"), event.get("path")
    if isinstance(public, str) and isinstance(resource, str) and resource and public.endswith(resource):
        return public[: len(public) - len(resource)].rstrip("/")
    stage = context.get("stage")
    return f"/{stage}" if isinstance(stage, str) and stage and stage != "$default" else ""


def _source_ip(event: Mapping[str, Any]) -> str:
    context = event.get("requestContext") if isinstance(event.get("requestContext"), Mapping) else {}
    identity = context.get("identity") if isinstance(context.get("identity"), Mapping) else {}
    return identity.get("sourceIp") if isinstance(identity.get("sourceIp"), str) else ""


def _user_agent(event: Mapping[str, Any]) -> str:
    headers = event.get("headers") if isinstance(event.get("headers"), Mapping) else {}
    agent = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == "user-agent"), "")
    return str(agent or "")[:MAX_USER_AGENT]


class ReviewApi:
    """``table`` is the state table (a boto3 Table resource), ``sfn`` a Step Functions client, ``s3`` an
    S3 client for the held objects of batch reviews in ``bucket`` (the batch bucket). ``verifier``
    checks the reviewers' ID tokens (its settings say where the sign-in is), ``exchange`` turns an
    authorization code into an ID token, ``approvals_required`` is 1, or 2 for four eyes."""

    def __init__(
        self, table: Any, sfn: Any, clock: Callable[[], float] = time.time, *, s3: Any = None, bucket: str | None = None,
        verifier: signin.TokenVerifier, approvals_required: int = 1,
        exchange: Callable[[signin.SignInSettings, str, str], str] | None = None,
    ) -> None:
        self.table = table
        self.sfn = sfn
        self.clock = clock
        self.s3 = s3
        self.bucket = bucket
        self.verifier = verifier
        self.approvals_required = approvals_required
        self.exchange = exchange

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

    # ------------------------------------------------------------------------------------ sign-in
    def _session(self, event: Mapping[str, Any]) -> str:
        return signin.cookies_of(event.get("headers")).get(signin.SESSION_COOKIE, "")

    def _reviewer(self, event: Mapping[str, Any], token: str) -> signin.Reviewer:
        try:
            return self.verifier.reviewer(token, source_ip=_source_ip(event), user_agent=_user_agent(event))
        except signin.KeysUnavailable as error:
            raise _Unavailable("KeysUnavailable") from error

    def _to_sign_in(self, event: Mapping[str, Any], review_id: str) -> dict:
        """302 to the pool's managed login (code flow with PKCE); state and verifier in a short-lived cookie."""
        verifier, challenge = signin.new_pkce()
        state = signin.new_state()
        prefix = stage_prefix(event)
        back = f"{prefix}/reviews/{review_id}"
        page = page_number(event)
        if page > 1:
            back += f"?page={page}"
        cookie = signin.set_cookie(signin.SIGN_IN_COOKIE, signin.sign_in_cookie_value(state, verifier, back),
                                   path=prefix + "/", max_age=signin.SIGN_IN_COOKIE_SECONDS)
        return _redirect(self.verifier.settings.authorize_url(state, challenge), [cookie])

    def _signed_in(self, event: Mapping[str, Any]) -> dict:
        """The sign-in's callback: check the state, exchange the code, verify the token, set the session."""
        params = event.get("queryStringParameters") if isinstance(event.get("queryStringParameters"), Mapping) else {}
        code, state = params.get("code"), params.get("state")
        saved = signin.parse_sign_in_cookie(signin.cookies_of(event.get("headers")).get(signin.SIGN_IN_COOKIE))
        prefix = stage_prefix(event)
        if not isinstance(code, str) or not isinstance(state, str) or saved is None or not code or len(code) > 2048:
            return _refused(400, "Sign-in failed", "The sign-in could not be completed. Open the review link again.")
        expected_state, verifier, back = saved
        if not hmac.compare_digest(expected_state.encode(), state.encode()) or not _is_review_path(back, prefix):
            return _refused(400, "Sign-in failed", "The sign-in did not match this browser's request. Open the review link again.")
        try:
            token = (self.exchange or signin.exchange_code)(self.verifier.settings, code, verifier)
            claims = self.verifier.claims(token)
        except signin.KeysUnavailable:
            logger.warning("The user pool's keys are unavailable")
            return _unavailable()
        except signin.SignInRefused as refusal:
            logger.warning("Sign-in refused", extra={"reason": refusal.reason})
            return _refused(403, "Sign-in refused", f"The sign-in was refused: {refusal.reason}.")
        lifetime = int(claims["exp"] - self.clock())
        cookies = [
            signin.set_cookie(signin.SESSION_COOKIE, token, path=prefix + "/", max_age=lifetime),
            signin.clear_cookie(signin.SIGN_IN_COOKIE, path=prefix + "/"),
        ]
        logger.info("Signed in", extra={"sub": claims.get("sub")})
        return _redirect(back, cookies)

    def _gate(self, event: Mapping[str, Any], method: str, review_id: str) -> signin.Reviewer | dict:
        """The verified reviewer of the request, or the answer refusing it (which writes nothing)."""
        token = self._session(event)
        try:
            reviewer = self._reviewer(event, token)
        except signin.NotAReviewer as refusal:
            logger.info("Not a reviewer", extra={"method": method, "reason": refusal.reason})
            return _refused(403, "Not a reviewer",
                            "This review exists, but you are not in the reviewers group, so you cannot see or decide it.")
        except signin.SignInRefused as refusal:
            logger.info("Not signed in", extra={"method": method, "reason": refusal.reason})
            if method == "GET":
                return self._to_sign_in(event, review_id)
            return _refused(401, "Sign-in needed",
                            f"A decision needs a signed-in reviewer ({refusal.reason}). Open the review link to sign in.")
        if method == "POST":
            if signin.cross_site(event.get("headers"), signin.origin_of(self.verifier.settings.redirect_uri)):
                logger.warning("Cross-site decision refused", extra={"sub": reviewer.sub})
                return _refused(403, "Refused", "The decision was sent from another site.")
            try:
                submitted = form_value(event, signin.CSRF_FIELD)
            except FormError as error:
                return respond(400, render_notice("Invalid decision", str(error)))
            if not signin.csrf_matches(token, submitted):
                logger.warning("Decision without a valid CSRF field refused", extra={"sub": reviewer.sub})
                return _refused(403, "Refused", "The form is stale or did not come from the review page. Reload the page.")
        return reviewer

    # ----------------------------------------------------------------------------------- requests
    def handle(self, event: Mapping[str, Any], request_id: str) -> dict:
        method = str(event.get("httpMethod") or "").upper()
        if method not in ("GET", "POST"):
            return respond(
                405, render_notice("Method not allowed", "Use the review link in a web browser."), {"Allow": "GET, POST"}
            )
        if event.get("resource") == SIGNED_IN_PATH:
            return self._signed_in(event) if method == "GET" else _not_found()
        review_id = review_id_from(event)
        if review_id is None:
            return _not_found()
        return self._review(event, method, review_id, request_id)

    def _review(self, event: Mapping[str, Any], method: str, review_id: str, request_id: str) -> dict:
        pk = review_pk(review_id)
        ref = pk[len(REVIEW_PREFIX) :][:12]  # a fingerprint for the logs; the id cannot be derived from it
        try:
            item = self._get(pk)
            if item is None:
                logger.info("Unknown review", extra={"reviewRef": ref, "method": method})
                return _not_found()
            reviewer = self._gate(event, method, review_id)
            if isinstance(reviewer, dict):
                return reviewer
            closed = self._closed(item)
            if closed is not None:
                return closed
            csrf = signin.csrf_token(self._session(event))
            if method == "GET":
                return self._show(item, ref, event, reviewer, csrf)
            if item.get("batchId"):
                return self._decide_batch(event, item, pk, ref, request_id, reviewer, csrf)
            return self._decide(event, item, pk, ref, request_id, reviewer)
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

    def _show(self, item: Mapping[str, Any], ref: str, event: Mapping[str, Any], reviewer: signin.Reviewer, csrf: str) -> dict:
        logger.info("Review page shown", extra={"reviewRef": ref, "sub": reviewer.sub})
        if item.get("batchId"):
            return respond(200, self._batch_page(item, page_number(event), reviewer=reviewer, csrf=csrf))
        return respond(200, render_review(item, csrf=csrf, signed_in_as=reviewer.reviewer))

    def _decide(self, event: Mapping[str, Any], item: Mapping[str, Any], pk: str, ref: str, request_id: str,
                identity: signin.Reviewer) -> dict:
        """An earlier, single-decision review. It has no per-object approvals: under four eyes it can
        only be denied (fail closed: an approval needs two reviewers, which only batch reviews record)."""
        now = self.clock()
        try:
            decision = parse_decision(event)
        except FormError as error:
            return respond(400, render_notice("Invalid decision", str(error)))
        if decision == APPROVE and self.approvals_required > 1:
            return _refused(409, "Two reviewers needed", "Approvals need two reviewers, which this older review cannot record: "
                            "deny it, or let it expire (the objects stay quarantined).")
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
                ":reviewerSub": identity.sub,
                ":reviewerEmail": identity.email,
                ":reviewerGroups": list(identity.groups),
                ":reviewerSourceIp": identity.source_ip,
                ":userAgent": identity.user_agent,
                ":decisionRequestId": request_id,
            },
        )
        if not recorded:
            return self._after_conflict(pk, ref)

        output = json.dumps({"decision": decision, "reviewer": identity.reviewer, "reviewerSub": identity.sub,
                             "decidedAt": decided_at})
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
    def _batch_page(self, item: Mapping[str, Any], page: int, notice: str = "", objects: list[dict] | None = None, *,
                    reviewer: signin.Reviewer, csrf: str) -> str:
        """One page of a batch review, with the recorded decisions of its objects. Reads only."""
        if objects is None:
            objects = load_objects(self.s3, str(self.bucket), item)
        page = min(page, page_count(len(objects)))
        rows = [display_object(line) for line in objects[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
        decisions = read_decisions(self.table.meta.client, self.table.name, str(item["batchId"]), [row["i"] for row in rows])
        return render_batch_review(item, rows, decisions, page=page, tally=tally_of(item), notice=notice, csrf=csrf,
                                   signed_in_as=reviewer.reviewer, approvals_required=self.approvals_required,
                                   reviewer_sub=reviewer.sub)

    def _decide_batch(self, event: Mapping[str, Any], item: Mapping[str, Any], pk: str, ref: str, request_id: str,
                      identity: signin.Reviewer, csrf: str) -> dict:
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
        decided_at = _iso_now(now)
        writer = DecisionWriter(self.table.meta.client, self.table.name, item, now=now, reviewer=identity,
                                decided_at=decided_at, request_id=request_id, approvals_required=self.approvals_required)
        try:
            if self.approvals_required > 1:
                writer.check(form.choices)  # an object chosen again by the same reviewer: refuse it all
            recorded = writer.write(decisions)
        except AlreadyApproved as again:
            logger.info("Second approval by the same reviewer refused", extra={"reviewRef": ref, "sub": identity.sub,
                                                                             "objects": len(again.indexes)})
            return _refused(409, "Already approved by you",
                            f"You have already approved {len(again.indexes)} of the objects you chose; an approval needs a "
                            "second, different reviewer.")
        except ReviewClosed:
            return self._after_conflict(pk, ref)
        logger.info(
            "Review decisions recorded",
            extra={"reviewRef": ref, "batchId": item.get("batchId"), "written": recorded.written,
                   "approved": recorded.approved, "alreadyDecided": recorded.already_decided,
                   "pendingApprovals": recorded.pending_approvals, "reviewer": identity.reviewer, "sub": identity.sub},
        )
        current = self._get(pk)
        if current is None or self._closed(current) is not None:
            return self._after_conflict(pk, ref)
        if form.action in (SAVE, APPROVE_ALL) and tally_of(current).undecided > 0:
            page = self._batch_page(current, page_number(event), _saved_notice(recorded), objects, reviewer=identity, csrf=csrf)
            return respond(200, page)
        return self._finish_batch(current, pk, ref, request_id, identity, decided_at)

    def _finish_batch(
        self, item: Mapping[str, Any], pk: str, ref: str, request_id: str, identity: signin.Reviewer, decided_at: str
    ) -> dict:
        """Close the review once (conditional update) and resume the workflow once (SendTaskSuccess)."""
        values = {":reviewer": identity.reviewer, ":reviewerSub": identity.sub, ":reviewerEmail": identity.email,
                  ":reviewerGroups": list(identity.groups), ":decidedAt": decided_at, ":reviewerSourceIp": identity.source_ip,
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
                  "undecided": tally.undecided, "reviewer": identity.reviewer, "reviewerSub": identity.sub,
                  "decidedAt": decided_at}
        try:
            self.sfn.send_task_success(taskToken=item["taskToken"], output=json.dumps(output))
        except (ClientError, BotoCoreError) as error:
            return self._after_send_failure(error, pk, ref, request_id)
        logger.info("Review finished", extra={"reviewRef": ref, **output})
        return respond(200, render_batch_recorded(tally, identity.reviewer, decided_at))


_REVIEW_PATH = re.compile(r"/reviews/[A-Za-z0-9_-]{16,128}(\?page=[1-9][0-9]{0,5})?")


def _is_review_path(path: str, prefix: str) -> bool:
    """Where the sign-in may return to: a review page of this API's stage (never another site)."""
    return path.startswith(prefix + "/reviews/") and _REVIEW_PATH.fullmatch(path[len(prefix):]) is not None


def _saved_notice(recorded: Recorded) -> str:
    if not (recorded.written or recorded.already_decided or recorded.pending_approvals or recorded.already_approved):
        return "No decision was chosen on this page; nothing was recorded."
    notice = f"Saved {recorded.written} decision(s) ({recorded.approved} approved, {recorded.written - recorded.approved} denied)."
    if recorded.pending_approvals:
        notice += f" {recorded.pending_approvals} approval(s) recorded that await a second reviewer."
    if recorded.already_decided:
        notice += f" {recorded.already_decided} object(s) had already been decided and keep their earlier decision."
    if recorded.already_approved:
        notice += f" {recorded.already_approved} object(s) you had already approved await a second reviewer."
    return notice


_KEYS: dict[str, signin.KeySet] = {}  # the pool's signing keys, per container


def settings_of(env: ReviewApiEnvironment, region: str) -> signin.SignInSettings:
    return signin.SignInSettings(
        region=region, user_pool_id=env.user_pool_id, client_id=env.user_pool_client_id, login_base_url=env.sign_in_url,
        reviewers_group=env.reviewers_group, redirect_uri=env.signed_in_url,
    )


def verifier_for(settings: signin.SignInSettings, fetch_jwks: signin.FetchJwks | None = None) -> signin.TokenVerifier:
    """A verifier whose key set is cached for the life of the container (per pool)."""
    keys = _KEYS.get(settings.jwks_url)
    if keys is None or fetch_jwks is not None:
        keys = _KEYS[settings.jwks_url] = signin.KeySet(settings.jwks_url, fetch_jwks)
    return signin.TokenVerifier(settings, keys)


def run(event: Any, *, dynamodb: Any, sfn: Any, env: ReviewApiEnvironment, request_id: str, s3: Any = None,
        region: str = "us-east-1", fetch_jwks: signin.FetchJwks | None = None) -> dict:
    """Answer one API Gateway request with the review items of ``env.state_table`` (``dynamodb`` resource),
    the held objects of batch reviews in ``env.batch_bucket`` (``s3``) and Step Functions (``sfn``);
    ``request_id`` is recorded with a decision. ``fetch_jwks`` replaces the HTTPS fetch of the pool's
    keys (tests, the local engine)."""
    verifier = verifier_for(settings_of(env, region), fetch_jwks)
    api = ReviewApi(dynamodb.Table(env.state_table), sfn, s3=s3, bucket=env.batch_bucket, verifier=verifier,
                    approvals_required=env.approvals_required)
    return api.handle(event if isinstance(event, Mapping) else {}, request_id)


#: The local engine sets this to hand moto's key set to the verifier (the only substituted part).
FETCH_JWKS: signin.FetchJwks | None = None


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
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            fetch_jwks=FETCH_JWKS,
        )
    except Exception as error:  # never show a stack trace or internals to the browser
        logger.exception("Unexpected failure", extra={"errorCode": error_code(error)})
        return respond(500, render_notice("Error", "Something went wrong. Nothing was changed; please try again later."))
