"""Run cfn-lint (1.x) in-process on a synthesized CloudFormation template.

Uses ``cfnlint.api.lint(json_text, config=ManualArgs(regions=[...]))``: the
template dict is serialised to JSON and linted with cfn-lint's default rule set
(errors ``E*``, warnings ``W*``; informational ``I*`` only if asked for).
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from cfnlint.api import ManualArgs, lint

__all__ = ["lint_template", "errors_of", "warnings_of", "format_findings"]

_LEVELS = {"E": "error", "W": "warning", "I": "informational"}


def _as_dict(match: Any) -> dict:
    rule = match.rule
    rule_id = getattr(rule, "id", "") or ""
    path = getattr(match, "path", None)  # copied from the RuleMatch when the rule gave one
    return {
        "rule": rule_id,
        "level": _LEVELS.get(rule_id[:1].upper(), "unknown"),
        "message": match.message,
        "path": list(path) if path is not None else None,
        "path_string": getattr(match, "path_string", None),
        "line": match.linenumber,
        "short": getattr(rule, "shortdesc", ""),
    }


def lint_template(
    template: dict,
    regions: Iterable[str] = ("us-east-1",),
    ignore_checks: Iterable[str] = (),
    include_checks: Iterable[str] = (),
) -> list[dict]:
    """cfn-lint findings for ``template``, one dict per match.

    Each dict has ``rule`` (e.g. ``"E3002"``), ``level`` (``"error"``,
    ``"warning"`` or ``"informational"``), ``message``, ``path`` (list of keys
    into the template, or None), ``path_string``, ``line`` and ``short``.
    ``ignore_checks``/``include_checks`` take rule ids or prefixes (``"W"``, ``"I"``).
    """
    config: dict[str, Any] = {"regions": list(regions)}
    if ignore_checks:
        config["ignore_checks"] = list(ignore_checks)
    if include_checks:
        config["include_checks"] = list(include_checks)
    matches = lint(json.dumps(template, indent=1), config=ManualArgs(**config))
    return [_as_dict(m) for m in matches]


def errors_of(findings: list[dict]) -> list[dict]:
    return [f for f in findings if f["level"] == "error"]


def warnings_of(findings: list[dict]) -> list[dict]:
    return [f for f in findings if f["level"] == "warning"]


def format_findings(findings: list[dict]) -> str:
    """One line per finding, for assertion messages."""
    return "\n".join(
        f"{f['level']} {f['rule']} at {f['path_string'] or '?'}: {f['message']}" for f in findings
    ) or "(no findings)"
