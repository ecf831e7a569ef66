"""Exceptions whose class names are the error names the state machine retries on or catches.

Step Functions sees a Lambda exception as ``errorType`` = the class name, so these names are part of
the contract with the workflow definition: do not rename them without changing the construct.
"""


class PipelineError(Exception):
    """Base class: a permanent, well-understood failure. The workflow catches it and fails closed."""


class InvalidInputError(PipelineError):
    """The handler's input is malformed (a bad event, a missing field, an odd key that cannot be used)."""


class SourceChangedError(PipelineError):
    """The pinned version or ETag of the source object is no longer what the scan saw."""


class VerificationError(PipelineError):
    """A copy could not be verified against its source; the source was left in place."""


class TransientError(Exception):
    """A failure worth retrying (throttling, a timeout, an eventually consistent read)."""
