"""The wheel other teams install: its contents, and a CDK app outside the repository synthesizing from it.

The wheel is built with the venv's hatchling (``pip wheel --no-build-isolation``), installed with
``pip install --target`` into a temporary folder, and a small consumer app is run from another
temporary folder with ``python -P -s`` and ``PYTHONPATH=<that folder>:<the venv's site-packages>``, so
the repository is not importable: the construct must find its Lambda code inside the installed
package. The Lambda layers come from the shared layer cache (``MACIE_PIPELINE_LAYER_CACHE``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from email.parser import Parser
from pathlib import Path
from types import ModuleType

import pytest

import macie_pipeline
from macie_pipeline import layers

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_DIR = ROOT / "lambda"
VERSION = macie_pipeline.__version__
DIST_INFO = f"macie_pipeline-{VERSION}.dist-info"

CONSUMER_APP = textwrap.dedent(
    """\
    import json
    import sys

    import aws_cdk as cdk

    import macie_pipeline
    from macie_pipeline import SensitiveDataScanPipeline, layers

    app = cdk.App()
    stack = cdk.Stack(app, "Consumer")
    SensitiveDataScanPipeline(stack, "Gate")
    assembly = app.synth()
    print(json.dumps({
        "module": macie_pipeline.__file__,
        "version": macie_pipeline.__version__,
        "lambdaCodeDir": str(layers.lambda_code_dir()),
        "sysPath": sys.path,
        "outdir": assembly.directory,
    }))
    """
)


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _repo_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    }


def _install(wheel: Path, site: Path) -> Path:
    """The wheel alone (no dependencies) installed into ``site``."""
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--disable-pip-version-check",
          "--quiet", "--target", site, wheel], timeout=300)
    return site


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
          "--quiet", "-w", out, ROOT], timeout=300)
    (built,) = out.glob("*.whl")
    return built


def test_all_lists_the_public_api():
    """Everything the package's top level defines (not its submodules) is in ``__all__``, and nothing else.
    Names are loaded on first use, so every name ``dir()`` lists is looked up (and so loaded) here."""
    public = {
        name for name in dir(macie_pipeline) if not name.startswith("_") and not isinstance(getattr(macie_pipeline, name), ModuleType)
    }
    assert sorted(macie_pipeline.__all__) == sorted(public)
    assert len(set(macie_pipeline.__all__)) == len(macie_pipeline.__all__)


@pytest.mark.slow
def test_wheel_contents(wheel):
    assert wheel.name == f"macie_pipeline-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        packaged = {name: archive.read(name) for name in names if name.startswith("macie_pipeline/_lambda/")}
        metadata = Parser().parsestr(archive.read(f"{DIST_INFO}/METADATA").decode("utf-8"))
        assert f"{DIST_INFO}/licenses/LICENSE" in names

    # only the package and its metadata: no tests, samples, cdk.out, byte code
    assert all(name.startswith(("macie_pipeline/", f"{DIST_INFO}/")) for name in names), names
    assert not [name for name in names if "__pycache__" in name or name.endswith((".pyc", ".pyo"))]
    assert not [name for name in names if "/tests/" in name or "cdk.out" in name]
    assert "macie_pipeline/py.typed" in names
    for module in sorted((ROOT / "macie_pipeline").rglob("*.py")):
        if "__pycache__" not in module.parts:
            assert module.relative_to(ROOT).as_posix() in names, module

    # the Lambda code: every file of lambda/ (each function and shared/), byte for byte
    expected = _repo_files(LAMBDA_DIR)
    assert {name.removeprefix("macie_pipeline/_lambda/"): data for name, data in packaged.items()} == expected
    functions = [folder.name for folder in LAMBDA_DIR.iterdir() if folder.is_dir() and folder.name != "shared"]
    assert len(functions) == 7
    assert "job_events" in functions
    for folder in functions:
        assert f"macie_pipeline/_lambda/{folder}/{folder}.py" in names

    assert metadata["Name"] == "macie-pipeline"
    assert metadata["Version"] == VERSION
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["License-Expression"] == "Apache-2.0"
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    requires = metadata.get_all("Requires-Dist")
    assert "aws-cdk-lib<3,>=2.275.0" in requires and "constructs<11,>=10.8.1" in requires
    assert "moto[all]==5.2.5; extra == 'local'" in requires
    assert metadata.get_payload().startswith(ROOT.joinpath("README.md").read_text(encoding="utf-8")[:200])


@pytest.mark.slow
def test_installed_wheel_synthesizes_outside_the_repository(wheel, tmp_path):
    site = _install(wheel, tmp_path / "site")
    consumer = tmp_path / "consumer"
    consumer.mkdir()
    (consumer / "app.py").write_text(CONSUMER_APP, encoding="utf-8")
    outdir = consumer / "cdk.out"

    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]]),
        PYTHONNOUSERSITE="1",
        CDK_OUTDIR=str(outdir),
        # what `cdk synth` passes: record each asset's folder in the template (aws:asset:path)
        CDK_CONTEXT_JSON=json.dumps({"aws:cdk:enable-asset-metadata": True}),
        MACIE_PIPELINE_LAYER_CACHE=str(layers.layer_cache_dir()),
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=os.environ.get("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"),
        JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
    )
    result = _run([sys.executable, "-P", "-s", "app.py"], cwd=consumer, env=env, timeout=600)
    info = json.loads(result.stdout.strip().splitlines()[-1])

    # the installed copy was used, not the repository
    assert Path(info["module"]).resolve().is_relative_to(site.resolve()), info["module"]
    assert Path(info["lambdaCodeDir"]) == (site / "macie_pipeline" / "_lambda").resolve()
    assert info["version"] == VERSION
    assert not [entry for entry in info["sysPath"] if entry in ("", ".") or Path(entry).resolve() == ROOT]
    assert Path(info["outdir"]).resolve() == outdir.resolve()

    template = json.loads((outdir / "Consumer.template.json").read_text(encoding="utf-8"))
    manifest = json.loads((outdir / "Consumer.assets.json").read_text(encoding="utf-8"))
    asset_paths = {entry["source"]["path"] for entry in manifest["files"].values()}
    asset_of_key = {f"{key}.zip": entry["source"]["path"] for key, entry in manifest["files"].items()}

    def asset_dir(logical_id: str, resource: dict, code_key: str) -> Path:
        path = resource.get("Metadata", {}).get("aws:asset:path")
        assert path, f"{logical_id}: no aws:asset:path metadata"
        assert path in asset_paths, f"{logical_id}: {path} is not in Consumer.assets.json"
        s3_key = resource["Properties"][code_key].get("S3Key")
        assert asset_of_key.get(s3_key) == path, f"{logical_id}: code {s3_key} is not asset {path}"
        folder = outdir / path
        assert folder.is_dir() and any(p.is_file() and p.stat().st_size for p in folder.rglob("*")), folder
        return folder

    functions = layer_versions = 0
    pipeline_functions = set()
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            functions += 1
            code = resource["Properties"]["Code"]
            if "ZipFile" in code:  # inline code (none expected by default)
                assert code["ZipFile"], logical_id
                continue
            folder = asset_dir(logical_id, resource, "Code")
            module = resource["Properties"]["Handler"].rsplit(".", 1)[0]
            # CDK's AwsCustomResource provider (Macie's job log group) runs on Node.js: index.js
            suffix = ".js" if resource["Properties"]["Runtime"].startswith("nodejs") else ".py"
            assert (folder / f"{module.replace('.', '/')}{suffix}").is_file(), f"{logical_id}: {module} not in {folder}"
            if (LAMBDA_DIR / module).is_dir():  # a pipeline function: exactly its folder of lambda/
                assert _repo_files(folder) == _repo_files(LAMBDA_DIR / module), logical_id
                pipeline_functions.add(module)
        elif resource["Type"] == "AWS::Lambda::LayerVersion":
            layer_versions += 1
            folder = asset_dir(logical_id, resource, "Content")
            assert any((folder / "python").iterdir()), f"{logical_id}: empty python/ in {folder}"
    assert pipeline_functions == {
        "evaluate_findings", "integrity_check", "job_events", "prepare_scan", "request_review", "review_api", "transfer",
    }
    assert layer_versions == 3  # runtime, pandas, sign-in (PyJWT + cryptography, the review function's)
    # the runtime layer carries the shared package from the wheel
    runtime = [p for p in outdir.glob("asset.*/python/pipeline_common") if p.is_dir()]
    assert len(runtime) == 1 and _repo_files(runtime[0]) == _repo_files(LAMBDA_DIR / "shared" / "pipeline_common")


def _readme_walkthrough() -> tuple[list[str], str]:
    """The "Use it" section's shell commands and its app.py, as the README shows them."""
    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Use it\n", 1)[1].split("\n## ", 1)[0]
    bash = section.split("```bash\n", 1)[1].split("```", 1)[0]
    python = section.split("```python\n", 1)[1].split("```", 1)[0]
    commands = [line.split("  #", 1)[0].strip() for line in bash.splitlines() if line.strip() and not line.startswith("#")]
    return commands, python


@pytest.mark.slow
def test_the_readme_walkthrough_runs_as_written_in_an_empty_folder(wheel, tmp_path):
    """What a new user does with the README and the wheel: every command of "Use it", in its order."""
    commands, app = _readme_walkthrough()
    setup = [c for c in commands if c.startswith(("python3.11 -m venv", "pip install"))]
    assert len(setup) == 2 and commands[:2] == setup, "the walkthrough starts by installing the wheel"
    assert commands[2:] == [
        "CDK_OUTDIR=cdk.out python app.py",
        "python -m macie_pipeline.local samples",
        "python -m macie_pipeline.local run samples --assembly cdk.out --decision approve",
    ]
    # The virtualenv and pip lines: the wheel, installed into a folder of its own (its dependencies come
    # from this test's environment, which has what the [local] extra lists).
    site = _install(wheel, tmp_path / "site")
    folder = tmp_path / "gate"
    folder.mkdir()
    (folder / "app.py").write_text(app, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "JSII_SILENCE", "CDK_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]]), PYTHONNOUSERSITE="1",
               MACIE_PIPELINE_LAYER_CACHE=str(layers.layer_cache_dir()))
    outputs = []
    for command in commands[2:]:
        variables = dict(part.split("=", 1) for part in command.split() if "=" in part and part.split("=", 1)[0].isupper())
        words = [part for part in command.split() if part.split("=", 1)[0] not in variables]
        assert words[0] == "python"
        outputs.append(_run([sys.executable, "-P", "-s", *words[1:]], cwd=folder, env={**env, **variables}, timeout=900))
    synth, samples, run = outputs
    assert (folder / "cdk.out" / "DataGate.template.json").is_file()
    assert "wrote 5 sample files to samples/" in samples.stdout
    table = run.stdout.splitlines()
    header = table[0]
    starts = [header.index(name) for name in ("key", "integrity", "findings", "verdict", "outcome", "where")]
    cells = [[line[a:b].strip() for a, b in zip(starts, starts[1:], strict=False)] for line in table[2:-1]]
    rows = {row[0]: row for row in cells}
    assert {key: row[3:5] for key, row in rows.items()} == {
        "clean_orders.csv": ["CLEAN", "VAULT"],  # the test card is on the app's allow list
        "customer_payments.csv": ["DENY", "QUARANTINED"],  # card numbers: HIGH, denied by the app's policy
        "deploy_config.json": ["DENY", "QUARANTINED"],  # an AWS key: HIGH
        "ledger.parquet": ["CORRUPT", "QUARANTINED"],
        "staff_roster.csv": ["REVIEW", "APPROVED"],  # the custom identifier: MEDIUM, reviewed and approved
    }
    assert table[-1] == "5 objects: 1 in the vault, 1 approved (in the vault), 3 quarantined"
    for output in outputs:
        assert "Traceback" not in output.stderr, output.stderr
    for output in (samples, run):  # the engine starts no JavaScript runtime: no jsii banner (app.py's own may warn)
        assert "Node" not in output.stderr, output.stderr
