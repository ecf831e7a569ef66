"""Lambda layers built with pip (no Docker): contents, size, caching, atomic concurrent builds, offline failure."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from macie_pipeline import layers

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


# ---------------------------------------------------------------------------------------------- real builds (pip)
@pytest.fixture(scope="module")
def pandas_layer() -> Path:
    return layers.build_pandas_layer()  # the shared cache: the construct's synth tests reuse it


@pytest.fixture(scope="module")
def runtime_layer() -> Path:
    return layers.build_runtime_layer()


@pytest.mark.slow
def test_pandas_layer_contents_and_size(pandas_layer):
    site = pandas_layer / "python"
    for package in ("pandas", "numpy", "fastparquet"):
        assert (site / package / "__init__.py").is_file(), package
    assert not list(site.glob("pyarrow*")), "pyarrow must not be in the layer"
    assert not (site / "pandas" / "tests").exists()
    assert not list(site.rglob("__pycache__"))
    assert not (site / "bin").exists()
    # the runtime's botocore needs python-dateutil<3; the layer shadows it
    assert [p.name for p in site.glob("python_dateutil-*.dist-info")][0].startswith("python_dateutil-2.")

    size = layers.directory_size(pandas_layer)
    info = layers.build_info(pandas_layer)
    assert size == info["unzippedBytes"]
    assert size < 200 * MB, f"pandas layer is {size / MB:.1f} MiB unzipped"
    assert info["unzippedBytesBeforeTrim"] > size
    print(f"\npandas layer: {info['unzippedBytesBeforeTrim'] / MB:.1f} MiB before trim, {size / MB:.1f} MiB after "
          f"({', '.join(info['installed'])})")


@pytest.mark.slow
def test_runtime_layer_contents(runtime_layer):
    site = runtime_layer / "python"
    assert (site / "aws_lambda_powertools" / "__init__.py").is_file()
    shared = layers.shared_code_dir()
    copied = sorted(p.relative_to(site / "pipeline_common") for p in (site / "pipeline_common").rglob("*.py"))
    assert copied == sorted(p.relative_to(shared) for p in shared.rglob("*.py"))
    assert (site / "pipeline_common" / "errors.py").read_bytes() == (shared / "errors.py").read_bytes()
    assert layers.directory_size(runtime_layer) + layers.directory_size(layers.build_pandas_layer()) < 250 * MB


def _dev_pins() -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line of requirements-dev.txt."""
    pins = {}
    for line in (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\[\]-]+)==([^\s;#]+)", line.strip())
        if match:
            pins[match.group(1).split("[")[0].lower()] = match.group(2)
    return pins


def _sdk_pins() -> dict[str, str]:
    return dict(r.split("==") for r in layers.SDK_REQUIREMENTS)


def test_the_layer_pins_the_sdk_the_tests_run_with():
    """boto3 and botocore as requirements-dev.txt pins them; s3transfer as installed with them."""
    pins = _sdk_pins()
    assert set(pins) == {"boto3", "botocore", "s3transfer"}
    dev = _dev_pins()
    assert (pins["boto3"], pins["botocore"]) == (dev["boto3"], dev["botocore"])
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, name
    assert set(layers.SDK_REQUIREMENTS) <= set(layers.RUNTIME_REQUIREMENTS)


@pytest.mark.slow
def test_runtime_layer_holds_exactly_the_pinned_sdk(runtime_layer):
    site = runtime_layer / "python"
    installed = dict(name.rsplit("-", 1) for name in layers.build_info(runtime_layer)["installed"])
    for name, version in _sdk_pins().items():
        assert installed.get(name) == version, (name, installed.get(name))
        assert [p.name for p in site.glob(f"{name}-*.dist-info")] == [f"{name}-{version}.dist-info"]
    # The packages both layers unpack into /opt/python are the same versions in both.
    pandas_installed = dict(n.rsplit("-", 1) for n in layers.build_info(layers.build_pandas_layer())["installed"])
    shared = set(installed) & set(pandas_installed)
    assert {"python_dateutil", "six"} <= shared
    assert {n: installed[n] for n in shared} == {n: pandas_installed[n] for n in shared}


def _unzipped_mb(path: Path) -> float:
    return layers.directory_size(path) / MB


@pytest.mark.slow
def test_integrity_function_fits_lambdas_unzipped_limit(pandas_layer, runtime_layer):
    """Lambda's limit: 250 MB unzipped for the function's code and all its layers together."""
    code = ROOT / "lambda" / "integrity_check"
    figures = {"runtime layer": _unzipped_mb(runtime_layer), "pandas layer": _unzipped_mb(pandas_layer),
               "integrity_check code": _unzipped_mb(code)}
    total = sum(figures.values())
    print("\n" + ", ".join(f"{name}: {mb:.1f} MiB" for name, mb in figures.items()) + f"; total {total:.1f} MiB")
    assert total * MB < layers.MAX_LAYER_BYTES, f"{total:.1f} MiB unzipped, over Lambda's 250 MiB (262,144,000 bytes)"
    assert layers.MAX_LAYER_BYTES == 250 * MB


@pytest.mark.slow
def test_second_call_returns_the_cached_layer(pandas_layer, runtime_layer, monkeypatch):
    stamps = {p: (p.parent / layers.BUILD_INFO_FILE).stat().st_mtime_ns for p in (pandas_layer, runtime_layer)}

    def no_pip(*args, **kwargs):
        raise AssertionError("a cached layer must not be rebuilt")

    monkeypatch.setattr(layers.subprocess, "run", no_pip)
    assert layers.build_pandas_layer() == pandas_layer
    assert layers.build_runtime_layer() == runtime_layer
    assert {p: (p.parent / layers.BUILD_INFO_FILE).stat().st_mtime_ns for p in stamps} == stamps


def _lambda_python() -> str | None:
    for candidate in (os.environ.get("LAMBDA_PYTHON"), "python3.13"):
        exe = candidate and shutil.which(candidate)
        if not exe:
            continue
        env = {**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.13")}
        probe = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                               text=True, env=env)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 13)":
            return exe
    return None


@pytest.mark.slow
def test_layers_work_on_the_lambda_runtime_python(pandas_layer, runtime_layer):
    """The trimmed layers import and check objects on the Lambda runtime's Python (stdlib only besides them)."""
    exe = _lambda_python()
    if exe is None:
        # Not a skip: a layer that was never imported by the runtime's Python is not proven.
        pytest.fail("no Python 3.13 interpreter found: install one (pyenv install 3.13) or set LAMBDA_PYTHON")
    script = textwrap.dedent(
        """
        import gzip, io, sys, warnings
        sys.path[:0] = sys.argv[1:]
        warnings.simplefilter("ignore")
        import pandas, fastparquet, integrity_core
        import pipeline_common.errors, pipeline_common.constants
        from aws_lambda_powertools import Logger
        import boto3, botocore, s3transfer
        for module in (boto3, botocore, s3transfer):
            assert module.__file__.startswith(sys.argv[2]), module.__file__  # the layer's, not another copy
        print("sdk", boto3.__version__, botocore.__version__, s3transfer.__version__)
        assert "pyarrow" not in sys.modules
        buffer = io.BytesIO()
        pandas.DataFrame({"a": range(10)}).to_parquet(buffer, engine="fastparquet")
        for key, data in (("a.parquet", buffer.getvalue()), ("a.csv.gz", gzip.compress(b"a,b\\n1,2\\n", mtime=0)),
                          ("a.txt", b"id  n\\n1   x\\n"), ("a.jsonl", b'{"a": 1}\\n')):
            result = integrity_core.check_object(io.BytesIO(data), key)
            assert result["status"] == "VALID", result
        print("ok", sys.version_info[:2])
        """
    )
    paths = [str(pandas_layer / "python"), str(runtime_layer / "python"), str(ROOT / "lambda" / "integrity_check")]
    env = {**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.13")}
    # -B: the cached layers are deployment assets, never write byte code into them
    completed = subprocess.run([exe, "-I", "-S", "-B", "-c", script, *paths], capture_output=True, text=True, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    pins = _sdk_pins()
    assert completed.stdout.split("\n")[:2] == [f"sdk {pins['boto3']} {pins['botocore']} {pins['s3transfer']}", "ok (3, 13)"]


# ---------------------------------------------------------------------------------------------- build logic (fake pip)
@pytest.fixture
def fake_pip(monkeypatch):
    calls = []

    def install(target: Path, requirements, constraints, label):
        calls.append(label)
        time.sleep(0.2)  # long enough for concurrent callers to overlap
        for requirement in requirements:
            package = requirement.split("==")[0].replace("-", "_")
            (target / package).mkdir(parents=True, exist_ok=True)
            (target / package / "__init__.py").write_text("")
        (target / "pandas" / "tests").mkdir(parents=True, exist_ok=True)
        (target / "pandas" / "tests" / "test_x.py").write_text("x" * 1000)
        (target / "bin").mkdir(exist_ok=True)

    monkeypatch.setattr(layers, "_pip_install", install)
    return calls


def test_concurrent_builds_share_one_complete_layer(tmp_path, fake_pip):
    results, errors = [], []

    def build():
        try:
            results.append(layers.build_pandas_layer(tmp_path))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1 and fake_pip == ["pandas"]
    layer = results[0]
    assert layer.name == "layer" and (layer / "python" / "pandas" / "__init__.py").is_file()
    assert not (layer / "python" / "pandas" / "tests").exists()  # trimmed
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_cache_dir_from_the_environment(tmp_path, fake_pip, monkeypatch):
    monkeypatch.setenv(layers.CACHE_ENV, str(tmp_path / "from-env"))
    layer = layers.build_runtime_layer()
    assert layer.is_relative_to(tmp_path / "from-env")
    assert (layer / "python" / "pipeline_common" / "__init__.py").is_file()


def test_shared_code_changes_give_a_new_runtime_layer(tmp_path, fake_pip, monkeypatch):
    shared = tmp_path / "shared" / "pipeline_common"
    shutil.copytree(layers.shared_code_dir(), shared, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(layers, "shared_code_dir", lambda: shared)
    first = layers.build_runtime_layer(tmp_path / "cache")
    assert layers.build_runtime_layer(tmp_path / "cache") == first
    (shared / "constants.py").write_text((shared / "constants.py").read_text() + "\nNEW = 1\n")
    second = layers.build_runtime_layer(tmp_path / "cache")
    assert second != first
    assert "NEW = 1" in (second / "python" / "pipeline_common" / "constants.py").read_text()
    assert fake_pip == ["runtime", "runtime"]


def test_sdk_pin_changes_give_a_new_runtime_layer(tmp_path, fake_pip, monkeypatch):
    first = layers.build_runtime_layer(tmp_path)
    newer = tuple(r.replace("botocore==", "botocore==9.") for r in layers.RUNTIME_REQUIREMENTS)
    monkeypatch.setattr(layers, "RUNTIME_REQUIREMENTS", newer)
    second = layers.build_runtime_layer(tmp_path)
    monkeypatch.setattr(layers, "LAYER_CONSTRAINTS", (*layers.LAYER_CONSTRAINTS[:-1], "urllib3==1.0"))
    third = layers.build_runtime_layer(tmp_path)
    assert len({first, second, third}) == 3
    assert fake_pip == ["runtime"] * 3


def test_pip_failure_asks_for_a_prebuilt_layer(tmp_path, monkeypatch):
    def offline(command, **kwargs):
        assert command[:4] == [sys.executable, "-m", "pip", "install"]
        assert "--only-binary=:all:" in command and "manylinux_2_28_x86_64" in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: Could not find a version that satisfies pandas")

    monkeypatch.setattr(layers.subprocess, "run", offline)
    with pytest.raises(RuntimeError, match="prebuilt layer") as caught:
        layers.build_pandas_layer(tmp_path)
    assert "pandas_layer=" in str(caught.value) and "Could not find a version" in str(caught.value)
    with pytest.raises(RuntimeError, match="runtime_layer="):
        layers.build_runtime_layer(tmp_path)
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []  # nothing half-built left


def test_lambda_code_dir():
    assert layers.LAMBDA_CODE_DIR == layers.lambda_code_dir() == ROOT / "lambda"
    assert (layers.lambda_code_dir() / "integrity_check" / "integrity_check.py").is_file()
    assert layers.shared_code_dir() == ROOT / "lambda" / "shared" / "pipeline_common"


def test_lambda_code_dir_prefers_the_in_package_folder(tmp_path, monkeypatch):
    package = tmp_path / "site" / "macie_pipeline"
    (package / "_lambda").mkdir(parents=True)  # what the wheel ships (pyproject.toml force-include)
    (tmp_path / "site" / "lambda").mkdir()
    monkeypatch.setattr(layers, "__file__", str(package / "layers.py"))
    assert layers.lambda_code_dir() == package / "_lambda"
    shutil.rmtree(package / "_lambda")
    assert layers.lambda_code_dir() == tmp_path / "site" / "lambda"  # a repository checkout
    shutil.rmtree(tmp_path / "site" / "lambda")
    with pytest.raises(FileNotFoundError, match="installed from a wheel"):
        layers.lambda_code_dir()


# ---------------------------------------------------------------------------------------------- the sign-in layer
@pytest.mark.slow
def test_sign_in_layer_pins_what_the_tests_run_with_and_verifies_a_token_on_the_lambda_runtime_python():
    """PyJWT and cryptography as requirements-dev.txt pins them; the layer's compiled cryptography
    verifies an RS256 token with the review function's own code on Python 3.13."""
    layer = layers.build_sign_in_layer()
    installed = dict(name.rsplit("-", 1) for name in layers.build_info(layer)["installed"])
    dev = _dev_pins()
    for requirement in layers.SIGN_IN_REQUIREMENTS:
        name, version = requirement.split("==")
        assert installed[name.lower()] == version == dev[name.lower()] == importlib.metadata.version(name), name
    exe = _lambda_python()
    if exe is None:
        pytest.fail("no Python 3.13 interpreter found: install one (pyenv install 3.13) or set LAMBDA_PYTHON")
    import json as json_

    from support.cognito import mint, moto_jwks

    now = int(time.time())
    issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool"
    token = mint({"iss": issuer, "aud": "c", "sub": "s", "token_use": "id", "iat": now, "exp": now + 600,
                  "cognito:groups": ["reviewers"], "email": "a@example.com"})
    script = textwrap.dedent(
        """
        import json, sys
        sys.path[:0] = sys.argv[1:3]
        import jwt, cryptography, reviewer_identity as signin
        assert jwt.__file__.startswith(sys.argv[1]) and cryptography.__file__.startswith(sys.argv[1])
        settings = signin.SignInSettings("eu-west-1", "eu-west-1_Pool", "c", "https://login.example.com", "reviewers",
                                         "https://api.example.com/review/signed-in")
        keys = signin.KeySet(settings.jwks_url, lambda url: json.loads(sys.argv[3]))
        who = signin.TokenVerifier(settings, keys).reviewer(sys.argv[4], source_ip="192.0.2.1")
        print("ok", who.email, sys.version_info[:2])
        """
    )
    args = [str(layer / "python"), str(ROOT / "lambda" / "review_api"), json_.dumps(moto_jwks()), token]
    env = {**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.13")}
    completed = subprocess.run([exe, "-I", "-S", "-B", "-c", script, *args], capture_output=True, text=True, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip() == "ok a@example.com (3, 13)"
