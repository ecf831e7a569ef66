"""The construct/handler contract, as the construct reads it at synth.

The contract is written once, in the Lambda code's shared package
(``lambda/shared/pipeline_common/contract.py``, standard library only), which the handlers import
at run time from the runtime layer. This module loads that very file, so the construct, the
handlers and the local engine cannot disagree about a tag key, a table prefix, an environment
variable or a state name.
"""

from __future__ import annotations

import importlib.util
import sys

from .layers import shared_code_dir

_NAME = "macie_pipeline._contract"


def _load():
    loaded = sys.modules.get(_NAME)
    if loaded is not None:
        return loaded
    path = shared_code_dir() / "contract.py"
    spec = importlib.util.spec_from_file_location(_NAME, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a file that exists always has a spec
        raise ImportError(f"cannot load the pipeline contract from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module  # dataclasses look their module up while the classes are built
    spec.loader.exec_module(module)
    return module


_contract = _load()

TAG_SCAN_ID: str = _contract.TAG_SCAN_ID
TAG_VERDICT: str = _contract.TAG_VERDICT
TAG_FINDINGS: str = _contract.TAG_FINDINGS
TAG_OUTCOME: str = _contract.TAG_OUTCOME
PIPELINE_TAG_KEYS: tuple = _contract.PIPELINE_TAG_KEYS
TABLE_PARTITION_KEY: str = _contract.TABLE_PARTITION_KEY
TABLE_TTL_ATTRIBUTE: str = _contract.TABLE_TTL_ATTRIBUTE
CLAIM_PREFIX: str = _contract.CLAIM_PREFIX
REVIEW_PREFIX: str = _contract.REVIEW_PREFIX
JOB_PREFIX: str = _contract.JOB_PREFIX
BATCH_PREFIX: str = _contract.BATCH_PREFIX
BATCH_STAGES: tuple = _contract.BATCH_STAGES
CHUNK_INDEX: str = _contract.CHUNK_INDEX
SUMMARY: str = _contract.SUMMARY
MAP_RESULTS_PREFIX: str = _contract.MAP_RESULTS_PREFIX
REVIEW_OBJECTS: str = _contract.REVIEW_OBJECTS
BATCH_FILE_WRITERS: dict = _contract.BATCH_FILE_WRITERS
MACIE_JOB_LOG_GROUP: str = _contract.MACIE_JOB_LOG_GROUP
JOB_WAKE_EVENTS: tuple = _contract.JOB_WAKE_EVENTS
JOB_ERROR_EVENT_PREFIXES: tuple = _contract.JOB_ERROR_EVENT_PREFIXES
EVENT_SOURCE: str = _contract.EVENT_SOURCE
EVENT_DETAIL_TYPE: str = _contract.EVENT_DETAIL_TYPE
STAGING_PREFIX: str = _contract.STAGING_PREFIX
DENIED_PREFIX: str = _contract.DENIED_PREFIX
SUPERSEDED_PREFIX: str = _contract.SUPERSEDED_PREFIX
DISCOVERY_RESULTS_PREFIX: str = _contract.DISCOVERY_RESULTS_PREFIX
States = _contract.States
InvalidEnvironment = _contract.InvalidEnvironment
FunctionEnvironment = _contract.FunctionEnvironment
PrepareScanEnvironment = _contract.PrepareScanEnvironment
TransferEnvironment = _contract.TransferEnvironment
IntegrityCheckEnvironment = _contract.IntegrityCheckEnvironment
EvaluateFindingsEnvironment = _contract.EvaluateFindingsEnvironment
JobEventsEnvironment = _contract.JobEventsEnvironment
RequestReviewEnvironment = _contract.RequestReviewEnvironment
ReviewApiEnvironment = _contract.ReviewApiEnvironment
ENVIRONMENTS = _contract.ENVIRONMENTS
batch_key = _contract.batch_key
chunk_key = _contract.chunk_key
zone_key = _contract.zone_key

__all__ = [name for name in dir() if name[:1].isupper()] + ["batch_key", "chunk_key", "zone_key"]
