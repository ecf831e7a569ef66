"""Settings of SensitiveDataScanPipeline: small value types and the one place that validates them.

Every type here is plain Python (frozen dataclasses and enums) so that a user's settings can be
built, compared and tested without synthesizing anything.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms

from .external import (
    BRING_YOUR_OWN_SETTINGS,
    INTERFACE_OF,
    OWNED_TYPES,
    Ownership,
    bucket_is_versioned,
    environment_differs,
    key_alias_name,
    ownership,
    topic_uses_aws_managed_key,
)

# Macie limits, from the CreateCustomDataIdentifier / CreateAllowList API reference.
MAX_REGEX_LENGTH = 512
MAX_KEYWORDS = 50
MAX_IGNORE_WORDS = 10
MAX_WORD_LENGTH = 90
MIN_WORD_LENGTH = 3
MAX_MATCH_DISTANCE = 300
MAX_BATCH_OBJECTS = 50
MAX_NAME_LENGTH = 128
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9 _.-]{1,128}$")
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
        return {"LOW": _value(self.low), "MEDIUM": _value(self.medium), "HIGH": _value(self.high)}

    @staticmethod
    def from_mapping(policy: Mapping[str, Any]) -> "FindingPolicy":
        """``{"LOW": "ALLOW", "high": FindingAction.DENY}`` (keys case-insensitive, missing ones REVIEW).

        Check the mapping with ``validate_settings`` first: unknown keys are ignored here.
        """
        given = {str(k).lower(): v for k, v in policy.items() if str(k).lower() in SEVERITY_NAMES}
        return FindingPolicy(**given)


def as_finding_policy(policy: Union[FindingPolicy, Mapping[str, Any], None]) -> FindingPolicy:
    """The FindingPolicy of a setting that may also be given as a mapping (None: the default)."""
    if policy is None:
        return FindingPolicy()
    return FindingPolicy.from_mapping(policy) if isinstance(policy, Mapping) else policy


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


# Escapes PCRE (Macie's dialect) knows and Python's re does not: not an error in a Macie regex.
_PCRE_ONLY_ESCAPES = frozenset("hHVRXCNKGQEpPgkoexcz")


def _python_compile_error(regex: str) -> Optional[re.error]:
    """Python's verdict on the regex, ignoring what only PCRE (Macie's dialect) has: escapes such as
    ``\\p{L}`` or ``\\h``, ``\\Q...\\E`` quoting, named groups ``(?<name>...)``/``(?'name'...)`` and branch
    resets ``(?|...)``. Each is replaced by as many plain characters, so the positions in Python's
    message still point into the original regex."""
    candidate = regex
    for _ in range(len(regex) + 1):
        try:
            re.compile(candidate)
            return None
        except re.error as err:
            pos = err.pos if err.pos is not None else -1
            head = candidate[pos : pos + 2] if pos >= 0 else ""
            group = candidate[pos - 1 : pos + 2] if pos >= 1 else ""
            if head == "\\Q":
                end = candidate.find("\\E", pos + 2)
                end = len(candidate) if end < 0 else end + 2
            elif head[:1] == "\\" and head[1:] in _PCRE_ONLY_ESCAPES:
                end = pos + 2
            elif group in ("(?<", "(?'") and err.msg.startswith("unknown extension"):
                closing = candidate.find(">" if group == "(?<" else "'", pos + 2)
                if closing < 0:
                    return err
                candidate = candidate[:pos] + ":" + "a" * (closing - pos) + candidate[closing + 1 :]
                continue
            elif group == "(?|":
                candidate = candidate[:pos] + ":" + candidate[pos + 2 :]
                candidate = candidate[:pos + 1] + "a" + candidate[pos + 1 :]
                continue
            else:
                return err
            candidate = candidate[:pos] + "a" * (end - pos) + candidate[end:]
    return None


_RECURSION = re.compile(r"(?:R|[+-]?[0-9]+|&\w+|P>\w+)\)")
_GLOBAL_FLAGS = re.compile(r"[a-zA-Z]*(?:-[a-zA-Z]+)?\)")


def unsupported_regex_constructs(regex: str) -> list[tuple[str, str]]:
    """``(what, token)`` for each construct Macie documents as unsupported (backreferences,
    lookaround, conditionals, recursion, embedded code, global flags), once per kind, in order.

    Capturing groups are also listed as unsupported by Macie, but plain parentheses are too common
    to reject on a reading of the documentation: Macie itself reports them when the resource is created.
    """
    found: dict[str, str] = {}
    i, n, in_class = 0, len(regex), False
    while i < n:
        char = regex[i]
        if char == "\\":
            following = regex[i + 1 : i + 2]
            if following == "Q":
                end = regex.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            if not in_class:
                if following and following in "123456789":
                    found.setdefault("a backreference", regex[i : i + 2])
                elif following == "k" or (following == "g" and regex[i + 2 : i + 3] not in ("<", "'")):
                    found.setdefault("a backreference", regex[i : i + 3])
                elif following == "g":
                    found.setdefault("a recursive pattern", regex[i : i + 3])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
            i += 1
            continue
        if char == "[":
            i += 1
            i += 1 if regex[i : i + 1] == "^" else 0
            i += 1 if regex[i : i + 1] == "]" else 0  # a leading ] is literal
            in_class = True
            continue
        if char == "(" and regex[i + 1 : i + 2] == "?":
            rest = regex[i + 2 :]
            recursion = _RECURSION.match(rest)
            flags = _GLOBAL_FLAGS.match(rest)
            if rest[:1] in ("=", "!"):
                found.setdefault("a lookahead", "(?" + rest[:1])
            elif rest[:2] in ("<=", "<!"):
                found.setdefault("a lookbehind", "(?" + rest[:2])
            elif rest[:1] == "(":
                found.setdefault("a conditional pattern", "(?(")
            elif rest[:1] == "{" or rest[:2] == "?{":
                found.setdefault("embedded code", "(?" + ("?{" if rest[:1] == "?" else "{"))
            elif recursion:
                found.setdefault("a recursive pattern", "(?" + recursion.group(0))
            elif rest[:2] == "P=":
                found.setdefault("a backreference", "(?P=")
            elif flags and flags.group(0) != ")":
                found.setdefault("a global pattern flag", "(?" + flags.group(0))
        i += 1
    return list(found.items())


def _check_regex(problems: list, where: str, regex) -> None:
    """Reject what is clearly invalid in Macie's PCRE subset; Python's re is only a stand-in for it."""
    if not isinstance(regex, str) or not regex:
        problems.append(f"{where}: regex must be a non-empty string")
        return
    if len(regex) > MAX_REGEX_LENGTH:
        problems.append(f"{where}: regex is {len(regex)} characters, Macie allows at most {MAX_REGEX_LENGTH}")
    unsupported = unsupported_regex_constructs(regex)
    for what, token in unsupported:
        problems.append(f"{where}: regex uses {what} ({token!r}), which Macie does not support")
    err = None if unsupported else _python_compile_error(regex)
    if err is not None:
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
    create_macie_session: bool = False,
    ingress_bucket=None,
    vault_bucket=None,
    encryption_key=None,
    topic=None,
    event_bus=None,
    externally_managed: Sequence[str] = (),
    stack: Stack,
    other_pipelines: Sequence[tuple[str, bool, bool]] = (),
    other_pipeline_buckets: Sequence[tuple[str, str, Any]] = (),
) -> dict[str, Optional[Ownership]]:
    """Check every setting and raise one ValueError that lists every problem found; returns the
    ownership of each bring-your-own setting (see ``supplied_ownership``).

    ``stack`` is the pipeline's stack (to tell owned from imported resources); ``other_pipelines``
    are ``(path, configure_discovery_results, create_macie_session)`` of the pipelines already in
    the app that deploy to the same account and Region (or may: an environment-agnostic stack).
    """
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

    if isinstance(finding_policy, Mapping):
        seen: set[str] = set()
        for key, action in finding_policy.items():
            severity = key.lower() if isinstance(key, str) else key
            if severity not in SEVERITY_NAMES:
                problems.append(f"finding_policy: unknown severity {key!r} (Macie severities are LOW, MEDIUM, HIGH)")
                continue
            if severity in seen:
                problems.append(f"finding_policy: severity {key!r} is given twice")
            seen.add(severity)
            _check_enum(problems, f"finding_policy.{severity}", action, FindingAction)
    elif not isinstance(finding_policy, FindingPolicy):
        problems.append("finding_policy must be a FindingPolicy or a mapping of severity to action")
    else:
        for severity in SEVERITY_NAMES:
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

    for where, key in (
        ("encryption_key", encryption_key),
        ("discovery_results_key", discovery_results_key),
        ("ingress_bucket's encryption_key", getattr(ingress_bucket, "encryption_key", None)),
        ("vault_bucket's encryption_key", getattr(vault_bucket, "encryption_key", None)),
        ("discovery_results_bucket's encryption_key", getattr(discovery_results_bucket, "encryption_key", None)),
        ("topic's master_key", None if topic_uses_aws_managed_key(topic) else getattr(topic, "master_key", None)),
    ):
        alias = key_alias_name(key)
        if alias is not None:
            problems.append(
                f"{where} is the KMS alias {alias}, not a key: IAM statements on an alias do not cover its key, "
                "so every use would be denied at run time; pass the key itself (kms.Key.from_key_arn)"
            )

    for setting, mine in (("ingress_bucket", ingress_bucket), ("vault_bucket", vault_bucket)):
        for path, role, theirs in other_pipeline_buckets:
            if mine is not None and _same_bucket(mine, theirs):
                problems.append(
                    f"{setting} is already the {role} bucket of {path}: pipelines must not share ingress or vault "
                    "buckets (each vault guard would deny the other pipeline's promotions; another pipeline's "
                    "vault used as ingress would be scanned again and its versions deleted)"
                )

    for path, configures_results, creates_session in other_pipelines:
        if configure_discovery_results and configures_results:
            problems.append(
                f"configure_discovery_results: {path} already sets the Macie export configuration, of which there "
                "is one per account and Region; pass its results bucket and key as discovery_results_bucket and "
                "discovery_results_key instead"
            )
        if create_macie_session and creates_session:
            problems.append(
                f"create_macie_session: {path} already enables Macie in this account and Region; "
                "a second session fails the deployment"
            )

    owner = _check_bring_your_own(
        problems,
        supplied={
            "ingress_bucket": ingress_bucket,
            "vault_bucket": vault_bucket,
            "encryption_key": encryption_key,
            "topic": topic,
            "event_bus": event_bus,
        },
        externally_managed=externally_managed,
        stack=stack,
        trigger=trigger,
        vault_object_lock=vault_object_lock,
        discovery_results_bucket=discovery_results_bucket,
        configure_discovery_results=configure_discovery_results,
    )

    if problems:
        raise ValueError("Invalid SensitiveDataScanPipeline settings:\n- " + "\n- ".join(problems))
    return owner


def _same_bucket(a, b) -> bool:
    if a is None or b is None:
        return False
    return a is b or getattr(a, "bucket_name", None) == getattr(b, "bucket_name", object())


def external_setup_needs(
    supplied: Mapping[str, Any], owner: Mapping[str, Optional[Ownership]], *, stack: Stack, trigger_kind: str,
    configure_discovery_results: bool,
) -> dict[str, str]:
    """Setting -> what the construct cannot apply to that supplied resource (empty: it applies everything)."""
    needs: dict[str, str] = {}
    if owner["ingress_bucket"] is Ownership.IMPORTED:
        needs["ingress_bucket"] = (
            "turn on its EventBridge notifications or check that it is versioned"
            if trigger_kind == "object-created" else "check that it is versioned"
        )
    if owner["vault_bucket"] is Ownership.IMPORTED:
        needs["vault_bucket"] = (
            "add the bucket policy statement that lets only the pipeline write to the vault, or check that it is versioned"
        )
    if owner["encryption_key"] is Ownership.IMPORTED:
        needs["encryption_key"] = "add the key policy statement that lets Macie's service-linked role decrypt staged objects" + (
            " or the one that lets Macie encrypt discovery results" if configure_discovery_results else ""
        )
    if owner["topic"] in (Ownership.OWNED, Ownership.IMPORTED):
        topic = supplied["topic"]
        missing = []
        if owner["topic"] is Ownership.IMPORTED:
            missing.append("the topic policy statement that lets CloudWatch alarms publish")
        topic_key = getattr(topic, "master_key", None)
        if topic_key is not None and ownership(topic_key, stack, kms.Key) is Ownership.IMPORTED:
            missing.append("the key policy statement that lets CloudWatch alarms use the topic's key")
        if missing:
            needs["topic"] = "add " + " or ".join(missing)
    if owner["event_bus"] is Ownership.IMPORTED and environment_differs(supplied["event_bus"], stack) is not False:
        needs["event_bus"] = (
            "tell whether it is in another account, where it needs an event bus policy that lets the workflow put result events"
        )
    return needs


def supplied_ownership(supplied: Mapping[str, Any], stack: Stack) -> dict[str, Optional[Ownership]]:
    """Ownership of each supplied resource; None when it is not of the setting's interface."""
    owner: dict[str, Optional[Ownership]] = {}
    for name, resource in supplied.items():
        attribute, _ = INTERFACE_OF[name]
        if resource is not None and not hasattr(resource, attribute):
            owner[name] = None
        else:
            owner[name] = ownership(resource, stack, OWNED_TYPES[name])
    return owner


def _check_bring_your_own(
    problems: list, *, supplied: Mapping[str, Any], externally_managed, stack: Stack, trigger,
    vault_object_lock, discovery_results_bucket, configure_discovery_results: bool,
) -> dict[str, Optional[Ownership]]:
    owner = supplied_ownership(supplied, stack)
    for name, resource in supplied.items():
        if owner[name] is None:
            problems.append(f"{name} must be {INTERFACE_OF[name][1]}")

    for name in ("ingress_bucket", "vault_bucket"):
        bucket = supplied[name]
        if owner[name] is None or bucket is None:
            continue
        if environment_differs(bucket, stack):
            problems.append(f"{name} must be in the pipeline's account and Region")
        if owner[name] is Ownership.OWNED and bucket_is_versioned(bucket) is False:
            problems.append(f"{name} must have versioning enabled (versioned=True): the pipeline pins and verifies object versions")
    if _same_bucket(supplied["ingress_bucket"], supplied["vault_bucket"]):
        problems.append("ingress_bucket and vault_bucket must be different buckets")
    if any(_same_bucket(discovery_results_bucket, supplied[n]) for n in ("ingress_bucket", "vault_bucket")):
        problems.append(
            "discovery_results_bucket must not be the ingress or vault bucket: Macie would write its results into a pipeline zone"
        )
    if vault_object_lock is not None and supplied["vault_bucket"] is not None:
        problems.append("vault_object_lock applies only to a vault the construct creates: set Object Lock on your vault_bucket")

    topic = supplied["topic"]
    if topic is not None and owner["topic"] is not None:
        if getattr(topic, "fifo", False) is True:
            problems.append("topic must be a standard topic: a FIFO topic needs a message group id, which the pipeline does not send")
        if topic_uses_aws_managed_key(topic):
            problems.append("topic is encrypted with the AWS managed key alias/aws/sns, which CloudWatch alarms cannot use")

    trigger_kind = getattr(trigger, "kind", "object-created")
    needs = external_setup_needs(
        supplied, owner, stack=stack, trigger_kind=trigger_kind, configure_discovery_results=configure_discovery_results
    )
    acknowledged: set[str] = set()
    if isinstance(externally_managed, str):
        problems.append("externally_managed must be a list of setting names, not a single string")
    else:
        for name in externally_managed:
            if name not in BRING_YOUR_OWN_SETTINGS:
                problems.append(
                    f"externally_managed: unknown setting {name!r}, expected one of {', '.join(BRING_YOUR_OWN_SETTINGS)}"
                )
            elif supplied[name] is None:
                problems.append(f"externally_managed lists {name!r}, but no {name} is given")
            elif owner[name] is not None and name not in needs:
                problems.append(f"externally_managed lists {name!r}, but the construct applies everything {name} needs: remove it")
            acknowledged.add(name)
    for name, need in needs.items():
        if name not in acknowledged:
            problems.append(
                f"{name} is imported: the construct cannot {need}. "
                f"Add {name!r} to externally_managed and apply what external_setup lists for it"
            )
    return owner
