"""Pure decision logic of evaluate_findings: the finding policy, finding tallies and per-object verdicts.

No AWS calls here. Everything a verdict depends on is passed in, so every combination can be tested.
Precedence: CORRUPT > DENY > REVIEW > CLEAN. Every reason that applies is reported, also when a
stronger one decides the verdict, and reasons never quote finding samples or object contents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from pipeline_common.constants import (
    ALLOW,
    CLEAN,
    CORRUPT,
    DENY,
    INTEGRITY_RESULTS,
    POLICY_ACTIONS,
    REVIEW,
    SEVERITIES,
    UNCHECKED,
)
from pipeline_common.errors import InvalidInputError
from pipeline_common.objects import tag_value

# Analysis status of one object, from Macie's sensitive data discovery results.
COMPLETE, PARTIAL, SKIPPED, MISSING = "COMPLETE", "PARTIAL", "SKIPPED", "MISSING"
ANALYSIS_STATUSES = (COMPLETE, PARTIAL, SKIPPED, MISSING)
# Worst status wins when the staged version has several discovery records.
ANALYSIS_RANK = {COMPLETE: 0, PARTIAL: 1, SKIPPED: 2}

VERDICT_RANK = {CLEAN: 0, REVIEW: 1, DENY: 2, CORRUPT: 3}
SEVERITY_RANK = {"LOW": 1, "MEDIUM": 2, "HIGH": 3}
# What an unknown or missing severity counts as: fail closed.
FALLBACK_SEVERITY = "HIGH"

DEFAULT_FINDING_POLICY = {"LOW": REVIEW, "MEDIUM": REVIEW, "HIGH": REVIEW}
DEFAULT_UNKNOWN_FORMAT_POLICY = REVIEW

MAX_REASON_DETAIL = 200
# Macie stops writing findings for a job at this many.
FINDINGS_CAP = 100_000
MAX_LISTED_VERSIONS = 3
# The category under which discovery results and findings count custom data identifier detections.
CUSTOM_IDENTIFIER = "CUSTOM_IDENTIFIER"


@dataclass(frozen=True)
class Policy:
    """What to do with findings of each severity, and with objects whose format could not be checked."""

    findings: Mapping[str, str]
    unknown_format: str = DEFAULT_UNKNOWN_FORMAT_POLICY

    def action_for(self, severity: str) -> str:
        return self.findings[severity]


def parse_finding_policy(text: str | None) -> dict[str, str]:
    """Parse FINDING_POLICY (JSON ``{"LOW": action, "MEDIUM": action, "HIGH": action}``).

    Unset or empty means every severity needs review. Keys and actions are case-insensitive; a
    severity left out keeps its default (REVIEW). Anything else raises InvalidInputError.
    """
    if text is None or not text.strip():
        return dict(DEFAULT_FINDING_POLICY)
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise InvalidInputError(f"FINDING_POLICY is not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise InvalidInputError(
            'FINDING_POLICY must be a JSON object like {"LOW": "ALLOW", "MEDIUM": "REVIEW", "HIGH": "DENY"}'
        )
    policy = dict(DEFAULT_FINDING_POLICY)
    problems = []
    for severity, action in raw.items():
        sev = str(severity).strip().upper()
        act = action.strip().upper() if isinstance(action, str) else action
        if sev not in SEVERITIES:
            problems.append(f"unknown severity {severity!r} (expected one of {', '.join(SEVERITIES)})")
        elif act not in POLICY_ACTIONS:
            problems.append(f"unknown action {action!r} for {sev} (expected one of {', '.join(POLICY_ACTIONS)})")
        else:
            policy[sev] = act
    if problems:
        raise InvalidInputError("FINDING_POLICY: " + "; ".join(problems))
    return policy


def parse_unknown_format_policy(text: str | None) -> str:
    """Parse UNKNOWN_FORMAT_POLICY (ALLOW|REVIEW|DENY); unset means REVIEW."""
    if text is None or not text.strip():
        return DEFAULT_UNKNOWN_FORMAT_POLICY
    action = text.strip().upper()
    if action not in POLICY_ACTIONS:
        raise InvalidInputError(
            f"UNKNOWN_FORMAT_POLICY must be one of {', '.join(POLICY_ACTIONS)}, got {text!r}"
        )
    return action


def parse_custom_identifier_names(text: str | None) -> dict[str, str]:
    """Parse CUSTOM_DATA_IDENTIFIER_NAMES (JSON ``{"<name in Macie>": "<name given>"}``); unset: none.

    The construct gives each custom data identifier a name unique in the account (the name given plus
    a suffix); findings carry that name, result events the one given.
    """
    if text is None or not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise InvalidInputError(f"CUSTOM_DATA_IDENTIFIER_NAMES is not valid JSON: {error}") from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in raw.items()):
        raise InvalidInputError("CUSTOM_DATA_IDENTIFIER_NAMES must be a JSON object of names to names")
    return raw


def load_policy(finding_policy: str | None, unknown_format_policy: str | None) -> Policy:
    """The Policy from the texts of FINDING_POLICY and UNKNOWN_FORMAT_POLICY (None when unset)."""
    return Policy(
        findings=parse_finding_policy(finding_policy),
        unknown_format=parse_unknown_format_policy(unknown_format_policy),
    )


def normalise_severity(severity: Any) -> str | None:
    """``finding.severity`` ({"description": "High", ...}) -> "HIGH"; None when missing or unknown."""
    description = severity.get("description") if isinstance(severity, Mapping) else None
    if not isinstance(description, str):
        return None
    value = description.strip().upper()
    return value if value in SEVERITIES else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def detection_counts(finding: Mapping[str, Any], custom_names: Mapping[str, str] | None = None) -> dict[str, int]:
    """Detection type -> occurrences in one finding.

    Managed identifiers are named by ``detections[].type`` (e.g. CREDIT_CARD_NUMBER), custom data
    identifiers by their name (translated by ``custom_names``, Macie name -> name given, when listed).
    A finding without any detection detail counts once under its finding type.
    """
    counts: dict[str, int] = {}
    result = ((finding.get("classificationDetails") or {}).get("result")) or {}
    for item in result.get("sensitiveData") or []:
        for detection in (item or {}).get("detections") or []:
            name = (detection or {}).get("type")
            if isinstance(name, str) and name:
                counts[name] = counts.get(name, 0) + _count(detection.get("count"))
    for detection in (result.get("customDataIdentifiers") or {}).get("detections") or []:
        name = (detection or {}).get("name")
        if isinstance(name, str) and name:
            name = (custom_names or {}).get(name, name)
            counts[name] = counts.get(name, 0) + _count(detection.get("count"))
    if not counts:
        finding_type = finding.get("type")
        counts[finding_type if isinstance(finding_type, str) and finding_type else "UNKNOWN"] = 1
    return counts


def reported_detections(record: Mapping[str, Any]) -> dict[str, int]:
    """Category -> occurrences that a finding or a discovery result record reports.

    Managed detections by ``classificationDetails.result.sensitiveData[].category`` and ``totalCount``,
    custom data identifiers under CUSTOM_IDENTIFIER (``customDataIdentifiers.totalCount``). A category
    whose count is missing or malformed but that lists detections counts once: never as nothing.
    """
    result = ((record.get("classificationDetails") or {}).get("result")) or {}
    counts: dict[str, int] = {}
    items = result.get("sensitiveData")
    custom = result.get("customDataIdentifiers")
    entries = [(item or {}) for item in items] if isinstance(items, list) else []
    if isinstance(custom, Mapping):
        entries.append({**custom, "category": CUSTOM_IDENTIFIER})
    for entry in entries:
        category = entry.get("category")
        number = _count(entry.get("totalCount")) or (1 if entry.get("detections") else 0)
        if number and isinstance(category, str) and category:
            counts[category] = counts.get(category, 0) + number
    return counts


# ------------------------------------------------------------------ where the findings are (issue 12)
#: Locations kept per object and detection type; Macie itself reports at most 15 per finding.
MAX_LOCATIONS = 10
#: And at most this many per object, whatever the number of types: the line reaches a result event,
#: which EventBridge limits to 256 KB.
MAX_OBJECT_LOCATIONS = 100
MAX_LOCATION_TEXT = 250  # Macie truncates a JSON path to 250 characters


def _position(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _name(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value if len(value) <= MAX_LOCATION_TEXT else value[: MAX_LOCATION_TEXT - 3] + "..."


def _compact(location: Mapping[str, Any]) -> dict[str, Any] | None:
    kept = {name: value for name, value in location.items() if value is not None}
    return kept or None


def _cell(cell: Mapping[str, Any]) -> dict[str, Any] | None:
    return _compact({"row": _position(cell.get("row")), "column": _position(cell.get("column")),
                     "columnName": _name(cell.get("columnName")), "cellReference": _name(cell.get("cellReference"))})


def _record(record: Mapping[str, Any]) -> dict[str, Any] | None:
    path = _name(record.get("jsonPath"))
    return _compact({"recordIndex": _position(record.get("recordIndex")), "jsonPath": path})


def _lines(span: Mapping[str, Any]) -> dict[str, Any] | None:
    start = _position(span.get("start"))
    if start is None:
        return None
    end = _position(span.get("end"))
    return {"lines": [start, end if end is not None and end >= start else start]}


def _page(page: Mapping[str, Any]) -> dict[str, Any] | None:
    number = _position(page.get("pageNumber"))
    return {"page": number} if number is not None else None


# Macie's Occurrences members -> how one entry becomes a location. Offset ranges count lines too
# (Macie's Range: "the number of lines from the beginning of the file"), so they become line ranges.
_OCCURRENCE_KINDS = (("cells", _cell), ("records", _record), ("lineRanges", _lines), ("offsetRanges", _lines), ("pages", _page))


def occurrence_locations(occurrences: Any) -> list[dict[str, Any]]:
    """Where one detection's occurrences are, as Macie reports them in ``occurrences``, without any
    value: cells ``{row, column, columnName?, cellReference?}``, records ``{recordIndex, jsonPath}``,
    line and offset ranges ``{"lines": [start, end]}``, pages ``{"page": n}``."""
    if not isinstance(occurrences, Mapping):
        return []
    locations = []
    for member, convert in _OCCURRENCE_KINDS:
        entries = occurrences.get(member)
        for entry in entries if isinstance(entries, list) else []:
            location = convert(entry) if isinstance(entry, Mapping) else None
            if location is not None:
                locations.append(location)
    return locations


def detection_locations(finding: Mapping[str, Any], custom_names: Mapping[str, str] | None = None) -> dict[str, list[dict]]:
    """Detection type (named as :func:`detection_counts` names it) -> the locations of its occurrences."""
    result = ((finding.get("classificationDetails") or {}).get("result")) or {}
    found: dict[str, list[dict]] = {}
    detections = [(d, d.get("type")) for item in result.get("sensitiveData") or [] if isinstance(item, Mapping)
                  for d in item.get("detections") or [] if isinstance(d, Mapping)]
    custom = result.get("customDataIdentifiers")
    if isinstance(custom, Mapping):
        detections += [(d, (custom_names or {}).get(d.get("name"), d.get("name")))
                       for d in custom.get("detections") or [] if isinstance(d, Mapping)]
    for detection, name in detections:
        if isinstance(name, str) and name:
            found.setdefault(name, []).extend(occurrence_locations(detection.get("occurrences")))
    return found


@dataclass
class FindingTally:
    """The findings attributed to one object: counts per severity and per detection type, and (when
    ``keep_locations``) at most MAX_LOCATIONS locations per detection type."""

    count: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)
    unknown_severity: int = 0
    types: dict[str, int] = field(default_factory=dict)
    custom_names: Mapping[str, str] = field(default_factory=dict)
    categories: set[str] = field(default_factory=set)
    keep_locations: bool = False
    locations: dict[str, list[dict]] = field(default_factory=dict)

    def add(self, finding: Mapping[str, Any]) -> None:
        severity = normalise_severity(finding.get("severity"))
        if severity is None:
            self.unknown_severity += 1
            severity = FALLBACK_SEVERITY
        self.count += 1
        self.by_severity[severity] = self.by_severity.get(severity, 0) + 1
        for name, occurrences in detection_counts(finding, self.custom_names).items():
            self.types[name] = self.types.get(name, 0) + occurrences
        self.categories.update(reported_detections(finding))
        if self.keep_locations:
            self._add_locations(finding)

    def _add_locations(self, finding: Mapping[str, Any]) -> None:
        total = sum(len(kept) for kept in self.locations.values())
        for name, found in detection_locations(finding, self.custom_names).items():
            kept = self.locations.setdefault(name, [])
            for location in found:
                if len(kept) >= MAX_LOCATIONS or total >= MAX_OBJECT_LOCATIONS:
                    break
                if location not in kept:
                    kept.append(location)
                    total += 1

    @property
    def max_severity(self) -> str | None:
        present = [s for s, n in self.by_severity.items() if n]
        return max(present, key=SEVERITY_RANK.__getitem__) if present else None

    def summary(self) -> dict[str, Any]:
        types = dict(sorted(self.types.items()))
        summary = {"count": self.count, "types": types, "maxSeverity": self.max_severity, "tagValue": findings_tag_value(types)}
        if self.keep_locations:
            summary["locations"] = {name: list(found) for name, found in sorted(self.locations.items()) if found}
        return summary


@dataclass(frozen=True)
class JobState:
    """How the Macie job ended, for every object of the scan."""

    scan_complete: bool = True
    job_status: str | None = "COMPLETE"
    job_error: bool = False
    #: Event types of the error events Macie logged for the job (job#<id>.errors): none is CLEAN.
    error_events: tuple[str, ...] = ()
    #: The job's findings reached Macie's cap per job: a missing finding proves nothing, none is CLEAN.
    findings_capped: bool = False


@dataclass(frozen=True)
class DiscoveryRecord:
    """What one sensitive data discovery result record says about one object version."""

    version_id: str | None
    status: str
    reason: str | None = None
    reported: Mapping[str, int] = field(default_factory=dict)


@dataclass
class Evidence:
    """What the job says about one staged object version, bound to its version id.

    ``analysis``/``analysis_reason`` and ``reported`` come from the discovery result records of the
    staged version only; records and findings about any other version of the same key (or about no
    version) are kept apart, as versions, in ``other_results`` and ``other_findings``.
    """

    staged_version: str | None
    analysis: str = MISSING
    analysis_reason: str | None = None
    reported: dict[str, int] = field(default_factory=dict)
    other_results: list[str | None] = field(default_factory=list)
    other_findings: list[str | None] = field(default_factory=list)

    def bound_to(self, version: str | None) -> bool:
        """Whether ``version`` (of a finding or a record) is the staged version: never without both."""
        return bool(self.staged_version) and version == self.staged_version

    def add_records(self, records: list[DiscoveryRecord]) -> None:
        """Take the records of this object's key: the staged version's decide the analysis (worst
        status wins), the others are noted as not bound."""
        for record in records:
            if not self.bound_to(record.version_id):
                self.other_results.append(record.version_id)
                continue
            if self.analysis == MISSING or ANALYSIS_RANK[record.status] > ANALYSIS_RANK[self.analysis]:
                self.analysis, self.analysis_reason = record.status, record.reason
            for category, number in record.reported.items():
                self.reported[category] = self.reported.get(category, 0) + number



@dataclass(frozen=True)
class Verdict:
    verdict: str
    reasons: list[str]


def _detail(text: Any) -> str:
    value = " ".join(str(text).split()) if text else ""
    return value if len(value) <= MAX_REASON_DETAIL else value[: MAX_REASON_DETAIL - 3] + "..."


def findings_tag_value(types: Mapping[str, int]) -> str:
    """The ``macie-pipeline:findings`` object tag: ``TYPE:count`` pairs, or ``none``; a valid S3 tag value."""
    if not types:
        return "none"
    return tag_value(" ".join(f"{name}:{count}" for name, count in types.items()))


class _Outcome:
    """The verdict so far and every reason noted on the way."""

    def __init__(self) -> None:
        self.verdict = CLEAN
        self.reasons: list[str] = []

    def at_least(self, level: str, reason: str) -> None:
        """Note ``reason`` and raise the verdict to ``level`` (CLEAN only notes it)."""
        self.reasons.append(reason)
        if VERDICT_RANK[level] > VERDICT_RANK[self.verdict]:
            self.verdict = level


def decide(
    *,
    integrity_status: str,
    findings: FindingTally,
    analysis: str,
    policy: Policy,
    job: JobState,
    integrity_reason: str | None = None,
    analysis_reason: str | None = None,
    evidence: Evidence | None = None,
) -> Verdict:
    """The verdict for one object, with every reason that contributed to it.

    ``evidence`` adds what is not bound to the staged version (results and findings about another
    version of its key) and the detections its discovery results report without a listed finding.
    """
    if integrity_status not in INTEGRITY_RESULTS:
        raise InvalidInputError(f"unknown integrity status {integrity_status!r}")
    if analysis not in ANALYSIS_STATUSES:
        raise InvalidInputError(f"unknown analysis status {analysis!r}")
    outcome = _Outcome()
    _weigh_integrity(outcome, integrity_status, integrity_reason, policy)
    _weigh_findings(outcome, findings, policy)
    _weigh_analysis(outcome, analysis, analysis_reason)
    if evidence is not None:
        _weigh_unbound(outcome, evidence)
        _weigh_reported(outcome, evidence.reported, findings)
    _weigh_job(outcome, job)
    return Verdict(outcome.verdict, outcome.reasons)


def _weigh_integrity(outcome: _Outcome, status: str, reason: str | None, policy: Policy) -> None:
    """CORRUPT for a failed integrity check; an unchecked format as the unknown-format policy says."""
    if status == CORRUPT:
        detail = _detail(reason)
        outcome.at_least(
            CORRUPT, "integrity check failed: the object is empty or cannot be parsed" + (f" ({detail})" if detail else "")
        )
    elif status == UNCHECKED:
        text = "the file format is not recognised, so its integrity could not be checked"
        if policy.unknown_format == ALLOW:
            outcome.at_least(CLEAN, text + "; allowed by the unknown-format policy")
        elif policy.unknown_format == REVIEW:
            outcome.at_least(REVIEW, text + "; the unknown-format policy requires review")
        else:
            outcome.at_least(DENY, text + "; the unknown-format policy denies such objects")


def _weigh_findings(outcome: _Outcome, findings: FindingTally, policy: Policy) -> None:
    """The finding policy's action for each severity present, most severe first."""
    if findings.unknown_severity:
        outcome.at_least(
            CLEAN,
            f"{findings.unknown_severity} finding(s) had no recognised severity and were treated as {FALLBACK_SEVERITY}",
        )
    for severity in sorted(findings.by_severity, key=SEVERITY_RANK.__getitem__, reverse=True):
        number = findings.by_severity[severity]
        if not number:
            continue
        action = policy.action_for(severity)
        text = f"{number} {severity}-severity Macie finding(s)"
        if action == DENY:
            outcome.at_least(DENY, text + "; the finding policy denies them")
        elif action == REVIEW:
            outcome.at_least(REVIEW, text + "; the finding policy requires review")
        else:
            outcome.at_least(CLEAN, text + "; allowed by the finding policy")


def _weigh_analysis(outcome: _Outcome, analysis: str, reason: str | None) -> None:
    """REVIEW unless Macie's discovery result says it analysed the whole object."""
    detail = _detail(reason)
    suffix = f" (reason: {detail})" if detail else ""
    if analysis == MISSING:
        # A reason given for MISSING is the evaluator's own sentence saying why no result could be used
        # (the results were unreadable); it names their location in full, so it is not shortened.
        outcome.at_least(
            REVIEW,
            reason or "no Macie sensitive data discovery result was found for the object, so it may not have been analysed",
        )
    elif analysis == PARTIAL:
        outcome.at_least(REVIEW, "Macie analysed only part of the object" + suffix)
    elif analysis == SKIPPED:
        outcome.at_least(REVIEW, "Macie skipped the object and did not analyse it" + suffix)


def _versions(versions: list[str | None]) -> str:
    names = sorted({version or "no version id" for version in versions})
    shown = ", ".join(names[:MAX_LISTED_VERSIONS])
    return shown + (f" and {len(names) - MAX_LISTED_VERSIONS} more" if len(names) > MAX_LISTED_VERSIONS else "")


def _weigh_unbound(outcome: _Outcome, evidence: Evidence) -> None:
    """REVIEW for results or findings about another version of the key: they prove nothing about the
    staged version, and a finding on the key is never dropped."""
    staged = evidence.staged_version or "unknown"
    if evidence.other_results:
        outcome.at_least(
            REVIEW,
            f"{len(evidence.other_results)} Macie discovery result(s) for the object's key are about version "
            f"{_detail(_versions(evidence.other_results))}, not the staged version {_detail(staged)}: "
            "they do not prove that the staged version was analysed",
        )
    if evidence.other_findings:
        outcome.at_least(
            REVIEW,
            f"{len(evidence.other_findings)} Macie finding(s) for the object's key are about version "
            f"{_detail(_versions(evidence.other_findings))}, not the staged version {_detail(staged)}",
        )


def _weigh_reported(outcome: _Outcome, reported: Mapping[str, int], findings: FindingTally) -> None:
    """REVIEW when the staged version's discovery result reports detections of a category no listed
    finding covers (suppressed, archived or not yet listed). A discovery result carries no severity,
    so the finding policy cannot be applied: review it."""
    unlisted = {category: n for category, n in reported.items() if category not in findings.categories}
    if unlisted:
        outcome.at_least(
            REVIEW,
            f"Macie's discovery result reports {sum(unlisted.values())} detection(s) of "
            f"{_detail(', '.join(sorted(unlisted)))} without a listed finding",
        )


def _weigh_job(outcome: _Outcome, job: JobState) -> None:
    """REVIEW when the classification job did not complete or reported errors."""
    if not job.scan_complete:
        status = f" (job status {job.job_status})" if job.job_status else ""
        outcome.at_least(REVIEW, f"the Macie classification job did not complete{status}")
    if job.job_error:
        outcome.at_least(REVIEW, "the Macie classification job reported errors while analysing objects")
    if job.error_events:
        kinds = sorted(set(job.error_events))
        outcome.at_least(
            REVIEW,
            f"Macie logged {len(job.error_events)} error event(s) for the job ({_detail(', '.join(kinds))}), "
            "so some objects may not have been analysed",
        )
    if job.findings_capped:
        outcome.at_least(
            REVIEW,
            f"the Macie job reached its limit of {FINDINGS_CAP:,} findings, so findings for this object may be missing",
        )


def evaluated(
    item: Mapping[str, Any],
    tally: FindingTally,
    evidence: Evidence,
    policy: Policy,
    job: JobState,
    ignored: int,
) -> dict:
    """The input object with its verdict, the reasons for it, its analysis status and findings summary."""
    integrity = item["integrity"]
    verdict = decide(
        integrity_status=integrity["status"],
        integrity_reason=integrity.get("reason") if isinstance(integrity.get("reason"), str) else None,
        findings=tally,
        analysis=evidence.analysis,
        analysis_reason=evidence.analysis_reason,
        policy=policy,
        job=job,
        evidence=evidence,
    )
    final, reasons = verdict.verdict, list(verdict.reasons)
    if ignored and final == CLEAN:
        # A one-time job scoped to this scan's tag should find nothing else: if it did, the
        # attribution of findings to objects cannot be trusted, so nothing is CLEAN.
        final = REVIEW
        reasons.append(f"{ignored} finding(s) of this job could not be attributed to a scanned object")
    return {**item, "verdict": final, "reasons": reasons, "analysis": evidence.analysis, "findings": tally.summary()}
