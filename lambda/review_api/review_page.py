"""Pure parts of review_api: HTML pages, form parsing, reviewer identity and HTTP responses.

Every value from the item or the request is HTML-escaped. Pages never contain the task token or the
review id (the form posts to its own URL through a relative, empty action).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from typing import Any, Mapping
from urllib.parse import parse_qs

from pipeline_common.constants import APPROVE, DENY, TABLE_TTL_ATTRIBUTE

REVIEW_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
MAX_FORM_BYTES = 4096
MAX_USER_AGENT = 512

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
)


class FormError(ValueError):
    """The POSTed form is not ``decision=approve|deny``."""


@dataclass(frozen=True)
class Identity:
    reviewer: str
    source_ip: str
    user_agent: str


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
        type_list = "".join(
            f"<li>{escape(str(name))}: {escape(str(_number(count)))}</li>" for name, count in sorted(types.items())
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


def render_review(item: Mapping[str, Any]) -> str:
    """The review page: the objects, their findings, the deadline and the approve/deny form."""
    objects = item.get("objects") or []
    omitted = _number(item.get("omittedObjects")) or 0
    count = len(objects) + omitted
    note = (
        f"<p>{escape(str(omitted))} more object(s) are part of this review but could not be listed.</p>"
        if omitted
        else ""
    )
    content = (
        f"<p>Scan <code>{escape(str(item.get('scanId', '')))}</code>: {escape(str(count))} object(s) need a decision. "
        "Approving releases every object listed here to the vault; denying quarantines them.</p>\n"
        f"<p>Decide before <strong>{escape(iso_time(item.get(TABLE_TTL_ATTRIBUTE)))}</strong>. "
        "Without a decision the objects stay quarantined.</p>\n"
        "<table>\n<thead><tr><th>Object key</th><th>Size</th><th>Highest severity</th><th>Findings</th>"
        "<th>Detection types (count)</th><th>Reasons</th></tr></thead>\n"
        f"<tbody>\n{_object_rows(objects)}\n</tbody>\n</table>\n{note}"
        '<form method="post" action="">\n'
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


def parse_decision(event: Mapping[str, Any]) -> str:
    """``decision=approve|deny`` from an urlencoded (possibly base64-encoded) body -> APPROVE or DENY."""
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
    if len(raw) > MAX_FORM_BYTES:
        raise FormError("the form is too large")
    try:
        text = raw.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise FormError("the form cannot be parsed") from None
    values = fields.get("decision") or []
    if len(values) != 1:
        raise FormError("the form must contain exactly one decision")
    decision = values[0].strip().lower()
    if decision == "approve":
        return APPROVE
    if decision == "deny":
        return DENY
    raise FormError("the decision must be approve or deny")


def request_identity(event: Mapping[str, Any]) -> Identity:
    """Who is deciding, from what API Gateway vouches for (never from headers the client controls).

    Cognito authorizer claims (email, else sub), else the IAM caller's user ARN, else
    ``anonymous@<source IP>``.
    """
    context = event.get("requestContext") if isinstance(event.get("requestContext"), Mapping) else {}
    identity = context.get("identity") if isinstance(context.get("identity"), Mapping) else {}
    authorizer = context.get("authorizer") if isinstance(context.get("authorizer"), Mapping) else {}
    claims = authorizer.get("claims") if isinstance(authorizer.get("claims"), Mapping) else {}
    source_ip = identity.get("sourceIp") if isinstance(identity.get("sourceIp"), str) else ""
    reviewer = None
    for value in (claims.get("email"), claims.get("sub"), identity.get("userArn")):
        if isinstance(value, str) and value.strip():
            reviewer = value.strip()
            break
    if reviewer is None:
        reviewer = "anonymous@" + (source_ip or "unknown")
    agent = _header(event.get("headers"), "user-agent") or identity.get("userAgent") or ""
    return Identity(reviewer=reviewer, source_ip=source_ip, user_agent=str(agent)[:MAX_USER_AGENT])


def review_id_from(event: Mapping[str, Any]) -> str | None:
    """The review id of the path, or None if it cannot be one (answered as unknown)."""
    params = event.get("pathParameters") if isinstance(event.get("pathParameters"), Mapping) else {}
    value = params.get("reviewId")
    return value if isinstance(value, str) and REVIEW_ID_PATTERN.fullmatch(value) else None
