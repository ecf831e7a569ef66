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


# ---------------------------------------------------------------------- state names
class States:
    """Names of the workflow's states that the local engine, the tests or the docs depend on.

    The workflow builds these states under exactly these names; the README's diagram and the
    engine's invariants read them back from the synthesized definition.
    """

    PREPARE_SCAN = "Prepare scan"
    STAGE_OBJECTS = "Stage objects"
    COPY_TO_QUARANTINE = "Copy to quarantine"
    PROMOTE_TO_VAULT = "Promote to vault"
    PROMOTE_APPROVED = "Promote approved object"
    HOLD_FOR_REVIEW = "Hold for review"
    REPORT_INGRESS_CLEANUP_FAILED = "Report ingress cleanup failed"


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
    FUNCTION: ClassVar[str] = "prepare_scan"

    state_table: str = variable("STATE_TABLE")
    ingress_bucket: str = variable("INGRESS_BUCKET")
    #: Only keys under this prefix are scanned. Default: every key.
    ingress_prefix: str = variable("INGRESS_PREFIX", default="")
    #: A scheduled batch takes at most this many objects (the rest wait for the next run).
    max_batch_objects: int = variable("MAX_BATCH_OBJECTS", default=25, kind="int")
    #: How long a claim on an object version holds (the construct sets twice the longest scan + review).
    claim_ttl_seconds: int = variable("CLAIM_TTL_SECONDS", default=7 * 24 * 3600, kind="int")
    log_level: str = variable("POWERTOOLS_LOG_LEVEL", default="INFO")


@dataclass(frozen=True, kw_only=True)
class TransferEnvironment(FunctionEnvironment):
    FUNCTION: ClassVar[str] = "transfer"


@dataclass(frozen=True, kw_only=True)
class IntegrityCheckEnvironment(FunctionEnvironment):
    FUNCTION: ClassVar[str] = "integrity_check"

    #: Rows per chunk when tabular data is parsed (bounded memory).
    chunk_rows: int = variable("CHUNK_ROWS", default=50_000, kind="int")
    #: A JSON (not JSON Lines) document larger than this is UNCHECKED rather than parsed whole.
    max_json_document_bytes: int = variable("MAX_JSON_DOCUMENT_BYTES", default=64 * 1024 * 1024, kind="int")


@dataclass(frozen=True, kw_only=True)
class EvaluateFindingsEnvironment(FunctionEnvironment):
    FUNCTION: ClassVar[str] = "evaluate_findings"

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
class RequestReviewEnvironment(FunctionEnvironment):
    FUNCTION: ClassVar[str] = "request_review"

    state_table: str = variable("STATE_TABLE")
    topic_arn: str = variable("TOPIC_ARN")
    #: How long a review link stays valid (the construct sets the approval timeout).
    review_timeout_seconds: int = variable("REVIEW_TIMEOUT_SECONDS", default=3 * 24 * 3600, kind="int")
    #: Base URL of the review API (``https://.../review/``); set once the API exists.
    review_api_url: str = variable("REVIEW_API_URL")
    log_level: str = variable("POWERTOOLS_LOG_LEVEL", default="INFO")


@dataclass(frozen=True, kw_only=True)
class ReviewApiEnvironment(FunctionEnvironment):
    FUNCTION: ClassVar[str] = "review_api"

    state_table: str = variable("STATE_TABLE")
    log_level: str = variable("POWERTOOLS_LOG_LEVEL", default="INFO")


#: Every function's environment, by its folder under ``lambda/``.
ENVIRONMENTS: dict[str, type[FunctionEnvironment]] = {
    cls.FUNCTION: cls
    for cls in (
        PrepareScanEnvironment,
        TransferEnvironment,
        IntegrityCheckEnvironment,
        EvaluateFindingsEnvironment,
        RequestReviewEnvironment,
        ReviewApiEnvironment,
    )
}
