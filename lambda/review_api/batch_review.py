"""The storage side of a batch review (docs/batching.md, "Reviews (per object)").

* The held objects are ``batches/<batch id>/review.jsonl`` in the batch bucket (written once by
  request_review); the page and the form read it.
* Each decision is its own item, ``review#<batch id>#<object index>``
  ``{decision, reviewer, reviewerSub, reviewerEmail, reviewerGroups, reviewerSourceIp, decidedAt,
  decisionRequestId, approvals, expiresAt}``; ``decision`` is set once (``attribute_not_exists``):
  **a decision, once saved, is final**; a second reviewer cannot overturn the first, and what Apply
  decisions reads is what the reviewer saw confirmed. ``approvals`` maps each approving reviewer's
  subject to ``{email, groups, at, sourceIp}``; with four eyes (``approvals_required`` 2) the first
  approval writes only that, the second (by someone else) sets ``decision``; a deny decides at once.
* Decisions are written in transactions of up to 99 objects together with an update of the review
  item (``ADD decidedCount, approvedCount``, on condition that the review is still PENDING and not
  expired): no decision lands after the review is finished or has expired, and the counts are exact.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from pipeline_common.batches import parse_lines
from pipeline_common.constants import APPROVE, REVIEW_PREFIX, TABLE_PARTITION_KEY, TABLE_TTL_ATTRIBUTE
from pipeline_common.contract import BATCH_PREFIX, REVIEW_DECISION_SEPARATOR
from pipeline_common.errors import InvalidInputError
from pipeline_common.transient import error_code, is_transient

#: DynamoDB takes 100 actions per transaction: the review item's update and 99 decisions.
DECISIONS_PER_TRANSACTION = 99
TRANSACTION_ATTEMPTS = 6
BATCH_GET_KEYS = 100
BATCH_GET_ATTEMPTS = 5
#: Kept this long after the review's deadline when the review item does not say (decisionsExpireAt).
DEFAULT_DECISION_RETENTION_SECONDS = 7 * 24 * 3600
STATUS_PENDING = "PENDING"


class Unavailable(Exception):
    """A dependency failed transiently: answer 503 so the reviewer can try again."""


class ReviewClosed(Exception):
    """The review is no longer pending (finished, expired): nothing more can be recorded."""


class BrokenReview(Exception):
    """The review item or its objects file is unusable (a deployment or storage problem)."""


@dataclass(frozen=True)
class Recorded:
    """What one request recorded: decisions written, and those skipped because already decided."""

    written: int = 0  # decisions made (the object is now approved or denied)
    approved: int = 0
    already_decided: int = 0
    pending_approvals: int = 0  # four eyes: approvals recorded that await another reviewer's
    already_approved: int = 0  # four eyes: objects this reviewer had approved before (left as they were)

    def counts(self) -> tuple[int, int, int, int, int]:
        return (self.written, self.approved, self.already_decided, self.pending_approvals, self.already_approved)


def decision_pk(batch_id: str, index: int) -> str:
    """``review#<batch id>#<object index>``: one object's decision (read by transfer's decide_chunk)."""
    return f"{REVIEW_PREFIX}{batch_id}{REVIEW_DECISION_SEPARATOR}{index}"


def _unavailable_or_raise(error: BaseException) -> None:
    if isinstance(error, BotoCoreError) or is_transient(error):
        raise Unavailable(error_code(error)) from None


def load_objects(s3: Any, bucket: str, item: Mapping[str, Any]) -> list[dict]:
    """The review's held objects (review.jsonl lines, each with its index ``i``), in batch order."""
    key = item.get("objectsKey")
    if not isinstance(key, str) or not key.startswith(BATCH_PREFIX):
        raise BrokenReview("the review item has no objects file")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as error:
        _unavailable_or_raise(error)
        raise BrokenReview(f"the objects file cannot be read ({error_code(error)})") from None
    try:
        lines = parse_lines(body, name=key)
    except InvalidInputError as error:
        raise BrokenReview(str(error)) from None
    return [line for line in lines if isinstance(line.get("i"), int) and not isinstance(line.get("i"), bool)]


def read_decisions(client: Any, table: str, batch_id: str, indexes: Iterable[int]) -> dict[int, dict]:
    """The recorded decisions of these objects, by object index (consistent reads)."""
    wanted = {decision_pk(batch_id, i): i for i in indexes}
    keys = [{TABLE_PARTITION_KEY: pk} for pk in wanted]
    found: dict[int, dict] = {}
    for start in range(0, len(keys), BATCH_GET_KEYS):
        request = {table: {"Keys": keys[start : start + BATCH_GET_KEYS], "ConsistentRead": True}}
        for attempt in range(BATCH_GET_ATTEMPTS):
            try:
                response = client.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as error:
                _unavailable_or_raise(error)
                raise
            for decision in response.get("Responses", {}).get(table, []):
                found[wanted[decision[TABLE_PARTITION_KEY]]] = decision
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.05 * 2**attempt)
        else:
            raise Unavailable("UnprocessedKeys")
    return found


class AlreadyApproved(Exception):
    """Under four eyes, the reviewer asked to approve objects they have already approved."""

    def __init__(self, indexes: Iterable[int]) -> None:
        self.indexes = sorted(indexes)
        super().__init__(f"already approved by this reviewer: {self.indexes}")


def approved_by(decision: Mapping[str, Any] | None, sub: str) -> bool:
    """Whether ``sub`` has approved this (still undecided) object."""
    approvals = (decision or {}).get("approvals")
    return isinstance(approvals, Mapping) and sub in approvals


class DecisionWriter:
    """Writes the decisions of one reviewer's request: ``client`` is a DynamoDB client (the Table
    resource's), ``reviewer`` a verified reviewer (reviewer_identity.Reviewer), ``approvals_required``
    1, or 2 for four eyes.

    Each object is one conditional Update of its decision item, ``review#<batch>#<i>``: an approval
    adds ``approvals.<sub>`` ({email, groups, at, sourceIp}); the approval that reaches
    ``approvals_required``, or any deny, also sets ``decision`` and the deciding reviewer's fields
    (``reviewer`` = email, ``reviewerSub``, ``reviewerEmail``, ``reviewerGroups``, ``reviewerSourceIp``,
    ``decidedAt``, ``decisionRequestId``). Condition: no ``decision`` yet, this reviewer not among the
    approvals, and the approvals as they were read (so a second approval is counted exactly once).
    The Updates of up to 99 objects go in one transaction with the review item's ``ADD decidedCount,
    approvedCount`` (on condition that the review is still PENDING and not expired)."""

    def __init__(self, client: Any, table: str, review: Mapping[str, Any], *, now: float, reviewer: Any, decided_at: str,
                 request_id: str, approvals_required: int = 1) -> None:
        self.client, self.table = client, table
        self.review_pk = str(review[TABLE_PARTITION_KEY])
        self.batch_id = str(review["batchId"])
        self.now = now
        self.reviewer = reviewer
        self.decided_at = decided_at
        self.request_id = request_id
        self.required = approvals_required
        expires = review.get("decisionsExpireAt")
        try:
            self.expires_at = int(expires)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.expires_at = int(review.get(TABLE_TTL_ATTRIBUTE) or now) + DEFAULT_DECISION_RETENTION_SECONDS

    def check(self, decisions: Mapping[int, str]) -> None:
        """AlreadyApproved when any approval of ``decisions`` is this reviewer's second (nothing is written)."""
        approvals = [i for i, d in decisions.items() if d == APPROVE]
        current = read_decisions(self.client, self.table, self.batch_id, approvals) if approvals else {}
        again = [i for i in approvals if not current.get(i, {}).get("decision") and approved_by(current.get(i), self.reviewer.sub)]
        if again:
            raise AlreadyApproved(again)

    def write(self, decisions: Mapping[int, str]) -> Recorded:
        """Record ``decisions`` (object index -> APPROVE or DENY); objects already decided keep their decision,
        and objects this reviewer already approved are left as they are. Raises ReviewClosed when the review
        stopped being pending, Unavailable on a transient failure."""
        total = Recorded()
        ordered = sorted(decisions.items())
        for start in range(0, len(ordered), DECISIONS_PER_TRANSACTION):
            done = self._group(dict(ordered[start : start + DECISIONS_PER_TRANSACTION]))
            total = Recorded(*(a + b for a, b in zip(total.counts(), done.counts(), strict=True)))
        return total

    def _group(self, group: dict[int, str]) -> Recorded:
        for attempt in range(TRANSACTION_ATTEMPTS):
            current = read_decisions(self.client, self.table, self.batch_id, group)
            plan = self._plan(group, current)
            if not plan.updates:
                return plan.recorded
            reasons = self._transact(plan)
            if reasons is None:
                return plan.recorded
            if _code(reasons[0]) == "ConditionalCheckFailed":
                raise ReviewClosed()
            time.sleep(0.05 * 2**attempt)  # another request changed these objects meanwhile: read them again
        raise Unavailable("TransactionConflict")

    def _plan(self, group: Mapping[int, str], current: Mapping[int, dict]) -> _Plan:
        updates: list[dict] = []
        decided = approved = pending = skipped = mine = 0
        for index, choice in group.items():
            item = current.get(index) or {}
            if item.get("decision"):
                skipped += 1
                continue
            if choice == APPROVE and approved_by(item, self.reviewer.sub):
                mine += 1
                continue
            approvals = item.get("approvals") if isinstance(item.get("approvals"), Mapping) else {}
            deciding = choice != APPROVE or len(approvals) + 1 >= self.required
            updates.append(self._update(index, choice, len(approvals), deciding))
            decided += deciding
            approved += deciding and choice == APPROVE
            pending += not deciding
        return _Plan(updates, decided, approved, Recorded(decided, approved, skipped, pending, mine))

    def _update(self, index: int, choice: str, approvals: int, deciding: bool) -> dict:
        who = self.reviewer
        names = {"#exp": TABLE_TTL_ATTRIBUTE, "#decision": "decision", "#approvals": "approvals", "#sub": who.sub}
        values: dict[str, Any] = {":exp": self.expires_at}
        sets = ["#exp = :exp"]
        condition = "attribute_not_exists(#decision)"
        if choice == APPROVE:
            condition += " AND attribute_not_exists(#approvals.#sub)"
            entry = who.audit(self.decided_at)
            if approvals:
                sets.append("#approvals.#sub = :mine")
                condition += " AND size(#approvals) = :seen"
                values.update({":mine": entry, ":seen": approvals})
            else:
                sets.append("#approvals = :mine")
                condition += " AND attribute_not_exists(#approvals)"
                values[":mine"] = {who.sub: entry}
        if deciding:
            fields = {"decision": choice, "reviewer": who.reviewer, "reviewerSub": who.sub, "reviewerEmail": who.email,
                      "reviewerGroups": list(who.groups), "reviewerSourceIp": who.source_ip, "decidedAt": self.decided_at,
                      "decisionRequestId": self.request_id}
            for name, value in fields.items():
                names[f"#{name}"] = name
                values[f":{name}"] = value
                if name != "decision":
                    sets.append(f"#{name} = :{name}")
            sets.append("#decision = :decision")
        return {
            "Update": {
                "TableName": self.table,
                "Key": {TABLE_PARTITION_KEY: decision_pk(self.batch_id, index)},
                "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {k: v for k, v in names.items() if _uses(k, sets, condition)},
                "ExpressionAttributeValues": values,
            }
        }

    def _transact(self, plan: _Plan) -> list[dict] | None:
        """One transaction; None when it succeeded, else the cancellation reasons (review item first)."""
        actions: list[dict] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {TABLE_PARTITION_KEY: self.review_pk},
                    "UpdateExpression": "ADD #dc :n, #ac :a",
                    "ConditionExpression": "#s = :pending AND #exp > :now",
                    "ExpressionAttributeNames": {
                        "#dc": "decidedCount", "#ac": "approvedCount", "#s": "status", "#exp": TABLE_TTL_ATTRIBUTE
                    },
                    "ExpressionAttributeValues": {":n": plan.decided, ":a": plan.approved, ":pending": STATUS_PENDING,
                                                  ":now": int(self.now)},
                }
            },
            *plan.updates,
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
            return None
        except ClientError as error:
            if error_code(error) == "TransactionCanceledException":
                reasons = error.response.get("CancellationReasons")
                if isinstance(reasons, list) and len(reasons) == len(actions):
                    return reasons
                raise Unavailable("TransactionCanceledException") from None
            _unavailable_or_raise(error)
            raise
        except BotoCoreError as error:
            raise Unavailable(error_code(error)) from None


@dataclass(frozen=True)
class _Plan:
    updates: list[dict]
    decided: int
    approved: int
    recorded: Recorded


def _uses(name: str, sets: list[str], condition: str) -> bool:
    """Whether an expression attribute name is used (DynamoDB refuses unused ones)."""
    pattern = re.compile(re.escape(name) + r"\b")
    return any(pattern.search(part) for part in (*sets, condition))


def _code(reason: Any) -> str:
    return str(reason.get("Code")) if isinstance(reason, Mapping) else ""
