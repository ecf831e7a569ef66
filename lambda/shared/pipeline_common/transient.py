"""Tell retryable AWS failures (throttling, 5xx, network) from permanent ones.

Handlers turn the retryable ones into ``TransientError`` (the workflow retries it) and everything else
into a ``PipelineError`` subclass (the workflow fails closed).
"""

from __future__ import annotations

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from .errors import PipelineError, TransientError

# Error codes AWS services use for throttling and server-side failures.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "Throttling",
        "RequestTimeout",
        "ThrottlingException",
        "ThrottledException",
        "Throttled",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KmsThrottlingException",
        "KMSThrottlingException",
    }
)


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError, else the exception's class name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "Unknown")
    return type(error).__name__


def is_transient(error: BaseException) -> bool:
    """True for throttling, an HTTP 5xx answer, or a network failure (connection, timeout)."""
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return True
    if isinstance(error, ClientError):
        if error_code(error) in TRANSIENT_ERROR_CODES:
            return True
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return isinstance(status, int) and status >= 500
    return False


def as_pipeline_error(what: str, error: BaseException) -> Exception:
    """The workflow error for a failed AWS call: TransientError if it is worth retrying, else PipelineError."""
    code = error_code(error)
    if is_transient(error):
        return TransientError(f"{what} failed with {code}; retry later")
    return PipelineError(f"{what} failed with {code}")
