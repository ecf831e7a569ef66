"""Keys and timestamps of the review items in the state table.

The review item key is a contract between request_review (the writer) and review_api (the reader):
both must derive it from the review id the same way.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from .constants import REVIEW_PREFIX


def review_pk(review_id: str) -> str:
    return REVIEW_PREFIX + hashlib.sha256(review_id.encode("utf-8")).hexdigest()


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
