"""At synth: the pipeline's statements live in the only resource policy of its vault, ingress and topic."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Optional

import jsii
from aws_cdk import Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct, IValidation

from ..external import Ownership


@jsii.implements(IValidation)
class OneResourcePolicy:
    """S3 and SNS keep one policy per bucket or topic. A second ``AWS::S3::BucketPolicy`` (or
    ``AWS::SNS::TopicPolicy``) in the app for the same resource replaces the pipeline's one at
    deploy time, whichever is written last: the vault would accept writes from anyone your IAM
    allows, or alarms would notify nobody. CDK only warns about it; the pipeline refuses it.

    ``watched`` returns ``{setting: resource}`` for the vault, ingress bucket and topic once they exist.
    """

    def __init__(self, pipeline: Construct, owner: Mapping[str, Optional[Ownership]], watched: Callable[[], Mapping[str, Any]]) -> None:
        self._pipeline = pipeline
        self._owner = owner
        self._watched = watched

    def validate(self) -> list[str]:
        errors = []
        for setting, resource in self._watched().items():
            if self._owner.get(setting) is Ownership.IMPORTED:
                continue  # its policy is yours to apply (external_setup)
            errors.extend(self._second_policies(setting, resource))
        return errors

    def _second_policies(self, setting: str, resource: Any) -> list[str]:
        own = resource.node.path + "/"
        target = Stack.of(resource).resolve(resource.bucket_name if setting != "topic" else resource.topic_arn)
        errors = []
        for construct in self._pipeline.node.root.node.find_all():
            if target in _policy_targets(construct, setting) and not construct.node.path.startswith(own):
                errors.append(
                    f"{construct.node.path} is a second resource policy for the pipeline's {setting} "
                    f"({resource.node.path}): S3 and SNS keep one policy per resource, so one would replace "
                    "the other at deploy time. Add your statements with add_to_resource_policy() instead"
                )
        return errors


def _policy_targets(construct: Construct, setting: str) -> list:
    """What a bucket policy (for a bucket setting) or topic policy (for the topic) applies to."""
    if isinstance(construct, s3.CfnBucketPolicy) and setting != "topic":
        return [Stack.of(construct).resolve(construct.bucket)]
    if isinstance(construct, sns.CfnTopicPolicy) and setting == "topic":
        return Stack.of(construct).resolve(construct.topics) or []
    return []
