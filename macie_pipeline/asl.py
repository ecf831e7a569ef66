"""Turn a synthesized state machine back into plain ASL (Amazon States Language) as a dict.

A synthesized ``AWS::StepFunctions::StateMachine`` usually carries its
definition as ``{"Fn::Join": ["", [text, {"Ref": ..}, text, ...]]}``: JSON text
cut around CloudFormation intrinsics. :func:`definition_from_template` puts the
text back together with deterministic placeholders in place of the intrinsics
and parses it, so the workflow can be inspected (tests) or drawn
(:mod:`macie_pipeline.diagram`) without deploying anything.

Placeholders (account ``123456789012``, region ``us-east-1``, partition ``aws``):

* ``{"Ref": "AWS::Partition"}`` etc. become fixed values (see ``PSEUDO_PARAMETERS``).
* ``Fn::GetAtt [X, "Arn"]`` (any attribute ending in ``Arn``) becomes an ARN built
  from X's resource type, e.g. ``arn:aws:lambda:us-east-1:123456789012:function:PLACEHOLDER_X``
  (types without a known format get that Lambda-function form).
* ``{"Ref": X}`` becomes what Ref returns for X's type: an ARN for types whose Ref
  is an ARN (SNS topic, state machine, ...), a queue URL for SQS, else
  ``PLACEHOLDER_X``; it becomes an ARN too when it is the whole value of a
  ``Resource``/``FunctionName``/``*Arn`` field.
* other ``Fn::GetAtt`` attributes become ``PLACEHOLDER_X_<Attr>`` (``*Name`` ones ``PLACEHOLDER_X``).
* ``Fn::Sub``/``Fn::Join``/``Fn::Select``/``Fn::Split``/``Fn::If`` (first branch)/
  ``Fn::FindInMap``/``Fn::GetAZs``/``Fn::ImportValue``/``Fn::ToJsonString``... are evaluated.
* An intrinsic standing as a bare JSON value (not inside quotes) becomes its value
  if that is a number/bool/list, else ``1``.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Iterator

__all__ = [
    "ACCOUNT",
    "REGION",
    "PARTITION",
    "PSEUDO_PARAMETERS",
    "placeholder_arn",
    "resolve_intrinsics",
    "definitions_from_template",
    "definition_from_template",
    "walk_states",
]

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
STACK_NAME = "PlaceholderStack"

PSEUDO_PARAMETERS: dict[str, Any] = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": (
        f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/"
        "00000000-0000-0000-0000-000000000000"
    ),
    "AWS::NotificationARNs": [],
    "AWS::NoValue": None,
}

_STATE_MACHINE_TYPE = "AWS::StepFunctions::StateMachine"

_DEFAULT_ARN = "arn:aws:lambda:{r}:{a}:function:{n}"
_ARN_FORMATS = {
    "AWS::Lambda::Function": _DEFAULT_ARN,
    "AWS::Lambda::Alias": "arn:aws:lambda:{r}:{a}:function:{n}:live",
    "AWS::Lambda::Version": "arn:aws:lambda:{r}:{a}:function:{n}:1",
    "AWS::Lambda::LayerVersion": "arn:aws:lambda:{r}:{a}:layer:{n}:1",
    "AWS::SNS::Topic": "arn:aws:sns:{r}:{a}:{n}",
    "AWS::SQS::Queue": "arn:aws:sqs:{r}:{a}:{n}",
    "AWS::S3::Bucket": "arn:aws:s3:::{n}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{r}:{a}:stateMachine:{n}",
    "AWS::StepFunctions::Activity": "arn:aws:states:{r}:{a}:activity:{n}",
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{r}:{a}:table/{n}",
    "AWS::IAM::Role": "arn:aws:iam::{a}:role/{n}",
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::{a}:policy/{n}",
    "AWS::KMS::Key": "arn:aws:kms:{r}:{a}:key/{n}",
    "AWS::Events::EventBus": "arn:aws:events:{r}:{a}:event-bus/{n}",
    "AWS::Events::Rule": "arn:aws:events:{r}:{a}:rule/{n}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{r}:{a}:log-group:{n}:*",
    "AWS::SecretsManager::Secret": "arn:aws:secretsmanager:{r}:{a}:secret:{n}",
    "AWS::SSM::Parameter": "arn:aws:ssm:{r}:{a}:parameter/{n}",
}
# Resource types whose {"Ref": X} returns an ARN.
_REF_IS_ARN = {
    "AWS::SNS::Topic",
    "AWS::StepFunctions::StateMachine",
    "AWS::StepFunctions::Activity",
    "AWS::Lambda::Alias",
    "AWS::Lambda::Version",
    "AWS::Lambda::LayerVersion",
    "AWS::IAM::ManagedPolicy",
    "AWS::SecretsManager::Secret",
}
# JSON keys whose (whole) string value is an ARN, so a Ref there is given one.
_ARN_KEYS = {"Resource", "FunctionName"}

def _is_arn_key(key: str | None) -> bool:
    return bool(key) and (key in _ARN_KEYS or key.endswith("Arn") or key.endswith("ARN"))


def _placeholder(logical_id: str) -> str:
    return f"PLACEHOLDER_{logical_id}"


def _resource_type(template: dict, logical_id: str) -> str | None:
    resource = template.get("Resources", {}).get(logical_id)
    return resource.get("Type") if isinstance(resource, dict) else None


def placeholder_arn(template: dict, logical_id: str) -> str:
    """The placeholder ARN used for resource ``logical_id`` of ``template``."""
    fmt = _ARN_FORMATS.get(_resource_type(template, logical_id) or "", _DEFAULT_ARN)
    return fmt.format(r=REGION, a=ACCOUNT, n=_placeholder(logical_id))


class _Resolver:
    def __init__(self, template: dict):
        self.template = template

    # -- Ref / GetAtt -------------------------------------------------------
    def ref(self, name: str, arn_context: bool = False) -> Any:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        parameter = self.template.get("Parameters", {}).get(name)
        if isinstance(parameter, dict):
            default = parameter.get("Default")
            kind = str(parameter.get("Type", ""))
            if default is None:
                return [_placeholder(name)] if kind.startswith("List<") or kind == "CommaDelimitedList" else _placeholder(name)
            if kind.startswith("List<") or kind == "CommaDelimitedList":
                return default if isinstance(default, list) else str(default).split(",")
            return default
        rtype = _resource_type(self.template, name)
        if rtype in _REF_IS_ARN or arn_context:
            return placeholder_arn(self.template, name)
        if rtype == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{_placeholder(name)}"
        return _placeholder(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        rtype = _resource_type(self.template, logical_id)
        if attribute.endswith("Arn") or attribute.endswith("ARN"):
            return placeholder_arn(self.template, logical_id)
        if rtype == "AWS::SQS::Queue" and attribute == "QueueUrl":
            return self.ref(logical_id)
        if attribute.endswith("Name"):
            return _placeholder(logical_id)
        return f"{_placeholder(logical_id)}_{attribute.replace('.', '_')}"

    # -- generic evaluation --------------------------------------------------
    def resolve(self, value: Any, key: str | None = None) -> Any:
        """Evaluate every intrinsic inside ``value`` (``key``: the JSON key holding it)."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (fn,) = value
            if fn == "Ref" or fn.startswith("Fn::"):
                return self.intrinsic(fn, value[fn], key)
        return {k: self.resolve(v, k) for k, v in value.items()}

    def intrinsic(self, fn: str, arg: Any, key: str | None = None) -> Any:
        if fn == "Ref":
            return self.ref(arg, arn_context=_is_arn_key(key))
        if fn == "Fn::GetAtt":
            if isinstance(arg, str):
                logical_id, _, attribute = arg.partition(".")
            else:
                logical_id, attribute = arg[0], self.resolve(arg[1])
            return self.get_att(logical_id, str(attribute))
        if fn == "Fn::Join":
            delimiter, items = arg
            items = self.resolve(items)
            return str(delimiter).join(_text(self.resolve(item)) for item in items)
        if fn == "Fn::Sub":
            if isinstance(arg, list):
                text, variables = arg[0], arg[1] if len(arg) > 1 else {}
            else:
                text, variables = arg, {}
            return "".join(
                piece if isinstance(piece, str) else _text(self.sub_variable(piece[1], variables))
                for piece in _split_sub(text)
            )
        if fn == "Fn::Select":
            index, items = arg
            items = self.resolve(items)
            index = int(self.resolve(index))
            if isinstance(items, list) and 0 <= index < len(items):
                return self.resolve(items[index])
            return f"PLACEHOLDER_SELECT_{index}"
        if fn == "Fn::Split":
            delimiter, source = arg
            return _text(self.resolve(source)).split(delimiter)
        if fn == "Fn::GetAZs":
            return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
        if fn == "Fn::ImportValue":
            return f"PLACEHOLDER_IMPORT_{_text(self.resolve(arg))}"
        if fn == "Fn::Base64":
            return base64.b64encode(_text(self.resolve(arg)).encode()).decode()
        if fn == "Fn::If":
            return self.resolve(arg[1], key)  # deterministic: the "true" branch
        if fn == "Fn::FindInMap":
            names = [_text(self.resolve(part)) for part in arg[:3]]
            try:
                return self.resolve(self.template["Mappings"][names[0]][names[1]][names[2]])
            except (KeyError, TypeError):
                return "PLACEHOLDER_" + "_".join(names)
        if fn == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        if fn == "Fn::Length":
            resolved = self.resolve(arg)
            return len(resolved) if isinstance(resolved, list) else 1
        return f"PLACEHOLDER_{fn.replace('Fn::', '')}"

    def sub_variable(self, name: str, variables: dict, key: str | None = None) -> Any:
        if name in variables:
            return self.resolve(variables[name], key)
        if "." in name and not name.startswith("AWS::"):
            logical_id, _, attribute = name.partition(".")
            return self.get_att(logical_id, attribute)
        return self.ref(name, arn_context=_is_arn_key(key))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


def _split_sub(text: str) -> list[Any]:
    """Split Fn::Sub text into literal strings and ("var", name) markers."""
    pieces: list[Any] = []
    pos = 0
    for match in _SUB_VAR.finditer(text):
        pieces.append(text[pos:match.start()])
        inner = match.group(1)
        if inner.startswith("!"):
            pieces.append("${" + inner[1:] + "}")
        else:
            pieces.append(("var", inner.strip()))
        pos = match.end()
    pieces.append(text[pos:])
    return [p for p in pieces if p != ""]


def resolve_intrinsics(value: Any, template: dict | None = None) -> Any:
    """``value`` with every CloudFormation intrinsic replaced by its placeholder."""
    return _Resolver(template or {}).resolve(value)


# --------------------------------------------------------------------------
# stitching a DefinitionString back together
# --------------------------------------------------------------------------

_KEY_BEFORE = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*$')


def _assemble(pieces: list[Any], resolver: _Resolver, substitutions: dict) -> str:
    """Join literal JSON text and intrinsics, tracking whether we're in a JSON string.

    ``pieces`` holds str (JSON text), dict (an intrinsic) or ("var", name)
    (a ``${name}`` of Fn::Sub / DefinitionSubstitutions).
    """
    out: list[str] = []
    text_so_far = ""  # mirror of "".join(out), kept for look-behind
    in_string = False
    escaped = False
    string_start = -1

    for piece in pieces:
        if isinstance(piece, str):
            for i, ch in enumerate(piece):
                if in_string:
                    if escaped:
                        escaped = False
                    elif ch == "\\":
                        escaped = True
                    elif ch == '"':
                        in_string = False
                elif ch == '"':
                    in_string = True
                    string_start = len(text_so_far) + i
            out.append(piece)
            text_so_far += piece
            continue

        key = None
        at_string_start = False
        if in_string:
            at_string_start = string_start == len(text_so_far) - 1
            match = _KEY_BEFORE.search(text_so_far[max(0, string_start - 1000):string_start])
            key = json.loads(f'"{match.group(1)}"') if match else None
        whole_value_key = key if at_string_start else None

        if isinstance(piece, tuple):
            value = resolver.sub_variable(piece[1], substitutions, whole_value_key)
        else:
            (fn,) = piece
            value = resolver.intrinsic(fn, piece[fn], whole_value_key)

        if in_string:
            rendered = json.dumps(_text(value))[1:-1]
        elif isinstance(value, bool) or isinstance(value, (int, float, list)):
            rendered = json.dumps(value)
        elif isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
            rendered = value
        else:
            rendered = "1"
        out.append(rendered)
        text_so_far += rendered
    return text_so_far


def _pieces_with_substitutions(text: str, substitution_names: set[str]) -> list[Any]:
    if not substitution_names:
        return [text]
    pieces: list[Any] = []
    pos = 0
    for match in _SUB_VAR.finditer(text):
        name = match.group(1).strip()
        if name in substitution_names:
            pieces.append(text[pos:match.start()])
            pieces.append(("var", name))
            pos = match.end()
    pieces.append(text[pos:])
    return [p for p in pieces if p != ""]


def _parse(text: str, logical_id: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        start = max(exc.pos - 80, 0)
        raise ValueError(
            f"state machine {logical_id}: reassembled definition is not JSON ({exc}); "
            f"around: {text[start:exc.pos + 80]!r}"
        ) from exc


def _definition_of(logical_id: str, resource: dict, template: dict) -> dict:
    props = resource.get("Properties", {})
    resolver = _Resolver(template)
    substitutions = props.get("DefinitionSubstitutions") or {}
    names = set(substitutions)

    if "Definition" in props:
        definition = resolver.resolve(props["Definition"])
        if names:  # ${x} placeholders inside an inline Definition
            text = _assemble(
                _pieces_with_substitutions(json.dumps(definition), names), resolver, substitutions
            )
            definition = _parse(text, logical_id)
        return definition

    body = props.get("DefinitionString")
    if body is None:
        raise ValueError(
            f"state machine {logical_id} has neither Definition nor DefinitionString "
            f"(DefinitionS3Location is not supported): {sorted(props)}"
        )

    pieces: list[Any]
    if isinstance(body, str):
        pieces = _pieces_with_substitutions(body, names)
    elif isinstance(body, dict) and list(body) == ["Fn::Join"]:
        delimiter, parts = body["Fn::Join"]
        pieces = []
        for i, part in enumerate(parts):
            if i and delimiter:
                pieces.extend(_pieces_with_substitutions(delimiter, names))
            if isinstance(part, str):
                pieces.extend(_pieces_with_substitutions(part, names))
            else:
                pieces.append(part)
    elif isinstance(body, dict) and list(body) == ["Fn::Sub"]:
        arg = body["Fn::Sub"]
        text, variables = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
        substitutions = {**substitutions, **variables}
        pieces = []
        for piece in _split_sub(text):
            pieces.extend(_pieces_with_substitutions(piece, names) if isinstance(piece, str) else [piece])
    else:
        raise ValueError(f"state machine {logical_id}: unsupported DefinitionString form {body!r:.200}")

    return _parse(_assemble(pieces, resolver, substitutions), logical_id)


def definitions_from_template(template: dict) -> dict[str, dict]:
    """``{logical_id: asl_dict}`` for every state machine in a synthesized template."""
    return {
        logical_id: _definition_of(logical_id, resource, template)
        for logical_id, resource in template.get("Resources", {}).items()
        if isinstance(resource, dict) and resource.get("Type") == _STATE_MACHINE_TYPE
    }


def definition_from_template(template: dict, logical_id_prefix: str | None = None) -> dict:
    """The ASL of the one state machine (whose logical id starts with the prefix).

    Raises ``LookupError`` when none or more than one state machine matches.
    """
    candidates = [
        logical_id
        for logical_id, resource in template.get("Resources", {}).items()
        if isinstance(resource, dict)
        and resource.get("Type") == _STATE_MACHINE_TYPE
        and (logical_id_prefix is None or logical_id.startswith(logical_id_prefix))
    ]
    if len(candidates) != 1:
        raise LookupError(
            f"expected exactly one {_STATE_MACHINE_TYPE} with logical id prefix "
            f"{logical_id_prefix!r}, found {candidates}"
        )
    (logical_id,) = candidates
    return _definition_of(logical_id, template["Resources"][logical_id], template)


def walk_states(states: dict, path: str = "") -> Iterator[tuple[str, str, dict]]:
    """Yield (path, name, state) for every state, descending into Parallel branches and Map processors."""
    for name, state in states.items():
        yield f"{path}{name}", name, state
        for index, branch in enumerate(state.get("Branches", [])):
            yield from walk_states(branch["States"], f"{path}{name}/{index}/")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from walk_states(processor["States"], f"{path}{name}/")
