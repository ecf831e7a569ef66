"""Run a synthesized SensitiveDataScanPipeline offline (the ``macie-pipeline[local]`` extra).

``python -m macie_pipeline.local run PATH...`` or, in Python::

    from macie_pipeline.local import LocalPipeline, MacieBehavior, choose_pipeline, synth_sample

    stack, state_machine = choose_pipeline([synth_sample()], None, None)
    with LocalPipeline(stack, state_machine, macie=MacieBehavior(job_status="COMPLETE")) as engine:
        result = engine.run({"orders.csv": b"id,item\n1,pen\n"}, decision="deny")
"""

from .engine import COVERAGE, EngineError, LocalPipeline, ObjectResult, RunResult
from .macie import LocalMacie, MacieBehavior
from .template import TemplateError, choose_pipeline, load_assembly, load_template, synth_app, synth_sample

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
