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
from typing import Any, Callable, Iterator

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
        """The value of intrinsic function ``fn`` applied to ``arg`` (``key``: the JSON key holding it)."""
        evaluate = _INTRINSICS.get(fn)
        if evaluate is None:
            return f"PLACEHOLDER_{fn.replace('Fn::', '')}"
        return evaluate(self, arg, key)

    # -- one method per intrinsic function (see _INTRINSICS) -----------------
    def _ref(self, arg: Any, key: str | None) -> Any:
        return self.ref(arg, arn_context=_is_arn_key(key))

    def _get_att(self, arg: Any, key: str | None) -> Any:
        if isinstance(arg, str):
            logical_id, _, attribute = arg.partition(".")
        else:
            logical_id, attribute = arg[0], self.resolve(arg[1])
        return self.get_att(logical_id, str(attribute))

    def _join(self, arg: Any, key: str | None) -> str:
        delimiter, items = arg
        items = self.resolve(items)
        return str(delimiter).join(_text(self.resolve(item)) for item in items)

    def _sub(self, arg: Any, key: str | None) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], arg[1] if len(arg) > 1 else {}
        else:
            text, variables = arg, {}
        return "".join(
            piece if isinstance(piece, str) else _text(self.sub_variable(piece[1], variables))
            for piece in _split_sub(text)
        )

    def _select(self, arg: Any, key: str | None) -> Any:
        index, items = arg
        items = self.resolve(items)
        index = int(self.resolve(index))
        if isinstance(items, list) and 0 <= index < len(items):
            return self.resolve(items[index])
        return f"PLACEHOLDER_SELECT_{index}"

    def _split(self, arg: Any, key: str | None) -> list[str]:
        delimiter, source = arg
        return _text(self.resolve(source)).split(delimiter)

    def _get_azs(self, arg: Any, key: str | None) -> list[str]:
        return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]

    def _import_value(self, arg: Any, key: str | None) -> str:
        return f"PLACEHOLDER_IMPORT_{_text(self.resolve(arg))}"

    def _base64(self, arg: Any, key: str | None) -> str:
        return base64.b64encode(_text(self.resolve(arg)).encode()).decode()

    def _if(self, arg: Any, key: str | None) -> Any:
        return self.resolve(arg[1], key)  # deterministic: the "true" branch

    def _find_in_map(self, arg: Any, key: str | None) -> Any:
        names = [_text(self.resolve(part)) for part in arg[:3]]
        try:
            return self.resolve(self.template["Mappings"][names[0]][names[1]][names[2]])
        except (KeyError, TypeError):
            return "PLACEHOLDER_" + "_".join(names)

    def _to_json_string(self, arg: Any, key: str | None) -> str:
        return json.dumps(self.resolve(arg), separators=(",", ":"))

    def _length(self, arg: Any, key: str | None) -> int:
        resolved = self.resolve(arg)
        return len(resolved) if isinstance(resolved, list) else 1

    # -- ${name} of Fn::Sub / DefinitionSubstitutions ------------------------
    def sub_variable(self, name: str, variables: dict, key: str | None = None) -> Any:
        if name in variables:
            return self.resolve(variables[name], key)
        if "." in name and not name.startswith("AWS::"):
            logical_id, _, attribute = name.partition(".")
            return self.get_att(logical_id, attribute)
        return self.ref(name, arn_context=_is_arn_key(key))


# How _Resolver.intrinsic evaluates each function; any other becomes PLACEHOLDER_<name>.
_INTRINSICS: dict[str, Callable[[_Resolver, Any, str | None], Any]] = {
    "Ref": _Resolver._ref,
    "Fn::GetAtt": _Resolver._get_att,
    "Fn::Join": _Resolver._join,
    "Fn::Sub": _Resolver._sub,
    "Fn::Select": _Resolver._select,
    "Fn::Split": _Resolver._split,
    "Fn::GetAZs": _Resolver._get_azs,
    "Fn::ImportValue": _Resolver._import_value,
    "Fn::Base64": _Resolver._base64,
    "Fn::If": _Resolver._if,
    "Fn::FindInMap": _Resolver._find_in_map,
    "Fn::ToJsonString": _Resolver._to_json_string,
    "Fn::Length": _Resolver._length,
}


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
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


class _JsonText:
    """JSON text being written, knowing whether it currently ends inside a JSON string."""

    def __init__(self) -> None:
        self.text = ""
        self.in_string = False
        self._escaped = False
        self._string_start = -1  # index of the opening quote of the current (or last) string

    def add_literal(self, piece: str) -> None:
        """Append JSON text, following its quotes and escapes."""
        for i, ch in enumerate(piece):
            self._scan(ch, len(self.text) + i)
        self.text += piece

    def _scan(self, ch: str, position: int) -> None:
        if not self.in_string:
            if ch == '"':
                self.in_string = True
                self._string_start = position
        elif self._escaped:
            self._escaped = False
        elif ch == "\\":
            self._escaped = True
        elif ch == '"':
            self.in_string = False

    def whole_value_key(self) -> str | None:
        """The JSON key whose string value has just been opened (``"Resource": "`` so far), else None.

        A value inserted here may turn out to be the whole string (``"Resource": "<value>"``).
        """
        if not self.in_string:
            return None
        match = _KEY_BEFORE.search(self.text[max(0, self._string_start - 1000):self._string_start])
        key = json.loads(f'"{match.group(1)}"') if match else None
        return key if self._string_start == len(self.text) - 1 else None

    def add_value(self, value: Any) -> None:
        """Append an evaluated intrinsic: escaped text inside a string, else a bare JSON value."""
        self.text += _render(value, self.in_string)


def _render(value: Any, in_string: bool) -> str:
    """``value`` as JSON text: string content inside a string; outside one a number, bool or list as
    itself, a string that is a number as that number, anything else ``1``."""
    if in_string:
        return json.dumps(_text(value))[1:-1]
    if isinstance(value, (bool, int, float, list)):
        return json.dumps(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return value
    return "1"


def _assemble(pieces: list[Any], resolver: _Resolver, substitutions: dict) -> str:
    """Join literal JSON text and intrinsics, each intrinsic rendered for where it stands.

    ``pieces`` holds str (JSON text), dict (an intrinsic) or ("var", name)
    (a ``${name}`` of Fn::Sub / DefinitionSubstitutions).
    """
    out = _JsonText()
    for piece in pieces:
        if isinstance(piece, str):
            out.add_literal(piece)
            continue
        key = out.whole_value_key()
        if isinstance(piece, tuple):
            value = resolver.sub_variable(piece[1], substitutions, key)
        else:
            (fn,) = piece
            value = resolver.intrinsic(fn, piece[fn], key)
        out.add_value(value)
    return out.text


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
    if "Definition" in props:
        return _inline_definition(logical_id, props["Definition"], resolver, substitutions)

    body = props.get("DefinitionString")
    if body is None:
        raise ValueError(
            f"state machine {logical_id} has neither Definition nor DefinitionString "
            f"(DefinitionS3Location is not supported): {sorted(props)}"
        )
    pieces, substitutions = _definition_string_pieces(logical_id, body, substitutions)
    return _parse(_assemble(pieces, resolver, substitutions), logical_id)


def _inline_definition(logical_id: str, definition: Any, resolver: _Resolver, substitutions: dict) -> dict:
    """A ``Definition`` (JSON, not text) with its intrinsics and its ``${x}`` substitutions evaluated."""
    names = set(substitutions)
    definition = resolver.resolve(definition)
    if names:  # ${x} placeholders inside an inline Definition
        text = _assemble(_pieces_with_substitutions(json.dumps(definition), names), resolver, substitutions)
        definition = _parse(text, logical_id)
    return definition


def _definition_string_pieces(logical_id: str, body: Any, substitutions: dict) -> tuple[list[Any], dict]:
    """The pieces of a ``DefinitionString`` for :func:`_assemble`, and the substitutions they take values from
    (a ``Fn::Sub`` body adds its own variables)."""
    names = set(substitutions)
    if isinstance(body, str):
        return _pieces_with_substitutions(body, names), substitutions
    if isinstance(body, dict) and list(body) == ["Fn::Join"]:
        return _join_pieces(body["Fn::Join"], names), substitutions
    if isinstance(body, dict) and list(body) == ["Fn::Sub"]:
        arg = body["Fn::Sub"]
        text, variables = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
        substitutions = {**substitutions, **variables}
        return _sub_pieces(text, names), substitutions
    raise ValueError(f"state machine {logical_id}: unsupported DefinitionString form {body!r:.200}")


def _join_pieces(join: list, names: set[str]) -> list[Any]:
    """The pieces of ``Fn::Join [delimiter, parts]``: its text parts (and delimiters) and its intrinsics."""
    delimiter, parts = join
    pieces: list[Any] = []
    for i, part in enumerate(parts):
        if i and delimiter:
            pieces.extend(_pieces_with_substitutions(delimiter, names))
        if isinstance(part, str):
            pieces.extend(_pieces_with_substitutions(part, names))
        else:
            pieces.append(part)
    return pieces


def _sub_pieces(text: str, names: set[str]) -> list[Any]:
    """The pieces of ``Fn::Sub`` text: literal text and ("var", name) for each ``${name}``."""
    pieces: list[Any] = []
    for piece in _split_sub(text):
        pieces.extend(_pieces_with_substitutions(piece, names) if isinstance(piece, str) else [piece])
    return pieces


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
