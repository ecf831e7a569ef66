"""What the local engine hands back: uploads, executions, and where each object ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

#: Outcomes a result event may report for one object version, in the order a version can go through them.
TERMINAL_OUTCOMES = ("VAULT", "REVIEW_PENDING", "QUARANTINED", "APPROVED", "DENIED", "DELETED", "SUPERSEDED", "FAILED")
#: The outcomes that end a version's way through the pipeline (REVIEW_PENDING waits for a decision).
FINAL_OUTCOMES = tuple(o for o in TERMINAL_OUTCOMES if o != "REVIEW_PENDING")


@dataclass
class Uploaded:
    """One object version put into the ingress bucket by the engine."""

    key: str
    version_id: str
    etag: str
    size: int
    sha256: str


@dataclass
class ObjectResult:
    """Where one uploaded object ended, and what the pipeline said about it."""

    key: str
    version_id: str
    outcome: Optional[str]
    integrity: Optional[str]
    findings: dict[str, int]
    verdict: Optional[str]
    zone: Optional[str]
    bucket: Optional[str]
    final_key: Optional[str]
    tags: dict[str, str]
    review: Optional[dict] = None
    #: Why the object ended where it did: the verdict's reasons, the integrity check's reason, or the failure.
    reason: Optional[str] = None

    def as_json(self) -> dict:
        """The row ``run --json`` prints; ``review`` (who decided, the result event's ``detail.review``)
        only for objects a reviewer decided or that timed out."""
        return {
            "key": self.key,
            "integrity": self.integrity,
            "findings": self.findings,
            "verdict": self.verdict,
            "bucket": self.bucket,
            "final_key": self.final_key,
            "tags": self.tags,
            "zone": self.zone,
            "outcome": self.outcome,
            "reason": self.reason,
            **({"review": self.review} if self.review else {}),
        }


@dataclass
class Execution:
    """One state machine execution as Step Functions describes it, with the states it entered."""

    arn: str
    status: str
    error: Optional[str]
    cause: Optional[str]
    states: list[str]
    history: list[dict]
    #: States entered by the child executions of its Distributed Maps (each child's states in order).
    map_states: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """The objects of one run, the executions that handled them, and what they sent."""

    objects: list[ObjectResult]
    executions: list[Execution]
    events: list[dict]
    notifications: list[dict]
    #: Every version in the four zones when the result was read (see Inspector.stored_versions).
    stored: list[dict] = field(default_factory=list)

    def by_key(self, key: str) -> ObjectResult:
        matches = [o for o in self.objects if o.key == key]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} results for key {key!r}")
        return matches[0]
