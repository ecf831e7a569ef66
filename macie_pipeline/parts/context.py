"""What every part of the pipeline shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from aws_cdk import Acknowledgment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct

from ..external import ExternalSetup, Ownership


def acknowledge(construct: Construct, rule: str, reason: str) -> None:
    """Acknowledge a cdk-nag finding on the construct that causes it, with the reason."""
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


@dataclass
class PartContext:
    """The pipeline's scope (every part builds its resources there), the removal policy, the
    ownership of each resource you passed in, and what you must apply yourself to imported ones."""

    scope: Construct
    removal_policy: RemovalPolicy
    owner: Mapping[str, Optional[Ownership]]
    external_setup: list[ExternalSetup] = field(default_factory=list)

    @property
    def stack(self) -> Stack:
        return Stack.of(self.scope)

    def imported(self, setting: str) -> bool:
        return self.owner.get(setting) is Ownership.IMPORTED

    def record(self, setting: str, resource: str, applies_to: str, description: str, *statements: iam.PolicyStatement) -> None:
        """Something the construct cannot apply to an imported resource: see ``external_setup``."""
        self.external_setup.append(ExternalSetup(setting, resource, applies_to, description, tuple(statements)))

    def apply_or_record(self, setting: str, resource: Any, applies_to: str, statement: iam.PolicyStatement, description: str) -> None:
        """Add ``statement`` to the resource policy of a created or owned resource; for an imported one,
        record it in ``external_setup`` (CDK would drop it silently)."""
        if not self.imported(setting):
            result = resource.add_to_resource_policy(statement)
            if result.statement_added:
                return
        arn = next(getattr(resource, a) for a in ("bucket_arn", "key_arn", "topic_arn", "event_bus_arn") if hasattr(resource, a))
        self.record(setting, arn, applies_to, description, statement)
