#!/usr/bin/env python3
"""Sample app: one pipeline with a demo custom data identifier and allow list, checked by cdk-nag.

Any cdk-nag finding that is not acknowledged next to its resource fails `cdk synth`.
"""

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from macie_pipeline import AllowList, CustomDataIdentifier, SensitiveDataScanPipeline


def build_app(app: cdk.App) -> cdk.Stack:
    stack = cdk.Stack(app, "SensitiveDataScanPipelineSample", description="Sample: sensitive-data gate with Amazon Macie")
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


def main() -> None:
    app = cdk.App()
    build_app(app)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
