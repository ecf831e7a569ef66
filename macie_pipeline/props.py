"""Settings of SensitiveDataScanPipeline: small value types and the one place that validates them.

Every type here is plain Python (frozen dataclasses and enums) so that a user's settings can be
built, compared and tested without synthesizing anything.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

from aws_cdk import Duration
from aws_cdk import aws_events as events

# Macie limits, from the CreateCustomDataIdentifier / CreateAllowList API reference.
MAX_REGEX_LENGTH = 512
MAX_KEYWORDS = 50
MAX_IGNORE_WORDS = 10
MAX_WORD_LENGTH = 90
MIN_WORD_LENGTH = 3
MAX_MATCH_DISTANCE = 300
MAX_BATCH_OBJECTS = 50
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9 _.-]{1,128}$")


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
        return {"LOW": _value(self.low), "MEDIUM": _value(self.medium), "HIGH": _value(self.high)}


@dataclass(frozen=True)
class CustomDataIdentifier:
    """A Macie custom data identifier (``AWS::Macie::CustomDataIdentifier``).

    :param name: unique name, 1-128 of letters, digits, space, ``_ . -``.
    :param regex: the pattern Macie matches (at most 512 characters); checked at synth.
    :param keywords: words that must appear within ``maximum_match_distance`` characters before a
        match (up to 50, 3-90 characters each). Default: none, every regex match counts.
    :param ignore_words: matches equal to one of these are ignored (up to 10, 3-90 characters).
    :param maximum_match_distance: 1-300 characters. Default: 50 (Macie's default).
    :param description: free text. Default: none.
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
    :param description: free text. Default: none.
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
    """How scans start. Build one with :meth:`on_object_created` (default) or :meth:`on_schedule`."""

    kind: str
    prefix: Optional[str] = None
    suffix: Optional[str] = None
    schedule: Optional[events.Schedule] = None
    max_batch_objects: int = 25

    @staticmethod
    def on_object_created(*, prefix: Optional[str] = None, suffix: Optional[str] = None) -> "Trigger":
        """One execution per new object (EventBridge rule on the ingress bucket).

        :param prefix: only keys starting with this. Default: every key.
        :param suffix: only keys ending with this. Default: every key.
        """
        return Trigger(kind="object-created", prefix=prefix, suffix=suffix)

    @staticmethod
    def on_schedule(
        schedule: Optional[events.Schedule] = None, *, prefix: Optional[str] = None, max_batch_objects: int = 25
    ) -> "Trigger":
        """Scan everything in the ingress bucket as one batch with one Macie job.

        :param schedule: Default: every 6 hours.
        :param prefix: only keys starting with this. Default: every key.
        :param max_batch_objects: at most this many objects per batch (the rest wait for the next
            run). Default: 25, at most 50 (the batch travels in the workflow's state, 256 KiB at most).
        """
        return Trigger(
            kind="schedule",
            prefix=prefix,
            schedule=schedule or events.Schedule.rate(Duration.hours(6)),
            max_batch_objects=max_batch_objects,
        )


def _value(member) -> str:
    return member.value if isinstance(member, enum.Enum) else str(member)


def _check_enum(problems: list, name: str, value, enum_type) -> None:
    allowed = [m.value for m in enum_type]
    if _value(value) not in allowed:
        problems.append(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _check_regex(problems: list, where: str, regex) -> None:
    if not isinstance(regex, str) or not regex:
        problems.append(f"{where}: regex must be a non-empty string")
        return
    if len(regex) > MAX_REGEX_LENGTH:
        problems.append(f"{where}: regex is {len(regex)} characters, Macie allows at most {MAX_REGEX_LENGTH}")
    try:
        re.compile(regex)
    except re.error as err:
        problems.append(f"{where}: invalid regex {regex!r}: {err}")


def _check_words(problems: list, where: str, words: Sequence[str], limit: int) -> None:
    if isinstance(words, str):
        problems.append(f"{where} must be a list of words, not a single string")
        return
    if len(words) > limit:
        problems.append(f"{where} has {len(words)} entries, Macie allows at most {limit}")
    for word in words:
        if not isinstance(word, str) or not MIN_WORD_LENGTH <= len(word) <= MAX_WORD_LENGTH:
            problems.append(f"{where}: {word!r} must be {MIN_WORD_LENGTH}-{MAX_WORD_LENGTH} characters")


def _named_entries(problems: list, field: str, entries: Sequence, kind: type):
    """Check what custom data identifiers and allow lists share (type, name, uniqueness, regex);
    yield ``(where, entry)`` for each well-typed entry so the caller checks the rest."""
    names: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{field}[{index}] ({getattr(entry, 'name', '?')!r})"
        if not isinstance(entry, kind):
            problems.append(f"{field}[{index}] must be a {kind.__name__}")
            continue
        if not _NAME_PATTERN.match(entry.name or ""):
            problems.append(f"{where}: name must be 1-128 letters, digits, spaces, '_', '.' or '-'")
        if entry.name in names:
            problems.append(f"{where}: duplicate name")
        names.add(entry.name)
        _check_regex(problems, where, entry.regex)
        yield where, entry


def validate_settings(
    *,
    custom_data_identifiers: Sequence[CustomDataIdentifier],
    allow_lists: Sequence[AllowList],
    managed_data_identifier_selector,
    managed_data_identifier_ids: Sequence[str],
    finding_policy: FindingPolicy,
    deny_policy,
    unknown_format_policy,
    trigger: Trigger,
    poll_interval: Duration,
    max_scan_wait: Duration,
    approval_timeout: Duration,
    approval_heartbeat: Optional[Duration],
    vault_object_lock: Optional[ObjectLock],
    notification_emails: Sequence[str],
    discovery_results_bucket,
    discovery_results_key,
    configure_discovery_results: bool,
) -> None:
    """Check every setting and raise one ValueError that lists every problem found."""
    problems: list[str] = []

    for where, cdi in _named_entries(problems, "custom_data_identifiers", custom_data_identifiers, CustomDataIdentifier):
        _check_words(problems, f"{where}.keywords", cdi.keywords, MAX_KEYWORDS)
        _check_words(problems, f"{where}.ignore_words", cdi.ignore_words, MAX_IGNORE_WORDS)
        distance = cdi.maximum_match_distance
        if not isinstance(distance, int) or isinstance(distance, bool) or not 1 <= distance <= MAX_MATCH_DISTANCE:
            problems.append(f"{where}: maximum_match_distance must be an integer from 1 to {MAX_MATCH_DISTANCE}")
    list(_named_entries(problems, "allow_lists", allow_lists, AllowList))  # the shared checks are all an allow list needs

    _check_enum(problems, "managed_data_identifier_selector", managed_data_identifier_selector, ManagedDataIdentifierSelector)
    selector = _value(managed_data_identifier_selector)
    if selector in ("INCLUDE", "EXCLUDE") and not managed_data_identifier_ids:
        problems.append(f"managed_data_identifier_selector {selector} needs managed_data_identifier_ids")
    if selector not in ("INCLUDE", "EXCLUDE") and managed_data_identifier_ids:
        problems.append(f"managed_data_identifier_ids only apply with INCLUDE or EXCLUDE, not {selector}")
    if selector == "NONE" and not custom_data_identifiers:
        problems.append("managed_data_identifier_selector NONE needs at least one custom data identifier")

    if not isinstance(finding_policy, FindingPolicy):
        problems.append("finding_policy must be a FindingPolicy")
    else:
        for severity in ("low", "medium", "high"):
            _check_enum(problems, f"finding_policy.{severity}", getattr(finding_policy, severity), FindingAction)
    _check_enum(problems, "deny_policy", deny_policy, DenyPolicy)
    _check_enum(problems, "unknown_format_policy", unknown_format_policy, UnknownFormatPolicy)

    if not isinstance(trigger, Trigger) or trigger.kind not in ("object-created", "schedule"):
        problems.append("trigger must be Trigger.on_object_created(...) or Trigger.on_schedule(...)")
    elif trigger.kind == "schedule" and not 1 <= trigger.max_batch_objects <= MAX_BATCH_OBJECTS:
        # The batch travels in the execution's state (256 KiB at most): a Distributed Map over an
        # S3 manifest is what would lift this limit.
        problems.append(f"trigger max_batch_objects must be from 1 to {MAX_BATCH_OBJECTS}")

    poll = poll_interval.to_seconds()
    wait = max_scan_wait.to_seconds()
    if poll < 10:
        problems.append("poll_interval must be at least 10 seconds")
    if wait < poll:
        problems.append("max_scan_wait must be at least poll_interval")
    if wait > Duration.days(30).to_seconds():
        problems.append("max_scan_wait must be at most 30 days")
    timeout = approval_timeout.to_seconds()
    if timeout < 60:
        problems.append("approval_timeout must be at least 1 minute")
    if timeout > Duration.days(365).to_seconds():
        problems.append("approval_timeout must be at most 365 days (the Standard workflow limit)")
    if approval_heartbeat is not None and approval_heartbeat.to_seconds() >= timeout:
        problems.append("approval_heartbeat must be shorter than approval_timeout")

    if vault_object_lock is not None:
        if not isinstance(vault_object_lock, ObjectLock):
            problems.append("vault_object_lock must be an ObjectLock")
        else:
            _check_enum(problems, "vault_object_lock.mode", vault_object_lock.mode, ObjectLockMode)
            if vault_object_lock.retention.to_seconds() < 86400:
                problems.append("vault_object_lock.retention must be at least 1 day")

    for email in notification_emails:
        if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            problems.append(f"notification_emails: {email!r} is not an email address")

    if configure_discovery_results and (discovery_results_bucket is not None or discovery_results_key is not None):
        problems.append(
            "configure_discovery_results creates its own results bucket and key: "
            "do not also pass discovery_results_bucket or discovery_results_key"
        )
    if (discovery_results_bucket is None) != (discovery_results_key is None):
        problems.append("discovery_results_bucket and discovery_results_key go together")

    if problems:
        raise ValueError("Invalid SensitiveDataScanPipeline settings:\n- " + "\n- ".join(problems))
