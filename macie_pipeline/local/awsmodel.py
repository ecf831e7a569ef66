"""Offline helpers around botocore's service models: request and response checks, wire-form parsing,
and the Step Functions aws-sdk naming of API members.

* :func:`validate_input` checks request parameters as boto3 would (botocore's own validator) and
  also checks enum values, which botocore never does.
* :func:`output_problems` / :func:`wire_problems` check a response body in *wire form* (the JSON a
  service sends) strictly against the operation's output shape, so a local service that returns a
  wrong shape fails loudly instead of being silently parsed.
* :func:`parse_wire_output` turns such a body into exactly what a boto3 client returns, with
  botocore's own response parser.
* :func:`sfn_params_to_api` and :func:`api_output_to_sfn` translate between the member names of an
  API model and the PascalCase names a Step Functions ``aws-sdk`` integration uses.
* :func:`install_enum_validation` adds enum checking to a boto3 client (for ``botocore.stub``), and
  :func:`validate_sdk_task` / :func:`sdk_tasks_in_definition` check the ``Parameters`` of Step
  Functions aws-sdk tasks (``arn:aws:states:::aws-sdk:<service>:<action>``) in an ASL definition.

Nothing here talks to AWS: only the JSON models shipped inside botocore are read.
"""

from __future__ import annotations

import base64
import binascii
import copy
import email.utils
import functools
import json
import re
import uuid
from datetime import datetime
from typing import Any, Callable, Iterator

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.parsers import create_parser
from botocore.validate import ParamValidator

__all__ = [
    "EnumValidationError",
    "enum_violations",
    "install_enum_validation",
    "botocore_service_name",
    "operation_for_action",
    "validate_sdk_task",
    "sdk_tasks_in_definition",
    "SDK_RESOURCE_PREFIX",
    "operation_model",
    "validate_input",
    "wire_problems",
    "output_problems",
    "parse_wire_output",
    "sfn_params_to_api",
    "api_output_to_sfn",
]

SDK_RESOURCE_PREFIX = "arn:aws:states:::aws-sdk:"

# Step Functions service names that differ from botocore's. Anything else is
# tried as-is, then against every botocore service's hyphen-less service id
# (Step Functions uses those: "cloudwatchlogs", "acmpca", "costexplorer" ...).
_SFN_TO_BOTOCORE = {
    "sfn": "stepfunctions",
    "eventbridge": "events",
    "cloudwatchlogs": "logs",
    "costexplorer": "ce",
    "elasticloadbalancingv2": "elbv2",
    "elasticloadbalancing": "elb",
    "cognitoidentityprovider": "cognito-idp",
    "applicationautoscaling": "application-autoscaling",
    "acmpca": "acm-pca",
    "databasemigration": "dms",
}

# Documented Step Functions renames of API member names ("equals" is spelled
# "EqualsValue" in state machines).
_SFN_MEMBER_ALIASES = {"EqualsValue": "equals"}


class EnumValidationError(ValueError):
    """Raised when request parameters hold values outside a shape's enum."""

    def __init__(self, operation: str, violations: list[str]):
        self.operation = operation
        self.violations = list(violations)
        super().__init__(
            f"{operation}: {len(violations)} value(s) outside the model's enum: "
            + "; ".join(violations)
        )


@functools.lru_cache(maxsize=1)
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.lru_cache(maxsize=None)
def _service_model(name: str):
    return _session().get_service_model(name)


@functools.lru_cache(maxsize=None)
def _modeled_errors(service: str) -> frozenset[str]:
    model = _service_model(service)
    names = set()
    for name in model.shape_names:
        shape = model.shape_for(name)
        if shape.metadata.get("exception"):
            names.add(name)
            code = (shape.metadata.get("error") or {}).get("code")
            if code:
                names.add(code)
    return frozenset(names)


def is_modeled_error(service: str, code: str) -> bool:
    """Whether the botocore model of ``service`` declares the error ``code`` (as an exception shape)."""
    return code in _modeled_errors(service)


# --------------------------------------------------------------------------
# enum walking (shared by the Stubber hook and the SDK task validator)
# --------------------------------------------------------------------------


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def enum_violations(shape: Shape | None, value: Any, path: str = "") -> list[str]:
    """Every string value under ``value`` that is not in its shape's enum.

    Walks structures, lists and maps recursively. Values whose Python type does
    not fit the shape are skipped (botocore's own validator reports those).
    """
    if shape is None:
        return []
    if isinstance(shape, StructureShape):
        return _structure_enum_violations(shape, value, path) if isinstance(value, dict) else []
    if isinstance(shape, ListShape):
        return _list_enum_violations(shape, value, path) if isinstance(value, (list, tuple)) else []
    if isinstance(shape, MapShape):
        return _map_enum_violations(shape, value, path) if isinstance(value, dict) else []
    if shape.type_name == "string":
        allowed = getattr(shape, "enum", None) or []
        if allowed and isinstance(value, str) and value not in allowed:
            return [f"{path or '<input>'}: {value!r} is not one of {sorted(allowed)}"]
    return []


def _structure_enum_violations(shape: StructureShape, value: dict, path: str) -> list[str]:
    out: list[str] = []
    for key, sub in value.items():
        if key in shape.members:
            out.extend(enum_violations(shape.members[key], sub, _join(path, key)))
    return out


def _list_enum_violations(shape: ListShape, value: list | tuple, path: str) -> list[str]:
    out: list[str] = []
    for i, item in enumerate(value):
        out.extend(enum_violations(shape.member, item, f"{path}[{i}]"))
    return out


def _map_enum_violations(shape: MapShape, value: dict, path: str) -> list[str]:
    out: list[str] = []
    for key, sub in value.items():
        out.extend(enum_violations(shape.key, key, f"{path}<key {key!r}>"))
        out.extend(enum_violations(shape.value, sub, f"{path}[{key!r}]"))
    return out


def install_enum_validation(client) -> None:
    """Make ``client`` raise :class:`EnumValidationError` for out-of-enum values.

    Registers a ``before-parameter-build.<service-id>.*`` handler (idempotent).
    Use with ``botocore.stub.Stubber``, which validates names/types/required.
    """
    service_id = client.meta.service_model.service_id.hyphenize()

    def _check(params: dict, model: OperationModel, **_: Any) -> None:
        violations = enum_violations(model.input_shape, params)
        if violations:
            raise EnumValidationError(model.name, violations)

    client.meta.events.register(
        f"before-parameter-build.{service_id}.*",
        _check,
        unique_id=f"awsmodel-enum-validation-{service_id}",
    )


# --------------------------------------------------------------------------
# Step Functions AWS SDK integration tasks
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _service_id_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for name in _session().get_available_services():
        try:
            sid = _service_model(name).service_id.hyphenize().replace("-", "")
        except Exception:  # pragma: no cover - odd model
            continue
        index.setdefault(sid, name)
        index.setdefault(name.replace("-", ""), name)
    return index


def botocore_service_name(sfn_service: str) -> str:
    """Map a Step Functions aws-sdk service name to botocore's service name."""
    key = sfn_service.lower()
    if key in _SFN_TO_BOTOCORE:
        return _SFN_TO_BOTOCORE[key]
    if key in _session().get_available_services():
        return key
    found = _service_id_index().get(key.replace("-", ""))
    if found is None:
        raise KeyError(f"no botocore service model matches Step Functions service {sfn_service!r}")
    return found


def operation_for_action(service: str, action: str) -> OperationModel:
    """The botocore operation of a Step Functions ``service``/``action`` pair."""
    model = _service_model(botocore_service_name(service))
    wanted = action.lower()
    for name in model.operation_names:
        if name.lower() == wanted:
            return model.operation_model(name)
    raise KeyError(f"{model.service_name} has no operation matching action {action!r}")


def _is_cfn_token(value: Any) -> bool:
    """A not-yet-resolved CloudFormation value ({"Ref": ..} / {"Fn::X": ..})."""
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        return key == "Ref" or key.startswith("Fn::") or key == "Condition"
    return False


def _is_jsonata(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("{%") and value.rstrip().endswith("%}")


def _member_for(shape: StructureShape, param: str) -> str | None:
    if param in shape.members:
        return param
    if param in _SFN_MEMBER_ALIASES:
        alias = _SFN_MEMBER_ALIASES[param]
        for candidate in (alias, alias[:1].upper() + alias[1:]):
            if candidate in shape.members:
                return candidate
    lowered = param[:1].lower() + param[1:]
    if lowered in shape.members:
        return lowered
    return None


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "blob": lambda v: isinstance(v, str),
    "character": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "short": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "byte": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bigdecimal": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "biginteger": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "timestamp": lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "structure": lambda v: isinstance(v, dict),
    "map": lambda v: isinstance(v, dict),
}


def _type_name(value: Any) -> str:
    return type(value).__name__


def _validate_value(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if _is_cfn_token(value) or _is_jsonata(value):
        return  # unknown at synth time, accepted as any scalar
    check = _TYPE_CHECKS.get(shape.type_name)
    if check is not None and not check(value):
        problems.append(
            f"{path}: expected {shape.type_name} ({shape.name}), got {_type_name(value)} {value!r}"
        )
        return
    if isinstance(shape, StructureShape):
        _validate_structure(shape, value, path, problems)
    elif isinstance(shape, ListShape):
        for i, item in enumerate(value):
            _validate_value(shape.member, item, f"{path}[{i}]", problems)
    elif isinstance(shape, MapShape):
        for key, sub in value.items():
            if key.endswith(".$"):
                continue
            problems.extend(f"{p} (map key)" for p in enum_violations(shape.key, key, f"{path}<key {key!r}>"))
            _validate_value(shape.value, sub, f"{path}[{key!r}]", problems)
    elif shape.type_name == "string":
        problems.extend(enum_violations(shape, value, path))


def _validate_structure(shape: StructureShape, params: dict, path: str, problems: list[str]) -> None:
    present: set[str] = set()
    for key, value in params.items():
        dynamic = key.endswith(".$")
        name = key[:-2] if dynamic else key
        member = _member_for(shape, name)
        where = _join(path, key)
        if member is None:
            problems.append(
                f"{where}: unknown parameter for {shape.name} "
                f"(members: {', '.join(sorted(shape.members))})"
            )
            continue
        present.add(member)
        if not dynamic:
            _validate_value(shape.members[member], value, _join(path, name), problems)
    for required in shape.required_members:
        if required in present:
            continue
        if shape.members[required].metadata.get("idempotencyToken"):
            continue  # the SDK fills idempotency tokens in itself
        shown = required[:1].upper() + required[1:]
        problems.append(f"{_join(path, shown)}: missing required parameter of {shape.name}")


def validate_sdk_task(service: str, action: str, parameters: dict | None) -> list[str]:
    """Problems of a Step Functions aws-sdk task's ``Parameters`` (empty = fine).

    ``service``/``action`` are as in the Resource ARN
    (``arn:aws:states:::aws-sdk:macie2:createClassificationJob``).
    Reports unknown parameters, missing required members, wrong static types
    and enum violations, each prefixed with its path.
    """
    try:
        operation = operation_for_action(service, action)
    except KeyError as exc:
        return [str(exc.args[0])]
    shape = operation.input_shape
    parameters = parameters or {}
    if shape is None:
        return [f"{key}: {operation.name} takes no input" for key in parameters]
    if not isinstance(parameters, dict):
        return [f"<Parameters>: expected an object, got {_type_name(parameters)}"]
    problems: list[str] = []
    _validate_structure(shape, parameters, "", problems)
    return problems


def _parse_sdk_resource(resource: Any) -> tuple[str, str] | None:
    if not isinstance(resource, str) or not resource.startswith(SDK_RESOURCE_PREFIX):
        return None
    rest = resource[len(SDK_RESOURCE_PREFIX):]
    for suffix in (".waitForTaskToken", ".sync"):
        if rest.endswith(suffix):
            rest = rest[: -len(suffix)]
    service, _, action = rest.partition(":")
    return service, action


def _walk_states(states: dict, prefix: str) -> Iterator[tuple[str, str, str, dict]]:
    for name, state in states.items():
        path = f"{prefix}{name}"
        kind = state.get("Type")
        if kind == "Task":
            parsed = _parse_sdk_resource(state.get("Resource"))
            if parsed:
                params = state.get("Parameters", state.get("Arguments", {}))
                yield path, parsed[0], parsed[1], params
        elif kind == "Parallel":
            for i, branch in enumerate(state.get("Branches", [])):
                yield from _walk_states(branch.get("States", {}), f"{path}/Branches[{i}]/")
        elif kind == "Map":
            for field in ("ItemProcessor", "Iterator"):
                sub = state.get(field)
                if isinstance(sub, dict):
                    yield from _walk_states(sub.get("States", {}), f"{path}/{field}/")


def sdk_tasks_in_definition(definition: dict) -> list[tuple[str, str, str, dict]]:
    """``(state_path, service, action, parameters)`` for every aws-sdk Task.

    Recurses into Parallel ``Branches`` and Map ``ItemProcessor``/``Iterator``.
    ``state_path`` looks like ``Fan out/Branches[1]/Per item/ItemProcessor/Delete``.
    """
    return list(_walk_states(definition.get("States", {}), ""))


# --------------------------------------------------------------------------
# requests as boto3 checks them
# --------------------------------------------------------------------------


def operation_model(service: str, operation_name: str) -> OperationModel:
    """The botocore operation ``operation_name`` (``ListFindings``) of botocore service ``service``."""
    return _service_model(service).operation_model(operation_name)


def validate_input(service: str, operation_name: str, params: dict) -> None:
    """Check request parameters as a boto3 client would, plus enum values.

    Runs botocore's own validator (unknown members, types, required members, minimum lengths) and
    :func:`enum_violations`, and raises :class:`botocore.exceptions.ParamValidationError` (the
    class boto3 raises) listing every problem. Missing top-level idempotency tokens are accepted:
    boto3 fills those in before it validates.
    """
    model = operation_model(service, operation_name)
    shape = model.input_shape
    checked = dict(params)
    if shape is not None:
        for name, member in shape.members.items():
            if member.metadata.get("idempotencyToken") and name not in checked:
                checked[name] = str(uuid.uuid4())
    if shape is None:
        problems = [f"{operation_name} takes no input, got {', '.join(params)}"] if params else []
    else:
        report = ParamValidator().validate(checked, shape)
        problems = [report.generate_report()] if report.has_errors() else []
    problems.extend(f"Invalid value for parameter {v}" for v in enum_violations(shape, params))
    if problems:
        raise ParamValidationError(report="\n".join(problems))


# --------------------------------------------------------------------------
# responses in wire form
# --------------------------------------------------------------------------


def _wire_name(member_name: str, member: Shape) -> str:
    return member.serialization.get("name", member_name)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _timestamp_problem(shape: Shape, value: Any, protocol: str) -> str | None:
    """Why ``value`` is not a timestamp as ``protocol`` sends it (None when it is)."""
    style = shape.serialization.get("timestampFormat") or (
        "unixTimestamp" if protocol in ("json", "rest-json", "smithy-rpc-v2-cbor") else "iso8601"
    )
    if style == "unixTimestamp":
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "expected epoch seconds"
    if not isinstance(value, str):
        return f"expected a {style} string"
    try:
        if style == "rfc822":
            email.utils.parsedate_to_datetime(value)
        else:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return f"{value!r} is not a {style} timestamp"
    return None


def _length_problems(shape: Shape, size: int, what: str, path: str) -> list[str]:
    out = []
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        out.append(f"{path}: {what} {size} is below the minimum {low} of {shape.name}")
    if high is not None and size > high:
        out.append(f"{path}: {what} {size} is above the maximum {high} of {shape.name}")
    return out


def wire_problems(shape: Shape | None, value: Any, path: str = "", *, protocol: str = "rest-json") -> list[str]:
    """Every way ``value`` (wire form) differs from ``shape``: unknown members, wrong types, missing
    required members, enum, length, range and pattern violations, malformed timestamps.

    JSON null stands for an absent member (services send it; botocore's parsers drop it).
    """
    where = path or "<body>"
    if shape is None:
        return [] if value in (None, {}) else [f"{where}: the operation has no output, got {value!r}"]
    if value is None:
        return []
    check = _WIRE_CHECKS.get(shape.type_name)
    return check(shape, value, path, protocol) if check else []


# Each check below gets (shape, value, path, protocol) with a value that is not None; ``path or
# "<body>"`` is where a problem of the value itself is reported.
def _structure_wire_problems(shape: Shape, value: Any, path: str, protocol: str) -> list[str]:
    where = path or "<body>"
    if not isinstance(value, dict):
        return [f"{where}: expected an object ({shape.name}), got {type(value).__name__}"]
    if shape.is_document_type:
        return []
    by_wire = {_wire_name(name, member): name for name, member in shape.members.items()}
    out: list[str] = []
    for key, sub in value.items():
        out.extend(_member_wire_problems(shape, by_wire, key, sub, path, protocol))
    for required in shape.required_members:
        if value.get(_wire_name(required, shape.members[required])) is None:
            out.append(f"{_join(path, required)}: required member of {shape.name} is missing")
    return out


def _member_wire_problems(shape: Shape, by_wire: dict[str, str], key: str, sub: Any, path: str, protocol: str) -> list[str]:
    """Problems of one member of a structure, sent under the wire name ``key``."""
    name = by_wire.get(key)
    if name is None:
        return [f"{_join(path, key)}: unknown member of {shape.name} (members: {', '.join(sorted(by_wire))})"]
    member = shape.members[name]
    if member.serialization.get("location") not in (None, "body"):
        return [f"{_join(path, key)}: sent in the {member.serialization['location']}, not in the body"]
    return wire_problems(member, sub, _join(path, key), protocol=protocol)


def _list_wire_problems(shape: Shape, value: Any, path: str, protocol: str) -> list[str]:
    where = path or "<body>"
    if not isinstance(value, list):
        return [f"{where}: expected a list ({shape.name}), got {type(value).__name__}"]
    out = _length_problems(shape, len(value), "length", where)
    for i, item in enumerate(value):
        out.extend(wire_problems(shape.member, item, f"{path}[{i}]", protocol=protocol))
    return out


def _map_wire_problems(shape: Shape, value: Any, path: str, protocol: str) -> list[str]:
    where = path or "<body>"
    if not isinstance(value, dict):
        return [f"{where}: expected an object ({shape.name}), got {type(value).__name__}"]
    out = _length_problems(shape, len(value), "size", where)
    for key, sub in value.items():
        out.extend(wire_problems(shape.key, key, f"{path}<key {key!r}>", protocol=protocol))
        out.extend(wire_problems(shape.value, sub, f"{path}[{key!r}]", protocol=protocol))
    return out


def _string_wire_problems(shape: Shape, value: Any, path: str, protocol: str) -> list[str]:
    where = path or "<body>"
    if not isinstance(value, str):
        return [f"{where}: expected a string ({shape.name}), got {type(value).__name__} {value!r}"]
    out = enum_violations(shape, value, where)
    out.extend(_length_problems(shape, len(value), "length", where))
    pattern = shape.metadata.get("pattern")
    if pattern and not _pattern_matches(pattern, value):
        out.append(f"{where}: {value!r} does not match the pattern {pattern} of {shape.name}")
    return out


def _integer_wire_problems(shape: Shape, value: Any, path: str, protocol: str) -> list[str]:
    where = path or "<body>"
    if not _is_int(value):
        return [f"{where}: expected an integer ({shape.name}), got {type(value).__name__} {value!r}"]
    return _range_problems(shape, value, where)


def _number_wire_problems(shape: Shape, value: Any, path: str, protocol: str) -> list[str]:
    where = path or "<body>"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return [f"{where}: expected a number ({shape.name}), got {type(value).__name__} {value!r}"]
    return _range_problems(shape, value, where)


def _boolean_wire_problems(shape: Shape, value: Any, path: str, protocol: str) -> list[str]:
    return [] if isinstance(value, bool) else [f"{path or '<body>'}: expected a boolean, got {type(value).__name__} {value!r}"]


def _timestamp_wire_problems(shape: Shape, value: Any, path: str, protocol: str) -> list[str]:
    problem = _timestamp_problem(shape, value, protocol)
    return [f"{path or '<body>'}: {problem} ({shape.name})"] if problem else []


def _blob_wire_problems(shape: Shape, value: Any, path: str, protocol: str) -> list[str]:
    try:
        base64.b64decode(value, validate=True)
    except (TypeError, ValueError, binascii.Error):
        return [f"{path or '<body>'}: expected base64 text ({shape.name})"]
    return []


_WIRE_CHECKS: dict[str, Callable[[Shape, Any, str, str], list[str]]] = {
    "structure": _structure_wire_problems,
    "list": _list_wire_problems,
    "map": _map_wire_problems,
    "string": _string_wire_problems,
    **dict.fromkeys(("integer", "long", "short", "byte", "biginteger"), _integer_wire_problems),
    **dict.fromkeys(("double", "float", "bigdecimal"), _number_wire_problems),
    "boolean": _boolean_wire_problems,
    "timestamp": _timestamp_wire_problems,
    "blob": _blob_wire_problems,
}


def _range_problems(shape: Shape, value: float, where: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        return [f"{where}: {value} is below the minimum {low} of {shape.name}"]
    if high is not None and value > high:
        return [f"{where}: {value} is above the maximum {high} of {shape.name}"]
    return []


@functools.lru_cache(maxsize=None)
def _compiled(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:  # a construct Python's re lacks: the pattern cannot be checked here
        return None


def _pattern_matches(pattern: str, value: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is None or compiled.search(value) is not None


def _operation(operation: OperationModel | tuple[str, str]) -> OperationModel:
    return operation if isinstance(operation, OperationModel) else operation_model(*operation)


def output_problems(operation: OperationModel | tuple[str, str], wire_body: dict) -> list[str]:
    """Problems of a response body in wire form for ``operation`` (a botocore OperationModel or a
    ``(service, operation_name)`` pair); empty when the body is exactly what the model allows."""
    model = _operation(operation)
    return wire_problems(model.output_shape, wire_body, protocol=model.service_model.protocol)


def parse_wire_output(service: str, operation_name: str, wire_body: dict) -> dict:
    """What a boto3 client returns for this wire body: botocore's own parser (datetimes for
    timestamps), with a plausible ``ResponseMetadata``. Raises ValueError if the body does not fit
    the output shape, since botocore would then quietly drop or mangle members."""
    model = operation_model(service, operation_name)
    problems = output_problems(model, wire_body)
    if problems:
        raise ValueError(f"{operation_name} response does not fit the model: " + "; ".join(problems))
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-requestid": request_id, "content-type": "application/json"}
    response = {"body": json.dumps(wire_body).encode(), "headers": headers, "status_code": 200}
    parsed = create_parser(model.service_model.protocol).parse(response, model.output_shape)
    parsed["ResponseMetadata"]["RetryAttempts"] = 0
    return parsed


# --------------------------------------------------------------------------
# Step Functions aws-sdk member names
# --------------------------------------------------------------------------


def _sfn_name(member_name: str) -> str:
    return member_name[:1].upper() + member_name[1:]


def _to_api(shape: Shape | None, value: Any) -> Any:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            member = _member_for(shape, key)
            # An unknown name is kept as written, so that validate_input reports it by that name.
            out[member or key] = _to_api(shape.members[member], sub) if member else copy.deepcopy(sub)
        return out
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_to_api(shape.member, item) for item in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {key: _to_api(shape.value, sub) for key, sub in value.items()}
    return copy.deepcopy(value)


def sfn_params_to_api(service: str, action: str, params: dict) -> dict:
    """The parameters of a Step Functions aws-sdk task with the API model's member names.

    Step Functions spells members PascalCase (``S3JobDefinition``, ``EqualsValue`` for ``equals``);
    structure members are renamed walking the input shape, map keys (tag keys...) are left alone.
    """
    return _to_api(operation_for_action(service, action).input_shape, params or {})


def _to_sfn(shape: Shape | None, value: Any, path: str) -> Any:
    if isinstance(shape, StructureShape) and isinstance(value, dict) and not shape.is_document_type:
        by_wire = {_wire_name(name, member): name for name, member in shape.members.items()}
        out = {}
        for key, sub in value.items():
            if key not in by_wire:
                raise ValueError(f"{_join(path, key)}: not a member of {shape.name}")
            name = by_wire[key]
            out[_sfn_name(name)] = _to_sfn(shape.members[name], sub, _join(path, key))
        return out
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_to_sfn(shape.member, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {key: _to_sfn(shape.value, sub, f"{path}[{key!r}]") for key, sub in value.items()}
    return copy.deepcopy(value)


def api_output_to_sfn(service: str, action: str, wire_body: dict) -> dict:
    """A wire-form response as a Step Functions aws-sdk task returns it: structure members with the
    first letter upper-cased, map keys untouched, timestamps kept as the strings the service sent."""
    operation = operation_for_action(service, action)
    return _to_sfn(operation.output_shape, wire_body or {}, "")
