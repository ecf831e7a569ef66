"""Offline checks against botocore's service models: moved to :mod:`macie_pipeline.local.awsmodel`,
which the local engine also uses; re-exported here for the tests that import it from ``support``."""

from macie_pipeline.local.awsmodel import *  # noqa: F401,F403
from macie_pipeline.local.awsmodel import __all__  # noqa: F401
