"""The storage side of a batch review (docs/batching.md, "Reviews (per object)").

* The held objects are ``batches/<batch id>/review.jsonl`` in the batch bucket (written once by
  request_review); the page and the form read it.
* Each decision is its own item, ``review#<batch id>#<object index>``
  ``{decision, reviewer, decidedAt, expiresAt, reviewerSourceIp, decisionRequestId}``, written once
  (``attribute_not_exists``): **a decision, once saved, is final**; a second reviewer cannot overturn
  the first, and what Apply decisions reads is what the reviewer saw confirmed.
* Decisions are written in transactions of up to 99 objects together with an update of the review
  item (``ADD decidedCount, approvedCount``, on condition that the review is still PENDING and not
  expired): no decision lands after the review is finished or has expired, and the counts are exact.
"""

from __future__ import annotations

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

    written: int = 0
    approved: int = 0
    already_decided: int = 0


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


class DecisionWriter:
    """Writes the decisions of one request: ``client`` is a DynamoDB client (the Table resource's)."""

    def __init__(self, client: Any, table: str, review: Mapping[str, Any], *, now: float, fields: Mapping[str, str]) -> None:
        self.client, self.table = client, table
        self.review_pk = str(review[TABLE_PARTITION_KEY])
        self.batch_id = str(review["batchId"])
        self.now = now
        self.fields = dict(fields)  # reviewer, decidedAt, reviewerSourceIp, decisionRequestId
        expires = review.get("decisionsExpireAt")
        try:
            self.expires_at = int(expires)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.expires_at = int(review.get(TABLE_TTL_ATTRIBUTE) or now) + DEFAULT_DECISION_RETENTION_SECONDS

    def write(self, decisions: Mapping[int, str]) -> Recorded:
        """Record ``decisions`` (object index -> APPROVE or DENY); objects already decided keep their decision.
        Raises ReviewClosed when the review stopped being pending, Unavailable on a transient failure."""
        total = Recorded()
        ordered = sorted(decisions.items())
        for start in range(0, len(ordered), DECISIONS_PER_TRANSACTION):
            done = self._group(dict(ordered[start : start + DECISIONS_PER_TRANSACTION]))
            total = Recorded(
                total.written + done.written, total.approved + done.approved, total.already_decided + done.already_decided
            )
        return total

    def _group(self, group: dict[int, str]) -> Recorded:
        skipped = 0
        for attempt in range(TRANSACTION_ATTEMPTS):
            if not group:
                return Recorded(already_decided=skipped)
            reasons = self._transact(group)
            if reasons is None:
                approved = sum(1 for d in group.values() if d == APPROVE)
                return Recorded(written=len(group), approved=approved, already_decided=skipped)
            if _code(reasons[0]) == "ConditionalCheckFailed":
                raise ReviewClosed()
            taken = [i for i, reason in zip(group, reasons[1:], strict=False) if _code(reason) == "ConditionalCheckFailed"]
            for index in taken:
                del group[index]
            skipped += len(taken)
            if not taken:  # a conflict with a concurrent request: back off and try again
                time.sleep(0.05 * 2**attempt)
        raise Unavailable("TransactionConflict")

    def _transact(self, group: Mapping[int, str]) -> list[dict] | None:
        """One transaction; None when it succeeded, else the cancellation reasons (review item first)."""
        approved = sum(1 for d in group.values() if d == APPROVE)
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
                    "ExpressionAttributeValues": {":n": len(group), ":a": approved, ":pending": STATUS_PENDING, ":now": int(self.now)},
                }
            }
        ]
        for index, decision in group.items():
            item = {
                TABLE_PARTITION_KEY: decision_pk(self.batch_id, index),
                "decision": decision,
                **self.fields,
                TABLE_TTL_ATTRIBUTE: self.expires_at,
            }
            actions.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(#pk)",
                        "ExpressionAttributeNames": {"#pk": TABLE_PARTITION_KEY},
                    }
                }
            )
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


def _code(reason: Any) -> str:
    return str(reason.get("Code")) if isinstance(reason, Mapping) else ""
