"""The pipeline's promises, checked against what the batches actually did (docs/batching.md).

1. Nothing is in the vault without a CLEAN verdict bound to the staged version, or a reviewer's
   approval.
2. Every uploaded version has exactly one outcome: one final result event (REVIEW_PENDING comes
   before a decision, INGRESS_CLEANUP_FAILED on top of an outcome), and it is the outcome the
   batch files say (``routed/``, ``decided/``, ``reported/``, the later stage winning).
3. Nothing is lost: each uploaded version is in exactly one place (allowed exceptions are reported
   duplicates, never losses).

The ground truth comes from the batch files the handlers wrote (the verdict on the staged copy, the
reviewer's decision, each object's fate), keyed by the exact ingress version, not from the result
events, which are themselves under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..contract import STAGING_PREFIX
from . import batchfiles
from .history import ExecutionHistory
from .inspection import Inspector
from .results import FINAL_OUTCOMES, Uploaded

INGRESS_CLEANUP_FAILED = "INGRESS_CLEANUP_FAILED"


@dataclass
class ExecutionFacts:
    """What the batches that handled one ingress version did with it (from their files)."""

    #: The verdict on the staged copy (None: never evaluated, or no staged copy).
    verdict: Optional[str] = None
    #: Reviewer decisions taken: APPROVE, DENY or TIMEOUT.
    decisions: set[str] = field(default_factory=set)
    #: Final statuses of the executions whose manifest holds the version.
    statuses: set[str] = field(default_factory=set)
    #: The version's fate per batch: its last line among routed/, decided/, reported/ (outcome, heldIn...).
    fates: list[dict] = field(default_factory=list)
    #: The ingress version stayed in ingress as well (an INGRESS_CLEANUP_FAILED event was sent).
    cleanup_failed: bool = False

    @property
    def outcomes(self) -> list[str]:
        return [str(f.get("outcome")) for f in self.fates]


def _version(line: dict) -> str:
    return str((line.get("source") or {}).get("versionId"))


def batch_facts(history: ExecutionHistory, s3: Any, batch_bucket: str) -> dict[str, ExecutionFacts]:
    """Ground truth per ingress version id from the batch files (docs/batching.md): the verdict in
    ``verdicts/`` (only with a staged copy: the verdict is bound to the staged version), the
    reviewer's decision in ``decided/``, each version's fate, and the execution's status. The
    execution's name is its batch id."""
    facts: dict[str, ExecutionFacts] = {}
    for arn in history.arns:
        batch_id = arn.rsplit(":", 1)[-1]
        status = history.status(arn)
        for line in batchfiles.stage_lines(s3, batch_bucket, batch_id, "manifest"):
            facts.setdefault(_version(line), ExecutionFacts()).statuses.add(status)
        for line in batchfiles.stage_lines(s3, batch_bucket, batch_id, "verdicts"):
            if line.get("staged") and line.get("verdict"):
                facts.setdefault(_version(line), ExecutionFacts()).verdict = str(line["verdict"])
        for line in batchfiles.stage_lines(s3, batch_bucket, batch_id, "decided"):
            review = line.get("review") or {}
            decision = str(review.get("decision") or "").upper()
            if decision:
                taken = "TIMEOUT" if review.get("reviewer") == "timeout" else decision
                facts.setdefault(_version(line), ExecutionFacts()).decisions.add(taken)
        for (_, _, version), fate in batchfiles.fates(s3, batch_bucket, batch_id).items():
            facts.setdefault(version, ExecutionFacts()).fates.append(fate)
    return facts


class Invariants:
    """Checks the promises for the engine's uploads (the shared ``uploaded`` list)."""

    def __init__(self, history: ExecutionHistory, inspector: Inspector, uploaded: list[Uploaded]) -> None:
        self._history = history
        self._inspector = inspector
        self._uploaded = uploaded

    def facts(self) -> dict[str, ExecutionFacts]:
        """Ground truth per ingress version id (see :func:`batch_facts`), with the cleanup failures reported."""
        deployment = self._history._deployment
        facts = batch_facts(self._history, deployment.s3, deployment.batch_bucket)
        for event in self._inspector.events:
            detail = event.get("detail") or {}
            if detail.get("outcome") == INGRESS_CLEANUP_FAILED:
                version = str((detail.get("object") or {}).get("versionId"))
                facts.setdefault(version, ExecutionFacts()).cleanup_failed = True
        return facts

    def violations(self, *, delete_allowed: bool = False, stored: Optional[list[dict]] = None) -> list[str]:
        """Nothing in the vault without CLEAN or APPROVE; exactly one outcome per uploaded version;
        each uploaded version in exactly one place.

        Allowed exceptions to "one place", each one a reported duplicate and never a loss:

        * a version the pipeline could not remove from ingress (an ``INGRESS_CLEANUP_FAILED`` event)
          is in ingress as well as in its zone;
        * a version that FAILED before routing (or whose execution failed) stays in ingress, and
          its staged copy in quarantine (``scans/<batch>/``) is kept for forensics;
        * ``delete_allowed`` (the pipeline deletes denied objects): a version a reviewer explicitly
          denied may be nowhere.

        ``stored``: the zones' versions if just read (:attr:`RunResult.stored`), else read now.
        """
        if stored is None:
            stored = self._inspector.stored_versions()
        facts = self.facts()
        events = self._final_events()
        stored_by_sha: dict[str, list[dict]] = {}
        for item in stored:
            stored_by_sha.setdefault(item["sha256"], []).append(item)
        problems = []
        for u in self._uploaded:
            fact = facts.get(u.version_id, ExecutionFacts())
            found = (self._outcome_problem(u, fact, events), self._misplaced(u, stored_by_sha, fact, delete_allowed))
            problems += [p for p in found if p]
        by_sha: dict[str, list[Uploaded]] = {}
        for u in self._uploaded:
            by_sha.setdefault(u.sha256, []).append(u)
        problems += [p for item in stored if item["zone"] == "vault" and (p := _unjustified(item, facts, by_sha))]
        return problems

    def _final_events(self) -> dict[tuple[str, str], list[str]]:
        """(key, ingress version) -> the final outcomes its result events reported, in order."""
        found: dict[tuple[str, str], list[str]] = {}
        for event in self._inspector.events:
            detail = event.get("detail") or {}
            obj = detail.get("object") or {}
            if detail.get("outcome") in FINAL_OUTCOMES:
                found.setdefault((obj.get("key"), obj.get("versionId")), []).append(str(detail["outcome"]))
        return found

    @staticmethod
    def _outcome_problem(uploaded: Uploaded, fact: ExecutionFacts, events: dict[tuple[str, str], list[str]]) -> Optional[str]:
        """One final result event, and the batch files agree (one fate, the same outcome)."""
        name = f"{uploaded.key} ({uploaded.version_id})"
        sent = events.get((uploaded.key, uploaded.version_id), [])
        if len(sent) != 1:
            return f"{name} has {len(sent)} outcomes: {', '.join(sent) or 'none'}"
        if len(fact.fates) != 1:
            return f"{name} has {len(fact.fates)} fates in the batch files: {', '.join(fact.outcomes) or 'none'}"
        if fact.outcomes != sent:
            return f"{name}: the result event says {sent[0]}, the batch files {fact.outcomes[0]}"
        return None

    def _misplaced(self, uploaded: Uploaded, stored: dict[str, list[dict]], fact: ExecutionFacts, delete_allowed: bool) -> Optional[str]:
        places = self._inspector.places_of(uploaded, stored.get(uploaded.sha256, []))
        if len(places) == 1 or _allowed_exception(places, fact, delete_allowed):
            return None
        where = ", ".join(f"{p['zone']}:{p['key']}" for p in places) or "nowhere"
        return f"{uploaded.key} ({uploaded.version_id}) is in {len(places)} places: {where}"



def _unjustified(item: dict[str, Any], facts: dict[str, ExecutionFacts], by_sha: dict[str, list[Uploaded]]) -> Optional[str]:
    sources = [u for u in by_sha.get(item["sha256"], []) if item["key"] == u.key]
    if not sources:
        return f"vault:{item['key']} does not match any uploaded object's bytes"
    if not any(_may_be_in_vault(facts.get(u.version_id, ExecutionFacts())) for u in sources):
        return f"vault:{item['key']} ({item['versionId']}) has no CLEAN verdict or approval"
    return None


def _allowed_exception(places: list[dict], fact: ExecutionFacts, delete_allowed: bool) -> bool:
    """Whether a version not in exactly one place is one of the documented exceptions."""
    zones = sorted(p["zone"] for p in places)
    if len(places) == 2 and "ingress" in zones and fact.cleanup_failed:
        return True
    held = "FAILED" in fact.statuses or "FAILED" in fact.outcomes
    if "ingress" in zones and held and all(
        p["zone"] == "ingress" or (p["zone"] == "quarantine" and p["key"].startswith(STAGING_PREFIX)) for p in places
    ):
        return True
    return not places and delete_allowed and "DENY" in fact.decisions


def _may_be_in_vault(fact: ExecutionFacts) -> bool:
    return fact.verdict == "CLEAN" or (fact.verdict == "REVIEW" and "APPROVE" in fact.decisions)
