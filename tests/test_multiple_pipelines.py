"""Several pipelines in one stack and in two stacks of one app: no name clashes, at synth or at deploy.

Nothing the construct creates has a fixed physical name, except Macie custom data identifiers and allow
lists, whose names are unique per account and Region in Macie: the construct suffixes them with a hash
of the stack name and the resource's path. One app synthesized once; stack B's pipeline watches an
ingress bucket of its own stack that also sends S3 notifications to a queue (added after the pipeline).
"""

from __future__ import annotations

import json
from collections import Counter

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs

from macie_pipeline import AllowList, CustomDataIdentifier, SensitiveDataScanPipeline

# Properties that set a physical name: none may appear in anything the construct creates.
PHYSICAL_NAMES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::IAM::Role": "RoleName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Events::Rule": "Name",
    "AWS::KMS::Alias": "AliasName",
}
CDI = [CustomDataIdentifier(name="EmployeeId", regex=r"EMP-[0-9]{6}", keywords=["employee"])]
ALLOW = [AllowList(name="TestCards", regex=r"4111-?1111-?1111-?1111")]


def _build(app: cdk.App) -> dict:
    one = cdk.Stack(app, "StackA")
    SensitiveDataScanPipeline(one, "GateOne", custom_data_identifiers=CDI, allow_lists=ALLOW, configure_discovery_results=True)
    SensitiveDataScanPipeline(one, "GateTwo", custom_data_identifiers=CDI, allow_lists=ALLOW)

    two = cdk.Stack(app, "StackB")
    two.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
    ingress = s3.Bucket(two, "OwnIngress", versioned=True, enforce_ssl=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL)
    SensitiveDataScanPipeline(two, "Gate", custom_data_identifiers=CDI, ingress_bucket=ingress)
    # Added after the pipeline: CDK's notification custom resource writes the whole notification
    # configuration, so EventBridge must be on in it too.
    ingress.add_event_notification(s3.EventType.OBJECT_REMOVED, s3n.SqsDestination(sqs.Queue(two, "Removed", enforce_ssl=True)))
    return {"StackA": one, "StackB": two}


@pytest.fixture(scope="module")
def synthesized():
    app = cdk.App()
    stacks = _build(app)
    assembly = app.synth()
    return stacks, {name: assembly.get_stack_by_name(name).template for name in stacks}


def _of_type(template: dict, type_: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def test_each_pipeline_has_its_own_resources(synthesized):
    _, templates = synthesized
    a, b = templates["StackA"], templates["StackB"]
    for template, pipelines in ((a, 2), (b, 1)):
        assert len(_of_type(template, "AWS::StepFunctions::StateMachine")) == pipelines
        assert len(_of_type(template, "AWS::KMS::Key")) == 2 * pipelines
        assert len(_of_type(template, "AWS::SNS::Topic")) == pipelines
        assert len(_of_type(template, "AWS::DynamoDB::Table")) == pipelines
        assert len(_of_type(template, "AWS::ApiGateway::RestApi")) == pipelines
        assert len(_of_type(template, "AWS::Events::Rule")) == 2 * pipelines  # ObjectCreatedRule, SweepRule
        assert len(_of_type(template, "AWS::SQS::Queue")) == 2 * pipelines + (template is b)  # + the user's "Removed" queue
        # Each pipeline subscribes to Macie's account-wide job log group: 2 is CloudWatch Logs' limit per group.
        assert len(_of_type(template, "AWS::Logs::SubscriptionFilter")) == pipelines
        assert len(template["Outputs"]) >= pipelines
    handlers = [f for f in _of_type(a, "AWS::Lambda::Function").values() if "Layers" in f["Properties"]]
    assert len(handlers) == 14
    # Stack A: ingress, quarantine, review, vault, batches, access logs for both; one discovery results bucket.
    assert len(_of_type(a, "AWS::S3::Bucket")) == 13
    # Stack B: the user's ingress bucket instead of a created one.
    assert sorted(k.rstrip("0123456789ABCDEF") for k in _of_type(b, "AWS::S3::Bucket")) == [
        "GateAccessLogs", "GateBatchBucket", "GateQuarantine", "GateReview", "GateVault", "OwnIngress",
    ]


def test_nothing_the_construct_creates_has_a_physical_name(synthesized):
    _, templates = synthesized
    named = [
        (stack, logical_id, PHYSICAL_NAMES[resource["Type"]])
        for stack, template in templates.items()
        for logical_id, resource in template["Resources"].items()
        if PHYSICAL_NAMES.get(resource["Type"]) in resource.get("Properties", {})
    ]
    assert named == []


def test_macie_names_are_unique_across_pipelines_and_stacks(synthesized):
    _, templates = synthesized
    cdi_names = [
        r["Properties"]["Name"] for t in templates.values() for r in _of_type(t, "AWS::Macie::CustomDataIdentifier").values()
    ]
    allow_names = [r["Properties"]["Name"] for t in templates.values() for r in _of_type(t, "AWS::Macie::AllowList").values()]
    assert len(cdi_names) == 3 and len(set(cdi_names)) == 3
    assert all(n.startswith("EmployeeId-") and len(n) == len("EmployeeId-") + 8 for n in cdi_names)
    assert len(allow_names) == 2 and len(set(allow_names)) == 2 and all(n.startswith("TestCards-") for n in allow_names)
    # Every pipeline's evaluator reports its own identifier under the name the user gave.
    mappings = [
        json.loads(f["Properties"]["Environment"]["Variables"]["CUSTOM_DATA_IDENTIFIER_NAMES"])
        for t in templates.values()
        for f in _of_type(t, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "evaluate_findings.handler"
    ]
    assert sorted(mappings, key=json.dumps) == sorted(({n: "EmployeeId"} for n in cdi_names), key=json.dumps)


def test_logical_ids_are_unique_within_each_stack_and_the_export_configuration_is_set_once(synthesized):
    _, templates = synthesized
    for template in templates.values():
        ids = list(template["Resources"]) + list(template.get("Outputs", {}))
        assert [i for i, n in Counter(ids).items() if n > 1] == []
    exports = [
        r for t in templates.values() for r in t["Resources"].values()
        if r["Type"] == "Custom::AWS" and "putClassificationExportConfiguration" in json.dumps(r["Properties"])
    ]
    assert len(exports) == 1


def test_an_owned_ingress_bucket_keeps_eventbridge_on_next_to_cdk_notifications(synthesized):
    stacks, templates = synthesized
    b = templates["StackB"]
    [(bucket_id, bucket)] = [(k, v) for k, v in _of_type(b, "AWS::S3::Bucket").items() if k.startswith("OwnIngress")]
    assert bucket["Properties"]["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    [notifications] = [r for r in b["Resources"].values() if r["Type"] == "Custom::S3BucketNotifications"]
    config = notifications["Properties"]["NotificationConfiguration"]
    assert config["EventBridgeConfiguration"] == {} and len(config["QueueConfigurations"]) == 1
    assert notifications["Properties"]["BucketName"] == {"Ref": bucket_id}
    [rule] = [v for k, v in _of_type(b, "AWS::Events::Rule").items() if k.startswith("GateObjectCreatedRule")]
    assert rule["Properties"]["EventPattern"]["detail"]["bucket"]["name"] == [{"Ref": bucket_id}]
    pipeline = stacks["StackB"].node.find_child("Gate")
    assert pipeline.external_setup == [] and pipeline.ingress_bucket is stacks["StackB"].node.find_child("OwnIngress")


def test_account_wide_settings_are_refused_twice_in_one_app():
    app = cdk.App()
    stack = cdk.Stack(app, "Account")
    SensitiveDataScanPipeline(stack, "First", configure_discovery_results=True, create_macie_session=True)
    with pytest.raises(ValueError) as raised:
        SensitiveDataScanPipeline(cdk.Stack(app, "Other"), "Second", configure_discovery_results=True, create_macie_session=True)
    assert str(raised.value) == (
        "Invalid SensitiveDataScanPipeline settings:\n"
        "- configure_discovery_results: Account/First already sets the Macie export configuration, of which there is "
        "one per account and Region; pass its results bucket and key as discovery_results_bucket and "
        "discovery_results_key instead\n"
        "- create_macie_session: Account/First already enables Macie in this account and Region; a second session "
        "fails the deployment"
    )


def test_account_wide_settings_may_repeat_in_other_accounts():
    app = cdk.App()
    for account in ("111111111111", "222222222222"):
        stack = cdk.Stack(app, f"In{account}", env=cdk.Environment(account=account, region="eu-west-1"))
        SensitiveDataScanPipeline(stack, "Gate", configure_discovery_results=True, create_macie_session=True)


def test_each_pipeline_has_its_own_reviewers_pool_and_login_domain(synthesized):
    """Cognito domain prefixes are global within a Region: two pipelines of one account must not share one."""
    _, templates = synthesized
    pools = _of_type(templates["StackA"], "AWS::Cognito::UserPool")
    domains = [json.dumps(v["Properties"]["Domain"]) for v in _of_type(templates["StackA"], "AWS::Cognito::UserPoolDomain").values()]
    assert len(pools) == 2 and len(domains) == len(set(domains)) == 2


def test_a_created_ingress_bucket_keeps_eventbridge_on_next_to_cdk_notifications():
    """The same for the bucket the construct creates: a user adding an S3 notification to
    ``pipeline.ingress_bucket`` must not switch EventBridge off (no scan would ever start)."""
    app = cdk.App()
    stack = cdk.Stack(app, "Created")
    gate = SensitiveDataScanPipeline(stack, "Gate")
    gate.ingress_bucket.add_event_notification(
        s3.EventType.OBJECT_REMOVED, s3n.SqsDestination(sqs.Queue(stack, "Removed", enforce_ssl=True))
    )
    template = app.synth().get_stack_by_name("Created").template
    [notifications] = [r for r in template["Resources"].values() if r["Type"] == "Custom::S3BucketNotifications"]
    config = notifications["Properties"]["NotificationConfiguration"]
    assert config["EventBridgeConfiguration"] == {} and len(config["QueueConfigurations"]) == 1
    ingress_id = stack.resolve(gate.ingress_bucket.bucket_name)["Ref"]
    assert notifications["Properties"]["BucketName"] == {"Ref": ingress_id}
    assert template["Resources"][ingress_id]["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
