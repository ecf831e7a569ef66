"""SensitiveDataScanPipeline: an AWS CDK construct that gates objects through an Amazon Macie scan.

The public names below are loaded on first use, so that ``macie_pipeline.local`` (the offline engine,
which runs synthesized templates) and ``macie_pipeline.contract`` do not start the CDK's JavaScript
runtime, and print nothing of it, unless the construct itself is used.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "SensitiveDataScanPipeline": ".pipeline",
    "ExternalSetup": ".external",
    "InvalidSettingsError": ".options",
    "InvalidSettingsTypeError": ".options",
    "AllowList": ".props",
    "CustomDataIdentifier": ".props",
    "DenyPolicy": ".props",
    "FindingAction": ".props",
    "FindingPolicy": ".props",
    "ManagedDataIdentifierSelector": ".props",
    "ObjectLock": ".props",
    "ObjectLockMode": ".props",
    "Trigger": ".props",
    "UnknownFormatPolicy": ".props",
    "EVENT_DETAIL_TYPE": ".contract",
    "EVENT_SOURCE": ".contract",
}

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

if _TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .contract import EVENT_DETAIL_TYPE, EVENT_SOURCE
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


def __getattr__(name: str) -> _Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
