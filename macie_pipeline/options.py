"""The construct's settings, grouped by concern into option objects that check themselves.

``SensitiveDataScanPipeline`` takes flat keyword arguments (its public API); it groups them into the
objects below, and :meth:`PipelineOptions.validate` asks each group for its problems, adds the
problems that span groups or pipelines, and raises once:

* every problem is listed in one :class:`InvalidSettingsError` (a ``ValueError``);
* when a setting has the wrong type the error is a :class:`InvalidSettingsTypeError`, which is
  also a ``TypeError``, and names the setting and the type it expects. A group does not check the
  value of a setting whose type is wrong, so no check stumbles over it.

Each group is plain Python: it can be built and checked without synthesizing anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Optional, Union

from aws_cdk import Duration, RemovalPolicy, Stack, Token
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
from .macie_regex import check_regex
from .props import (
    MAX_ALLOW_LISTS_PER_JOB,
    MAX_BATCH_OBJECTS,
    MAX_BATCH_WINDOW_SECONDS,
    MAX_CHUNK_OBJECTS,
    MAX_CUSTOM_DATA_IDENTIFIERS_PER_JOB,
    MAX_DESCRIPTION_LENGTH,
    MAX_IGNORE_WORDS,
    MAX_JOB_CHECKS,
    MAX_KEYWORDS,
    MAX_MAP_CONCURRENCY,
    MAX_MATCH_DISTANCE,
    MAX_WORD_LENGTH,
    MIN_IGNORE_WORD_LENGTH,
    MIN_KEYWORD_LENGTH,
    NAME_PATTERN,
    SEVERITY_NAMES,
    AllowList,
    CustomDataIdentifier,
    DenyPolicy,
    FindingAction,
    FindingPolicy,
    ManagedDataIdentifierSelector,
    ObjectLock,
    ObjectLockMode,
    Trigger,
    UnknownFormatPolicy,
    value_of,
)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class InvalidSettingsError(ValueError):
    """One or more settings of a SensitiveDataScanPipeline are invalid; the message lists them all."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("Invalid SensitiveDataScanPipeline settings:\n- " + "\n- ".join(self.problems))


class InvalidSettingsTypeError(InvalidSettingsError, TypeError):
    """As :class:`InvalidSettingsError`, where at least one setting has the wrong type."""


class Problems(list):
    """The problems found so far; type problems are remembered, so the error can be a TypeError."""

    def __init__(self) -> None:
        super().__init__()
        self.wrong_types: set[str] = set()

    def wrong_type(self, setting: str, message: str) -> None:
        self.wrong_types.add(setting)
        self.append(message)

    def expect(self, setting: str, value: Any, expected: Union[type, tuple], what: str, *, optional: bool = False) -> bool:
        """True when ``value`` is of the expected type; otherwise a type problem naming ``setting``."""
        if (optional and value is None) or (isinstance(value, expected) and not _bool_for_int(value, expected)):
            return True
        self.wrong_type(setting, f"{setting} must be {what}, got {type(value).__name__} {value!r}")
        return False

    def expect_enum(self, setting: str, value: Any, enum_type: type) -> bool:
        """An enum setting takes the member or its value as a string."""
        return self.expect(setting, value, (enum_type, str), f"a {enum_type.__name__} (or its value as a string)")

    def expect_list(self, setting: str, value: Any, item_type: type, what: str) -> bool:
        """A list (or tuple) of ``item_type``; a single string is a type problem, not a list of characters."""
        if isinstance(value, str) or not isinstance(value, Sequence):
            self.wrong_type(setting, f"{setting} must be a list of {what}, got {type(value).__name__} {value!r}")
            return False
        wrong = [i for i, item in enumerate(value) if not isinstance(item, item_type)]
        for index in wrong:
            self.wrong_type(setting, f"{setting}[{index}] must be {_article(what)}, got {type(value[index]).__name__}")
        return not wrong

    def expect_interface(self, setting: str, value: Any, *, optional: bool = True) -> bool:
        """A jsii interface (not runtime-checkable): duck-typed on an attribute every implementation has."""
        attribute, what = _INTERFACES[setting]
        if (optional and value is None) or hasattr(value, attribute):
            return True
        self.wrong_type(setting, f"{setting} must be {what}")
        return False


def _bool_for_int(value: Any, expected: Union[type, tuple]) -> bool:
    """``True`` is an int to Python, not to a user who wrote a number."""
    types = expected if isinstance(expected, tuple) else (expected,)
    return isinstance(value, bool) and bool not in types


def _article(what: str) -> str:
    singular = what[:-1] if what.endswith("s") else what
    return ("an " if singular[:1] in "aeiou" else "a ") + singular


_INTERFACES = {
    **INTERFACE_OF,
    "discovery_results_bucket": ("bucket_arn", "an s3.IBucket"),
    "discovery_results_key": ("key_arn", "a kms.IKey"),
    "pandas_layer": ("layer_version_arn", "a lambda.ILayerVersion"),
    "runtime_layer": ("layer_version_arn", "a lambda.ILayerVersion"),
    "sign_in_layer": ("layer_version_arn", "a lambda.ILayerVersion"),
    "reviewer_user_pool": ("user_pool_id", "a cognito.IUserPool"),
    "reviewer_user_pool_client": ("user_pool_client_id", "a cognito.IUserPoolClient"),
}


# ---------------------------------------------------------------------- shared checks
def check_enum(problems: list, name: str, value: Any, enum_type: type) -> None:
    allowed = [m.value for m in enum_type]
    if value_of(value) not in allowed:
        problems.append(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def check_words(problems: list, where: str, words: Sequence[str], limit: int, min_length: int) -> None:
    if isinstance(words, str):
        problems.append(f"{where} must be a list of words, not a single string")
        return
    if len(words) > limit:
        problems.append(f"{where} has {len(words)} entries, Macie allows at most {limit}")
    for word in words:
        if not isinstance(word, str) or not min_length <= len(word) <= MAX_WORD_LENGTH:
            problems.append(f"{where}: {word!r} must be {min_length}-{MAX_WORD_LENGTH} characters")


def check_count(problems: list, setting: str, entries: Sequence, limit: int, what: str) -> None:
    if len(entries) > limit:
        problems.append(f"{setting} has {len(entries)} entries, a Macie job takes at most {limit} {what}")


def named_entries(problems: Problems, setting: str, entries: Sequence, kind: type) -> Iterator[tuple[str, Any]]:
    """Check what custom data identifiers and allow lists share (type, name, uniqueness, regex);
    yield ``(where, entry)`` for each well-typed entry so the caller checks the rest."""
    names: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{setting}[{index}] ({getattr(entry, 'name', '?')!r})"
        if not isinstance(entry, kind):
            problems.wrong_type(setting, f"{setting}[{index}] must be a {kind.__name__}")
            continue
        if not isinstance(entry.name, str) or not NAME_PATTERN.match(entry.name):
            problems.append(f"{where}: name must be 1-128 letters, digits, spaces, '_', '.' or '-'")
        if entry.name in names:
            problems.append(f"{where}: duplicate name")
        names.add(entry.name)
        check_regex(problems, where, entry.regex)
        description = entry.description
        if description is not None and (not isinstance(description, str) or not 1 <= len(description) <= MAX_DESCRIPTION_LENGTH):
            problems.append(f"{where}: description must be 1-{MAX_DESCRIPTION_LENGTH} characters")
        yield where, entry


# ---------------------------------------------------------------------- the groups
@dataclass(frozen=True)
class MacieOptions:
    """What each Macie job looks for: custom data identifiers, allow lists, managed identifiers."""

    custom_data_identifiers: Sequence[CustomDataIdentifier] = ()
    allow_lists: Sequence[AllowList] = ()
    managed_data_identifier_selector: Union[ManagedDataIdentifierSelector, str] = ManagedDataIdentifierSelector.RECOMMENDED
    managed_data_identifier_ids: Sequence[str] = ()
    create_macie_session: bool = False

    @property
    def selector(self) -> str:
        return value_of(self.managed_data_identifier_selector)

    def check(self, problems: Problems) -> None:
        self._check_custom_data_identifiers(problems)
        if problems.expect_list("allow_lists", self.allow_lists, object, "AllowList objects"):
            list(named_entries(problems, "allow_lists", self.allow_lists, AllowList))  # the shared checks are all it needs
            check_count(problems, "allow_lists", self.allow_lists, MAX_ALLOW_LISTS_PER_JOB, "allow lists")
        self._check_managed_identifiers(problems)
        problems.expect("create_macie_session", self.create_macie_session, bool, "a bool")

    def _check_custom_data_identifiers(self, problems: Problems) -> None:
        if not problems.expect_list("custom_data_identifiers", self.custom_data_identifiers, object, "CustomDataIdentifier objects"):
            return
        for where, cdi in named_entries(problems, "custom_data_identifiers", self.custom_data_identifiers, CustomDataIdentifier):
            check_words(problems, f"{where}.keywords", cdi.keywords, MAX_KEYWORDS, MIN_KEYWORD_LENGTH)
            check_words(problems, f"{where}.ignore_words", cdi.ignore_words, MAX_IGNORE_WORDS, MIN_IGNORE_WORD_LENGTH)
            distance = cdi.maximum_match_distance
            if not isinstance(distance, int) or isinstance(distance, bool) or not 1 <= distance <= MAX_MATCH_DISTANCE:
                problems.append(f"{where}: maximum_match_distance must be an integer from 1 to {MAX_MATCH_DISTANCE}")
        check_count(problems, "custom_data_identifiers", self.custom_data_identifiers, MAX_CUSTOM_DATA_IDENTIFIERS_PER_JOB,
                    "custom data identifiers")

    def _check_managed_identifiers(self, problems: Problems) -> None:
        selector_ok = problems.expect_enum(
            "managed_data_identifier_selector", self.managed_data_identifier_selector, ManagedDataIdentifierSelector
        )
        ids_ok = problems.expect_list("managed_data_identifier_ids", self.managed_data_identifier_ids, str, "managed data identifier ids")
        if not selector_ok:
            return
        check_enum(problems, "managed_data_identifier_selector", self.managed_data_identifier_selector, ManagedDataIdentifierSelector)
        selector = self.selector
        if ids_ok and selector in ("INCLUDE", "EXCLUDE") and not self.managed_data_identifier_ids:
            problems.append(f"managed_data_identifier_selector {selector} needs managed_data_identifier_ids")
        if ids_ok and selector not in ("INCLUDE", "EXCLUDE") and self.managed_data_identifier_ids:
            problems.append(f"managed_data_identifier_ids only apply with INCLUDE or EXCLUDE, not {selector}")
        if selector == "NONE" and not self.custom_data_identifiers:
            problems.append("managed_data_identifier_selector NONE needs at least one custom data identifier")


@dataclass(frozen=True)
class VerdictOptions:
    """How findings and integrity results become a verdict, and what a denial does."""

    finding_policy: Union[FindingPolicy, Mapping[str, Any], None] = None
    unknown_format_policy: Union[UnknownFormatPolicy, str] = UnknownFormatPolicy.REVIEW
    deny_policy: Union[DenyPolicy, str] = DenyPolicy.QUARANTINE

    def resolved_finding_policy(self) -> FindingPolicy:
        policy = self.finding_policy
        if policy is None:
            return FindingPolicy()
        return FindingPolicy.from_mapping(policy) if isinstance(policy, Mapping) else policy

    def check(self, problems: Problems) -> None:
        self._check_finding_policy(problems)
        if problems.expect_enum("deny_policy", self.deny_policy, DenyPolicy):
            check_enum(problems, "deny_policy", self.deny_policy, DenyPolicy)
        if problems.expect_enum("unknown_format_policy", self.unknown_format_policy, UnknownFormatPolicy):
            check_enum(problems, "unknown_format_policy", self.unknown_format_policy, UnknownFormatPolicy)

    def _check_finding_policy(self, problems: Problems) -> None:
        policy = self.finding_policy
        if policy is None:
            return
        if isinstance(policy, Mapping):
            seen: set[str] = set()
            for key, action in policy.items():
                severity = key.lower() if isinstance(key, str) else key
                if severity not in SEVERITY_NAMES:
                    problems.append(f"finding_policy: unknown severity {key!r} (Macie severities are LOW, MEDIUM, HIGH)")
                    continue
                if severity in seen:
                    problems.append(f"finding_policy: severity {key!r} is given twice")
                seen.add(severity)
                check_enum(problems, f"finding_policy.{severity}", action, FindingAction)
        elif not isinstance(policy, FindingPolicy):
            problems.wrong_type("finding_policy", "finding_policy must be a FindingPolicy or a mapping of severity to action")
        else:
            for severity in SEVERITY_NAMES:
                check_enum(problems, f"finding_policy.{severity}", getattr(policy, severity), FindingAction)


@dataclass(frozen=True)
class TimingOptions:
    """How often the Macie job is checked when no job event arrives, how long a scan and a review may take."""

    poll_interval: Duration = Duration.minutes(15)
    max_scan_wait: Duration = Duration.hours(6)
    approval_timeout: Duration = Duration.days(3)
    approval_heartbeat: Optional[Duration] = None

    def claim_ttl_seconds(self) -> int:
        """How long a claim on an object version holds: twice the longest scan plus review."""
        return int((self.max_scan_wait.to_seconds() + self.approval_timeout.to_seconds()) * 2)

    def check(self, problems: Problems) -> None:
        seconds = {}
        for name in ("poll_interval", "max_scan_wait", "approval_timeout", "approval_heartbeat"):
            value = getattr(self, name)
            if problems.expect(name, value, Duration, "a Duration", optional=name == "approval_heartbeat") and value is not None:
                seconds[name] = value.to_seconds()
        _check_scan_times(problems, seconds.get("poll_interval"), seconds.get("max_scan_wait"))
        _check_approval_times(problems, seconds.get("approval_timeout"), seconds.get("approval_heartbeat"))


def _check_scan_times(problems: Problems, poll: Optional[float], wait: Optional[float]) -> None:
    """None: not given, or of the wrong type (already reported)."""
    if poll is not None and poll < 10:
        problems.append("poll_interval must be at least 10 seconds")
    if wait is not None and poll is not None and wait < poll:
        problems.append("max_scan_wait must be at least poll_interval")
    if wait is not None and wait > Duration.days(30).to_seconds():
        problems.append("max_scan_wait must be at most 30 days")
    if wait is not None and poll is not None and poll >= 10 and math.ceil(wait / poll) > MAX_JOB_CHECKS:
        # Each check adds a bounded number of history events: the 25,000-event limit cannot be caught.
        problems.append(
            f"max_scan_wait / poll_interval must be at most {MAX_JOB_CHECKS:,} job checks, got {math.ceil(wait / poll):,} "
            "(raise poll_interval: job events wake the scan at once, the poll is only a backstop)"
        )


def _check_approval_times(problems: Problems, timeout: Optional[float], heartbeat: Optional[float]) -> None:
    if timeout is not None and timeout < 60:
        problems.append("approval_timeout must be at least 1 minute")
    if timeout is not None and timeout > Duration.days(365).to_seconds():
        problems.append("approval_timeout must be at most 365 days (the Standard workflow limit)")
    if heartbeat is not None and timeout is not None and heartbeat >= timeout:
        problems.append("approval_heartbeat must be shorter than approval_timeout")


@dataclass(frozen=True)
class BatchOptions:
    """How a batch is cut and fanned out, and how its Macie job's completion is noticed."""

    chunk_objects: int = 200
    map_concurrency: int = 10
    job_completion_events: bool = True

    def check(self, problems: Problems) -> None:
        for name, upper in (("chunk_objects", MAX_CHUNK_OBJECTS), ("map_concurrency", MAX_MAP_CONCURRENCY)):
            value = getattr(self, name)
            if problems.expect(name, value, int, "an int") and not 1 <= value <= upper:
                problems.append(f"{name} must be from 1 to {upper:,}, got {value}")
        problems.expect("job_completion_events", self.job_completion_events, bool, "a bool")


@dataclass(frozen=True)
class ZoneOptions:
    """The buckets' lifecycle: what happens on stack deletion, and WORM for the vault."""

    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    vault_object_lock: Optional[ObjectLock] = None

    def object_lock(self) -> Optional[tuple[str, Duration]]:
        lock = self.vault_object_lock
        return None if lock is None else (value_of(lock.mode), lock.retention)

    def check(self, problems: Problems) -> None:
        problems.expect("removal_policy", self.removal_policy, RemovalPolicy, "a RemovalPolicy")
        lock = self.vault_object_lock
        if lock is None:
            return
        if not isinstance(lock, ObjectLock):
            problems.wrong_type("vault_object_lock", "vault_object_lock must be an ObjectLock")
            return
        check_enum(problems, "vault_object_lock.mode", lock.mode, ObjectLockMode)
        if problems.expect("vault_object_lock.retention", lock.retention, Duration, "a Duration"):
            if lock.retention.to_seconds() < 86400:
                problems.append("vault_object_lock.retention must be at least 1 day")


_SIGN_IN_URL = re.compile(r"https://[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")
#: Bring your own reviewers' pool: all three, or none (the construct creates them).
REVIEWER_POOL_SETTINGS = ("reviewer_user_pool", "reviewer_user_pool_client", "reviewer_sign_in_url")
REMOVED_SETTINGS = {
    "review_api_iam_auth": (
        "review_api_iam_auth was removed (0.x): a browser cannot sign IAM requests. Reviewers now sign in through "
        "Amazon Cognito: by default the construct creates the reviewers' user pool; pass reviewer_user_pool, "
        "reviewer_user_pool_client and reviewer_sign_in_url to use your own, reviewers_group to name the group whose "
        "members may decide, review_approvals_required=2 for four eyes (see the CHANGELOG)"
    ),
}


@dataclass(frozen=True)
class ReviewOptions:
    """Who is told, who may decide (the reviewers' Cognito user pool, app client, managed login and
    group) and how many reviewers must approve an object."""

    notification_emails: Sequence[str] = ()
    reviewer_user_pool: Any = None
    reviewer_user_pool_client: Any = None
    reviewer_sign_in_url: Any = None
    reviewers_group: Any = "reviewers"
    review_approvals_required: Any = 1
    review_api_iam_auth: Any = None  # removed: any value is a TypeError naming what replaces it

    def check(self, problems: Problems) -> None:
        if problems.expect_list("notification_emails", self.notification_emails, object, "email addresses"):
            for email in self.notification_emails:
                if not isinstance(email, str) or not _EMAIL.fullmatch(email):
                    problems.append(f"notification_emails: {email!r} is not an email address")
        if self.review_api_iam_auth is not None:
            problems.wrong_type("review_api_iam_auth", REMOVED_SETTINGS["review_api_iam_auth"])
        self._check_pool(problems)
        if problems.expect("reviewers_group", self.reviewers_group, str, "a str"):
            name = self.reviewers_group
            if not 1 <= len(name) <= 128 or any(c.isspace() or not c.isprintable() for c in name):
                problems.append(f"reviewers_group must be a Cognito group name (1 to 128 characters, no spaces), got {name!r}")
        if problems.expect("review_approvals_required", self.review_approvals_required, int, "an int"):
            if self.review_approvals_required not in (1, 2):
                problems.append(
                    f"review_approvals_required must be 1 or 2 (four eyes), got {self.review_approvals_required!r}"
                )

    def _check_pool(self, problems: Problems) -> None:
        pool, client, url = self.reviewer_user_pool, self.reviewer_user_pool_client, self.reviewer_sign_in_url
        typed = problems.expect_interface("reviewer_user_pool", pool)
        typed &= problems.expect_interface("reviewer_user_pool_client", client)
        typed &= problems.expect("reviewer_sign_in_url", url, str, "a str", optional=True)
        given = [name for name, value in zip(REVIEWER_POOL_SETTINGS, (pool, client, url), strict=True) if value is not None]
        if given and len(given) < len(REVIEWER_POOL_SETTINGS):
            missing = [name for name in REVIEWER_POOL_SETTINGS if name not in given]
            problems.append(
                f"{', '.join(given)} given without {', '.join(missing)}: to use your own user pool for reviewers pass all of "
                f"{', '.join(REVIEWER_POOL_SETTINGS)} (or none, and the construct creates them)"
            )
        if typed and isinstance(url, str) and not Token.is_unresolved(url) and not _SIGN_IN_URL.fullmatch(url.rstrip("/")):
            problems.append(
                "reviewer_sign_in_url must be the https:// base URL of the pool's managed login (its domain, no path), "
                f"got {url!r}"
            )

    def check_region(self, problems: Problems, stack: Stack) -> None:
        """The review function checks tokens against a pool of its own Region (the issuer names it)."""
        env = getattr(self.reviewer_user_pool, "env", None)
        region = getattr(env, "region", None)
        if isinstance(region, str) and not Token.is_unresolved(region) and not Token.is_unresolved(stack.region) \
                and region != stack.region:
            problems.append(f"reviewer_user_pool is in {region}, the stack in {stack.region}: the reviewers' pool must be "
                            "in the pipeline's Region")

    @property
    def creates_user_pool(self) -> bool:
        return self.reviewer_user_pool is None


@dataclass(frozen=True)
class DiscoveryResultsOptions:
    """Where Macie's sensitive data discovery results are, the proof that an object was analysed."""

    configure_discovery_results: bool = False
    discovery_results_bucket: Any = None
    discovery_results_key: Any = None

    def check(self, problems: Problems) -> None:
        problems.expect("configure_discovery_results", self.configure_discovery_results, bool, "a bool")
        given = self.discovery_results_bucket is not None or self.discovery_results_key is not None
        if self.configure_discovery_results is True and given:
            # The most specific problem: with configure_discovery_results nothing is to be passed at all.
            problems.append(
                "configure_discovery_results creates its own results bucket and key: "
                "do not also pass discovery_results_bucket or discovery_results_key"
            )
        else:
            problems.expect_interface("discovery_results_bucket", self.discovery_results_bucket)
            problems.expect_interface("discovery_results_key", self.discovery_results_key)
        if (self.discovery_results_bucket is None) != (self.discovery_results_key is None):
            problems.append("discovery_results_bucket and discovery_results_key go together")


@dataclass(frozen=True)
class LayerOptions:
    """Prebuilt Lambda layers, instead of the ones built at synth with pip."""

    pandas_layer: Any = None
    runtime_layer: Any = None
    sign_in_layer: Any = None

    def check(self, problems: Problems) -> None:
        problems.expect_interface("pandas_layer", self.pandas_layer)
        problems.expect_interface("runtime_layer", self.runtime_layer)
        problems.expect_interface("sign_in_layer", self.sign_in_layer)


@dataclass(frozen=True)
class BringYourOwn:
    """Existing resources to use instead of created ones, and which of them you configure yourself."""

    ingress_bucket: Any = None
    vault_bucket: Any = None
    encryption_key: Any = None
    topic: Any = None
    event_bus: Any = None
    externally_managed: Sequence[str] = ()

    def supplied(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in BRING_YOUR_OWN_SETTINGS}

    def ownership(self, stack: Stack) -> dict[str, Optional[Ownership]]:
        """Ownership of each supplied resource; None when it is not of the setting's interface."""
        owner: dict[str, Optional[Ownership]] = {}
        for name, resource in self.supplied().items():
            attribute, _ = INTERFACE_OF[name]
            if resource is not None and not hasattr(resource, attribute):
                owner[name] = None
            else:
                owner[name] = ownership(resource, stack, OWNED_TYPES[name])
        return owner

    def check(self, problems: Problems, *, stack: Stack, owner: Mapping[str, Optional[Ownership]], options: PipelineOptions) -> None:
        for name in BRING_YOUR_OWN_SETTINGS:
            if owner[name] is None:
                problems.wrong_type(name, f"{name} must be {INTERFACE_OF[name][1]}")
        self._check_buckets(problems, stack, owner, options)
        self._check_topic(problems, owner)
        self._check_acknowledgements(problems, owner, external_setup_needs(self, owner, stack=stack, options=options))

    def _check_buckets(self, problems: Problems, stack: Stack, owner, options: PipelineOptions) -> None:
        for name in ("ingress_bucket", "vault_bucket"):
            bucket = getattr(self, name)
            if owner[name] is None or bucket is None:
                continue
            if environment_differs(bucket, stack):
                problems.append(f"{name} must be in the pipeline's account and Region")
            if owner[name] is Ownership.OWNED and bucket_is_versioned(bucket) is False:
                problems.append(f"{name} must have versioning enabled (versioned=True): the pipeline pins and verifies object versions")
        if same_bucket(self.ingress_bucket, self.vault_bucket):
            problems.append("ingress_bucket and vault_bucket must be different buckets")
        results_bucket = options.discovery_results.discovery_results_bucket
        if any(same_bucket(results_bucket, b) for b in (self.ingress_bucket, self.vault_bucket)):
            problems.append(
                "discovery_results_bucket must not be the ingress or vault bucket: Macie would write its results into a pipeline zone"
            )
        if options.zones.vault_object_lock is not None and self.vault_bucket is not None:
            problems.append("vault_object_lock applies only to a vault the construct creates: set Object Lock on your vault_bucket")

    def _check_topic(self, problems: Problems, owner) -> None:
        topic = self.topic
        if topic is None or owner["topic"] is None:
            return
        if getattr(topic, "fifo", False) is True:
            problems.append("topic must be a standard topic: a FIFO topic needs a message group id, which the pipeline does not send")
        if topic_uses_aws_managed_key(topic):
            problems.append("topic is encrypted with the AWS managed key alias/aws/sns, which CloudWatch alarms cannot use")

    def _check_acknowledgements(self, problems: Problems, owner, needs: Mapping[str, str]) -> None:
        acknowledged: set[str] = set()
        if isinstance(self.externally_managed, str):
            problems.wrong_type("externally_managed", "externally_managed must be a list of setting names, not a single string")
        else:
            for name in self.externally_managed:
                if name not in BRING_YOUR_OWN_SETTINGS:
                    problems.append(
                        f"externally_managed: unknown setting {name!r}, expected one of {', '.join(BRING_YOUR_OWN_SETTINGS)}"
                    )
                elif getattr(self, name) is None:
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


def same_bucket(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    return a is b or getattr(a, "bucket_name", None) == getattr(b, "bucket_name", object())


def external_setup_needs(
    byo: BringYourOwn, owner: Mapping[str, Optional[Ownership]], *, stack: Stack, options: PipelineOptions
) -> dict[str, str]:
    """Setting -> what the construct cannot apply to that supplied resource (empty: it applies everything)."""
    needs: dict[str, str] = {}
    if owner["ingress_bucket"] is Ownership.IMPORTED:
        needs["ingress_bucket"] = (
            "turn on its EventBridge notifications or check that it is versioned"
            if options.trigger_kind == "object-created" else "check that it is versioned"
        )
    if owner["vault_bucket"] is Ownership.IMPORTED:
        needs["vault_bucket"] = (
            "add the bucket policy statement that lets only the pipeline write to the vault, or check that it is versioned"
        )
    if owner["encryption_key"] is Ownership.IMPORTED:
        needs["encryption_key"] = "add the key policy statement that lets Macie's service-linked role decrypt staged objects" + (
            " or the one that lets Macie encrypt discovery results" if options.discovery_results.configure_discovery_results else ""
        )
    topic_needs = _topic_needs(byo.topic, owner["topic"], stack)
    if topic_needs:
        needs["topic"] = topic_needs
    if owner["event_bus"] is Ownership.IMPORTED and environment_differs(byo.event_bus, stack) is not False:
        needs["event_bus"] = (
            "tell whether it is in another account, where it needs an event bus policy that lets the workflow put result events"
        )
    return needs


def _topic_needs(topic: Any, topic_owner: Optional[Ownership], stack: Stack) -> Optional[str]:
    if topic_owner not in (Ownership.OWNED, Ownership.IMPORTED):
        return None
    missing = []
    if topic_owner is Ownership.IMPORTED:
        missing.append("the topic policy statement that lets CloudWatch alarms publish")
    topic_key = getattr(topic, "master_key", None)
    if topic_key is not None and ownership(topic_key, stack, kms.Key) is Ownership.IMPORTED:
        missing.append("the key policy statement that lets CloudWatch alarms use the topic's key")
    return "add " + " or ".join(missing) if missing else None


def _check_intake_times(problems: Problems, trigger: Trigger) -> None:
    """The object-created trigger's durations: the batch window, the sweep interval, the lost event age."""
    seconds = {}
    for name in ("batch_window", "sweep_interval", "lost_event_age"):
        value = getattr(trigger, name)
        if problems.expect(f"trigger {name}", value, Duration, "a Duration"):
            seconds[name] = value.to_milliseconds() / 1000  # to_seconds() raises on a fraction
    window, sweep, lost = (seconds.get(n) for n in ("batch_window", "sweep_interval", "lost_event_age"))
    if window is not None and not (0 <= window <= MAX_BATCH_WINDOW_SECONDS and window == int(window)):
        problems.append(f"trigger batch_window must be whole seconds from 0 to {MAX_BATCH_WINDOW_SECONDS} (0: one object per scan)")
    if sweep is not None and (sweep < 60 or sweep % 60):
        problems.append("trigger sweep_interval must be whole minutes, at least 1 minute (an EventBridge schedule)")
    if lost is not None and lost < 60:
        problems.append("trigger lost_event_age must be at least 1 minute")
    elif lost is not None and window is not None and lost <= window:
        problems.append("trigger lost_event_age must be longer than batch_window (a sweep would take objects still in the queue)")


# ---------------------------------------------------------------------- all of them
@dataclass(frozen=True)
class OtherPipeline:
    """A pipeline already in the app, as far as this one's settings must not clash with it."""

    path: str
    same_environment: bool
    configures_discovery_results: bool
    creates_macie_session: bool
    ingress_bucket: Any
    vault_bucket: Any


@dataclass(frozen=True)
class PipelineOptions:
    """Every setting of the construct, grouped by concern."""

    trigger: Trigger
    macie: MacieOptions
    verdicts: VerdictOptions
    timing: TimingOptions
    batching: BatchOptions
    zones: ZoneOptions
    review: ReviewOptions
    discovery_results: DiscoveryResultsOptions
    layers: LayerOptions
    resources: BringYourOwn

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> PipelineOptions:
        """Group the construct's flat keyword arguments (a missing one takes its group's default)."""
        groups = {}
        for group_field in fields(cls):
            if group_field.name == "trigger":
                continue
            group_type = _GROUP_TYPES[group_field.name]
            names = [f.name for f in fields(group_type)]
            groups[group_field.name] = group_type(**{n: settings[n] for n in names if n in settings})
        return cls(trigger=settings.get("trigger") or Trigger.on_object_created(), **groups)

    @property
    def trigger_kind(self) -> str:
        return getattr(self.trigger, "kind", "object-created")

    @property
    def chunk_objects(self) -> int:
        return self.batching.chunk_objects

    @property
    def map_concurrency(self) -> int:
        return self.batching.map_concurrency

    @property
    def job_completion_events(self) -> bool:
        return self.batching.job_completion_events

    def validate(self, stack: Stack, others: Sequence[OtherPipeline] = ()) -> dict[str, Optional[Ownership]]:
        """Check every setting; raise one error listing every problem, or return the ownership of
        each bring-your-own setting."""
        problems = Problems()
        self.macie.check(problems)
        self.verdicts.check(problems)
        self._check_trigger(problems)
        self.timing.check(problems)
        self.batching.check(problems)
        self.zones.check(problems)
        self.review.check(problems)
        self.review.check_region(problems, stack)
        self.discovery_results.check(problems)
        self.layers.check(problems)
        self._check_key_aliases(problems)
        self._check_other_pipelines(problems, others)
        owner = self.resources.ownership(stack)
        self.resources.check(problems, stack=stack, owner=owner, options=self)
        if problems.wrong_types:
            raise InvalidSettingsTypeError(problems)
        if problems:
            raise InvalidSettingsError(problems)
        return owner

    def _check_trigger(self, problems: Problems) -> None:
        trigger = self.trigger
        if not isinstance(trigger, Trigger) or trigger.kind not in ("object-created", "schedule"):
            problems.wrong_type("trigger", "trigger must be Trigger.on_object_created(...) or Trigger.on_schedule(...)")
            return
        if problems.expect("trigger max_batch_objects", trigger.max_batch_objects, int, "an int"):
            if not 1 <= trigger.max_batch_objects <= MAX_BATCH_OBJECTS:
                problems.append(f"trigger max_batch_objects must be from 1 to {MAX_BATCH_OBJECTS:,}")
        if trigger.kind == "object-created":
            _check_intake_times(problems, trigger)

    def _check_key_aliases(self, problems: Problems) -> None:
        byo, results = self.resources, self.discovery_results
        topic = byo.topic
        for where, key in (
            ("encryption_key", byo.encryption_key),
            ("discovery_results_key", results.discovery_results_key),
            ("ingress_bucket's encryption_key", getattr(byo.ingress_bucket, "encryption_key", None)),
            ("vault_bucket's encryption_key", getattr(byo.vault_bucket, "encryption_key", None)),
            ("discovery_results_bucket's encryption_key", getattr(results.discovery_results_bucket, "encryption_key", None)),
            ("topic's master_key", None if topic_uses_aws_managed_key(topic) else getattr(topic, "master_key", None)),
        ):
            alias = key_alias_name(key)
            if alias is not None:
                problems.append(
                    f"{where} is the KMS alias {alias}, not a key: IAM statements on an alias do not cover its key, "
                    "so every use would be denied at run time; pass the key itself (kms.Key.from_key_arn)"
                )

    def _check_other_pipelines(self, problems: Problems, others: Sequence[OtherPipeline]) -> None:
        for setting in ("ingress_bucket", "vault_bucket"):
            mine = getattr(self.resources, setting)
            for other in others:
                for role in ("ingress", "vault"):
                    if mine is not None and same_bucket(mine, getattr(other, f"{role}_bucket")):
                        problems.append(
                            f"{setting} is already the {role} bucket of {other.path}: pipelines must not share ingress or vault "
                            "buckets (each vault guard would deny the other pipeline's promotions; another pipeline's "
                            "vault used as ingress would be scanned again and its versions deleted)"
                        )
        configures, creates = self.discovery_results.configure_discovery_results, self.macie.create_macie_session
        for other in (o for o in others if o.same_environment):
            if configures is True and other.configures_discovery_results:
                problems.append(
                    f"configure_discovery_results: {other.path} already sets the Macie export configuration, of which there "
                    "is one per account and Region; pass its results bucket and key as discovery_results_bucket and "
                    "discovery_results_key instead"
                )
            if creates is True and other.creates_macie_session:
                problems.append(
                    f"create_macie_session: {other.path} already enables Macie in this account and Region; "
                    "a second session fails the deployment"
                )


_GROUP_TYPES = {
    "macie": MacieOptions,
    "verdicts": VerdictOptions,
    "timing": TimingOptions,
    "batching": BatchOptions,
    "zones": ZoneOptions,
    "review": ReviewOptions,
    "discovery_results": DiscoveryResultsOptions,
    "layers": LayerOptions,
    "resources": BringYourOwn,
}
