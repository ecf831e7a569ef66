"""Settings validation: every problem is collected and reported in one ValueError, before any resource."""

import aws_cdk as cdk
import pytest
from aws_cdk import Duration

from macie_pipeline import (
    AllowList,
    CustomDataIdentifier,
    FindingAction,
    FindingPolicy,
    ManagedDataIdentifierSelector,
    ObjectLock,
    SensitiveDataScanPipeline,
    Trigger,
)


def _build(**settings):
    stack = cdk.Stack(cdk.App(), "PropsTest")
    SensitiveDataScanPipeline(stack, "Pipeline", **settings)
    return stack


def test_every_conflict_is_reported_at_once_before_anything_is_built():
    stack = cdk.Stack(cdk.App(), "PropsTest")
    with pytest.raises(ValueError) as raised:
        SensitiveDataScanPipeline(
            stack,
            "Pipeline",
            custom_data_identifiers=[
                CustomDataIdentifier(name="Bad id!", regex="EMP-([0-9", keywords=["ok-word", "no"], maximum_match_distance=0),
                CustomDataIdentifier(name="Twice", regex="a+"),
                CustomDataIdentifier(name="Twice", regex="b+"),
            ],
            allow_lists=[AllowList(name="List", regex="(unclosed")],
            managed_data_identifier_selector=ManagedDataIdentifierSelector.INCLUDE,
            finding_policy=FindingPolicy(high="BLOCK"),
            poll_interval=Duration.minutes(10),
            max_scan_wait=Duration.minutes(5),
            approval_timeout=Duration.hours(1),
            approval_heartbeat=Duration.hours(2),
            notification_emails=["not-an-address"],
            configure_discovery_results=True,
            discovery_results_bucket=object(),
        )
    message = str(raised.value)
    expected = [
        "custom_data_identifiers[0] ('Bad id!'): name must be 1-128 letters, digits, spaces, '_', '.' or '-'",
        "custom_data_identifiers[0] ('Bad id!'): invalid regex 'EMP-([0-9': unterminated character set",
        "custom_data_identifiers[0] ('Bad id!').keywords: 'no' must be 3-90 characters",
        "custom_data_identifiers[0] ('Bad id!'): maximum_match_distance must be an integer from 1 to 300",
        "custom_data_identifiers[2] ('Twice'): duplicate name",
        "allow_lists[0] ('List'): invalid regex '(unclosed': missing ), unterminated subpattern",
        "managed_data_identifier_selector INCLUDE needs managed_data_identifier_ids",
        "finding_policy.high must be one of ALLOW, REVIEW, DENY, got 'BLOCK'",
        "max_scan_wait must be at least poll_interval",
        "approval_heartbeat must be shorter than approval_timeout",
        "notification_emails: 'not-an-address' is not an email address",
        "configure_discovery_results creates its own results bucket and key: do not also pass discovery_results_bucket or discovery_results_key",
        "discovery_results_bucket and discovery_results_key go together",
    ]
    for line in expected:
        assert f"- {line}" in message, line
    assert message.count("\n- ") == len(expected)
    # Nothing was built: validation runs before the first resource.
    assert [c.node.id for c in stack.node.find_child("Pipeline").node.children] == []


@pytest.mark.parametrize(
    "settings, problem",
    [
        ({"trigger": Trigger.on_schedule(max_batch_objects=0)}, "trigger max_batch_objects must be from 1 to 50"),
        ({"poll_interval": Duration.seconds(5)}, "poll_interval must be at least 10 seconds"),
        ({"approval_timeout": Duration.days(400)}, "approval_timeout must be at most 365 days"),
        ({"managed_data_identifier_ids": ["CREDIT_CARD_NUMBER"]}, "managed_data_identifier_ids only apply with INCLUDE or EXCLUDE, not RECOMMENDED"),
        ({"managed_data_identifier_selector": "NONE"}, "managed_data_identifier_selector NONE needs at least one custom data identifier"),
        ({"vault_object_lock": ObjectLock(retention=Duration.hours(1))}, "vault_object_lock.retention must be at least 1 day"),
        ({"deny_policy": "SHRED"}, "deny_policy must be one of QUARANTINE, DELETE, got 'SHRED'"),
        ({"custom_data_identifiers": [CustomDataIdentifier(name="Long", regex="x" * 513)]}, "regex is 513 characters, Macie allows at most 512"),
    ],
)
def test_single_problems_are_named(settings, problem):
    with pytest.raises(ValueError, match="Invalid SensitiveDataScanPipeline settings") as raised:
        _build(**settings)
    assert problem in str(raised.value)


def test_finding_policy_accepts_enum_members_and_serialises_for_the_evaluator():
    policy = FindingPolicy(low=FindingAction.ALLOW, medium=FindingAction.REVIEW, high=FindingAction.DENY)
    assert policy.as_dict() == {"LOW": "ALLOW", "MEDIUM": "REVIEW", "HIGH": "DENY"}
