"""The batch names of the contract (docs/batching.md) the engine needs, read from the contract itself.

``macie_pipeline.contract`` re-exports the construct's share of the contract; the engine takes the
batch layout and the Macie job event names straight from the loaded contract module, so they are
spelled once (``lambda/shared/pipeline_common/contract.py``).
"""

from __future__ import annotations

from .. import contract as _construct_contract

_contract = _construct_contract._contract

MACIE_JOB_LOG_GROUP: str = _contract.MACIE_JOB_LOG_GROUP
JOB_WAKE_EVENTS: tuple = _contract.JOB_WAKE_EVENTS
JOB_ERROR_EVENT_PREFIXES: tuple = _contract.JOB_ERROR_EVENT_PREFIXES
BATCH_PREFIX: str = _contract.BATCH_PREFIX
BATCH_STAGES: tuple = _contract.BATCH_STAGES
CHUNK_INDEX: str = _contract.CHUNK_INDEX
REVIEW_OBJECTS: str = _contract.REVIEW_OBJECTS
SUMMARY: str = _contract.SUMMARY
batch_key = _contract.batch_key
chunk_key = _contract.chunk_key
zone_key = _contract.zone_key
TransferEnvironment = _contract.TransferEnvironment
JobEventsEnvironment = _contract.JobEventsEnvironment
PrepareScanEnvironment = _contract.PrepareScanEnvironment
