"""Test-wide setup: every Lambda folder on sys.path, fake AWS credentials, no network; shared fixtures."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_DIR = ROOT / "lambda"

sys.path.insert(0, str(ROOT))
for folder in sorted(LAMBDA_DIR.iterdir()):
    if folder.is_dir():
        sys.path.insert(0, str(folder))

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "macie-pipeline-tests")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@pytest.fixture(scope="session")
def sample_synth():
    """The sample stack (``macie_pipeline.sample``) synthesized once per test session (per xdist worker),
    with its cdk-nag report: see ``template_support.synthesize``."""
    from macie_pipeline.sample import build_app
    from template_support import synthesize

    return synthesize(build_app)
