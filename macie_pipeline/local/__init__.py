"""Run a synthesized SensitiveDataScanPipeline offline (the ``macie-pipeline[local]`` extra).

``python -m macie_pipeline.local run PATH...`` or, in Python::

    from macie_pipeline.local import LocalPipeline, MacieBehavior, choose_pipeline, synth_sample

    stack, state_machine = choose_pipeline([synth_sample()], None, None)
    with LocalPipeline(stack, state_machine, macie=MacieBehavior(job_status="COMPLETE")) as engine:
        result = engine.run({"orders.csv": b"id,item\n1,pen\n"}, decision="deny")

The names load on first use, so that a missing dependency of the extra is named with the command
that installs it (``python -m macie_pipeline.local`` checks before it starts).
"""

import importlib as _importlib
from typing import Any as _Any

#: What the engine needs beyond the construct (import name -> distribution), all in the [local] extra.
REQUIRED_MODULES = {"boto3": "boto3", "moto": "moto", "pandas": "pandas", "fastparquet": "fastparquet",
                    "aws_lambda_powertools": "aws-lambda-powertools"}
INSTALL_HINT = "pip install 'macie-pipeline[local]'"

_EXPORTS = {
    "COVERAGE": ".engine",
    "EngineError": ".engine",
    "LocalPipeline": ".engine",
    "ObjectResult": ".engine",
    "RunResult": ".engine",
    "LocalMacie": ".macie",
    "MacieBehavior": ".macie",
    "TemplateError": ".template",
    "choose_pipeline": ".template",
    "load_assembly": ".template",
    "load_template": ".template",
    "synth_app": ".template",
    "synth_sample": ".template",
}

__all__ = [
    "COVERAGE",
    "EngineError",
    "LocalMacie",
    "LocalPipeline",
    "MacieBehavior",
    "ObjectResult",
    "RunResult",
    "TemplateError",
    "choose_pipeline",
    "load_assembly",
    "load_template",
    "synth_app",
    "synth_sample",
]


def missing_modules() -> list[str]:
    """The distributions of the [local] extra that cannot be imported here."""
    missing = []
    for module, distribution in REQUIRED_MODULES.items():
        try:
            _importlib.import_module(module)
        except ModuleNotFoundError:
            missing.append(distribution)
    return missing


def __getattr__(name: str) -> _Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(_importlib.import_module(module, __name__), name)
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] in REQUIRED_MODULES:
            raise ModuleNotFoundError(
                f"macie_pipeline.local needs the [local] extra ({error.name} is missing): {INSTALL_HINT}", name=error.name
            ) from error
        raise
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
