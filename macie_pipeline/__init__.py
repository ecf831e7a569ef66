"""SensitiveDataScanPipeline: an AWS CDK construct that gates objects through an Amazon Macie scan."""

from .external import ExternalSetup
from .options import InvalidSettingsError, InvalidSettingsTypeError
from .pipeline import SensitiveDataScanPipeline
from .props import (
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
)
from .workflow import EVENT_DETAIL_TYPE, EVENT_SOURCE

__version__ = "0.1.0"

__all__ = [
    "SensitiveDataScanPipeline",
    "ExternalSetup",
    "InvalidSettingsError",
    "InvalidSettingsTypeError",
    "AllowList",
    "CustomDataIdentifier",
    "DenyPolicy",
    "FindingAction",
    "FindingPolicy",
    "ManagedDataIdentifierSelector",
    "ObjectLock",
    "ObjectLockMode",
    "Trigger",
    "UnknownFormatPolicy",
    "EVENT_DETAIL_TYPE",
    "EVENT_SOURCE",
]
