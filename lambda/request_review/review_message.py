"""Pure helpers of request_review: what is stored about the objects and what the reviewers are sent.

Only metadata leaves the pipeline here: object keys, sizes, verdict reasons, detection types and
counts, severities. Never finding samples or object contents.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Iterable, Mapping

from pipeline_common.constants import REVIEW

SUBJECT_MAX = 100
# DynamoDB items are limited to 400 KB; leave room for the token and the other attributes.
MAX_STORED_OBJECTS_BYTES = 300_000
MAX_LISTED_OBJECTS = 50
MAX_KEY_CHARS = 300
MAX_REASONS = 10
MAX_TYPES = 50


def review_objects(objects: Iterable[Any]) -> list[dict]:
    """The objects with the REVIEW verdict, reduced to what a reviewer needs to see."""
    selected = []
    for item in objects:
        if not isinstance(item, Mapping) or item.get("verdict") != REVIEW:
            continue
        source = item.get("source") if isinstance(item.get("source"), Mapping) else {}
        staged = item.get("staged") if isinstance(item.get("staged"), Mapping) else {}
        findings = item.get("findings") if isinstance(item.get("findings"), Mapping) else {}
        key = source.get("key") or staged.get("key") or ""
        size = source.get("size", staged.get("size"))
        types = findings.get("types") if isinstance(findings.get("types"), Mapping) else {}
        reasons = [str(r) for r in (item.get("reasons") or []) if isinstance(r, str)]
        count = findings.get("count")
        severity = findings.get("maxSeverity")
        selected.append(
            {
                "key": str(key),
                "size": size if isinstance(size, int) and not isinstance(size, bool) else None,
                "reasons": reasons[:MAX_REASONS],
                "findingCount": count if isinstance(count, int) and not isinstance(count, bool) else 0,
                "findingTypes": {
                    str(name): int(number)
                    for name, number in list(types.items())[:MAX_TYPES]
                    if isinstance(number, int) and not isinstance(number, bool)
                },
                "maxSeverity": severity if isinstance(severity, str) else None,
            }
        )
    return selected


def fit_for_storage(objects: list[dict], max_bytes: int = MAX_STORED_OBJECTS_BYTES) -> tuple[list[dict], int]:
    """As many objects as fit in ``max_bytes`` of JSON, and how many were left out."""
    kept: list[dict] = []
    used = 2
    for item in objects:
        size = len(json.dumps(item, ensure_ascii=False).encode("utf-8")) + 1
        if used + size > max_bytes:
            break
        kept.append(item)
        used += size
    return kept, len(objects) - len(kept)


def review_link(base_url: str, review_id: str) -> str:
    """``base_url`` + "reviews/" + id, with exactly one slash between them."""
    return base_url.rstrip("/") + "/reviews/" + review_id


def subject(object_count: int) -> str:
    """An SNS subject: ASCII, one line, at most 100 characters."""
    return f"Macie pipeline: review needed for {object_count} object(s)"[:SUBJECT_MAX]


def printable(text: str, limit: int = MAX_KEY_CHARS) -> str:
    """Make an object key safe to show in a plain-text message: no control characters, bounded length."""
    cleaned = "".join("?" if unicodedata.category(c)[0] == "C" else c for c in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def _size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover


def message_body(objects: list[dict], *, link: str, deadline: str, scan_id: str) -> str:
    """The plain-text notification: what needs review, why, where to decide, and by when."""
    total = len(objects)
    lines = [
        f"{total} object(s) from scan {scan_id} need a human review before they are released.",
        "",
        f"Review and decide here (the link is personal to this review; do not forward it): {link}",
        f"Decide before {deadline}. Without a decision the objects stay quarantined.",
        "",
        "Objects:",
    ]
    for number, item in enumerate(objects[:MAX_LISTED_OBJECTS], start=1):
        severity = item.get("maxSeverity") or "none"
        lines.append(f"{number}. {printable(item['key'])} ({_size(item.get('size'))}; highest finding severity: {severity})")
        types = item.get("findingTypes") or {}
        if types:
            lines.append("   Findings: " + ", ".join(f"{name} x{count}" for name, count in sorted(types.items())))
        else:
            lines.append("   Findings: none")
        for reason in item.get("reasons") or []:
            lines.append(f"   - {printable(reason, 500)}")
    hidden = total - min(len(objects), MAX_LISTED_OBJECTS)
    if hidden > 0:
        lines.append(f"... and {hidden} more object(s).")
    return "\n".join(lines) + "\n"
