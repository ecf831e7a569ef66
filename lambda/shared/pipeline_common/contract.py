"""The contract between the construct, the Lambda handlers and the local engine, written once.

The construct reads this module at synth (``macie_pipeline.contract`` loads this very file), the
handlers import it at run time (it ships in the runtime layer as ``pipeline_common.contract``) and
the local engine uses it to find its way around a synthesized stack. It holds what must be spelled
the same on both sides: object tag keys, the state table's key layout, the result events' source
and detail type, the state names others depend on, and each function's environment.

Standard library only: it is imported by the construct (no boto3 there) and by every function.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, TypeVar

# ---------------------------------------------------------------------- object tags
# Written by the pipeline (S3 allows 10 tags per object; the pipeline uses at most 4).
TAG_SCAN_ID = "macie-pipeline:scan-id"
TAG_VERDICT = "macie-pipeline:verdict"
TAG_FINDINGS = "macie-pipeline:findings"
TAG_OUTCOME = "macie-pipeline:outcome"
PIPELINE_TAG_KEYS = (TAG_SCAN_ID, TAG_VERDICT, TAG_FINDINGS, TAG_OUTCOME)

# ---------------------------------------------------------------------- the state table
# One string partition key, TTL on expiresAt (epoch seconds). Each function reaches only the items
# whose key starts with its prefix (IAM dynamodb:LeadingKeys).
TABLE_PARTITION_KEY = "pk"
TABLE_TTL_ATTRIBUTE = "expiresAt"
CLAIM_PREFIX = "claim#"
REVIEW_PREFIX = "review#"
# job#<macie job id>: the task token of the execution waiting for that job, and the job's error events.
JOB_PREFIX = "job#"
# review#<batch id>#<object index>: one reviewer decision on one object of a batch's review.
REVIEW_DECISION_SEPARATOR = "#"

# ---------------------------------------------------------------------- result events (EventBridge)
EVENT_SOURCE = "sensitive-data-scan-pipeline"
EVENT_DETAIL_TYPE = "Sensitive Data Scan Result"

# ---------------------------------------------------------------------- zones
# Where staged objects live in the quarantine bucket: scans/<scan-id>/<key>.
STAGING_PREFIX = "scans/"
# Where a denied object is kept in the quarantine bucket: denied/<scan-id>/<key>.
DENIED_PREFIX = "denied/"
# Where a version is kept in the quarantine bucket when the vault's current version of its key came
# from a newer ingress version (outcome SUPERSEDED): superseded/<scan-id>/<key>.
SUPERSEDED_PREFIX = "superseded/"
# Under this prefix of its results bucket Macie writes discovery results when the construct sets
# the account's export configuration (configure_discovery_results).
DISCOVERY_RESULTS_PREFIX = "macie-discovery-results"


# ---------------------------------------------------------------------- batches (docs/batching.md)
# Every batch keeps its manifest and its per-object results in the batch bucket, under
# batches/<batch id>/: the workflow's state holds only references and counts.
BATCH_PREFIX = "batches/"
#: JSON array of {"chunk": n, "count": objects, "bytes": total size}: what every Distributed Map reads.
CHUNK_INDEX = "chunks.json"
#: JSON Lines files, one per chunk, one line per object (see docs/batching.md for each line's fields).
MANIFEST, COPIED, STAGED, VERDICTS, ROUTED, DECIDED, REPORTED = (
    "manifest", "copied", "staged", "verdicts", "routed", "decided", "reported"
)
BATCH_STAGES = (MANIFEST, COPIED, STAGED, VERDICTS, ROUTED, DECIDED, REPORTED)
#: Where each Distributed Map writes its run's result manifest (ResultWriter).
MAP_RESULTS_PREFIX = "map-results/"
#: The objects of a batch held for review (JSON Lines, in routed order), written by request_review.
REVIEW_OBJECTS = "review.jsonl"
#: The batch's summary (JSON), written when the batch ends.
SUMMARY = "summary.json"
S3_MAX_KEY_BYTES = 1024
#: Which function writes which files of a batch (patterns under batches/<batch id>/). The construct
#: grants each function PutObject on exactly its patterns and the batch bucket's policy denies every
#: pattern to every other principal: a verdict line is written by evaluate_findings or by nobody.
BATCH_FILE_WRITERS: dict[str, tuple[str, ...]] = {
    "prepare_scan": (f"{MANIFEST}/*", CHUNK_INDEX),
    "transfer": (f"{COPIED}/*", f"{ROUTED}/*", f"{DECIDED}/*", f"{REPORTED}/*"),
    "integrity_check": (f"{STAGED}/*",),
    "evaluate_findings": (f"{VERDICTS}/*", f"{REPORTED}/*", SUMMARY),
    "request_review": (REVIEW_OBJECTS,),
}


def batch_key(batch_id: str, name: str) -> str:
    """``batches/<batch id>/<name>``: a file of one batch in the batch bucket."""
    return f"{BATCH_PREFIX}{batch_id}/{name}"


def chunk_key(batch_id: str, stage: str, chunk: int) -> str:
    """``batches/<batch id>/<stage>/<chunk, 6 digits>.jsonl``: one chunk's lines at one stage."""
    if stage not in BATCH_STAGES:
        raise ValueError(f"unknown batch stage {stage!r}")
    return f"{BATCH_PREFIX}{batch_id}/{stage}/{chunk:06d}.jsonl"


def zone_key(prefix: str, scan_id: str, key: str) -> str:
    """Where ``key`` goes in a zone: ``<prefix><scan id>/<key>``, or, when that would exceed S3's
    1,024 bytes, ``<prefix><scan id>/#sha256/<hex digest of key>`` (the original key travels in
    the result event, the manifest and the object's metadata)."""
    candidate = f"{prefix}{scan_id}/{key}"
    if len(candidate.encode("utf-8")) <= S3_MAX_KEY_BYTES:
        return candidate
    return f"{prefix}{scan_id}/#sha256/{hashlib.sha256(key.encode('utf-8')).hexdigest()}"


# ---------------------------------------------------------------------- Macie job events
# Macie writes one log stream per job to this group; a subscription filter sends them to job_events.
MACIE_JOB_LOG_GROUP = "/aws/macie/classificationjobs"
#: Events after which the waiting execution describes the job again (the job's status decides).
JOB_WAKE_EVENTS = (
    "JOB_COMPLETED",
    "JOB_CANCELLED",
    "JOB_PAUSED_BY_USER",
    "JOB_PAUSED_BY_MACIE_SERVICE_QUOTA_MET",
    "JOB_RESUMED_BY_USER",
    "JOB_RESUMED_AUTOMATICALLY_AFTER_QUOTA_RESET",
)
#: Event type prefixes that mean Macie could not analyse some objects of the job: every object of
#: the batch is then at least REVIEW (recorded on the job#<id> item, read by evaluate_findings).
JOB_ERROR_EVENT_PREFIXES = ("BUCKET_", "ACCOUNT_", "OBJECT_")


# ---------------------------------------------------------------------- state names
class States:
    """Names of the workflow's states that the local engine, the tests or the docs depend on.

    The workflow builds these states under exactly these names; the README's diagram and the
    engine's invariants read them back from the synthesized definition (docs/batching.md).
    """

    BATCH_READY = "Batch ready?"
    STAGE_OBJECTS = "Stage objects"  # Distributed Map over the chunk index
    COPY_TO_QUARANTINE = "Copy to quarantine"  # transfer stage_chunk (child workflow)
    CHECK_INTEGRITY = "Check integrity"  # integrity_check check_chunk (child workflow)
    COUNT_STAGED = "Count staged"  # evaluate_findings count_staged
    START_MACIE_JOB = "Start Macie job"
    WAIT_FOR_MACIE_JOB = "Wait for Macie job"  # job_events wait (.waitForTaskToken)
    DESCRIBE_MACIE_JOB = "Describe Macie job"
    EVALUATE_FINDINGS = "Evaluate findings"  # evaluate_findings evaluate
    ROUTE_OBJECTS = "Route objects"  # Distributed Map over the chunk index
    ROUTE_CHUNK = "Route chunk"  # transfer route_chunk (child workflow)
    WAIT_FOR_REVIEWER = "Wait for reviewer"  # request_review (.waitForTaskToken)
    APPLY_DECISIONS = "Apply decisions"  # Distributed Map over the chunk index
    APPLY_DECISIONS_TO_CHUNK = "Apply decisions to chunk"  # transfer decide_chunk (child workflow)
    SUMMARIZE_BATCH = "Summarize batch"  # evaluate_findings summarize
    NOTIFY_SCAN_SUMMARY = "Notify scan summary"
    REPORT_FAILED_BATCH = "Report failed batch"  # transfer report_failed


# ---------------------------------------------------------------------- function environments
class InvalidEnvironment(ValueError):
    """A function's environment is missing a variable or holds a bad value: a deployment error."""


def variable(name: str, *, default: Any = dataclasses.MISSING, kind: str = "str") -> Any:
    """A field read from the environment variable ``name``; ``kind`` is ``str``, ``int`` (at least 1)
    or ``json`` (a JSON document, kept as its text). A field without a default must be set."""
    if kind not in ("str", "int", "json"):
        raise ValueError(f"unknown kind {kind!r}")
    return field(default=default, metadata={"env": name, "kind": kind})


_Env = TypeVar("_Env", bound="FunctionEnvironment")


@dataclass(frozen=True, kw_only=True)
class FunctionEnvironment:
    """One function's environment: the construct writes it (:meth:`to_environment`), the handler
    reads it back (:meth:`from_environment`). Optional variables are ``None`` and left out."""

    #: The function's folder under ``lambda/`` (its handler module has the same name).
    FUNCTION: ClassVar[str] = ""

    def to_environment(self) -> dict[str, str]:
        """The variables as the construct sets them (values may be CDK tokens at synth)."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.metadata["env"]] = str(value) if f.metadata["kind"] == "int" else value
        return out

    @classmethod
    def from_environment(cls: type[_Env], env: Mapping[str, str]) -> _Env:
        """Parse ``env`` (``os.environ`` in Lambda); raises :class:`InvalidEnvironment` naming every
        variable that is missing or bad."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in dataclasses.fields(cls):
            name, kind = f.metadata["env"], f.metadata["kind"]
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                if f.default is dataclasses.MISSING:
                    problems.append(f"{name} must be set")
                continue
            try:
                values[f.name] = _parse(kind, raw)
            except ValueError as err:
                problems.append(f"{name} {err}")
        if problems:
            raise InvalidEnvironment(f"{cls.FUNCTION or cls.__name__}: environment variable " + "; ".join(problems))
        return cls(**values)

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        """The names of the variables this function reads."""
        return tuple(f.metadata["env"] for f in dataclasses.fields(cls))

    @classmethod
    def variable_name(cls, field_name: str) -> str:
        """The environment variable behind one field (``ingress_bucket`` -> ``INGRESS_BUCKET``)."""
        for f in dataclasses.fields(cls):
            if f.name == field_name:
                return f.metadata["env"]
        raise KeyError(f"{cls.__name__} has no field {field_name!r}")


def _parse(kind: str, raw: str) -> Any:
    if kind == "int":
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be an integer, got {raw!r}") from None
        if value < 1:
            raise ValueError(f"must be at least 1, got {value}")
        return value
    if kind == "json":
        try:
            json.loads(raw)
        except ValueError as err:
            raise ValueError(f"must be JSON ({err.msg})") from None
    return raw


@dataclass(frozen=True, kw_only=True)
class PrepareScanEnvironment(FunctionEnvironment):
    """The batcher: claims object versions, writes a batch's manifest, starts one execution per batch."""

    FUNCTION: ClassVar[str] = "prepare_scan"

    state_table: str = variable("STATE_TABLE")
    ingress_bucket: str = variable("INGRESS_BUCKET")
    batch_bucket: str = variable("BATCH_BUCKET")
    state_machine_arn: str = variable("STATE_MACHINE_ARN")
    #: Only keys under this prefix are scanned. Default: every key.
    ingress_prefix: str = variable("INGRESS_PREFIX", default="")
    #: Only keys ending with this are scanned (the object-created trigger's suffix). Default: every key.
    ingress_suffix: str = variable("INGRESS_SUFFIX", default="")
    #: A batch takes at most this many objects (a sweep starts as many batches as it needs).
    max_batch_objects: int = variable("MAX_BATCH_OBJECTS", default=10_000, kind="int")
    #: A chunk (one child workflow, one bulk invocation per step) takes at most this many objects ...
    chunk_objects: int = variable("CHUNK_OBJECTS", default=200, kind="int")
    #: ... and at most this many bytes (an object larger than this is a chunk of its own).
    chunk_bytes: int = variable("CHUNK_BYTES", default=2 * 1024**3, kind="int")
    #: A sweep for lost events takes only versions older than this and never claimed.
    lost_event_age_seconds: int = variable("LOST_EVENT_AGE_SECONDS", default=3600, kind="int")
    #: How long a claim on an object version holds (the construct sets twice the longest scan + review).
    claim_ttl_seconds: int = variable("CLAIM_TTL_SECONDS", default=7 * 24 * 3600, kind="int")
    log_level: str = variable("POWERTOOLS_LOG_LEVEL", default="INFO")


@dataclass(frozen=True, kw_only=True)
class TransferEnvironment(FunctionEnvironment):
    """Moves objects between zones; the only role that writes to quarantine, review and vault."""

    FUNCTION: ClassVar[str] = "transfer"

    batch_bucket: str = variable("BATCH_BUCKET")
    ingress_bucket: str = variable("INGRESS_BUCKET")
    quarantine_bucket: str = variable("QUARANTINE_BUCKET")
    review_bucket: str = variable("REVIEW_BUCKET")
    vault_bucket: str = variable("VAULT_BUCKET")
    event_bus: str = variable("EVENT_BUS_NAME")
    state_table: str = variable("STATE_TABLE")
    #: What an explicit DENY does: QUARANTINE (keep under denied/) or DELETE.
    deny_policy: str = variable("DENY_POLICY", default="QUARANTINE")
    #: Objects of one chunk handled at the same time.
    workers: int = variable("WORKERS", default=16, kind="int")
    log_level: str = variable("POWERTOOLS_LOG_LEVEL", default="INFO")


@dataclass(frozen=True, kw_only=True)
class IntegrityCheckEnvironment(FunctionEnvironment):
    FUNCTION: ClassVar[str] = "integrity_check"

    batch_bucket: str = variable("BATCH_BUCKET")
    #: Rows per chunk when tabular data is parsed (bounded memory).
    chunk_rows: int = variable("CHUNK_ROWS", default=50_000, kind="int")
    #: A JSON (not JSON Lines) document larger than this is UNCHECKED rather than parsed whole.
    max_json_document_bytes: int = variable("MAX_JSON_DOCUMENT_BYTES", default=64 * 1024 * 1024, kind="int")
    #: Objects of one chunk checked at the same time (memory: each check is bounded).
    workers: int = variable("WORKERS", default=4, kind="int")


@dataclass(frozen=True, kw_only=True)
class EvaluateFindingsEnvironment(FunctionEnvironment):
    FUNCTION: ClassVar[str] = "evaluate_findings"

    batch_bucket: str = variable("BATCH_BUCKET")
    state_table: str = variable("STATE_TABLE")
    event_bus: str = variable("EVENT_BUS_NAME")
    #: ``{"LOW": action, "MEDIUM": action, "HIGH": action}`` as JSON. Default: every finding REVIEW.
    finding_policy: Optional[str] = variable("FINDING_POLICY", default=None, kind="json")
    #: What an UNCHECKED integrity result means (ALLOW, REVIEW or DENY). Default: REVIEW.
    unknown_format_policy: Optional[str] = variable("UNKNOWN_FORMAT_POLICY", default=None)
    #: ``{macie name: name you gave}`` of the custom data identifiers, as JSON.
    custom_data_identifier_names: Optional[str] = variable("CUSTOM_DATA_IDENTIFIER_NAMES", default=None, kind="json")
    #: Where discovery results are (default: read from the account's export configuration at run time).
    results_bucket: Optional[str] = variable("RESULTS_BUCKET", default=None)
    results_prefix: Optional[str] = variable("RESULTS_PREFIX", default=None)


@dataclass(frozen=True, kw_only=True)
class JobEventsEnvironment(FunctionEnvironment):
    """Resumes the execution waiting for a Macie job: from the job's log events, or at once when the
    job has already ended when the execution starts waiting."""

    FUNCTION: ClassVar[str] = "job_events"

    state_table: str = variable("STATE_TABLE")
    #: How long a job#<id> item is kept (the construct sets the claim TTL).
    item_ttl_seconds: int = variable("ITEM_TTL_SECONDS", default=7 * 24 * 3600, kind="int")
    log_level: str = variable("POWERTOOLS_LOG_LEVEL", default="INFO")


@dataclass(frozen=True, kw_only=True)
class RequestReviewEnvironment(FunctionEnvironment):
    FUNCTION: ClassVar[str] = "request_review"

    state_table: str = variable("STATE_TABLE")
    topic_arn: str = variable("TOPIC_ARN")
    batch_bucket: str = variable("BATCH_BUCKET")
    #: How long a review link stays valid (the construct sets the approval timeout).
    review_timeout_seconds: int = variable("REVIEW_TIMEOUT_SECONDS", default=3 * 24 * 3600, kind="int")
    #: Base URL of the review API (``https://.../review/``); set once the API exists.
    review_api_url: str = variable("REVIEW_API_URL")
    log_level: str = variable("POWERTOOLS_LOG_LEVEL", default="INFO")


@dataclass(frozen=True, kw_only=True)
class ReviewApiEnvironment(FunctionEnvironment):
    FUNCTION: ClassVar[str] = "review_api"

    state_table: str = variable("STATE_TABLE")
    batch_bucket: str = variable("BATCH_BUCKET")
    # The reviewers' sign-in (docs: README, "Reviewers"): whose ID tokens are accepted, where the
    # managed login is, the callback URL registered with the app client, who may decide.
    user_pool_id: str = variable("REVIEWER_USER_POOL_ID")
    user_pool_client_id: str = variable("REVIEWER_USER_POOL_CLIENT_ID")
    sign_in_url: str = variable("REVIEWER_SIGN_IN_URL")
    signed_in_url: str = variable("REVIEWER_SIGNED_IN_URL")
    reviewers_group: str = variable("REVIEWERS_GROUP", default="reviewers")
    approvals_required: int = variable("REVIEW_APPROVALS_REQUIRED", default=1, kind="int")
    log_level: str = variable("POWERTOOLS_LOG_LEVEL", default="INFO")


#: Every function's environment, by its folder under ``lambda/``.
ENVIRONMENTS: dict[str, type[FunctionEnvironment]] = {
    cls.FUNCTION: cls
    for cls in (
        PrepareScanEnvironment,
        TransferEnvironment,
        IntegrityCheckEnvironment,
        EvaluateFindingsEnvironment,
        JobEventsEnvironment,
        RequestReviewEnvironment,
        ReviewApiEnvironment,
    )
}
