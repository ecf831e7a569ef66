"""Bring-your-own resources: what the construct can configure on a resource you pass, and what it cannot.

A resource you pass is one of

- *owned*: an L2 construct (``s3.Bucket``, ``kms.Key``, ``sns.Topic``, ``events.EventBus``) of the
  pipeline's own stack. The construct changes it directly (bucket, key and topic policies,
  EventBridge notifications) exactly as it does for the resources it creates.
- *imported*: anything else (``Bucket.from_bucket_name``, ``Key.from_key_arn``, a resource of another
  stack...). CloudFormation cannot change it from this stack, so the construct records what it
  would have applied as :class:`ExternalSetup` items instead, and refuses to build unless you name
  the setting in ``externally_managed`` (see ``validate_settings``).

IAM identity policies of the construct's own roles name every supplied ARN, owned or imported.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from aws_cdk import Stack, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

#: The settings that take an existing resource, in the order the construct uses them.
BRING_YOUR_OWN_SETTINGS = ("ingress_bucket", "vault_bucket", "encryption_key", "topic", "event_bus")

#: The L2 class of each setting's resource when it is owned (built in the same stack).
OWNED_TYPES = {
    "ingress_bucket": s3.Bucket,
    "vault_bucket": s3.Bucket,
    "encryption_key": kms.Key,
    "topic": sns.Topic,
    "event_bus": events.EventBus,
}

#: An attribute every implementation of the setting's interface has (duck-typed: jsii interfaces are
#: not runtime-checkable), and the interface's name for messages.
INTERFACE_OF = {
    "ingress_bucket": ("bucket_arn", "an s3.IBucket"),
    "vault_bucket": ("bucket_arn", "an s3.IBucket"),
    "encryption_key": ("key_arn", "a kms.IKey"),
    "topic": ("topic_arn", "an sns.ITopic"),
    "event_bus": ("event_bus_arn", "an events.IEventBus"),
}


class Ownership(str, enum.Enum):
    CREATED = "CREATED"  #: nothing was passed: the construct creates the resource
    OWNED = "OWNED"  #: an L2 of the pipeline's stack: the construct configures it
    IMPORTED = "IMPORTED"  #: anything else: configured by you, see ExternalSetup


def ownership(resource: Any, stack: Stack, owned_type: type) -> Ownership:
    """How far the construct can configure ``resource`` (None: it creates its own)."""
    if resource is None:
        return Ownership.CREATED
    if isinstance(resource, owned_type) and Stack.of(resource) is stack:
        return Ownership.OWNED
    return Ownership.IMPORTED


def environment_differs(resource: Any, stack: Stack) -> Optional[bool]:
    """True when ``resource`` is provably in another account or Region than ``stack``, False when
    provably in the same, None when a token makes it unknowable at synth."""
    if isinstance(resource, Stack):
        account, region = resource.account, resource.region
    else:
        env = getattr(resource, "env", None)
        if env is None:
            return None
        account, region = env.account, env.region
    unknown = False
    for theirs, ours in ((account, stack.account), (region, stack.region)):
        if theirs == ours:
            continue
        if Token.is_unresolved(theirs) or Token.is_unresolved(ours):
            unknown = True
            continue
        return True
    return None if unknown else False


def bucket_is_versioned(bucket: s3.Bucket) -> Optional[bool]:
    """Whether an owned bucket has versioning enabled (None: a token decides)."""
    cfn = bucket.node.default_child
    config = Stack.of(bucket).resolve(getattr(cfn, "versioning_configuration", None))
    if not isinstance(config, dict):
        return False if config is None else None
    status = config.get("status", config.get("Status"))
    if status is None:
        return False
    return status == "Enabled" if isinstance(status, str) else None


def topic_uses_aws_managed_key(topic: Any) -> bool:
    """True when the topic is encrypted with ``alias/aws/sns``, which CloudWatch alarms cannot use."""
    key = getattr(topic, "master_key", None)
    arn = getattr(key, "key_arn", None) if key is not None else None
    # Alias.from_alias_name gives arn:${Token[AWS.Partition]}:...:alias/aws/sns: the tail is literal.
    return isinstance(arn, str) and arn.endswith(":alias/aws/sns")


def key_alias_name(key: Any) -> Optional[str]:
    """The alias name when ``key`` is a KMS alias rather than a key (``kms.Alias``, or a key ARN
    that names an alias); None for a key or when a token hides it.

    An alias ARN in an IAM statement's Resource names the alias, not its key, so every use of the
    key would be denied at run time (AWS KMS developer guide, "Use aliases to control access").
    """
    if isinstance(key, kms.Alias):  # of this app: its alias_name is a token, the declared name is not
        declared = key.node.default_child.alias_name
        return key.node.path if Token.is_unresolved(declared) else declared
    name = getattr(key, "alias_name", None)
    if isinstance(name, str) and not Token.is_unresolved(name):
        return name
    arn = getattr(key, "key_arn", None)
    if isinstance(arn, str) and ":alias/" in arn:
        return "alias/" + arn.split(":alias/", 1)[1]
    return None


@dataclass(frozen=True)
class ExternalSetup:
    """One thing you must apply yourself to a resource you passed in and the construct cannot change.

    :param setting: the construct setting the resource came from (``vault_bucket``, ...).
    :param resource: the resource's ARN (may hold CDK tokens; :meth:`to_json` resolves them).
    :param applies_to: where it goes: ``bucket policy``, ``key policy``, ``topic policy``,
        ``event bus policy`` or ``bucket configuration``.
    :param description: what to do and what breaks (fails closed, or silently) without it.
    :param statements: the exact policy statements to add (none for a configuration change).
    """

    setting: str
    resource: str
    applies_to: str
    description: str
    statements: tuple[iam.PolicyStatement, ...] = ()

    def policy_document(self) -> Optional[iam.PolicyDocument]:
        """The statements as a policy document (None for a configuration change)."""
        return iam.PolicyDocument(statements=list(self.statements)) if self.statements else None

    def to_json(self, stack: Stack) -> dict:
        """A JSON-ready dict; CloudFormation references become ``${LogicalId.Attribute}`` and
        ``${AWS::AccountId}``-style placeholders (see :func:`placeholders`)."""
        rendered: dict[str, Any] = {
            "setting": self.setting,
            "resource": placeholders(stack.resolve(self.resource)),
            "appliesTo": self.applies_to,
            "description": self.description,
        }
        if self.statements:
            rendered["policy"] = {
                "Version": "2012-10-17",
                "Statement": [placeholders(stack.resolve(s.to_statement_json())) for s in self.statements],
            }
        return rendered


def render_external_setup(items: Sequence[ExternalSetup], stack: Stack, *, indent: Optional[int] = 2) -> str:
    """Every item as one JSON array (no CfnOutput needed)."""
    return json.dumps([item.to_json(stack) for item in items], indent=indent, sort_keys=False)


# ---------------------------------------------------------------------- CloudFormation references as text
_INTRINSICS = ("Ref", "Fn::GetAtt", "Fn::Join", "Fn::Sub", "Fn::ImportValue")


def flatten_reference(node: Any, opening: str = "<", closing: str = ">") -> Any:
    """A resolved CloudFormation value as flat text, as cdk-nag writes it in finding ids
    (``<Logical.Arn>/*``, ``arn:<AWS::Partition>:s3:::name/*``); with ``${`` and ``}``: placeholders."""

    def visit(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value.replace("${", "<").replace("}", ">") if opening == "<" else value
        if isinstance(value, dict) and len(value) == 1:
            (name, arg), = value.items()
            if name == "Fn::Join":
                delimiter, items = arg
                return delimiter.join(visit(item) for item in items)
            if name == "Fn::Sub":
                return visit(arg if isinstance(arg, str) else arg[0])
            if name == "Fn::GetAtt":
                resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return f"{opening}{visit(resource)}.{visit(attribute)}{closing}"
            if name == "Fn::ImportValue":
                return visit(arg)
            if name == "Ref":
                return f"{opening}{visit(arg)}{closing}"
        return json.dumps(value, sort_keys=True)

    return visit(node)


def placeholders(value: Any) -> Any:
    """Replace every CloudFormation reference inside ``value`` with ``${...}`` text: ``${AWS::AccountId}``
    (a pseudo parameter) or ``${GateTransferRoleABC123.Arn}`` (an attribute of the deployed resource with
    that logical id: look it up in the stack's resources after deployment)."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in _INTRINSICS:
            return flatten_reference(value, "${", "}")
        return {key: placeholders(item) for key, item in value.items()}
    if isinstance(value, list):
        return [placeholders(item) for item in value]
    return value
