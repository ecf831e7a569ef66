"""Offline checks of API parameters against botocore's service models.

Two tools:

* :func:`install_enum_validation` adds enum checking to a boto3 client, to be
  used together with ``botocore.stub.Stubber`` (botocore already validates
  member names, types and required members but never enum values).
* :func:`validate_sdk_task` checks the ``Parameters`` of a Step Functions AWS
  SDK integration task (``arn:aws:states:::aws-sdk:<service>:<action>``)
  against the botocore model of that API; :func:`sdk_tasks_in_definition`
  finds every such task in an ASL definition.

Nothing here talks to AWS: only the JSON models shipped inside botocore are read.
"""

from __future__ import annotations

import functools
from typing import Any, Iterator

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

__all__ = [
    "EnumValidationError",
    "enum_violations",
    "install_enum_validation",
    "botocore_service_name",
    "operation_for_action",
    "validate_sdk_task",
    "sdk_tasks_in_definition",
    "SDK_RESOURCE_PREFIX",
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
    out: list[str] = []
    if shape is None:
        return out
    if isinstance(shape, StructureShape):
        if isinstance(value, dict):
            for key, sub in value.items():
                if key in shape.members:
                    out.extend(enum_violations(shape.members[key], sub, _join(path, key)))
    elif isinstance(shape, ListShape):
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                out.extend(enum_violations(shape.member, item, f"{path}[{i}]"))
    elif isinstance(shape, MapShape):
        if isinstance(value, dict):
            for key, sub in value.items():
                out.extend(enum_violations(shape.key, key, f"{path}<key {key!r}>"))
                out.extend(enum_violations(shape.value, sub, f"{path}[{key!r}]"))
    elif shape.type_name == "string":
        allowed = getattr(shape, "enum", None) or []
        if allowed and isinstance(value, str) and value not in allowed:
            out.append(f"{path or '<input>'}: {value!r} is not one of {sorted(allowed)}")
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
        unique_id=f"tests-support-enum-validation-{service_id}",
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
