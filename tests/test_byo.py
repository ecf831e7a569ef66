"""Bring your own resources: one stack with an imported ingress bucket, an owned vault, an imported
KMS key, an existing (encrypted) topic and a custom event bus, synthesized once.

What the construct cannot apply to an imported resource must never be dropped silently: it is listed
in ``external_setup`` and construction fails until the setting is named in ``externally_managed``.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from macie_pipeline import CustomDataIdentifier, SensitiveDataScanPipeline
from support.asl import run_asl_validator
from support.cfn_lint import errors_of, format_findings, lint_template
from template_support import synthesize, walk_states

ACCOUNT, REGION = "111122223333", "eu-west-1"
INGRESS_NAME = "existing-ingress-bucket"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:data-security"
TOPIC_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/66666666-7777-8888-9999-000000000000"
BUS_NAME = "data-gate-results"
MACIE_SLR = "role/aws-service-role/macie.amazonaws.com/AWSServiceRoleForAmazonMacie"


def _existing_resources(stack: cdk.Stack) -> dict:
    """What a user already has: imported ingress, key, topic and bus; a vault bucket of this stack."""
    key = kms.Key.from_key_arn(stack, "ExistingKey", KEY_ARN)
    vault_logs = s3.Bucket(
        stack, "VaultAccessLogs", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True, versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL, object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    )
    cdk.Validations.of(vault_logs).acknowledge(
        cdk.Acknowledgment(id="AwsSolutions-S1", reason="Test fixture: the user's access log bucket does not log itself.")
    )
    vault = s3.Bucket(
        stack, "Vault", encryption=s3.BucketEncryption.KMS, encryption_key=key, bucket_key_enabled=True,
        enforce_ssl=True, versioned=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED, server_access_logs_bucket=vault_logs,
    )
    return {
        "ingress_bucket": s3.Bucket.from_bucket_name(stack, "ExistingIngress", INGRESS_NAME),
        "vault_bucket": vault,
        "encryption_key": key,
        "topic": sns.Topic.from_topic_attributes(stack, "ExistingTopic", topic_arn=TOPIC_ARN, key_arn=TOPIC_KEY_ARN),
        "event_bus": events.EventBus.from_event_bus_name(stack, "ResultsBus", BUS_NAME),
    }


def _stack(app: cdk.App) -> cdk.Stack:
    stack = cdk.Stack(app, "ByoStack", env=cdk.Environment(account=ACCOUNT, region=REGION))
    # The user's own buckets log through a bucket policy (as the pipeline's do), not the legacy ACL.
    stack.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
    return stack


def _build(app: cdk.App) -> cdk.Stack:
    stack = _stack(app)
    pipeline = SensitiveDataScanPipeline(
        stack,
        "Gate",
        **_existing_resources(stack),
        externally_managed=["ingress_bucket", "encryption_key", "topic"],
        custom_data_identifiers=[CustomDataIdentifier(name="EmployeeId", regex=r"EMP-[0-9]{6}")],
        configure_discovery_results=True,
        # The organisation's own pool (federating its identity provider), client and managed login.
        reviewer_user_pool=cognito.UserPool.from_user_pool_id(stack, "CorpPool", f"{REGION}_CorpPool1"),
        reviewer_user_pool_client=cognito.UserPoolClient.from_user_pool_client_id(stack, "CorpClient", "corpclient0123456789"),
        reviewer_sign_in_url="https://login.example.com/",
        reviewers_group="data-stewards",
    )
    assert pipeline.reviewer_sign_in_url == "https://login.example.com"
    return stack


def _logical_id(construct) -> str:
    return cdk.Stack.of(construct).get_logical_id(construct.node.default_child)


@pytest.fixture(scope="module")
def byo():
    return synthesize(_build)


@pytest.fixture(scope="module")
def pipeline(byo) -> SensitiveDataScanPipeline:
    return byo.stack.node.find_child("Gate")


def _resolve(byo, value):
    return byo.stack.resolve(value)


def _statements(byo, role=None) -> list[dict]:
    """Every statement of the IAM policies in the template (of one role, if given)."""
    found = []
    for policy in byo.resources("AWS::IAM::Policy").values():
        if role is not None and _resolve(byo, role.role_name) not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            found.append(statement)
    return found


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------- nothing duplicated
def test_no_bucket_key_topic_or_bus_is_created_for_what_was_supplied(byo, pipeline):
    buckets = {k for k in byo.resources("AWS::S3::Bucket") if k.startswith("Gate")}
    assert sorted(b.rstrip("0123456789ABCDEF") for b in buckets) == [
        "GateAccessLogs", "GateBatchBucket", "GateDiscoveryResults", "GateQuarantine", "GateReview",
    ]
    assert [k for k in byo.resources("AWS::KMS::Key") if k.startswith("Gate")] == [_logical_id(pipeline.operations_key)]
    assert byo.resources("AWS::SNS::Topic") == {} and byo.resources("AWS::SNS::TopicPolicy") == {}
    assert byo.resources("AWS::Events::EventBus") == {}
    assert pipeline.ingress_bucket.bucket_name == INGRESS_NAME
    assert pipeline.encryption_key is pipeline.data_key and pipeline.data_key.key_arn == KEY_ARN
    assert pipeline.topic.topic_arn == TOPIC_ARN
    # The created zones use the supplied key.
    quarantine = byo.resources("AWS::S3::Bucket")[_logical_id(pipeline.quarantine_bucket)]
    [rule] = quarantine["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == KEY_ARN


# ---------------------------------------------------------------------- IAM: the supplied ARNs, nothing broader
def test_kms_permissions_name_exactly_the_supplied_keys(byo, pipeline):
    ops_key = _resolve(byo, pipeline.operations_key.key_arn)
    # The data key (KEY_ARN) also encrypts the batch bucket; the operations key the state table.
    expected = {
        pipeline.transfer_function: [KEY_ARN, ops_key],  # ingress has no known key; the vault's key is the data key
        pipeline.integrity_function: [KEY_ARN],
        pipeline.evaluate_function: [KEY_ARN, ops_key],  # discovery results are encrypted with the data key
        pipeline.request_review_function: [ops_key, KEY_ARN, TOPIC_KEY_ARN],
        pipeline.prepare_scan_function: [KEY_ARN, ops_key],
        pipeline.review_api_function: [ops_key, KEY_ARN],
        pipeline.job_events_function: [ops_key],
    }
    for fn, keys in expected.items():
        used = {json.dumps(st["Resource"], sort_keys=True) for st in _statements(byo, fn.role)
                if any(a.startswith("kms:") for a in _as_list(st["Action"]))}
        assert used == {json.dumps(k, sort_keys=True) for k in keys}, fn.node.id
    machine = [st for st in _statements(byo, pipeline.state_machine.role) if any(a.startswith("kms:") for a in _as_list(st["Action"]))]
    # The data key: the Distributed Maps read the chunk index and write their results in the batch bucket.
    assert sorted((st["Resource"], sorted(st["Action"])) for st in machine) == [
        (KEY_ARN, ["kms:Decrypt", "kms:GenerateDataKey"]), (TOPIC_KEY_ARN, ["kms:Decrypt", "kms:GenerateDataKey"]),
    ]
    assert not [st for st in _statements(byo) if any(a.startswith("kms:") for a in _as_list(st["Action"])) and st["Resource"] == "*"]


def test_s3_permissions_name_exactly_the_supplied_buckets(byo, pipeline):
    ingress = _resolve(byo, pipeline.ingress_bucket.bucket_arn)
    ingress_objects = _resolve(byo, pipeline.ingress_bucket.arn_for_objects("*"))
    vault_objects = _resolve(byo, pipeline.vault_bucket.arn_for_objects("*"))
    everything_s3 = [st for st in _statements(byo) if any(a.startswith("s3:") for a in _as_list(st["Action"]))]
    assert not [st for st in everything_s3 if "*" in _as_list(st["Resource"]) or "arn:aws:s3:::*" in json.dumps(st["Resource"])]
    # Every statement that names the imported ingress bucket names it exactly (bucket or its objects).
    for st in everything_s3:
        for resource in _as_list(st["Resource"]):
            if INGRESS_NAME in json.dumps(resource):
                assert resource in (ingress, ingress_objects), st
    transfer_objects = {
        json.dumps(r, sort_keys=True)
        for st in _statements(byo, pipeline.transfer_function.role)
        for r in _as_list(st["Resource"])
        if any(a.startswith("s3:") and "Object" in a for a in _as_list(st["Action"]))
    }
    assert transfer_objects == {
        json.dumps(_resolve(byo, b.arn_for_objects("*")), sort_keys=True)
        for b in (pipeline.ingress_bucket, pipeline.quarantine_bucket, pipeline.review_bucket, pipeline.vault_bucket)
    } | {
        json.dumps(_resolve(byo, pipeline.batch_bucket.arn_for_objects(pattern)), sort_keys=True)
        for pattern in ("batches/*", "batches/*/copied/*", "batches/*/routed/*", "batches/*/decided/*", "batches/*/reported/*")
    }
    # Fail closed, unchanged: no role may delete from the vault or write to ingress.
    for st in everything_s3:
        actions = _as_list(st["Action"])
        if vault_objects in _as_list(st["Resource"]):
            assert not [a for a in actions if "Delete" in a], st
        if ingress_objects in _as_list(st["Resource"]):
            assert not [a for a in actions if a.startswith("s3:Put")], st
    [listing] = [st for st in _statements(byo, pipeline.prepare_scan_function.role) if "s3:ListBucket" in _as_list(st["Action"])]
    assert listing["Resource"] == ingress


def test_result_events_go_to_the_supplied_bus(byo, pipeline):
    bus_arn = _resolve(byo, pipeline.event_bus.event_bus_arn)
    assert bus_arn == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":events:{REGION}:{ACCOUNT}:event-bus/{BUS_NAME}"]]}
    # The handlers send the result events (PutEvents, 10 per call): transfer for every outcome,
    # evaluate_findings for the objects that reached none. The workflow sends none itself.
    assert not [s for _, _, s in walk_states(byo.definition["States"]) if ":events:" in s.get("Resource", "")]
    assert not [st for st in _statements(byo, pipeline.state_machine.role) if "events:PutEvents" in _as_list(st["Action"])]
    senders = {pipeline.transfer_function, pipeline.evaluate_function}
    for fn in (pipeline.transfer_function, pipeline.evaluate_function, pipeline.prepare_scan_function, pipeline.integrity_function,
               pipeline.request_review_function, pipeline.review_api_function, pipeline.job_events_function):
        puts = [st for st in _statements(byo, fn.role) if "events:PutEvents" in _as_list(st["Action"])]
        if fn not in senders:
            assert puts == [], fn.node.id
            continue
        [put] = puts
        assert put["Resource"] == bus_arn and _as_list(put["Action"]) == ["events:PutEvents"], fn.node.id
        variables = byo.template["Resources"][_logical_id(fn)]["Properties"]["Environment"]["Variables"]
        assert variables["EVENT_BUS_NAME"] == BUS_NAME, fn.node.id


def test_object_created_rule_matches_the_supplied_ingress_bucket(byo):
    [rule] = [v for k, v in byo.resources("AWS::Events::Rule").items() if k.startswith("GateObjectCreatedRule")]
    assert rule["Properties"]["EventPattern"]["detail"]["bucket"]["name"] == [INGRESS_NAME]


def test_the_vault_write_guard_is_applied_to_the_owned_vault(byo, pipeline):
    vault = _resolve(byo, pipeline.vault_bucket.bucket_name)
    assert vault == {"Ref": _logical_id(pipeline.vault_bucket)} and _logical_id(pipeline.vault_bucket).startswith("Vault")
    [policy] = [p for p in byo.resources("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == vault]
    [deny] = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st.get("Sid") == "OnlyThePipelineWritesToTheVault"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": _resolve(byo, pipeline.transfer_function.role.role_arn)}}


def test_the_imported_ingress_bucket_is_left_unchanged(byo):
    assert not [k for k, v in byo.template["Resources"].items() if v["Type"] == "Custom::S3BucketNotifications"]
    notified = [k for k, b in byo.resources("AWS::S3::Bucket").items() if "NotificationConfiguration" in b["Properties"]]
    assert notified == []


# ---------------------------------------------------------------------- what the user must apply
def test_external_setup_lists_exactly_what_the_imported_resources_need(pipeline):
    listed = [(i.setting, i.applies_to, [s.sid for s in i.statements]) for i in pipeline.external_setup]
    assert listed == [
        ("encryption_key", "key policy", ["AllowMacieServiceLinkedRoleToReadStagedObjects"]),
        ("ingress_bucket", "bucket configuration", []),
        ("topic", "topic policy", ["AllowCloudWatchAlarmsToPublish"]),
        ("topic", "key policy", ["AllowCloudWatchAlarmsToPublish"]),
        ("encryption_key", "key policy", ["AllowMacieToEncryptDiscoveryResults"]),
    ]
    rendered = json.loads(pipeline.external_setup_json())
    assert [(r["setting"], r["resource"]) for r in rendered] == [
        ("encryption_key", KEY_ARN),
        ("ingress_bucket", f"arn:${{AWS::Partition}}:s3:::{INGRESS_NAME}"),
        ("topic", TOPIC_ARN),
        ("topic", TOPIC_KEY_ARN),
        ("encryption_key", KEY_ARN),
    ]
    assert rendered[0]["policy"] == {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowMacieServiceLinkedRoleToReadStagedObjects",
            "Effect": "Allow",
            # The role is a condition, not the Principal: the key policy stays valid before Macie's
            # service-linked role exists.
            "Principal": {"AWS": "*"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:{MACIE_SLR}"},
                "StringEquals": {"kms:CallerAccount": "${AWS::AccountId}", "kms:ViaService": "s3.${AWS::Region}.amazonaws.com"},
            },
        }],
    }
    assert "EventBridge" in rendered[1]["description"] and "versioning" in rendered[1]["description"]
    assert "policy" not in rendered[1]
    assert rendered[2]["policy"]["Statement"] == [{
        "Sid": "AllowCloudWatchAlarmsToPublish",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": TOPIC_ARN,
        "Condition": {"ArnLike": {"aws:SourceArn": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"}},
    }]
    assert rendered[3]["policy"]["Statement"][0]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    # The statements are usable in CDK as they are (e.g. in the stack that owns the key).
    assert isinstance(pipeline.external_setup[0].policy_document(), iam.PolicyDocument)
    assert pipeline.external_setup[1].policy_document() is None


def test_without_the_acknowledgement_construction_fails_with_every_reason():
    stack = _stack(cdk.App())
    with pytest.raises(ValueError) as raised:
        SensitiveDataScanPipeline(stack, "Gate", **_existing_resources(stack))
    assert str(raised.value) == (
        "Invalid SensitiveDataScanPipeline settings:\n"
        "- ingress_bucket is imported: the construct cannot turn on its EventBridge notifications or check that "
        "it is versioned. Add 'ingress_bucket' to externally_managed and apply what external_setup lists for it\n"
        "- encryption_key is imported: the construct cannot add the key policy statement that lets Macie's "
        "service-linked role decrypt staged objects. Add 'encryption_key' to externally_managed and apply what "
        "external_setup lists for it\n"
        "- topic is imported: the construct cannot add the topic policy statement that lets CloudWatch alarms "
        "publish or the key policy statement that lets CloudWatch alarms use the topic's key. Add 'topic' to "
        "externally_managed and apply what external_setup lists for it"
    )
    assert [c.node.id for c in stack.node.find_child("Gate").node.children] == []


def test_a_partial_acknowledgement_is_not_enough():
    stack = _stack(cdk.App())
    with pytest.raises(ValueError) as raised:
        SensitiveDataScanPipeline(stack, "Gate", **_existing_resources(stack), externally_managed=["ingress_bucket", "topic"])
    assert str(raised.value).count("\n- ") == 1
    assert "\n- encryption_key is imported: " in str(raised.value)


# ---------------------------------------------------------------------- checks
def test_cdk_nag_has_no_unacknowledged_findings(byo):
    violations = [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in byo.nag_report.violations]
    assert violations == []


def test_cfn_lint_and_asl_validator_accept_the_template(byo):
    findings = lint_template(byo.template, regions=[REGION])
    assert errors_of(findings) == [], format_findings(errors_of(findings))
    ok, output = run_asl_validator(byo.definition)
    assert ok, output


def test_custom_identifier_has_a_unique_macie_name_and_events_use_the_given_one(byo):
    [cdi] = byo.resources("AWS::Macie::CustomDataIdentifier").values()
    name = cdi["Properties"]["Name"]
    assert name.startswith("EmployeeId-") and len(name) == len("EmployeeId-") + 8
    [env] = [
        f["Properties"]["Environment"]["Variables"]
        for f in byo.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "evaluate_findings.handler"
    ]
    assert json.loads(env["CUSTOM_DATA_IDENTIFIER_NAMES"]) == {name: "EmployeeId"}


def test_a_given_reviewers_pool_is_used_and_nothing_of_cognito_is_created(byo):
    assert not any(t.startswith("AWS::Cognito::") for t in (r["Type"] for r in byo.template["Resources"].values()))
    [env] = [
        f["Properties"]["Environment"]["Variables"]
        for f in byo.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "review_api.handler"
    ]
    assert {k: env[k] for k in ("REVIEWER_USER_POOL_ID", "REVIEWER_USER_POOL_CLIENT_ID", "REVIEWER_SIGN_IN_URL", "REVIEWERS_GROUP",
                                "REVIEW_APPROVALS_REQUIRED")} == {
        "REVIEWER_USER_POOL_ID": f"{REGION}_CorpPool1", "REVIEWER_USER_POOL_CLIENT_ID": "corpclient0123456789",
        "REVIEWER_SIGN_IN_URL": "https://login.example.com", "REVIEWERS_GROUP": "data-stewards", "REVIEW_APPROVALS_REQUIRED": "1",
    }


def test_an_imported_vault_and_a_bus_of_another_account_are_listed_not_dropped():
    """Construction only (no synth): the vault write guard and the bus policy become external setup."""
    stack = _stack(cdk.App())
    vault = s3.Bucket.from_bucket_name(stack, "ExistingVault", "existing-vault-bucket")
    bus = events.EventBus.from_event_bus_arn(stack, "CentralBus", "arn:aws:events:eu-west-1:999999999999:event-bus/central")
    pipeline = SensitiveDataScanPipeline(stack, "Gate", vault_bucket=vault, event_bus=bus, externally_managed=["vault_bucket", "event_bus"])
    listed = [(i.setting, i.applies_to, [s.sid for s in i.statements]) for i in pipeline.external_setup]
    assert listed == [
        ("vault_bucket", "bucket configuration", []),
        ("vault_bucket", "bucket policy", ["OnlyThePipelineWritesToTheVault"]),
        ("event_bus", "event bus policy", ["AllowSensitiveDataScanPipelineResults"]),
    ]
    rendered = json.loads(pipeline.external_setup_json())
    role = _logical_id(pipeline.transfer_function.role)
    assert rendered[1]["policy"]["Statement"] == [{
        "Sid": "OnlyThePipelineWritesToTheVault",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": [
            "s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectVersionAcl", "s3:PutObjectTagging", "s3:PutObjectVersionTagging",
            "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging", "s3:PutObjectRetention", "s3:PutObjectLegalHold",
            "s3:ReplicateObject", "s3:ReplicateTags", "s3:ReplicateDelete", "s3:UpdateObjectEncryption",
        ],
        "Resource": "arn:${AWS::Partition}:s3:::existing-vault-bucket/*",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": f"${{{role}.Arn}}"}},
    }]
    assert "holds only with it" in rendered[1]["description"]
    assert rendered[2]["resource"] == "arn:aws:events:eu-west-1:999999999999:event-bus/central"
    assert rendered[2]["policy"]["Statement"][0]["Principal"] == {"AWS": [
        f"${{{_logical_id(role)}.Arn}}"
        for role in (pipeline.state_machine.role, pipeline.transfer_function.role, pipeline.evaluate_function.role)
    ]}
    # Nothing was added to the imported vault: no bucket policy for it in this stack.
    policies = [c for c in stack.node.find_all() if isinstance(c, s3.CfnBucketPolicy)]
    assert all("existing-vault-bucket" not in json.dumps(stack.resolve(p.bucket)) for p in policies)


def test_a_second_bucket_or_topic_policy_for_the_vault_or_topic_fails_synthesis():
    """S3 and SNS keep one policy per resource: a user's own policy would replace the vault guard."""
    app = cdk.App()
    stack = cdk.Stack(app, "SecondPolicy")
    vault = s3.Bucket(stack, "MyVault", versioned=True, encryption=s3.BucketEncryption.KMS_MANAGED)
    pipeline = SensitiveDataScanPipeline(stack, "Gate", vault_bucket=vault)
    s3.BucketPolicy(stack, "MyVaultPolicy", bucket=vault)
    sns.TopicPolicy(stack, "MyTopicPolicy", topics=[pipeline.topic])
    with pytest.raises(Exception) as raised:
        app.synth()
    text = str(raised.value)
    assert "SecondPolicy/MyVaultPolicy/Resource is a second resource policy for the pipeline's vault_bucket" in text
    assert "SecondPolicy/MyTopicPolicy/Resource is a second resource policy for the pipeline's topic" in text


def test_pipelines_must_not_share_ingress_or_vault_buckets():
    app = cdk.App()
    stack = cdk.Stack(app, "Shared")
    first = SensitiveDataScanPipeline(stack, "First")
    with pytest.raises(ValueError) as raised:
        SensitiveDataScanPipeline(
            stack, "Second", ingress_bucket=first.vault_bucket,
            vault_bucket=s3.Bucket.from_bucket_name(stack, "Other", "vault-of-someone"),
            externally_managed=["vault_bucket"],
        )
    assert str(raised.value).startswith("Invalid SensitiveDataScanPipeline settings:\n- ")
    assert (
        "ingress_bucket is already the vault bucket of Shared/First: pipelines must not share ingress or vault "
        "buckets" in str(raised.value)
    )
    imported_twice = cdk.Stack(app, "Imported")
    SensitiveDataScanPipeline(imported_twice, "A", vault_bucket=s3.Bucket.from_bucket_name(imported_twice, "V1", "one-vault"),
                              externally_managed=["vault_bucket"])
    with pytest.raises(ValueError, match="vault_bucket is already the vault bucket of Imported/A"):
        SensitiveDataScanPipeline(imported_twice, "B", vault_bucket=s3.Bucket.from_bucket_name(imported_twice, "V2", "one-vault"),
                                  externally_managed=["vault_bucket"])


def test_a_topic_under_the_aws_managed_sns_key_is_refused():
    app = cdk.App()
    stack = cdk.Stack(app, "ManagedKeyTopic")
    topic = sns.Topic(stack, "Topic", master_key=kms.Alias.from_alias_name(stack, "AwsSns", "alias/aws/sns"))
    with pytest.raises(ValueError, match="alias/aws/sns, which CloudWatch alarms cannot use"):
        SensitiveDataScanPipeline(stack, "Gate", topic=topic, externally_managed=["topic"])
