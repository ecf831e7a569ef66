"""The sample stack: one pipeline with a demo custom data identifier and allow list.

``app.py`` synthesizes it with cdk-nag; the local engine (``python -m macie_pipeline.local``) runs
it by default. ``python -m macie_pipeline.sample`` synthesizes it into ``$CDK_OUTDIR``.
"""

from __future__ import annotations

import aws_cdk as cdk

from .pipeline import SensitiveDataScanPipeline
from .props import AllowList, CustomDataIdentifier

SAMPLE_STACK_NAME = "SensitiveDataScanPipelineSample"


def build_app(app: cdk.App) -> cdk.Stack:
    stack = cdk.Stack(app, SAMPLE_STACK_NAME, description="Sample: sensitive-data gate with Amazon Macie")
    SensitiveDataScanPipeline(
        stack,
        "Pipeline",
        custom_data_identifiers=[
            CustomDataIdentifier(
                name="EmployeeId",
                regex=r"EMP-[0-9]{6}",
                keywords=["employee", "emp_id", "staff"],
                ignore_words=["EMP-000000"],
                maximum_match_distance=50,
                description="Demo: internal employee ids",
            )
        ],
        allow_lists=[AllowList(name="TestCardNumbers", regex=r"4111-?1111-?1111-?1111", description="Demo: documented test card")],
        # The sample owns its account's Macie discovery results location; see the README before
        # deploying this into an account that already has one.
        configure_discovery_results=True,
        notification_emails=[],
    )
    return stack


if __name__ == "__main__":
    sample_app = cdk.App()
    build_app(sample_app)
    sample_app.synth()
