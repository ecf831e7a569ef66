"""The README's workflow diagram: generated from the synthesized definition, current, complete, valid Mermaid."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from macie_pipeline import diagram
from macie_pipeline.diagram import mermaid_from_definition, readme_diagram, replace_readme_diagram
from template_support import walk_states
from test_workflow import synthesize

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MERMAID_PARSE = ROOT / "tests" / "support" / "mermaid_parse.mjs"

# A Choice (And/Not, an Or on one field, IsPresent, a Default), a Wait, a Map whose inner Task has a
# Retry (not drawn) and a Catch, a Catch on the Map itself, a Parallel with two branches, an End
# outside any Map/Parallel; names with quotes, '?', '<>', '&', '#' and two names with the same slug.
SMALL_DEFINITION = {
    "Comment": "hand-written",
    "StartAt": 'Check "input"?',
    "States": {
        'Check "input"?': {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.kind", "StringEquals": "batch", "Next": "Each item"},
                {
                    "And": [
                        {"Variable": "$.limits.size", "NumericGreaterThanEquals": 10},
                        {"Not": {"Variable": "$.urgent", "BooleanEquals": True}},
                    ],
                    "Next": "Wait a bit",
                },
                {
                    "Or": [
                        {"Variable": "$.kind", "StringEquals": "x"},
                        {"Variable": "$.kind", "StringEquals": "y"},
                    ],
                    "Next": "Failed #1",
                },
                {"Variable": "$.owner", "IsPresent": False, "Next": "Failed #1"},
            ],
            "Default": "Both at once",
        },
        "Wait a bit": {"Type": "Wait", "Seconds": 5, "Next": "Both at once"},
        "Each item": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Work <1>",
                "States": {
                    "Work <1>": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                        "Catch": [{"ErrorEquals": ["Custom.Error", "States.Timeout"], "Next": "Item failed"}],
                        "End": True,
                    },
                    "Item failed": {"Type": "Fail", "Error": "ItemFailed"},
                },
            },
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed #1"}],
            "Next": "Done",
        },
        "Both at once": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Left & right", "States": {"Left & right": {"Type": "Pass", "End": True}}},
                {"StartAt": "Done!", "States": {"Done!": {"Type": "Succeed"}}},
            ],
            "Next": "Done",
        },
        "Done": {"Type": "Pass", "End": True},
        "Failed #1": {"Type": "Fail", "Error": "Failed"},
    },
}

SMALL_DIAGRAM = """\
flowchart TD
    start(("Start"))
    finish(("End"))
    s_check_input{"Check #quot;input#quot;?"}
    s_wait_a_bit{{"Wait a bit"}}
    subgraph s_each_item ["Each item (Map)"]
        s_work_1["Work #lt;1#gt;"]
        s_item_failed(["Item failed"])
    end
    subgraph s_both_at_once ["Both at once (Parallel)"]
        subgraph s_both_at_once_branch_1 ["branch 1"]
            s_left_right("Left #amp; right")
        end
        subgraph s_both_at_once_branch_2 ["branch 2"]
            s_done_2(["Done!"])
        end
    end
    s_done("Done")
    s_failed_1(["Failed #35;1"])
    start --> s_check_input
    s_check_input -->|"kind = batch"| s_each_item
    s_check_input -->|"size >= 10 and urgent != true"| s_wait_a_bit
    s_check_input -->|"kind = x or y"| s_failed_1
    s_check_input -->|"owner absent"| s_failed_1
    s_check_input -->|"otherwise"| s_both_at_once
    s_wait_a_bit --> s_both_at_once
    s_each_item --> s_done
    s_each_item -.->|"States.ALL"| s_failed_1
    s_work_1 -.->|"Custom.Error, States.Timeout"| s_item_failed
    s_both_at_once --> s_done
    s_done --> finish
    classDef fail fill:#fde2e1,stroke:#c62828,color:#7f1d1d
    classDef succeed fill:#e6f4ea,stroke:#2e7d32,color:#1b5e20
    class s_item_failed,s_failed_1 fail
    class s_done_2 succeed
"""


@pytest.fixture(scope="module")
def sample_diagram(sample_synth) -> str:
    return mermaid_from_definition(sample_synth.definition)


@pytest.fixture(scope="module")
def workflow_definition() -> dict:
    """The batch workflow alone (tests/test_workflow.py's minimal stack), independent of the other parts."""
    return synthesize()[1]


def test_small_definition_golden():
    assert mermaid_from_definition(SMALL_DEFINITION) == SMALL_DIAGRAM
    assert mermaid_from_definition(json.loads(json.dumps(SMALL_DEFINITION))) == SMALL_DIAGRAM  # deterministic


@pytest.mark.parametrize(
    ("rule", "label"),
    [
        ({"Variable": "$.a.b", "StringEqualsPath": "$.c.d"}, "b = d"),
        ({"Variable": "$.when", "TimestampLessThan": "2026-01-01T00:00:00Z"}, "when < 2026-01-01T00:00:00Z"),
        ({"Variable": "$.x", "IsNull": True}, "x is null"),
        ({"Variable": "$.x", "IsString": False}, "x is not string"),
        ({"Variable": "$.s", "StringMatches": "*.csv"}, "s matches *.csv"),
        ({"Not": {"Variable": "$.n", "NumericLessThan": 3}}, "not (n < 3)"),
        ({"Or": [{"Variable": "$.a", "IsPresent": True}, {"And": [{"Variable": "$.b", "BooleanEquals": False},
          {"Variable": "$.c", "NumericEquals": 1.5}]}]}, "a present or (b = false and c = 1.5)"),
        ({"Condition": "{% $states.input.verdict = 'CLEAN' %}"}, "verdict = 'CLEAN'"),
    ],
)
def test_choice_labels(rule, label):
    assert diagram._condition(rule) == label


def test_long_labels_are_shortened_and_quotes_neutralized():
    rule = {"Variable": "$.name", "StringEquals": 'a "quoted" <b>value</b> ' + "x" * 80, "Next": "Done"}
    text = mermaid_from_definition({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [rule]}, "Done": {"Type": "Succeed"}}})
    (edge,) = [line for line in text.splitlines() if "-->|" in line]
    assert edge == """    s_c -->|"name = a 'quoted' < b>value< /b> xxxxxxxxxxxxxxxxxxxxxxxxxx..."| s_done"""


def test_choice_rule_comment_is_the_label():
    rule = {"Not": {"And": [{"Variable": "$.a", "IsPresent": True}, {"Variable": "$.a", "IsString": True}]},
            "Comment": "not a batch", "Next": "Done"}
    text = mermaid_from_definition({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [rule], "Default": "Done"},
                                                               "Done": {"Type": "Succeed"}}})
    assert '    s_c -->|"not a batch"| s_done' in text.splitlines()


def _drawn_labels(text: str) -> list[str]:
    """The label of every node and subgraph, as drawn (escaped), without the Map/Parallel type of a subgraph."""
    labels = re.findall(r'^ +(?:subgraph s_\w+ \[|s_\w+[\[({]+)"([^"]*)"', text, flags=re.MULTILINE)
    return [re.sub(r" \((Map|Parallel)\)$", "", label) for label in labels if not label.startswith("branch ")]


def test_batch_workflow_is_drawn(workflow_definition):
    """Every state of the batch workflow is drawn; the chunk maps are subgraphs; the poll loop's edges are there."""
    text = mermaid_from_definition(workflow_definition)
    states = list(walk_states(workflow_definition["States"]))
    assert sorted(_drawn_labels(text)) == sorted(diagram._quote(name)[1:-1] for _path, name, _state in states)
    lines = text.splitlines()
    for name in ("Stage objects", "Route objects", "Apply decisions"):
        assert f'    subgraph s_{name.lower().replace(" ", "_")} ["{name} (Map)"]' in lines
    assert '    s_batch_ready -->|"not a batch"| s_notify_invalid_input' in lines
    assert '    s_wait_for_macie_job -.->|"States.Timeout, States.HeartbeatTimeout"| s_describe_macie_job' in lines
    assert '    s_macie_job_status -->|"JobStatus = RUNNING, IDLE, PAUSED or USER_PAUSED"| s_wait_for_macie_job' in lines
    assert mermaid_from_definition(workflow_definition) == text  # deterministic


def test_readme_diagram_is_current(sample_diagram):
    assert readme_diagram(README.read_text(encoding="utf-8")) == sample_diagram, (
        "README.md's workflow diagram is stale: run `make docs` (python -m macie_pipeline.diagram)"
    )


def test_every_state_is_drawn(sample_synth, sample_diagram):
    states = list(walk_states(sample_synth.definition["States"]))
    assert len(states) > 30
    assert sorted(_drawn_labels(sample_diagram)) == sorted(diagram._quote(name)[1:-1] for _path, name, _state in states)
    (fail_class,) = [line for line in sample_diagram.splitlines() if line.startswith("    class ") and line.endswith(" fail")]
    assert len(fail_class.split()[1].split(",")) == sum(state["Type"] == "Fail" for _path, _name, state in states)


def test_readme_block_replacement():
    text = f"intro\n\n{diagram.START_MARKER}\nold\n{diagram.END_MARKER}\n\nrest\n"
    updated = replace_readme_diagram(text, SMALL_DIAGRAM)
    assert updated == f"intro\n\n{diagram.START_MARKER}\n```mermaid\n{SMALL_DIAGRAM}```\n{diagram.END_MARKER}\n\nrest\n"
    assert readme_diagram(updated) == SMALL_DIAGRAM
    assert replace_readme_diagram(updated, SMALL_DIAGRAM) == updated
    with pytest.raises(ValueError, match="expected one"):
        replace_readme_diagram("no markers here", SMALL_DIAGRAM)
    with pytest.raises(ValueError, match="mermaid fenced block"):
        readme_diagram(text)


def test_command_updates_and_checks(sample_synth, sample_diagram, tmp_path, capsys):
    template = tmp_path / "template.json"
    template.write_text(json.dumps(sample_synth.template), encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{diagram.START_MARKER}\n{diagram.END_MARKER}\n", encoding="utf-8")
    common = ["--template", str(template), "--readme", str(readme)]

    assert diagram.main([*common, "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert diagram.main(common) == 0
    assert readme_diagram(readme.read_text(encoding="utf-8")) == sample_diagram
    assert diagram.main([*common, "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert diagram.main(["--template", str(template), "--stdout"]) == 0
    assert capsys.readouterr().out == sample_diagram

    readme.write_text("no markers\n", encoding="utf-8")
    assert diagram.main([*common, "--check"]) == 2


@pytest.mark.slow
def test_mermaid_parser_accepts_the_diagrams(sample_diagram, workflow_definition, tmp_path):
    """Mermaid's own parser (npm ``mermaid``, in Node) accepts the README's diagram and the golden one,
    and rejects a broken one (so the check can fail)."""
    node = shutil.which("node")
    assert node, "node is required (see the README's requirements)"
    assert (ROOT / "node_modules" / "mermaid").is_dir(), "node_modules/mermaid is missing: run `npm ci` (make deps)"
    files = {
        "readme.mmd": readme_diagram(README.read_text(encoding="utf-8")),
        "sample.mmd": sample_diagram,
        "workflow.mmd": mermaid_from_definition(workflow_definition),
        "small.mmd": SMALL_DIAGRAM,
        "broken.mmd": SMALL_DIAGRAM.replace("    end\n", "", 1),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = subprocess.run(
        [node, str(MERMAID_PARSE), *(str(tmp_path / name) for name in files)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    verdicts = {Path(line.split(":", 1)[0]).name: line.split(":", 1)[1].split()[0] for line in result.stdout.splitlines()}
    assert verdicts == {"readme.mmd": "ok", "sample.mmd": "ok", "workflow.mmd": "ok", "small.mmd": "ok", "broken.mmd": "INVALID"}, (
        result.stdout + result.stderr
    )
    assert result.returncode == 1
