"""Names that are a contract between the state machine, the handlers, the docs and the tests."""

# Object tags written by the pipeline (S3 allows 10 tags per object; the pipeline uses at most 4).
TAG_SCAN_ID = "macie-pipeline:scan-id"
TAG_VERDICT = "macie-pipeline:verdict"
TAG_FINDINGS = "macie-pipeline:findings"
TAG_OUTCOME = "macie-pipeline:outcome"
PIPELINE_TAG_KEYS = (TAG_SCAN_ID, TAG_VERDICT, TAG_FINDINGS, TAG_OUTCOME)

# User metadata written on every copy, used to make moves idempotent (ASCII only, as S3 requires).
META_SOURCE_VERSION = "macie-pipeline-source-version"
META_SOURCE_ETAG = "macie-pipeline-source-etag"

# Verdicts (evaluate findings) and integrity results (integrity check).
CLEAN, REVIEW, DENY, CORRUPT = "CLEAN", "REVIEW", "DENY", "CORRUPT"
VERDICTS = (CLEAN, REVIEW, DENY, CORRUPT)
VALID, UNCHECKED = "VALID", "UNCHECKED"
INTEGRITY_RESULTS = (VALID, CORRUPT, UNCHECKED)

# Finding policy actions and severities (Macie severity.description values, upper-cased).
ALLOW = "ALLOW"
POLICY_ACTIONS = (ALLOW, REVIEW, DENY)
SEVERITIES = ("LOW", "MEDIUM", "HIGH")

# Reviewer decisions.
APPROVE = "APPROVE"
DECISIONS = (APPROVE, DENY)

# DynamoDB state table: one string partition key, TTL on expiresAt (epoch seconds).
TABLE_PARTITION_KEY = "pk"
TABLE_TTL_ATTRIBUTE = "expiresAt"
CLAIM_PREFIX = "claim#"
REVIEW_PREFIX = "review#"

S3_MAX_KEY_BYTES = 1024
S3_MAX_TAGS = 10
S3_MAX_TAG_VALUE = 256
