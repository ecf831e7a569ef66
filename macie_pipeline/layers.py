"""Lambda layers built without Docker, and where the functions' code lives.

Three layers, all for the ``python3.13`` runtime on ``x86_64``:

* :func:`build_runtime_layer`: the AWS SDK (boto3, botocore, s3transfer, pinned to the versions the
  tests run with, so no function depends on the SDK the Lambda runtime happens to bundle), Powertools
  for AWS Lambda, and the pipeline's shared package ``pipeline_common`` (every function uses them);
* :func:`build_pandas_layer`: pandas and fastparquet (with numpy, cramjam, fsspec), for the integrity
  check only; no pyarrow (too large for a layer), then trimmed of test suites, type stubs and caches;
* :func:`build_sign_in_layer`: PyJWT and cryptography (with cffi), for the review function only: it
  verifies the reviewers' Cognito ID tokens itself (RS256).

Wheels are installed with ``pip install --target`` for the Lambda platform (manylinux_2_28 x86_64,
CPython 3.13, binary wheels only), so no Docker and no compiler is needed, whatever the build machine.

Each layer is cached under ``cache_dir`` (default: ``$MACIE_PIPELINE_LAYER_CACHE``, else
``~/.cache/macie-pipeline/layers``) in a directory whose name holds a hash of everything that goes into
it: the pinned requirements and pip options, the trimming rules and, for the runtime layer, the shared
code's file contents. A build happens in a temporary directory that is renamed into place only when
complete, under an exclusive file lock where the platform has one, so concurrent builds (pytest-xdist
workers, parallel ``cdk synth``) never see a half-built layer; a second call returns the cached path
without running pip.

The returned path is ``<cache_dir>/<name>-<hash>/layer`` (what ``Code.from_asset`` zips: it holds
``python/...``); beside it ``build-info.json`` records the requirements and the sizes before and after
trimming. Without access to a package index, pass prebuilt layers to the construct instead
(``runtime_layer=`` / ``pandas_layer=``, any ``ILayerVersion``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

__all__ = [
    "LAMBDA_CODE_DIR",
    "LAYER_CONSTRAINTS",
    "PANDAS_REQUIREMENTS",
    "RUNTIME_REQUIREMENTS",
    "SDK_REQUIREMENTS",
    "build_info",
    "build_pandas_layer",
    "build_runtime_layer",
    "build_sign_in_layer",
    "directory_size",
    "lambda_code_dir",
    "layer_cache_dir",
    "shared_code_dir",
]

# The SDK the handlers call, as pinned in requirements-dev.txt (boto3, botocore) and as installed with
# them in the test environment (s3transfer): the handlers use options the runtime's bundled SDK may
# lack (response_checksum_validation needs botocore 1.36+). /opt/python comes before the runtime's
# own SDK on sys.path, so these are the versions the functions import (AWS's advice for production).
SDK_REQUIREMENTS: tuple[str, ...] = ("boto3==1.44.5", "botocore==1.44.5", "s3transfer==0.19.3")
RUNTIME_REQUIREMENTS: tuple[str, ...] = (*SDK_REQUIREMENTS, "aws-lambda-powertools==3.37.0")
PANDAS_REQUIREMENTS: tuple[str, ...] = ("pandas==3.1.1", "fastparquet==2026.9.0", "numpy==2.4.6")
# The review function's token verification (lambda/review_api/reviewer_identity.py), with cryptography's
# own dependencies pinned too.
SIGN_IN_REQUIREMENTS: tuple[str, ...] = ("PyJWT==2.15.1", "cryptography==51.0.1")
SIGN_IN_CONSTRAINTS: tuple[str, ...] = ("cffi==2.1.1", "pycparser==3.12")
# cffi publishes manylinux_2_17 (manylinux2014) wheels only; Lambda's python3.13 (Amazon Linux 2023,
# glibc 2.34) runs both.
SIGN_IN_PLATFORMS: tuple[str, ...] = ("--platform", "manylinux_2_17_x86_64")
# Both layers are unpacked into the same /opt/python: the packages both need (botocore and pandas
# both need python-dateutil, which needs six) are pinned to one version, so the files one layer
# overwrites are the same files. The SDK's other dependencies are pinned too, so a layer's content
# depends only on this module.
LAYER_CONSTRAINTS: tuple[str, ...] = (
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    "jmespath==1.1.0",
    "urllib3==2.8.0",
)

PIP_TARGET_OPTIONS: tuple[str, ...] = (
    "--platform",
    "manylinux_2_28_x86_64",
    "--only-binary=:all:",
    "--python-version",
    "3.13",
    "--implementation",
    "cp",
)
# Bump when the layout or the trimming rules change, so cached layers are rebuilt.
LAYER_FORMAT_VERSION = "1"

# Trimming of the pandas layer: test suites of these packages, byte code caches, type stubs and the
# console scripts pip puts in bin/ (nothing on Lambda runs them). numpy.testing is kept: pandas imports
# it in places.
TRIM_TEST_DIRS_IN: tuple[str, ...] = ("pandas", "numpy", "fastparquet", "fsspec", "cramjam")
TRIM_SUFFIXES: tuple[str, ...] = (".pyi", ".pyc", ".pyo")
MAX_LAYER_BYTES = 250 * 1024 * 1024  # Lambda: all layers + function code, unzipped

CACHE_ENV = "MACIE_PIPELINE_LAYER_CACHE"
BUILD_INFO_FILE = "build-info.json"
SHARED_PACKAGE = "pipeline_common"


# ---------------------------------------------------------------------------------------------- code location
PACKAGED_LAMBDA_DIR = "_lambda"


def _lambda_dir_candidates() -> list[Path]:
    here = Path(__file__).resolve().parent
    # An installed wheel ships the repository's lambda/ inside the package as _lambda/ (see
    # pyproject.toml); in a checkout of the repository it is lambda/ next to the package.
    return [here / PACKAGED_LAMBDA_DIR, here.parent / "lambda"]


def _find_lambda_dir() -> Path:
    candidates = _lambda_dir_candidates()
    return next((path for path in candidates if path.is_dir()), candidates[-1])


LAMBDA_CODE_DIR: Path = _find_lambda_dir()


def lambda_code_dir() -> Path:
    """The Lambda code: one sub-folder per function, plus ``shared/``.

    ``macie_pipeline/_lambda`` when the package was installed from a wheel, else the repository's
    ``lambda/`` folder next to the package.
    """
    path = _find_lambda_dir()
    if not path.is_dir():
        packaged, repository = _lambda_dir_candidates()
        raise FileNotFoundError(
            f"cannot find the Lambda code of macie_pipeline: neither {packaged} (installed from a wheel) "
            f"nor {repository} (a checkout of the repository) is a directory. Reinstall the package from "
            f"its wheel, or run from the repository root."
        )
    return path


def shared_code_dir() -> Path:
    """``lambda/shared/pipeline_common``: shipped in the runtime layer."""
    path = lambda_code_dir() / "shared" / SHARED_PACKAGE
    if not path.is_dir():
        raise FileNotFoundError(f"cannot find the shared Lambda package at {path}")
    return path


# ---------------------------------------------------------------------------------------------- helpers
def layer_cache_dir(cache_dir: Optional[Path] = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "macie-pipeline" / "layers"


def _ignored(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo")


def _source_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not _ignored(p.relative_to(root)))


def _fingerprint(parts: Iterable[str], trees: Sequence[Path] = ()) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") + b"\0")
    for tree in trees:
        for path in _source_files(tree):
            digest.update(path.relative_to(tree).as_posix().encode("utf-8") + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:20]


def directory_size(path: Path) -> int:
    """Bytes of all regular files under ``path`` (what the layer weighs unzipped)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root, name)
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def build_info(layer_dir: Path) -> dict:
    """What :func:`build_runtime_layer` / :func:`build_pandas_layer` recorded about a layer they built."""
    return json.loads((Path(layer_dir).parent / BUILD_INFO_FILE).read_text(encoding="utf-8"))


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX); elsewhere the atomic rename alone keeps builds safe."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip_install(
    target: Path, requirements: Sequence[str], constraints: Sequence[str], label: str, extra_options: Sequence[str] = ()
) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--target",
        str(target),
        *PIP_TARGET_OPTIONS,
        *extra_options,
        "--no-compile",
        "--no-input",
        "--disable-pip-version-check",
        "--quiet",
    ]
    with tempfile.TemporaryDirectory(prefix="macie-pipeline-pip-") as scratch:
        if constraints:
            constraint_file = Path(scratch, "constraints.txt")
            constraint_file.write_text("\n".join(constraints) + "\n", encoding="utf-8")
            command += ["--constraint", str(constraint_file)]
        command += list(requirements)
        try:
            completed = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as exc:
            failure = f"Could not run pip: {exc}"
        else:
            if completed.returncode == 0:
                return
            tail = "\n".join((completed.stderr or completed.stdout or "").strip().splitlines()[-15:])
            failure = f"pip exited with {completed.returncode}:\n{tail}"
    raise RuntimeError(
        f"Could not build the {label} Lambda layer ({' '.join(requirements)}) with pip. {failure}\n"
        f"On a machine without access to a package index, build the layer elsewhere and pass it to the "
        f"construct as a prebuilt layer, e.g. {label}_layer=lambda_.LayerVersion.from_layer_version_arn("
        f"scope, 'Layer', '<layer version ARN>')."
    )


def _installed(site: Path) -> list[str]:
    """``name-version`` of every distribution pip installed into ``site``."""
    return sorted(p.name[: -len(".dist-info")] for p in site.glob("*.dist-info"))


def _trim(site: Path) -> None:
    """Remove what a Lambda function never uses; only inside ``site`` (the layer's python/ folder)."""
    shutil.rmtree(site / "bin", ignore_errors=True)
    for package in TRIM_TEST_DIRS_IN:
        root = site / package
        if not root.is_dir():
            continue
        for directory in sorted(root.rglob("tests"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir() and not directory.is_symlink():
                shutil.rmtree(directory)
    for cache in list(site.rglob("__pycache__")):
        if cache.is_dir():
            shutil.rmtree(cache, ignore_errors=True)
    for path in site.rglob("*"):
        if path.suffix in TRIM_SUFFIXES and path.is_file():
            path.unlink()


def _build(
    name: str,
    cache_dir: Optional[Path],
    fingerprint: str,
    populate,
) -> Path:
    """Return ``<cache>/<name>-<fingerprint>/layer``, building it with ``populate(layer_dir) -> info`` once."""
    cache = layer_cache_dir(cache_dir)
    final = cache / f"{name}-{fingerprint}"
    if (final / "layer" / "python").is_dir():
        return final / "layer"
    cache.mkdir(parents=True, exist_ok=True)
    with _exclusive(cache / f".{name}-{fingerprint}.lock"):
        if (final / "layer" / "python").is_dir():  # another process finished it while we waited
            return final / "layer"
        for leftover in cache.glob(f".tmp-{name}-{fingerprint}-*"):  # a build that died half-way
            shutil.rmtree(leftover, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-{fingerprint}-", dir=cache))
        try:
            layer = staging / "layer"
            (layer / "python").mkdir(parents=True)
            started = time.monotonic()
            info = populate(layer)
            info.update(
                name=name,
                fingerprint=fingerprint,
                layerFormatVersion=LAYER_FORMAT_VERSION,
                pipOptions=list(PIP_TARGET_OPTIONS),
                buildSeconds=round(time.monotonic() - started, 1),
                builtAt=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            )
            (staging / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.chmod(staging, 0o755)  # mkdtemp makes it private; the cache may be shared (CI)
            try:
                os.rename(staging, final)
            except OSError:
                if not (final / "layer" / "python").is_dir():  # pragma: no cover - not a lost race
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return final / "layer"


# ---------------------------------------------------------------------------------------------- layers
def build_runtime_layer(cache_dir: Optional[Path] = None) -> Path:
    """Powertools for AWS Lambda and ``pipeline_common``, laid out as a layer (``<dir>/python/...``)."""
    shared = shared_code_dir()
    fingerprint = _fingerprint(
        ["runtime", LAYER_FORMAT_VERSION, *PIP_TARGET_OPTIONS, *RUNTIME_REQUIREMENTS, *LAYER_CONSTRAINTS],
        trees=[shared],
    )

    def populate(layer: Path) -> dict:
        site = layer / "python"
        _pip_install(site, RUNTIME_REQUIREMENTS, LAYER_CONSTRAINTS, "runtime")
        shutil.rmtree(site / "bin", ignore_errors=True)
        shutil.copytree(shared, site / SHARED_PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
        size = directory_size(layer)
        return {
            "requirements": list(RUNTIME_REQUIREMENTS),
            "constraints": list(LAYER_CONSTRAINTS),
            "installed": _installed(site),
            "sharedCode": SHARED_PACKAGE,
            "unzippedBytes": size,
        }

    return _build("runtime", cache_dir, fingerprint, populate)


def build_pandas_layer(cache_dir: Optional[Path] = None) -> Path:
    """pandas and fastparquet (no pyarrow), trimmed, laid out as a layer (``<dir>/python/...``)."""
    fingerprint = _fingerprint(
        [
            "pandas",
            LAYER_FORMAT_VERSION,
            *PIP_TARGET_OPTIONS,
            *PANDAS_REQUIREMENTS,
            *LAYER_CONSTRAINTS,
            *TRIM_TEST_DIRS_IN,
            *TRIM_SUFFIXES,
        ]
    )

    def populate(layer: Path) -> dict:
        site = layer / "python"
        _pip_install(site, PANDAS_REQUIREMENTS, LAYER_CONSTRAINTS, "pandas")
        if (site / "pyarrow").exists():
            raise RuntimeError("pyarrow was pulled into the pandas layer: it does not fit in a Lambda layer")
        before = directory_size(layer)
        _trim(site)
        after = directory_size(layer)
        if after > MAX_LAYER_BYTES:
            raise RuntimeError(f"the pandas layer weighs {after} bytes unzipped, over Lambda's {MAX_LAYER_BYTES}")
        return {
            "requirements": list(PANDAS_REQUIREMENTS),
            "constraints": list(LAYER_CONSTRAINTS),
            "installed": _installed(site),
            "unzippedBytesBeforeTrim": before,
            "unzippedBytes": after,
        }

    return _build("pandas", cache_dir, fingerprint, populate)


def build_sign_in_layer(cache_dir: Optional[Path] = None) -> Path:
    """PyJWT and cryptography, laid out as a layer (``<dir>/python/...``), for the review function."""
    fingerprint = _fingerprint(
        ["sign-in", LAYER_FORMAT_VERSION, *PIP_TARGET_OPTIONS, *SIGN_IN_PLATFORMS, *SIGN_IN_REQUIREMENTS,
         *SIGN_IN_CONSTRAINTS, *TRIM_SUFFIXES]
    )

    def populate(layer: Path) -> dict:
        site = layer / "python"
        _pip_install(site, SIGN_IN_REQUIREMENTS, SIGN_IN_CONSTRAINTS, "sign_in", SIGN_IN_PLATFORMS)
        _trim(site)
        return {
            "requirements": list(SIGN_IN_REQUIREMENTS),
            "constraints": list(SIGN_IN_CONSTRAINTS),
            "installed": _installed(site),
            "unzippedBytes": directory_size(layer),
        }

    return _build("sign-in", cache_dir, fingerprint, populate)
