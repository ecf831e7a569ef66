"""Draw a Step Functions workflow as a Mermaid flowchart, from its ASL definition.

:func:`mermaid_from_definition` turns an ASL definition (a dict) into a ``flowchart TD``:

* every state is a node: Task ``["..."]``, Pass ``("...")``, Choice ``{"..."}``, Wait ``{{"..."}}``,
  Succeed and Fail ``(["..."])`` (Succeed green, Fail red); Map and Parallel states are subgraphs
  holding their inner states (a Parallel state one nested subgraph per branch);
* ``Next`` is a solid edge; a Choice rule is an edge labelled with its ``Comment`` if it has one,
  else with its condition in short (``verdict = CLEAN``), its ``Default`` an edge labelled ``otherwise``; a ``Catch`` is a dashed edge
  labelled with the error names (``States.ALL``); ``Retry`` is not drawn; a ``Start`` node points at
  ``StartAt``, and top-level states with ``End`` point at an ``End`` node;
* node ids are generated from the state names (``s_<slug>``, numbered on collision); names are shown
  in quotes, with Mermaid's entity codes for ``" # < > & `````; edge labels stay plain text.

The output depends only on the definition (its states in definition order), so it can be committed
and compared.

``python -m macie_pipeline.diagram`` synthesizes the sample stack (:mod:`macie_pipeline.sample`,
without cdk-nag), or reads ``--template``, and rewrites the block between
``<!-- workflow-diagram:start -->`` and ``<!-- workflow-diagram:end -->`` of the README; with
``--check`` it changes nothing and exits 1 when that block is stale.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

__all__ = [
    "END_MARKER",
    "START_MARKER",
    "main",
    "mermaid_from_definition",
    "readme_diagram",
    "replace_readme_diagram",
    "sample_template",
]

START_MARKER = "<!-- workflow-diagram:start -->"
END_MARKER = "<!-- workflow-diagram:end -->"

_INDENT = "    "
_MAX_LABEL = 60
_CONTAINERS = ("Map", "Parallel")
_NODE_SHAPES = {
    "Task": ("[", "]"),
    "Pass": ("(", ")"),
    "Choice": ("{", "}"),
    "Wait": ("{{", "}}"),
    "Succeed": ("([", "])"),
    "Fail": ("([", "])"),
}
_CLASS_DEFS = (
    "classDef fail fill:#fde2e1,stroke:#c62828,color:#7f1d1d",
    "classDef succeed fill:#e6f4ea,stroke:#2e7d32,color:#1b5e20",
)
_START_ID = "start"
_END_ID = "finish"


# ---------------------------------------------------------------------------------------------- text
def _quote(text: Any) -> str:
    """``text`` as a quoted Mermaid label: one line, entity codes for what Mermaid would parse."""
    text = " ".join(str(text).split())
    for char, code in (("#", "#35;"), ("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("`", "#96;")):
        text = text.replace(char, code)
    return f'"{text}"'


def _edge_label(text: Any) -> str:
    """``text`` as a quoted edge label kept readable in the Markdown source (``count >= 360``, not
    ``count #gt;= 360``): ``"`` becomes ``'``, and what could read as an HTML tag or an entity
    (``<b``, ``#x;``, ``&x;``) gets a space."""
    text = " ".join(str(text).split()).replace('"', "'").replace("`", "'")
    text = re.sub(r"<(?=[A-Za-z/!?])", "< ", text)
    text = re.sub(r"([#&])(?=\w+;)", r"\1 ", text)
    return f'"{text}"'


def _short(text: str) -> str:
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 3].rstrip() + "..."


_PATH_TOKEN = re.compile(r"[A-Za-z_][\w-]*|'[^']*'|\"[^\"]*\"")


def _operand(path: Any) -> str:
    """The last field of a JSONPath (``$.item.verdict`` -> ``verdict``); ``$`` is ``input``."""
    text = str(path)
    tokens = _PATH_TOKEN.findall(text)
    if not tokens:
        return "input" if text.strip() in ("$", "$$") else text
    return tokens[-1].strip("'\"")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


_OPERATORS = (
    ("GreaterThanEquals", ">="),
    ("LessThanEquals", "<="),
    ("GreaterThan", ">"),
    ("LessThan", "<"),
    ("Equals", "="),
    ("Matches", "matches"),
)
_TYPE_TESTS = {"IsString": "string", "IsNumeric": "numeric", "IsBoolean": "boolean", "IsTimestamp": "timestamp"}
_RULE_META = {"Variable", "Next", "Comment", "Assign", "Output"}


def _comparison(rule: dict) -> Optional[tuple[str, str, str]]:
    """``(operand, operator, value)`` of a JSONPath comparison rule, or None."""
    variable = _operand(rule.get("Variable", "$"))
    for key, value in rule.items():
        if key in _RULE_META:
            continue
        if key == "IsPresent":
            return variable, "present" if value else "absent", ""
        if key == "IsNull":
            return variable, "is null" if value else "is not null", ""
        if key in _TYPE_TESTS:
            return variable, "is" if value else "is not", _TYPE_TESTS[key]
        is_path = key.endswith("Path")
        base = key[: -len("Path")] if is_path else key
        for prefix in ("String", "Numeric", "Boolean", "Timestamp"):
            if base.startswith(prefix):
                suffix = base[len(prefix):]
                for name, symbol in _OPERATORS:
                    if suffix == name:
                        return variable, symbol, _operand(value) if is_path else _value(value)
        return variable, key, _value(value)
    return None


def _condition(rule: dict) -> str:
    """A Choice rule in short: ``verdict = CLEAN``, ``verdict = DENY or CORRUPT``, ``count >= 360``."""
    if "Condition" in rule:  # JSONata
        text = str(rule["Condition"]).strip()
        if text.startswith("{%") and text.endswith("%}"):
            text = text[2:-2].strip()
        return text.replace("$states.input.", "")
    if "And" in rule:
        return " and ".join(_nested(part) for part in rule["And"])
    if "Or" in rule:
        parts = [_comparison(part) if _is_simple(part) else None for part in rule["Or"]]
        if parts and all(p and p[1] == "=" and p[0] == parts[0][0] for p in parts):
            values = [p[2] for p in parts]
            listed = values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]
            return f"{parts[0][0]} = {listed}"
        return " or ".join(_nested(part) for part in rule["Or"])
    if "Not" in rule:
        inner = rule["Not"]
        comparison = _comparison(inner) if _is_simple(inner) else None
        if comparison and comparison[1] == "=":
            return f"{comparison[0]} != {comparison[2]}"
        return f"not ({_condition(inner)})"
    comparison = _comparison(rule)
    if comparison is None:
        return "?"
    return " ".join(part for part in comparison if part)


def _is_simple(rule: Any) -> bool:
    return isinstance(rule, dict) and not ({"And", "Or", "Not", "Condition"} & set(rule))


def _nested(rule: dict) -> str:
    """A rule inside And/Or: in parentheses when it is itself an And or an Or."""
    text = _condition(rule)
    return f"({text})" if "And" in rule or "Or" in rule else text


# ---------------------------------------------------------------------------------------------- rendering
def _children(state: dict) -> list[tuple[str, dict]]:
    """``(title, states)`` of the scopes inside a Map or Parallel state."""
    if state.get("Type") == "Parallel":
        return [(f"branch {i}", branch.get("States", {})) for i, branch in enumerate(state.get("Branches", []), 1)]
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    return [("", processor.get("States", {}))]


class _Renderer:
    def __init__(self) -> None:
        self.used = {_START_ID, _END_ID}
        self.ids: dict[tuple, str] = {}  # (scope..., name) -> node id
        self.lines: list[str] = []
        self.edges: list[str] = []
        self.classes: dict[str, list[str]] = {"fail": [], "succeed": []}

    def _allocate(self, name: str) -> str:
        slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "state"
        base = f"s_{slug}"
        candidate, number = base, 2
        while candidate in self.used:
            candidate, number = f"{base}_{number}", number + 1
        self.used.add(candidate)
        return candidate

    def assign(self, states: dict, scope: tuple) -> None:
        for name in states:
            self.ids[scope + (name,)] = self._allocate(name)
        for name, state in states.items():
            if state.get("Type") in _CONTAINERS:
                for index, (_title, inner) in enumerate(_children(state)):
                    self.assign(inner, scope + (name, index))

    def nodes(self, states: dict, scope: tuple, depth: int) -> None:
        pad = _INDENT * depth
        for name, state in states.items():
            node = self.ids[scope + (name,)]
            kind = state.get("Type", "")
            if kind in _CONTAINERS:
                self.lines.append(f"{pad}subgraph {node} [{_quote(f'{name} ({kind})')}]")
                children = _children(state)
                for index, (title, inner) in enumerate(children):
                    if kind == "Parallel":
                        branch = self._allocate(f"{name} {title}")
                        self.lines.append(f"{pad}{_INDENT}subgraph {branch} [{_quote(title)}]")
                        self.nodes(inner, scope + (name, index), depth + 2)
                        self.lines.append(f"{pad}{_INDENT}end")
                    else:
                        self.nodes(inner, scope + (name, index), depth + 1)
                self.lines.append(f"{pad}end")
                continue
            opening, closing = _NODE_SHAPES.get(kind, ("[", "]"))
            self.lines.append(f"{pad}{node}{opening}{_quote(name)}{closing}")
            if kind == "Fail":
                self.classes["fail"].append(node)
            elif kind == "Succeed":
                self.classes["succeed"].append(node)

    def edge(self, source: str, target: str, label: Optional[str] = None, dashed: bool = False) -> None:
        arrow = "-.->" if dashed else "-->"
        text = f"|{_edge_label(_short(label))}|" if label is not None else ""
        self.edges.append(f"{_INDENT}{source} {arrow}{text} {target}")

    def connect(self, states: dict, scope: tuple) -> bool:
        """Edges of ``states`` (and of the scopes inside them); True when a state ends the scope by ``End``."""
        ends = False
        for name, state in states.items():
            node = self.ids[scope + (name,)]
            if self._next_edge(node, state, scope):
                ends = True
            self._choice_edges(node, state, scope)
            self._catch_edges(node, state, scope)
            if state.get("Type") in _CONTAINERS:
                for index, (_title, inner) in enumerate(_children(state)):
                    self.connect(inner, scope + (name, index))
        return ends

    def _target(self, scope: tuple, name: str) -> str:
        """The node id of state ``name`` of ``scope``, the target of a transition."""
        try:
            return self.ids[scope + (name,)]
        except KeyError:
            raise ValueError(f"state {name!r} is the target of a transition but is not defined in its scope") from None

    def _next_edge(self, node: str, state: dict, scope: tuple) -> bool:
        """The edge of ``Next`` (at the top level, of ``End`` too); True when the state ends the scope by ``End``."""
        if "Next" in state:
            self.edge(node, self._target(scope, state["Next"]))
            return False
        if not state.get("End") or state.get("Type") in ("Succeed", "Fail", "Choice"):
            return False
        if not scope:
            self.edge(node, _END_ID)
        return True

    def _choice_edges(self, node: str, state: dict, scope: tuple) -> None:
        """An edge per Choice rule, labelled with its ``Comment`` or else its condition, and one for ``Default``."""
        for rule in state.get("Choices", []):
            self.edge(node, self._target(scope, rule["Next"]), rule.get("Comment") or _condition(rule))
        if "Default" in state:
            self.edge(node, self._target(scope, state["Default"]), "otherwise")

    def _catch_edges(self, node: str, state: dict, scope: tuple) -> None:
        """A dashed edge per ``Catch``, labelled with its error names."""
        for catcher in state.get("Catch", []):
            self.edge(node, self._target(scope, catcher["Next"]), ", ".join(catcher.get("ErrorEquals", [])), dashed=True)


def mermaid_from_definition(definition: dict) -> str:
    """A Mermaid ``flowchart TD`` of an ASL definition (see the module's docstring); ends with a newline."""
    states = definition.get("States")
    if not isinstance(states, dict) or not states:
        raise ValueError("not an ASL definition: no States")
    renderer = _Renderer()
    renderer.assign(states, ())
    renderer.nodes(states, (), 1)
    start = definition.get("StartAt")
    if start not in states:
        raise ValueError(f"StartAt {start!r} is not a state of the definition")
    renderer.edge(_START_ID, renderer.ids[(start,)])
    ends = renderer.connect(states, ())

    lines = ["flowchart TD", f'{_INDENT}{_START_ID}(("Start"))']
    if ends:
        lines.append(f'{_INDENT}{_END_ID}(("End"))')
    lines += renderer.lines
    lines += renderer.edges
    lines += [_INDENT + class_def for class_def in _CLASS_DEFS]
    for name, nodes in renderer.classes.items():
        if nodes:
            lines.append(f"{_INDENT}class {','.join(nodes)} {name}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- README
def _markers(text: str) -> tuple[int, int]:
    starts, ends = text.count(START_MARKER), text.count(END_MARKER)
    if starts != 1 or ends != 1:
        raise ValueError(
            f"expected one {START_MARKER} and one {END_MARKER} line, found {starts} and {ends}"
        )
    start, end = text.index(START_MARKER), text.index(END_MARKER)
    if end < start:
        raise ValueError(f"{END_MARKER} comes before {START_MARKER}")
    return start, end


def _block(diagram: str) -> str:
    return f"{START_MARKER}\n```mermaid\n{diagram}```\n{END_MARKER}"


def replace_readme_diagram(text: str, diagram: str) -> str:
    """``text`` (a README) with the block between the markers replaced by ``diagram`` in a mermaid fence."""
    start, end = _markers(text)
    return text[:start] + _block(diagram) + text[end + len(END_MARKER):]


def readme_diagram(text: str) -> str:
    """The Mermaid text of the fenced block between the markers of ``text`` (a README)."""
    start, end = _markers(text)
    inner = text[start + len(START_MARKER):end].strip("\n")
    match = re.fullmatch(r"```mermaid\n(.*\n)```", inner, flags=re.DOTALL)
    if not match:
        raise ValueError("the block between the workflow-diagram markers is not a ```mermaid fenced block")
    return match.group(1)


# ---------------------------------------------------------------------------------------------- command
def sample_template() -> dict:
    """The sample stack (:func:`macie_pipeline.sample.build_app`), synthesized (no cdk-nag) in a temp dir."""
    import aws_cdk as cdk

    from .sample import build_app

    with tempfile.TemporaryDirectory(prefix="macie-pipeline-diagram-") as outdir:
        app = cdk.App(outdir=outdir)
        stack = build_app(app)
        return app.synth().get_stack_by_name(stack.stack_name).template


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m macie_pipeline.diagram",
        description=(
            "Render the pipeline's Step Functions workflow as a Mermaid flowchart and write it into the "
            f"README between {START_MARKER} and {END_MARKER}."
        ),
    )
    parser.add_argument(
        "--template",
        type=Path,
        help="a synthesized CloudFormation template (JSON) to read; default: synthesize the sample stack",
    )
    parser.add_argument(
        "--state-machine",
        metavar="PREFIX",
        help="logical id prefix of the state machine, when the template has more than one",
    )
    parser.add_argument("--readme", type=Path, default=Path("README.md"), help="the file to update (default: README.md)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="change nothing; exit 1 if the README's diagram is stale")
    mode.add_argument("--stdout", action="store_true", help="print the diagram instead of updating the README")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    from .asl import definition_from_template

    if args.template is not None:
        try:
            template = json.loads(args.template.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: cannot read the template {args.template}: {exc}", file=sys.stderr)
            return 2
    else:
        template = sample_template()
    try:
        definition = definition_from_template(template, args.state_machine)
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    diagram = mermaid_from_definition(definition)

    if args.stdout:
        sys.stdout.write(diagram)
        return 0
    try:
        text = args.readme.read_text(encoding="utf-8")
        updated = replace_readme_diagram(text, diagram)
    except (OSError, ValueError) as exc:
        print(f"error: {args.readme}: {exc}", file=sys.stderr)
        return 2
    if updated == text:
        print(f"{args.readme}: the workflow diagram is up to date")
        return 0
    if args.check:
        try:
            current = readme_diagram(text)
        except ValueError:
            current = ""
        diff = difflib.unified_diff(
            current.splitlines(), diagram.splitlines(), "README (committed)", "synthesized", lineterm="", n=1
        )
        print(
            f"{args.readme}: the workflow diagram is stale: it differs from the synthesized state machine.\n"
            "Regenerate it with `make docs` (python -m macie_pipeline.diagram) and commit the README.",
            file=sys.stderr,
        )
        print("\n".join(list(diff)[:60]), file=sys.stderr)
        return 1
    args.readme.write_text(updated, encoding="utf-8")
    print(f"{args.readme}: workflow diagram updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
