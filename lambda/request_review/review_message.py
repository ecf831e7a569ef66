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
MAX_LOCATIONS = 10  # per detection type, as the evaluator keeps them
# A batch's message lists the first objects only; the review page lists them all.
MAX_BATCH_LISTED = 20
MAX_BATCH_REASONS = 3
SEVERITY_ORDER = ("HIGH", "MEDIUM", "LOW")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def object_summary(item: Mapping[str, Any]) -> dict:
    """What a reviewer sees of one object: key, size, reasons, detection types and counts, highest
    severity and, when the evaluator kept them, where Macie located each type (never a value)."""
    source, staged, findings = _mapping(item.get("source")), _mapping(item.get("staged")), _mapping(item.get("findings"))
    types = _mapping(findings.get("types"))
    reasons = [r for r in (item.get("reasons") or []) if isinstance(r, str)]
    severity = findings.get("maxSeverity")
    summary = {
        "key": str(source.get("key") or staged.get("key") or ""),
        "size": _int(source.get("size", staged.get("size"))),
        "reasons": reasons[:MAX_REASONS],
        "findingCount": _int(findings.get("count")) or 0,
        "findingTypes": {str(name): number for name, number in list(types.items())[:MAX_TYPES] if _int(number) is not None},
        "maxSeverity": severity if isinstance(severity, str) else None,
    }
    locations = {str(name): found[:MAX_LOCATIONS] for name, found in _mapping(findings.get("locations")).items()
                 if str(name) in summary["findingTypes"] and isinstance(found, list) and found}
    if locations:
        summary["findingLocations"] = locations
    return summary


def review_objects(objects: Iterable[Any]) -> list[dict]:
    """The objects with the REVIEW verdict, reduced to what a reviewer needs to see."""
    return [object_summary(item) for item in objects if isinstance(item, Mapping) and item.get("verdict") == REVIEW]


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
        lines.extend(_object_lines(number, item, MAX_REASONS))
    hidden = total - min(len(objects), MAX_LISTED_OBJECTS)
    if hidden > 0:
        lines.append(f"... and {hidden} more object(s).")
    return "\n".join(lines) + "\n"


def severity_counts(objects: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many objects have each highest finding severity (HIGH, MEDIUM, LOW, then none), zeros left out."""
    counts: dict[str, int] = {}
    for item in objects:
        severity = item.get("maxSeverity") if item.get("maxSeverity") in SEVERITY_ORDER else "none"
        counts[severity] = counts.get(severity, 0) + 1
    return {name: counts[name] for name in (*SEVERITY_ORDER, "none") if name in counts}


def _object_lines(number: int, item: Mapping[str, Any], max_reasons: int) -> list[str]:
    severity = item.get("maxSeverity") or "none"
    lines = [f"{number}. {printable(item['key'])} ({_size(item.get('size'))}; highest finding severity: {severity})"]
    types = item.get("findingTypes") or {}
    if types:
        lines.append("   Findings: " + ", ".join(f"{name} x{count}" for name, count in sorted(types.items())))
    else:
        lines.append("   Findings: none")
    lines.extend(f"   - {printable(reason, 500)}" for reason in (item.get("reasons") or [])[:max_reasons])
    return lines


def batch_message_body(objects: list[dict], *, link: str, deadline: str, batch_id: str) -> str:
    """The plain-text notification of a batch review: counts, the first objects, where to decide, by when."""
    total = len(objects)
    by_severity = ", ".join(f"{name} {count}" for name, count in severity_counts(objects).items())
    lines = [
        f"{total} object(s) from batch {batch_id} need a human review before they are released.",
        f"Highest finding severity per object: {by_severity}.",
        "",
        f"Review and decide here, object by object or all at once (the link is personal to this review; do not forward it): {link}",
        f"Decide before {deadline}. Objects without a decision when the review is finished or at that time are denied"
        " and kept in quarantine.",
        "",
        f"Objects (the first {min(total, MAX_BATCH_LISTED)} of {total}):",
    ]
    for number, item in enumerate(objects[:MAX_BATCH_LISTED], start=1):
        lines.extend(_object_lines(number, item, MAX_BATCH_REASONS))
    if total > MAX_BATCH_LISTED:
        lines.append(f"... and {total - MAX_BATCH_LISTED} more object(s): the review page lists every one.")
    return "\n".join(lines) + "\n"
