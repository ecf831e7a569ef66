"""Read a synthesized stack (template + assets) and resolve its CloudFormation intrinsics locally.

The engine never uses a hand-written copy of the workflow: it takes the ``AWS::StepFunctions::
StateMachine`` definition, the Lambda functions' handlers, environment variables and asset folders,
the Macie custom data identifiers and allow lists exactly as ``cdk synth`` wrote them, and gives
every resource a local physical name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ..contract import States

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"

STATE_MACHINE = "AWS::StepFunctions::StateMachine"
FUNCTION = "AWS::Lambda::Function"
LAYER = "AWS::Lambda::LayerVersion"
BUCKET = "AWS::S3::Bucket"
KEY = "AWS::KMS::Key"
TOPIC = "AWS::SNS::Topic"
TABLE = "AWS::DynamoDB::Table"
RULE = "AWS::Events::Rule"
EVENT_BUS = "AWS::Events::EventBus"
CUSTOM_IDENTIFIER = "AWS::Macie::CustomDataIdentifier"
ALLOW_LIST = "AWS::Macie::AllowList"
REST_API = "AWS::ApiGateway::RestApi"
USER_POOL = "AWS::Cognito::UserPool"
USER_POOL_CLIENT = "AWS::Cognito::UserPoolClient"
USER_POOL_GROUP = "AWS::Cognito::UserPoolGroup"

# A state that only this construct's definition has: how a pipeline's state machine is recognised.
PIPELINE_MARKER_STATE = States.BATCH_READY


class TemplateError(ValueError):
    """The template or cloud assembly cannot be used by the local engine (the message says why)."""


def _slug(text: str, size: int) -> str:
    return re.sub(r"[^a-z0-9-]", "", text.lower())[:size].strip("-") or "x"


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Physical:
    """What ``Ref`` and ``Fn::GetAtt`` return for one resource."""

    ref: Any
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class StackTemplate:
    """One synthesized stack: its template and the folder its asset paths are relative to."""

    name: str
    template: dict
    assembly_dir: Path

    @property
    def resources(self) -> dict[str, dict]:
        return self.template.get("Resources") or {}

    def of_type(self, type_: str) -> dict[str, dict]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == type_}

    def construct_path(self, logical_id: str) -> str:
        return str((self.resources[logical_id].get("Metadata") or {}).get("aws:cdk:path", logical_id))

    def asset_dir(self, logical_id: str) -> Optional[Path]:
        """The folder of a Lambda function's or layer's code asset, or None (inline or not a folder)."""
        resource = self.resources[logical_id]
        path = (resource.get("Metadata") or {}).get("aws:asset:path")
        if isinstance(path, str):
            candidate = Path(path) if os.path.isabs(path) else self.assembly_dir / path
            return candidate if candidate.is_dir() else None
        key = ((resource.get("Properties") or {}).get("Code") or (resource.get("Properties") or {}).get("Content") or {}).get("S3Key")
        if isinstance(key, str) and key.endswith(".zip"):
            for manifest in self.assembly_dir.glob("*.assets.json"):
                files = json.loads(manifest.read_text()).get("files") or {}
                entry = files.get(key[: -len(".zip")])
                if entry:
                    candidate = self.assembly_dir / entry["source"]["path"]
                    return candidate if candidate.is_dir() else None
        return None

    def pipeline_state_machines(self) -> dict[str, str]:
        """Logical id -> construct path of each state machine that is a SensitiveDataScanPipeline."""
        found = {}
        for logical, resource in self.of_type(STATE_MACHINE).items():
            text = json.dumps((resource.get("Properties") or {}).get("DefinitionString"))
            if json.dumps(PIPELINE_MARKER_STATE)[1:-1] in text and json.dumps(States.STAGE_OBJECTS)[1:-1] in text:
                found[logical] = self.construct_path(logical)
        return found


# ------------------------------------------------------------------------------------- loading
def load_template(path: Path, assets: Optional[Path] = None) -> StackTemplate:
    path = Path(path)
    if not path.is_file():
        raise TemplateError(f"Template not found: {path}")
    try:
        template = json.loads(path.read_text())
    except ValueError as error:
        raise TemplateError(f"{path} is not a JSON CloudFormation template: {error}") from None
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path} has no Resources")
    name = path.name.removesuffix(".template.json").removesuffix(".json")
    return StackTemplate(name, template, Path(assets) if assets else path.parent)


def load_assembly(outdir: Path) -> list[StackTemplate]:
    """Every stack of a cloud assembly (``cdk.out``), in manifest order."""
    manifest_path = Path(outdir) / "manifest.json"
    if not manifest_path.is_file():
        raise TemplateError(f"{outdir} is not a cloud assembly (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    stacks = []
    for artifact_id, artifact in (manifest.get("artifacts") or {}).items():
        if artifact.get("type") == "aws:cloudformation:stack":
            template_file = (artifact.get("properties") or {}).get("templateFile")
            if template_file:
                stack = load_template(Path(outdir) / template_file)
                stack.name = (artifact.get("properties") or {}).get("stackName") or artifact_id
                stacks.append(stack)
        elif artifact.get("type") == "cdk:cloud-assembly":  # a Stage: nested assembly
            nested = (artifact.get("properties") or {}).get("directoryName")
            if nested:
                stacks.extend(load_assembly(Path(outdir) / nested))
    return stacks


def synth_app(command: str, outdir: Path, cwd: Optional[Path] = None) -> list[StackTemplate]:
    """Run a CDK app command (as in ``cdk.json``'s ``app``) with ``CDK_OUTDIR`` and load its stacks."""
    env = dict(os.environ, CDK_OUTDIR=str(outdir))
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    env.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    result = subprocess.run(shlex.split(command), cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise TemplateError(f"The app command {command!r} failed (exit {result.returncode}):\n{tail}")
    return load_assembly(outdir)


def _source_fingerprint() -> str:
    """Changes whenever the library or its Lambda code changes (the sample synth cache key)."""
    from importlib.metadata import version

    from .. import layers

    digest = hashlib.sha256(f"aws-cdk-lib {version('aws-cdk-lib')}\n".encode())  # a CDK upgrade re-synthesizes
    package = Path(__file__).resolve().parents[1]
    roots = [package, layers.lambda_code_dir()]
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts or "local" in path.relative_to(root).parts[:1]:
                continue
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def synth_sample(cache_dir: Optional[Path] = None) -> StackTemplate:
    """The sample stack (``macie_pipeline.sample``), synthesized in a subprocess and cached."""
    from .. import layers

    root = Path(cache_dir) if cache_dir else layers.layer_cache_dir().parent / "local-sample"
    outdir = root / _source_fingerprint()
    if not (outdir / "manifest.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="synth-", dir=root))
        try:
            synth_app(f"{shlex.quote(sys.executable)} -m macie_pipeline.sample", staging)
            staging.rename(outdir)
        except OSError:  # another process won the race: use theirs
            pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    stacks = load_assembly(outdir)
    return stacks[0]


def choose_pipeline(stacks: list[StackTemplate], stack_name: Optional[str], pipeline: Optional[str]) -> tuple[StackTemplate, str]:
    """(stack, state machine logical id) of the one pipeline to run; a clear error if ambiguous."""
    candidates = []
    for stack in stacks:
        if stack_name and stack.name != stack_name:
            continue
        for logical, path in stack.pipeline_state_machines().items():
            if pipeline is None or path.startswith(pipeline.rstrip("/") + "/") or path == pipeline:
                candidates.append((stack, logical, path))
    if not candidates:
        where = f"stack {stack_name!r}" if stack_name else "the app"
        also = f" under {pipeline!r}" if pipeline else ""
        raise TemplateError(f"No SensitiveDataScanPipeline state machine found in {where}{also}")
    if len(candidates) > 1:
        listed = ", ".join(path.rsplit("/", 1)[0] for _, _, path in candidates)
        raise TemplateError(f"Several pipelines found ({listed}); choose one with --pipeline PATH")
    stack, logical, _ = candidates[0]
    return stack, logical


# ----------------------------------------------------------------------------------- resolution
class Resolver:
    """Evaluates CloudFormation intrinsics against the engine's local physical resources."""

    def __init__(self, stack: StackTemplate, physical: Mapping[str, Physical]) -> None:
        self.stack = stack
        self.physical = physical
        self.pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": stack.name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack.name}/local",
            "AWS::NoValue": None,
            "AWS::NotificationARNs": [],
        }

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.physical:
            return self.physical[name].ref
        params = self.stack.template.get("Parameters") or {}
        if name in params:
            if "Default" not in params[name]:
                raise TemplateError(f"Parameter {name} has no default; the local engine cannot choose a value")
            return params[name]["Default"]
        raise TemplateError(f"Ref to unknown resource {name}")

    def get_att(self, logical: str, attribute: str) -> Any:
        if logical not in self.physical:
            raise TemplateError(f"Fn::GetAtt on unknown resource {logical}")
        attributes = self.physical[logical].attributes
        if attribute not in attributes:
            raise TemplateError(f"Fn::GetAtt {logical}.{attribute} is not modelled by the local engine")
        return attributes[attribute]

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function in it evaluated (lists and objects recursively)."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key in _INTRINSICS:
                return _INTRINSICS[key](self, arg)
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the local engine")
        return {k: self.resolve(v) for k, v in value.items()}

    def _get_att(self, arg: Any) -> Any:
        logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        return self.get_att(logical, attribute)

    def _join(self, arg: Any) -> str:
        sep, parts = arg
        return sep.join(str(self.resolve(p)) for p in self.resolve(parts))

    def _select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, arg: Any) -> list[str]:
        sep, text = arg
        return str(self.resolve(text)).split(sep)

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return str(self.get_att(logical, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _refuse_if(resolver: Resolver, arg: Any) -> Any:
    raise TemplateError("Fn::If (template conditions) is not supported by the local engine")


def _refuse_import(resolver: Resolver, arg: Any) -> Any:
    raise TemplateError(f"Fn::ImportValue {arg!r}: cross-stack imports cannot be resolved locally")


# The intrinsic functions the engine evaluates, by name (with the two it refuses, explained).
_INTRINSICS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": Resolver.ref,
    "Fn::GetAtt": Resolver._get_att,
    "Fn::Join": Resolver._join,
    "Fn::Sub": Resolver._sub,
    "Fn::Select": Resolver._select,
    "Fn::Split": Resolver._split,
    "Fn::If": _refuse_if,
    "Fn::ImportValue": _refuse_import,
}


# ----------------------------------------------------------------------------------- physical names
def _arn(service: str, rest: str) -> str:
    return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:{rest}"


def _named(props: Mapping[str, Any], name_property: str, default: str) -> str:
    """The name the template gives in ``name_property`` (a plain string), else ``default``."""
    value = props.get(name_property)
    return value if isinstance(value, str) else default


def _bucket(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    name = _named(props, "BucketName", f"{_slug(logical, 45)}-{tag}")
    return Physical(name, {
        "Arn": f"arn:{PARTITION}:s3:::{name}",
        "DomainName": f"{name}.s3.{URL_SUFFIX}",
        "RegionalDomainName": f"{name}.s3.{REGION}.{URL_SUFFIX}",
    })


def _function(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    name = f"{logical[:55]}{tag}" if len(logical) > 55 else logical
    return Physical(name, {"Arn": _arn("lambda", f"function:{name}")})


def _layer(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    return Physical(_arn("lambda", f"layer:{logical[:60]}:1"))


def _topic(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    name = _named(props, "TopicName", logical[:240])
    return Physical(_arn("sns", name), {"TopicName": name, "TopicArn": _arn("sns", name)})


def _table(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    name = _named(props, "TableName", logical[:200])
    return Physical(name, {"Arn": _arn("dynamodb", f"table/{name}"), "StreamArn": _arn("dynamodb", f"table/{name}/stream/local")})


def _state_machine(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    name = logical[:80]
    sm_arn = _arn("states", f"stateMachine:{name}")
    return Physical(sm_arn, {"Arn": sm_arn, "Name": name})


def _event_bus(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    name = _named(props, "Name", logical)
    return Physical(name, {"Arn": _arn("events", f"event-bus/{name}"), "Name": name})


def _custom_identifier(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    identifier = hashlib.sha256(f"cdi/{stack.name}/{logical}".encode()).hexdigest()[:36]
    return Physical(identifier, {"Id": identifier, "Arn": _arn("macie2", f"custom-data-identifier/{identifier}")})


def _allow_list(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    identifier = hashlib.sha256(f"al/{stack.name}/{logical}".encode()).hexdigest()[:22]
    return Physical(identifier, {"Id": identifier, "Arn": _arn("macie2", f"allow-list/{identifier}"), "Status": "OK"})


def _rest_api(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    return Physical(f"local{tag}", {"RootResourceId": f"root{tag}"})


def _role(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    name = logical[:64]
    return Physical(name, {"Arn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}", "RoleId": f"AROA{tag.upper()}"})


def _log_group(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    name = _named(props, "LogGroupName", f"/local/{logical}")
    return Physical(name, {"Arn": _arn("logs", f"log-group:{name}:*")})


def _queue(stack: StackTemplate, logical: str, props: Mapping[str, Any], tag: str) -> Physical:
    return Physical(f"https://sqs.{REGION}.{URL_SUFFIX}/{ACCOUNT}/{logical}", {"Arn": _arn("sqs", logical), "QueueName": logical})


# How each resource type is named locally: (stack, logical id, properties, short hash) -> Physical.
_NAMERS: dict[str, Callable[[StackTemplate, str, Mapping[str, Any], str], Physical]] = {
    BUCKET: _bucket,
    FUNCTION: _function,
    LAYER: _layer,
    TOPIC: _topic,
    TABLE: _table,
    STATE_MACHINE: _state_machine,
    EVENT_BUS: _event_bus,
    CUSTOM_IDENTIFIER: _custom_identifier,
    ALLOW_LIST: _allow_list,
    REST_API: _rest_api,
    "AWS::IAM::Role": _role,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::SQS::Queue": _queue,
}


def physical_names(stack: StackTemplate) -> dict[str, Physical]:
    """Deterministic local names (and ARNs) for every resource except KMS keys (created first)."""
    out: dict[str, Physical] = {}
    for logical, resource in stack.resources.items():
        type_ = resource.get("Type", "")
        namer = _NAMERS.get(type_)
        if namer is None:
            out[logical] = Physical(logical, {"Arn": _arn("local", f"{type_.replace('::', '-').lower()}/{logical}")})
        else:
            out[logical] = namer(stack, logical, resource.get("Properties") or {}, _short_hash(stack.name, logical))
    return out
