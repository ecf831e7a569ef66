"""A proposed engine patch, kept here to measure it: moto's SQS is quadratic in a queue's depth.

Not installed by the engine (its patches live in ``macie_pipeline/local/patches.py``, owned elsewhere);
``bench_engine.py --sqs-speedup`` installs it for one run so that the benchmark can show what it buys.
Profile of ``bench --objects 1000`` without it (cProfile, main thread, moto 5.2.5):

* ``ReceiveMessage``: ``SQSBackend.is_message_valid_based_on_retention_period`` calls
  ``get_queue_attributes(["MessageRetentionPeriod"])`` for **every message received**, which builds
  ``Queue.attributes`` twice, and each build counts ``ApproximateNumberOfMessages``, ``...Delayed`` and
  ``...NotVisible`` over every message of the queue (three passes, two ``unix_time()`` calls per
  message): 1,827 receives cost 270 s, 21.5 million ``unix_time`` calls. The intake pump receives a
  batch of 10,000 events 10 at a time: about 7 N^2 message checks, hours at N = 10,000.
* ``SendMessage`` (EventBridge to the intake queue, and the result events to the engine's event
  queue): ``queue.attributes.get("ContentBasedDeduplication")`` builds the same three counts per
  message sent: 1,000 sends 35 s.
* ``DeleteMessage``: two passes over the queue per message deleted (``had_receipt_handle`` on each).

The patch keeps every answer the same: the retention check reads the queue's retention period
directly; the visible/delayed counts and ``Queue.messages`` compare each message's ``visible_at`` and
``delayed_until`` with one clock reading per call (not one per message); a delete finds its message
once. Each patched function is checked against the source it replaces (a moto upgrade that changes
one fails loudly, the engine's canary rule).
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any, Callable

from moto.core.utils import unix_time, unix_time_millis
from moto.sqs import models
from moto.sqs.exceptions import ReceiptHandleIsInvalid

# sha256 of each replaced function's source in moto 5.2.5.
EXPECTED = {
    "Queue.messages": "03a531dbcbcf9aee",
    "Queue.approximate_number_of_messages_delayed": "c3c1dadb0c42ed5f",
    "Queue.approximate_number_of_messages_not_visible": "5dbecc4dda174358",
    "Queue.delete_message": "fa6fd5b9bd2cafb4",
    "SQSBackend.is_message_valid_based_on_retention_period": "cca23b94a5f3af9d",
}


def _source(owner: type, name: str) -> Callable[..., Any]:
    member = inspect.getattr_static(owner, name)
    return member.fget if isinstance(member, property) else member


def fingerprints() -> dict[str, str]:
    out = {}
    for dotted in EXPECTED:
        owner, name = dotted.split(".")
        function = _source(getattr(models, owner), name)
        out[dotted] = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
    return out


def _messages(self: Any) -> list:
    now = unix_time_millis()
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


def _delayed(self: Any) -> int:
    now = unix_time_millis()
    return sum(1 for m in self._messages if now < m.delayed_until)


def _not_visible(self: Any) -> int:
    now = unix_time_millis()
    return sum(1 for m in self._messages if not now > m.visible_at)


def _delete_message(self: Any, receipt_handle: str) -> None:
    if receipt_handle in self.deleted_messages:
        return
    messages = self._messages
    index = next((i for i, m in enumerate(messages) if receipt_handle in m.all_receipt_handles), None)
    if index is None:
        raise ReceiptHandleIsInvalid()
    message = messages[index]
    self.pending_messages.discard(message)
    self.deleted_messages.update(message.all_receipt_handles)
    self._messages = messages[:index] + messages[index + 1:]  # a new list, as moto does


def _retention_ok(self: Any, queue_name: str, message: Any) -> bool:
    retention_period = int(self.get_queue(queue_name).message_retention_period)
    return retention_period + message.sent_timestamp / 1000 > unix_time()


_ORIGINALS: dict[str, Any] = {}


def install(check: bool = True) -> None:
    """Replace the five functions (``check``: only if their source is the one this patch was written for)."""
    if check and fingerprints() != EXPECTED:
        raise RuntimeError(f"moto's SQS changed: {fingerprints()} != {EXPECTED}; review the patch")
    replacements = {
        (models.Queue, "messages"): property(_messages),
        (models.Queue, "approximate_number_of_messages_delayed"): property(_delayed),
        (models.Queue, "approximate_number_of_messages_not_visible"): property(_not_visible),
        (models.Queue, "delete_message"): _delete_message,
        (models.SQSBackend, "is_message_valid_based_on_retention_period"): _retention_ok,
    }
    for (owner, name), replacement in replacements.items():
        _ORIGINALS.setdefault(f"{owner.__name__}.{name}", inspect.getattr_static(owner, name))
        setattr(owner, name, replacement)


def uninstall() -> None:
    for dotted, original in _ORIGINALS.items():
        owner, name = dotted.split(".")
        setattr(getattr(models, owner), name, original)
    _ORIGINALS.clear()
