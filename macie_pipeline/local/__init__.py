"""Run a synthesized SensitiveDataScanPipeline offline (the ``macie-pipeline[local]`` extra).

``python -m macie_pipeline.local run PATH...`` or :class:`macie_pipeline.local.engine.LocalPipeline`.
"""
