"""Settings of SensitiveDataScanPipeline: small value types and the one place that validates them.

Every type here is plain Python (frozen dataclasses and enums) so that a user's settings can be
built, compared and tested without synthesizing anything.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from aws_cdk import Duration
from aws_cdk import aws_events as events

# Macie limits, from the CreateCustomDataIdentifier / CreateAllowList API reference.
MAX_REGEX_LENGTH = 512
MAX_KEYWORDS = 50
MAX_IGNORE_WORDS = 10
MAX_WORD_LENGTH = 90
MIN_KEYWORD_LENGTH = 3
MIN_IGNORE_WORD_LENGTH = 4
MAX_DESCRIPTION_LENGTH = 512
# What one classification job may use (CreateClassificationJob).
MAX_CUSTOM_DATA_IDENTIFIERS_PER_JOB = 30
MAX_ALLOW_LISTS_PER_JOB = 10
MAX_MATCH_DISTANCE = 300
#: The SQS event source mapping takes at most 10,000 messages per batch; a batch is one execution.
MAX_BATCH_OBJECTS = 10_000
#: The SQS event source mapping waits at most 300 seconds to fill a batch (MaximumBatchingWindowInSeconds).
MAX_BATCH_WINDOW_SECONDS = 300
#: Objects per chunk: one child workflow and one bulk invocation per step handle a chunk.
MAX_CHUNK_OBJECTS = 1_000
#: Child workflows a Distributed Map runs at the same time (at most 10,000; bounded lower here).
MAX_MAP_CONCURRENCY = 1_000
#: Job checks of one scan at most (ceil(max_scan_wait / poll_interval)): bounds the execution's history.
MAX_JOB_CHECKS = 1_000
MAX_NAME_LENGTH = 128
NAME_PATTERN = re.compile(r"^[A-Za-z0-9 _.-]{1,128}$")
SEVERITY_NAMES = ("low", "medium", "high")


class FindingAction(str, enum.Enum):
    """What a finding of a given severity does to an object's verdict."""

    ALLOW = "ALLOW"  #: the finding alone does not hold the object back
    REVIEW = "REVIEW"  #: a person must approve the object before it reaches the vault
    DENY = "DENY"  #: the object is quarantined, no review


class DenyPolicy(str, enum.Enum):
    """What happens to an object a reviewer denies, or that nobody reviews before the timeout."""

    QUARANTINE = "QUARANTINE"  #: kept in the quarantine bucket for forensics (default)
    DELETE = "DELETE"  #: the reviewed version is deleted from the review bucket


class UnknownFormatPolicy(str, enum.Enum):
    """What the integrity check's UNCHECKED result (a format it cannot parse) means for the verdict."""

    ALLOW = "ALLOW"  #: the Macie scan alone decides
    REVIEW = "REVIEW"  #: a person must approve the object even if the scan is clean (default)
    DENY = "DENY"  #: the object is quarantined


class ManagedDataIdentifierSelector(str, enum.Enum):
    """Which of Macie's managed data identifiers a job uses (``managedDataIdentifierSelector``)."""

    RECOMMENDED = "RECOMMENDED"
    ALL = "ALL"
    INCLUDE = "INCLUDE"
    EXCLUDE = "EXCLUDE"
    NONE = "NONE"


class ObjectLockMode(str, enum.Enum):
    GOVERNANCE = "GOVERNANCE"
    COMPLIANCE = "COMPLIANCE"


@dataclass(frozen=True)
class FindingPolicy:
    """Maps each Macie severity to an action. Default: every finding needs a person's review.

    Custom data identifiers always produce MEDIUM findings (they have no severity levels), so
    ``medium`` is also the action for your own identifiers.
    """

    low: FindingAction = FindingAction.REVIEW
    medium: FindingAction = FindingAction.REVIEW
    high: FindingAction = FindingAction.REVIEW

    def as_dict(self) -> dict:
        return {"LOW": value_of(self.low), "MEDIUM": value_of(self.medium), "HIGH": value_of(self.high)}

    @staticmethod
    def from_mapping(policy: Mapping[str, Any]) -> "FindingPolicy":
        """``{"LOW": "ALLOW", "high": FindingAction.DENY}`` (keys case-insensitive, missing ones REVIEW).

        Check the mapping with ``validate_settings`` first: unknown keys are ignored here.
        """
        given = {str(k).lower(): v for k, v in policy.items() if str(k).lower() in SEVERITY_NAMES}
        return FindingPolicy(**given)


@dataclass(frozen=True)
class CustomDataIdentifier:
    """A Macie custom data identifier (``AWS::Macie::CustomDataIdentifier``).

    :param name: unique name, 1-128 of letters, digits, space, ``_ . -``.
    :param regex: the pattern Macie matches (at most 512 characters); checked at synth.
    :param keywords: words that must appear within ``maximum_match_distance`` characters before a
        match (up to 50, 3-90 characters each, not case sensitive). Default: none, every regex match counts.
    :param ignore_words: a match that *contains* one of these is ignored (up to 10, 4-90 characters,
        case sensitive).
    :param maximum_match_distance: 1-300 characters. Default: 50 (Macie's default).
    :param description: free text, 1-512 characters (others in the account may see it: no sensitive
        data). Default: none.
    """

    name: str
    regex: str
    keywords: Sequence[str] = ()
    ignore_words: Sequence[str] = ()
    maximum_match_distance: int = 50
    description: Optional[str] = None


@dataclass(frozen=True)
class AllowList:
    """A Macie allow list of text that is not sensitive, given as a regular expression.

    :param name: unique name (same rules as a custom data identifier's).
    :param regex: matches of this pattern are never reported (at most 512 characters).
    :param description: free text, 1-512 characters. Default: none.
    """

    name: str
    regex: str
    description: Optional[str] = None


@dataclass(frozen=True)
class ObjectLock:
    """Object Lock (WORM) for the vault bucket: every version is retained for ``retention``.

    COMPLIANCE mode cannot be shortened or removed by anyone, the root user included.
    """

    mode: ObjectLockMode = ObjectLockMode.GOVERNANCE
    retention: Duration = field(default_factory=lambda: Duration.days(365))


@dataclass(frozen=True)
class Trigger:
    """How scans start. Build one with :meth:`on_object_created` (default) or :meth:`on_schedule`.

    Either way a scan is a *batch*: one execution and one Macie job for up to ``max_batch_objects``
    objects (docs/batching.md).
    """

    kind: str
    prefix: Optional[str] = None
    suffix: Optional[str] = None
    schedule: Optional[events.Schedule] = None
    max_batch_objects: int = MAX_BATCH_OBJECTS
    batch_window: Duration = field(default_factory=lambda: Duration.minutes(5))
    sweep_interval: Duration = field(default_factory=lambda: Duration.hours(1))
    lost_event_age: Duration = field(default_factory=lambda: Duration.hours(1))

    @staticmethod
    def on_object_created(
        *,
        prefix: Optional[str] = None,
        suffix: Optional[str] = None,
        batch_window: Optional[Duration] = None,
        max_batch_objects: int = MAX_BATCH_OBJECTS,
        sweep_interval: Optional[Duration] = None,
        lost_event_age: Optional[Duration] = None,
    ) -> "Trigger":
        """New objects are queued (EventBridge rule -> SQS) and scanned in micro-batches.

        :param prefix: only keys starting with this. Default: every key.
        :param suffix: only keys ending with this. Default: every key.
        :param batch_window: how long a batch waits for more objects (0-300 seconds). Zero scans
            each object on its own (one execution and one Macie job per object). Default: 5 minutes.
        :param max_batch_objects: a batch closes at this many objects (1-10,000, the SQS event
            source mapping's maximum; Lambda also closes it at 6 MB of events, about 4,000).
            Default: 10,000.
        :param sweep_interval: how often the ingress bucket is swept for objects whose event was
            lost. Default: 1 hour.
        :param lost_event_age: a sweep takes only objects older than this that no batch claimed.
            Default: 1 hour.
        """
        return Trigger(
            kind="object-created",
            prefix=prefix,
            suffix=suffix,
            max_batch_objects=max_batch_objects,
            batch_window=Duration.minutes(5) if batch_window is None else batch_window,
            sweep_interval=Duration.hours(1) if sweep_interval is None else sweep_interval,
            lost_event_age=Duration.hours(1) if lost_event_age is None else lost_event_age,
        )

    @staticmethod
    def on_schedule(
        schedule: Optional[events.Schedule] = None, *, prefix: Optional[str] = None, max_batch_objects: int = MAX_BATCH_OBJECTS
    ) -> "Trigger":
        """Sweep the whole ingress bucket on a schedule (every page of the listing), one batch per
        ``max_batch_objects`` objects.

        :param schedule: Default: every 6 hours.
        :param prefix: only keys starting with this. Default: every key.
        :param max_batch_objects: at most this many objects per batch (1-10,000; a sweep starts as
            many batches as it needs). Default: 10,000.
        """
        return Trigger(
            kind="schedule",
            prefix=prefix,
            schedule=schedule or events.Schedule.rate(Duration.hours(6)),
            max_batch_objects=max_batch_objects,
        )

    @property
    def batch_window_seconds(self) -> int:
        """The event source mapping's MaximumBatchingWindowInSeconds (0: one object per scan)."""
        return int(self.batch_window.to_seconds()) if self.kind == "object-created" else 0

    @property
    def batch_size(self) -> int:
        """The event source mapping's BatchSize: 1 with a window of zero (SQS allows more than 10
        only with a window), else ``max_batch_objects``."""
        return 1 if self.batch_window_seconds == 0 else self.max_batch_objects


def value_of(member: Any) -> str:
    """An enum member's value, or the string given in its place."""
    return member.value if isinstance(member, enum.Enum) else str(member)
