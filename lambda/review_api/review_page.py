"""Pure parts of review_api: HTML pages, form parsing and HTTP responses (who the reviewer is comes
from reviewer_identity: a verified token, never the request's headers).

Every value from the item or the request is HTML-escaped. Pages never contain the task token or the
review id (the form posts to its own URL through a relative, empty action).

A batch review's page lists its held objects :data:`PAGE_SIZE` at a time (``?page=N``), each with an
Approve/Deny choice; its form (:func:`parse_batch_form`) carries ``o<index>=approve|deny`` for the
objects chosen on that page and one button: ``action=save``, ``action=finish``, or
``decision=approve|deny`` ("Approve all" / "Deny all": every object still undecided, then finish).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from typing import Any, Mapping
from urllib.parse import parse_qs

from finding_locations import type_text
from pipeline_common.constants import APPROVE, DENY, TABLE_TTL_ATTRIBUTE

REVIEW_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
MAX_FORM_BYTES = 4096
MAX_USER_AGENT = 512

#: Objects per page of a batch review.
PAGE_SIZE = 100
#: A batch form: one choice per object of a page, a button, room to spare.
MAX_BATCH_FORM_FIELDS = 2 * PAGE_SIZE + 10
MAX_BATCH_FORM_BYTES = 32 * 1024
#: Characters of a key shown in a row (the whole key is in the cell's title).
MAX_SHOWN_KEY = 120
MAX_SHOWN_REASONS = 3
MAX_SHOWN_TYPES = 20
#: Locations shown per detection type (the evaluator keeps at most 10).
MAX_SHOWN_LOCATIONS = 10
#: Pages linked on each side of the current one (plus the first and the last).
PAGER_SPAN = 3
#: What the buttons of a batch form do.
SAVE, FINISH, APPROVE_ALL, DENY_ALL = "save", "finish", "approve-all", "deny-all"
_CHOICE_FIELD = re.compile(r"^o(0|[1-9][0-9]{0,8})$")

SECURITY_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}"
    "table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.4rem;text-align:left;"
    "vertical-align:top}code{word-break:break-all}ul{margin:0;padding-left:1.2rem}"
    "button{font-size:1rem;padding:.5rem 1.5rem;margin-right:1rem}"
    "td.n{color:#555}label{white-space:nowrap;margin-right:.6rem}nav a,nav strong{margin-right:.5rem}"
    ".note{background:#fff4d6;padding:.5rem}"
)


class FormError(ValueError):
    """The POSTed form is not ``decision=approve|deny`` (or, for a batch, not a batch form)."""


@dataclass(frozen=True)
class BatchForm:
    """A POSTed batch form: what the button asks (SAVE, FINISH, APPROVE_ALL, DENY_ALL) and the
    decisions (APPROVE or DENY) chosen for objects, by object index."""

    action: str
    choices: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Tally:
    """Where a batch review stands."""

    count: int
    decided: int
    approved: int

    @property
    def denied(self) -> int:
        return self.decided - self.approved

    @property
    def undecided(self) -> int:
        return max(self.count - self.decided, 0)


def respond(status: int, html: str, extra_headers: Mapping[str, str] | None = None) -> dict:
    """An API Gateway proxy response carrying an HTML page and the security headers."""
    headers = dict(SECURITY_HEADERS)
    headers.update(extra_headers or {})
    return {"statusCode": status, "headers": headers, "body": html, "isBase64Encoded": False}


def iso_time(epoch: Any) -> str:
    try:
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return "unknown"


def _page(title: str, content: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{content}\n</body>\n</html>\n"
    )


def render_notice(title: str, message: str) -> str:
    """A page with a title and one paragraph of plain text."""
    return _page(title, f"<p>{escape(message)}</p>")


def _number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _object_rows(objects: Any) -> str:
    rows = []
    for item in objects if isinstance(objects, list) else []:
        if not isinstance(item, Mapping):
            continue
        types = item.get("findingTypes") if isinstance(item.get("findingTypes"), Mapping) else {}
        where = _mapping(item.get("findingLocations"))
        type_list = "".join(
            f"<li>{escape(type_text(name, _number(count), where.get(name)))}</li>" for name, count in sorted(types.items())
        )
        reasons = "".join(f"<li>{escape(str(reason))}</li>" for reason in item.get("reasons") or [])
        size = _number(item.get("size"))
        rows.append(
            "<tr>"
            f"<td><code>{escape(str(item.get('key', '')))}</code></td>"
            f"<td>{escape(f'{size} bytes') if size is not None else 'unknown'}</td>"
            f"<td>{escape(str(item.get('maxSeverity') or 'none'))}</td>"
            f"<td>{escape(str(_number(item.get('findingCount')) or 0))}</td>"
            f"<td>{'<ul>' + type_list + '</ul>' if type_list else 'none'}</td>"
            f"<td>{'<ul>' + reasons + '</ul>' if reasons else ''}</td>"
            "</tr>"
        )
    return "\n".join(rows)


def render_review(item: Mapping[str, Any], *, csrf: str = "", signed_in_as: str = "") -> str:
    """The review page: the objects, their findings, the deadline and the approve/deny form (with the
    CSRF field of the signed-in reviewer's session)."""
    who, csrf_field = _signed_in(csrf, signed_in_as)
    objects = item.get("objects") or []
    omitted = _number(item.get("omittedObjects")) or 0
    count = len(objects) + omitted
    note = (
        f"<p>{escape(str(omitted))} more object(s) are part of this review but could not be listed.</p>"
        if omitted
        else ""
    )
    content = who + (
        f"<p>Scan <code>{escape(str(item.get('scanId', '')))}</code>: {escape(str(count))} object(s) need a decision. "
        "Approving releases every object listed here to the vault; denying quarantines them.</p>\n"
        f"<p>Decide before <strong>{escape(iso_time(item.get(TABLE_TTL_ATTRIBUTE)))}</strong>. "
        "Without a decision the objects stay quarantined.</p>\n"
        "<table>\n<thead><tr><th>Object key</th><th>Size</th><th>Highest severity</th><th>Findings</th>"
        "<th>Detection types (count)</th><th>Reasons</th></tr></thead>\n"
        f"<tbody>\n{_object_rows(objects)}\n</tbody>\n</table>\n{note}"
        '<form method="post" action="">\n' + csrf_field +
        '<p><button type="submit" name="decision" value="approve">Approve</button>'
        '<button type="submit" name="decision" value="deny">Deny</button></p>\n'
        "</form>"
    )
    return _page("Macie pipeline: review needed", content)


def render_decided(item: Mapping[str, Any]) -> str:
    """The 409 page: who decided what, and when."""
    decision = str(item.get("decision") or "").upper()
    word = {APPROVE: "approved", DENY: "denied"}.get(decision, "decided")
    return render_notice(
        "Review already decided",
        f"This review was already {word} by {item.get('reviewer') or 'an unknown reviewer'} "
        f"at {item.get('decidedAt') or 'an unknown time'}. Nothing was changed.",
    )


def render_recorded(decision: str, reviewer: str, decided_at: str) -> str:
    word = "approved" if decision == APPROVE else "denied"
    return render_notice(
        "Decision recorded",
        f"You {word} the objects of this review ({reviewer}, {decided_at}). The pipeline continues now.",
    )


def _header(headers: Any, name: str) -> str | None:
    if not isinstance(headers, Mapping):
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted and isinstance(value, str):
            return value
    return None


def _form_fields(event: Mapping[str, Any], *, max_bytes: int, max_fields: int) -> dict[str, list[str]]:
    """The fields of an urlencoded (possibly base64-encoded) body."""
    content_type = _header(event.get("headers"), "content-type")
    if content_type and content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise FormError("the form must be sent as application/x-www-form-urlencoded")
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise FormError("the request has no form")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise FormError("the request body is not valid base64") from None
    else:
        raw = body.encode("utf-8")
    if len(raw) > max_bytes:
        raise FormError("the form is too large")
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        raise FormError("the form cannot be parsed") from None


def _decision_word(value: str) -> str:
    decision = value.strip().lower()
    if decision == "approve":
        return APPROVE
    if decision == "deny":
        return DENY
    raise FormError("the decision must be approve or deny")


def parse_decision(event: Mapping[str, Any]) -> str:
    """``decision=approve|deny`` from an urlencoded (possibly base64-encoded) body -> APPROVE or DENY."""
    values = _form_fields(event, max_bytes=MAX_FORM_BYTES, max_fields=10).get("decision") or []
    if len(values) != 1:
        raise FormError("the form must contain exactly one decision")
    return _decision_word(values[0])


def _batch_action(fields: Mapping[str, list[str]]) -> str:
    decision, action = fields.get("decision") or [], fields.get("action") or []
    if len(decision) + len(action) != 1:
        raise FormError("the form must contain exactly one of decision (approve or deny) and action (save or finish)")
    if decision:
        return APPROVE_ALL if _decision_word(decision[0]) == APPROVE else DENY_ALL
    word = action[0].strip().lower()
    if word not in (SAVE, FINISH, APPROVE_ALL, DENY_ALL):
        raise FormError("the action must be save, finish, approve-all or deny-all")
    return word


def parse_batch_form(event: Mapping[str, Any]) -> BatchForm:
    """A batch review's form: ``o<index>=approve|deny`` for each object decided on the page, and one of
    ``action=save|finish|approve-all|deny-all`` or ``decision=approve|deny`` (= approve-all, deny-all).
    Other fields are ignored; an empty choice (``o3=``) is no choice."""
    fields = _form_fields(event, max_bytes=MAX_BATCH_FORM_BYTES, max_fields=MAX_BATCH_FORM_FIELDS)
    choices: dict[int, str] = {}
    for name, values in fields.items():
        match = _CHOICE_FIELD.fullmatch(name)
        if not match:
            continue
        chosen = {v.strip().lower() for v in values if v.strip()}
        if len(chosen) > 1:
            raise FormError(f"object {match.group(1)} has more than one decision")
        if chosen:
            choices[int(match.group(1))] = _decision_word(chosen.pop())
    return BatchForm(action=_batch_action(fields), choices=choices)


def page_number(event: Mapping[str, Any]) -> int:
    """``?page=N`` (1 when absent or not a positive integer)."""
    params = event.get("queryStringParameters") if isinstance(event.get("queryStringParameters"), Mapping) else {}
    value = params.get("page")
    if isinstance(value, str) and value.isascii() and value.isdigit() and 0 < len(value) <= 6:
        return max(int(value), 1)
    return 1


def form_value(event: Mapping[str, Any], name: str) -> str | None:
    """The one value of field ``name`` of a POSTed form (None when absent or repeated)."""
    values = _form_fields(event, max_bytes=MAX_BATCH_FORM_BYTES, max_fields=MAX_BATCH_FORM_FIELDS).get(name) or []
    return values[0] if len(values) == 1 else None


def _signed_in(csrf: str, signed_in_as: str) -> tuple[str, str]:
    """(a line saying who is signed in, the form's hidden CSRF field)."""
    who = f'<p class="who">Signed in as <strong>{escape(signed_in_as)}</strong>.</p>\n' if signed_in_as else ""
    field = f'<input type="hidden" name="csrf" value="{escape(csrf)}">\n' if csrf else ""
    return who, field


def review_id_from(event: Mapping[str, Any]) -> str | None:
    """The review id of the path, or None if it cannot be one (answered as unknown)."""
    params = event.get("pathParameters") if isinstance(event.get("pathParameters"), Mapping) else {}
    value = params.get("reviewId")
    return value if isinstance(value, str) and REVIEW_ID_PATTERN.fullmatch(value) else None


# ---------------------------------------------------------------------------------- batch reviews
def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def shown_text(text: str, limit: int) -> str:
    """``text`` without control characters (each becomes ``?``), cut to ``limit`` characters with an ellipsis."""
    cleaned = "".join("?" if unicodedata.category(c)[0] == "C" else c for c in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "\u2026"


def display_object(line: Mapping[str, Any]) -> dict:
    """What a reviewer sees of one held object (a review.jsonl line): index, key, size, highest
    severity, finding count, detection types and counts, where Macie located them, reasons. Never a
    finding's value."""
    source, findings = _mapping(line.get("source")), _mapping(line.get("findings"))
    types, locations = _mapping(findings.get("types")), _mapping(findings.get("locations"))
    return {
        "i": line.get("i"),
        "key": str(source.get("key") or ""),
        "size": _number(source.get("size")),
        "maxSeverity": findings.get("maxSeverity") if isinstance(findings.get("maxSeverity"), str) else None,
        "findingCount": _number(findings.get("count")) or 0,
        "findingTypes": {str(name): _number(count) for name, count in types.items()},
        "findingLocations": {str(name): found[:MAX_SHOWN_LOCATIONS] for name, found in locations.items()
                             if name in types and isinstance(found, list)},
        "reasons": [str(r) for r in (line.get("reasons") or []) if isinstance(r, str)],
    }


def _size_text(size: int | None) -> str:
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _list(values: list[str], limit: int) -> str:
    if not values:
        return "none"
    more = f"<li>and {len(values) - limit} more</li>" if len(values) > limit else ""
    return "<ul>" + "".join(f"<li>{escape(v)}</li>" for v in values[:limit]) + more + "</ul>"


def _decision_cell(index: int, decision: Mapping[str, Any] | None) -> str:
    if decision:
        word = {APPROVE: "Approved", DENY: "Denied"}.get(str(decision.get("decision")), "Decided")
        who = escape(str(decision.get("reviewer") or "unknown"))
        return f"<td><strong>{word}</strong> by {who}</td>"
    name = f"o{index}"
    return (
        f'<td><label><input type="radio" name="{name}" value="approve"> Approve</label>'
        f'<label><input type="radio" name="{name}" value="deny"> Deny</label></td>'
    )


def _batch_row(obj: Mapping[str, Any], decision: Mapping[str, Any] | None) -> str:
    key = str(obj.get("key") or "")
    where = _mapping(obj.get("findingLocations"))
    types = [type_text(name, count, where.get(name)) for name, count in sorted(_mapping(obj.get("findingTypes")).items())]
    return (
        "<tr>"
        f'<td><code title="{escape(shown_text(key, 2048))}">{escape(shown_text(key, MAX_SHOWN_KEY))}</code></td>'
        f"<td>{escape(_size_text(obj.get('size')))}</td>"
        f"<td>{escape(str(obj.get('maxSeverity') or 'none'))}</td>"
        f"<td>{escape(str(_number(obj.get('findingCount')) or 0))}</td>"
        f"<td>{_list(types, MAX_SHOWN_TYPES)}</td>"
        f"<td>{_list([shown_text(r, 300) for r in obj.get('reasons') or []], MAX_SHOWN_REASONS)}</td>"
        f"{_decision_cell(int(obj.get('i') or 0), decision)}"
        "</tr>"
    )


def page_count(total: int) -> int:
    return max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)


def pager(page: int, pages: int) -> str:
    """Links to the first and last pages, the previous and next, and those near ``page``."""
    if pages <= 1:
        return ""
    shown = sorted({1, pages, *range(max(page - PAGER_SPAN, 1), min(page + PAGER_SPAN, pages) + 1)})
    parts = [f'<a href="?page={page - 1}" rel="prev">Previous</a>'] if page > 1 else []
    last = 0
    for number in shown:
        if number > last + 1:
            parts.append("<span>\u2026</span>")
        parts.append(f"<strong>{number}</strong>" if number == page else f'<a href="?page={number}">{number}</a>')
        last = number
    if page < pages:
        parts.append(f'<a href="?page={page + 1}" rel="next">Next</a>')
    return f'<nav aria-label="pages"><span>Page {page} of {pages}:</span> ' + " ".join(parts) + "</nav>"


def render_batch_review(
    item: Mapping[str, Any],
    objects: list[Mapping[str, Any]],
    decisions: Mapping[int, Mapping[str, Any]],
    *,
    page: int,
    tally: Tally,
    notice: str = "",
    csrf: str = "",
    signed_in_as: str = "",
    approvals_required: int = 1,
    reviewer_sub: str = "",
) -> str:
    """One page of a batch review: ``objects`` are that page's display objects, ``decisions`` the
    recorded decisions by object index; the form decides objects of this page, or all, or finishes."""
    pages = page_count(tally.count)
    first = (page - 1) * PAGE_SIZE + 1
    shown = f"objects {first} to {first + len(objects) - 1}" if objects else "no objects"
    who, csrf_field = _signed_in(csrf, signed_in_as)
    four_eyes = _four_eyes(decisions, reviewer_sub) if approvals_required > 1 else ""
    content = (
        who
        + (f'<p class="note">{escape(notice)}</p>\n' if notice else "")
        + f"<p>Batch <code>{escape(str(item.get('batchId', '')))}</code>: {tally.count} object(s) need a decision. "
        f"Decided so far: {tally.decided} ({tally.approved} approved, {tally.denied} denied); undecided: {tally.undecided}.</p>\n"
        f"<p>Decide before <strong>{escape(iso_time(item.get(TABLE_TTL_ATTRIBUTE)))}</strong>. "
        "Approving releases an object to the vault; denying keeps it in quarantine. A decision, once saved, is final. "
        "Objects still undecided when the review is finished, or at the deadline, are denied and kept in quarantine.</p>\n"
        + four_eyes
        + f"{pager(page, pages)}\n"
        '<form method="post" action="">\n'
        + csrf_field
        + f"<p>Page {page} of {pages}: {shown}. Choices count once saved: save them before you change page.</p>\n"
        "<table>\n<thead><tr><th>Object key</th><th>Size</th><th>Highest severity</th><th>Findings</th>"
        "<th>Detection types (count)</th><th>Reasons</th><th>Decision</th></tr></thead>\n<tbody>\n"
        + "\n".join(_batch_row(obj, decisions.get(obj.get("i"))) for obj in objects)  # type: ignore[arg-type]
        + "\n</tbody>\n</table>\n"
        '<p><button type="submit" name="action" value="save">Save the decisions of this page</button>'
        '<button type="submit" name="action" value="finish">Finish review</button></p>\n'
        "<p>Finishing denies every object still undecided.</p>\n"
        '<p><button type="submit" name="decision" value="approve">Approve all undecided</button>'
        '<button type="submit" name="decision" value="deny">Deny all undecided</button></p>\n'
        "<p>Approve all and Deny all decide every object of the review that is still undecided, on every page "
        "(the choices made above on this page count first), then finish the review.</p>\n"
        "</form>\n"
        f"{pager(page, pages)}"
    )
    return _page("Macie pipeline: review needed", content)


def _four_eyes(decisions: Mapping[int, Mapping[str, Any]], reviewer_sub: str) -> str:
    """What four eyes means, and which objects of the page wait for a second approval."""
    waiting = [d for d in decisions.values() if not d.get("decision") and isinstance(d.get("approvals"), Mapping)]
    mine = sum(1 for d in waiting if reviewer_sub and reviewer_sub in d["approvals"])
    status = (
        f" On this page {len(waiting)} object(s) have one approval and wait for a second reviewer; you approved {mine} "
        "of them (approving those again is refused)." if waiting else ""
    )
    return (
        "<p>Four eyes: an object is approved when two different reviewers have approved it; one deny denies it. "
        "Approve all records your approval of every undecided object and finishes the review only when nothing "
        f"is left undecided.{escape(status)}</p>\n"
    )


def tally_of(item: Mapping[str, Any]) -> Tally:
    return Tally(
        count=_number(item.get("count")) or 0,
        decided=_number(item.get("decidedCount")) or 0,
        approved=_number(item.get("approvedCount")) or 0,
    )


def render_batch_decided(item: Mapping[str, Any]) -> str:
    """The 409 page of a finished batch review: who finished it, when, and the counts."""
    tally = tally_of(item)
    return render_notice(
        "Review already decided",
        f"This review was already finished by {item.get('reviewer') or 'an unknown reviewer'} at "
        f"{item.get('decidedAt') or 'an unknown time'}: {tally.approved} object(s) approved, {tally.denied} denied, "
        f"{tally.undecided} undecided and therefore denied. Nothing was changed.",
    )


def render_batch_recorded(tally: Tally, reviewer: str, decided_at: str) -> str:
    return render_notice(
        "Decision recorded",
        f"You approved {tally.approved} and denied {tally.denied} object(s) of this review; "
        f"{tally.undecided} undecided object(s) are denied ({reviewer}, {decided_at}). The pipeline continues now.",
    )
