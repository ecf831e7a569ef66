"""Names the handlers share. What the construct must spell the same way (tag keys, the state
table's keys, event names) lives in :mod:`pipeline_common.contract` and is re-exported here."""

from .contract import (  # noqa: F401 - re-exported for the handlers
    CLAIM_PREFIX,
    PIPELINE_TAG_KEYS,
    REVIEW_PREFIX,
    S3_MAX_KEY_BYTES,
    TABLE_PARTITION_KEY,
    TABLE_TTL_ATTRIBUTE,
    TAG_FINDINGS,
    TAG_OUTCOME,
    TAG_SCAN_ID,
    TAG_VERDICT,
)

# User metadata written on every copy, used to make moves idempotent (ASCII only, as S3 requires).
META_SOURCE_VERSION = "macie-pipeline-source-version"
META_SOURCE_ETAG = "macie-pipeline-source-etag"
# The LastModified (UTC, ISO 8601 to the second) of the ingress version a copy descends from: written
# at staging and carried unchanged through every later copy; it orders versions of one key in the vault.
META_SOURCE_LAST_MODIFIED = "macie-pipeline-source-last-modified"

# Verdicts (evaluate findings) and integrity results (integrity check).
CLEAN, REVIEW, DENY, CORRUPT = "CLEAN", "REVIEW", "DENY", "CORRUPT"
VERDICTS = (CLEAN, REVIEW, DENY, CORRUPT)
VALID, UNCHECKED = "VALID", "UNCHECKED"
INTEGRITY_RESULTS = (VALID, CORRUPT, UNCHECKED)

# Finding policy actions and severities (Macie severity.description values, upper-cased).
ALLOW = "ALLOW"
POLICY_ACTIONS = (ALLOW, REVIEW, DENY)
SEVERITIES = ("LOW", "MEDIUM", "HIGH")

# Outcome (tag and result event) of a version kept out of the vault because the vault's current
# version of its key descends from a newer ingress version.
SUPERSEDED = "SUPERSEDED"

# Reviewer decisions.
APPROVE = "APPROVE"
DECISIONS = (APPROVE, DENY)

S3_MAX_TAGS = 10
S3_MAX_TAG_VALUE = 256
