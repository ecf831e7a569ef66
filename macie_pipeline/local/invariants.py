"""The pipeline's two promises, checked against what the executions actually did.

1. Each uploaded version is in exactly one place (allowed exceptions are reported duplicates,
   never losses).
2. Nothing is in the vault without a CLEAN verdict or a reviewer's approval.

The ground truth comes from the execution histories (what the evaluator returned, what the
reviewer decided), not from the result events, which are themselves under test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from ..contract import STAGING_PREFIX
from . import batchfiles
from .history import ExecutionHistory
from .inspection import Inspector
from .results import Uploaded

_DECIDED = ("APPROVE", "DENY")
# The state (old workflow) or result event (batches) that reports a version left in ingress as well.
_CLEANUP_FAILED = "Report ingress cleanup failed"


@dataclass
class ExecutionFacts:
    """What the executions that handled one ingress version did with it."""

    #: The verdict the evaluator returned (None: never evaluated).
    verdict: Optional[str] = None
    #: Reviewer decisions taken: APPROVE, DENY or TIMEOUT.
    decisions: set[str] = field(default_factory=set)
    #: Final statuses of those executions.
    statuses: set[str] = field(default_factory=set)
    #: States those executions entered.
    states: set[str] = field(default_factory=set)


@dataclass
class _OneExecution:
    """What one execution's history says: versions handled, verdicts returned, decisions taken."""

    handled: set[str] = field(default_factory=set)
    evaluated: dict[str, str] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)


def execution_facts(history: ExecutionHistory) -> dict[str, ExecutionFacts]:
    """Ground truth per ingress version id, from every execution the engine started."""
    facts: dict[str, ExecutionFacts] = {}
    for arn in history.arns:
        events = history.events(arn)
        status = history.status(arn)
        states = set(history.states(arn, events))
        seen = _read_execution(events)
        for version in seen.handled:
            entry = facts.setdefault(version, ExecutionFacts())
            entry.statuses.add(status)
            entry.states |= states
            if version in seen.evaluated:
                entry.verdict = seen.evaluated[version]
                entry.decisions |= seen.taken
    return facts


def batch_facts(history: ExecutionHistory, s3: Any, batch_bucket: str) -> dict[str, ExecutionFacts]:
    """Ground truth per ingress version id from the batch files (docs/batching.md): the verdict in
    ``verdicts/`` (only with a staged copy: the verdict is bound to the staged version), the
    reviewer's decision in ``decided/``, and the execution's status and states. The execution's
    name is its batch id."""
    facts: dict[str, ExecutionFacts] = {}
    for arn in history.arns:
        batch_id = arn.rsplit(":", 1)[-1]
        status = history.status(arn)
        for line in batchfiles.stage_lines(s3, batch_bucket, batch_id, "verdicts"):
            entry = facts.setdefault(str((line.get("source") or {}).get("versionId")), ExecutionFacts())
            entry.statuses.add(status)
            if line.get("staged") and line.get("verdict"):
                entry.verdict = str(line["verdict"])
        for line in batchfiles.stage_lines(s3, batch_bucket, batch_id, "decided"):
            decision = str((line.get("review") or {}).get("decision") or "").upper()
            entry = facts.setdefault(str((line.get("source") or {}).get("versionId")), ExecutionFacts())
            if decision:
                entry.decisions.add("TIMEOUT" if (line.get("review") or {}).get("reviewer") == "timeout" else decision)
        for line in batchfiles.stage_lines(s3, batch_bucket, batch_id, "manifest"):
            facts.setdefault(str((line.get("source") or {}).get("versionId")), ExecutionFacts()).statuses.add(status)
    return facts


def _read_execution(events: list[dict]) -> _OneExecution:
    seen = _OneExecution()
    for output in _state_outputs(events):
        payload = output.get("Payload") if "Payload" in output else output
        if isinstance(payload, dict) and isinstance(payload.get("objects"), list):
            _read_objects(payload, seen)
        seen.taken |= _decisions_in(output)
    return seen


def _state_outputs(events: list[dict]) -> Iterator[dict]:
    """The JSON object outputs of the tasks and states in a history (other outputs are skipped)."""
    for event in events:
        details = event.get("taskSucceededEventDetails") or event.get("stateExitedEventDetails") or {}
        try:
            output = json.loads(details.get("output") or "null")
        except ValueError:
            continue
        if isinstance(output, dict):
            yield output


def _read_objects(payload: dict, seen: _OneExecution) -> None:
    """The versions in a payload's ``objects``; with a ``summary``, the evaluator's verdict for each."""
    for obj in payload["objects"]:
        if not isinstance(obj, dict):
            continue
        version = obj.get("versionId") or (obj.get("source") or {}).get("versionId")
        if version:
            seen.handled.add(version)
            if "summary" in payload and "verdict" in obj:
                seen.evaluated[version] = str(obj["verdict"])


def _decisions_in(output: dict) -> set[str]:
    """A reviewer's decision in a state's output: the review API's answer or the review record."""
    taken = set()
    if output.get("decision") in _DECIDED and "reviewer" in output:
        taken.add(output["decision"])
    review = output.get("review")
    if isinstance(review, dict) and review.get("decision") in (*_DECIDED, "TIMEOUT"):
        taken.add(review["decision"])
    return taken


class Invariants:
    """Checks the promises for the engine's uploads (the shared ``uploaded`` list)."""

    def __init__(self, history: ExecutionHistory, inspector: Inspector, uploaded: list[Uploaded]) -> None:
        self._history = history
        self._inspector = inspector
        self._uploaded = uploaded

    def violations(self, *, delete_allowed: bool = False) -> list[str]:
        """Each uploaded version is in exactly one place; nothing is in the vault without CLEAN or APPROVE.

        The facts come from the executions (what the evaluator returned, what the reviewer decided),
        not from the result events, which are themselves under test. Allowed exceptions, each one a
        reported duplicate and never a loss:

        * a version the workflow could not remove from ingress (its execution entered "Report
          ingress cleanup failed") is in ingress as well as in its zone;
        * after a failed execution the original stays in ingress and the staged copy in quarantine
          (``scans/<scan-id>/``) is kept for forensics;
        * ``delete_allowed`` (the pipeline deletes denied objects): a version a reviewer explicitly
          denied may be nowhere.
        """
        stored = self._inspector.stored_versions()
        facts = self._facts()
        problems = [p for u in self._uploaded if (p := self._misplaced(u, stored, facts, delete_allowed))]
        problems += self._outcome_problems()
        problems += [p for item in stored if item["zone"] == "vault" and (p := self._unjustified(item, facts))]
        return problems

    def _facts(self) -> dict[str, ExecutionFacts]:
        deployment = self._history._deployment
        batch_bucket = getattr(deployment, "batch_bucket", None)
        if batch_bucket is None:
            return execution_facts(self._history)
        facts = batch_facts(self._history, deployment.s3, batch_bucket)
        for version in self._cleanup_failed():  # reported: the scanned version stays in ingress too
            facts.setdefault(version, ExecutionFacts()).states.add(_CLEANUP_FAILED)
        return facts

    def _outcome_problems(self) -> list[str]:
        """Every uploaded version has exactly one outcome (its terminal result events agree; an
        ``INGRESS_CLEANUP_FAILED`` event comes on top of an outcome, not instead of one)."""
        outcomes: dict[tuple[str, str], set[str]] = {}
        for event in self._inspector.events:
            detail = event.get("detail") or {}
            obj = detail.get("object") or {}
            if detail.get("outcome") and detail.get("outcome") != "INGRESS_CLEANUP_FAILED":
                outcomes.setdefault((obj.get("key"), obj.get("versionId")), set()).add(str(detail["outcome"]))
        problems = []
        for u in self._uploaded:
            found = outcomes.get((u.key, u.version_id), set())
            if len(found) != 1:
                problems.append(f"{u.key} ({u.version_id}) has {len(found)} outcomes: {', '.join(sorted(found)) or 'none'}")
        return problems

    def _cleanup_failed(self) -> set[str]:
        return {
            str(((e.get("detail") or {}).get("object") or {}).get("versionId"))
            for e in self._inspector.events if (e.get("detail") or {}).get("outcome") == "INGRESS_CLEANUP_FAILED"
        }

    def _misplaced(self, uploaded: Uploaded, stored: list[dict], facts: dict[str, ExecutionFacts], delete_allowed: bool) -> Optional[str]:
        places = self._inspector.places_of(uploaded, stored)
        if len(places) == 1 or _allowed_exception(places, facts.get(uploaded.version_id, ExecutionFacts()), delete_allowed):
            return None
        where = ", ".join(f"{p['zone']}:{p['key']}" for p in places) or "nowhere"
        return f"{uploaded.key} ({uploaded.version_id}) is in {len(places)} places: {where}"

    def _unjustified(self, item: dict[str, Any], facts: dict[str, ExecutionFacts]) -> Optional[str]:
        sources = [u for u in self._uploaded if u.sha256 == item["sha256"] and item["key"] == u.key]
        if not sources:
            return f"vault:{item['key']} does not match any uploaded object's bytes"
        if not any(_may_be_in_vault(facts.get(u.version_id, ExecutionFacts())) for u in sources):
            return f"vault:{item['key']} ({item['versionId']}) has no CLEAN verdict or approval"
        return None


def _allowed_exception(places: list[dict], fact: ExecutionFacts, delete_allowed: bool) -> bool:
    """Whether a version not in exactly one place is one of the documented exceptions."""
    zones = sorted(p["zone"] for p in places)
    if len(places) == 2 and "ingress" in zones and _CLEANUP_FAILED in fact.states:
        return True
    if "ingress" in zones and "FAILED" in fact.statuses and all(
        p["zone"] == "ingress" or (p["zone"] == "quarantine" and p["key"].startswith(STAGING_PREFIX)) for p in places
    ):
        return True
    return not places and delete_allowed and "DENY" in fact.decisions


def _may_be_in_vault(fact: ExecutionFacts) -> bool:
    return fact.verdict == "CLEAN" or (fact.verdict == "REVIEW" and "APPROVE" in fact.decisions)
