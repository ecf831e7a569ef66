"""Synthesizes a scenario once and hands out its template, ASL and cdk-nag report."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from support.asl import definition_from_template, walk_states  # noqa: F401 - walk_states is re-exported


@dataclass
class Synthesized:
    app: cdk.App
    stack: cdk.Stack
    template: dict
    definition: dict
    nag_report: object

    def resources(self, type_: str) -> dict:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}


def synthesize(build: Callable[[cdk.App], cdk.Stack]) -> Synthesized:
    app = cdk.App()
    stack = build(app)
    report = AwsSolutionsChecks().validate_scope(app)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    return Synthesized(app, stack, template, definition_from_template(template), report)


_HASH = re.compile(r"[0-9a-f]{64}")


def masked(template: dict) -> dict:
    """The template with asset hashes masked, so a change of Lambda code does not churn snapshots."""
    return json.loads(_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True)))


