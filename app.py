#!/usr/bin/env python3
"""Sample app: the sample stack (``macie_pipeline/sample.py``), checked by cdk-nag.

Any cdk-nag finding that is not acknowledged next to its resource fails `cdk synth`.
"""

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from macie_pipeline.sample import build_app


def main() -> None:
    app = cdk.App()
    build_app(app)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
