"""IAM as deployed: every role's exact actions, who may write where, the zone write guards and the key policies.

The tables below are the review surface: a new grant, a new role or a lost guard changes one of them
and fails here, so that it is a visible, deliberate change (update the table in the same commit).
"""

from __future__ import annotations

import json

import pytest

from support.cfn_lint import errors_of, format_findings, lint_template
from template_support import synthesize
from test_template_options import _build as build_options

MACIE_SLR = "role/aws-service-role/macie.amazonaws.com/AWSServiceRoleForAmazonMacie"
LOGS_AND_XRAY = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTelemetryRecords", "xray:PutTraceSegments"}
OPERATIONS_KEY = {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"}

#: Each role's actions in the sample stack. Role: (pipeline attribute holding the function or role).
EXPECTED_ACTIONS = {
    "prepare_scan": LOGS_AND_XRAY | OPERATIONS_KEY | {
        "dynamodb:GetItem", "dynamodb:PutItem", "s3:ListBucket", "s3:ListBucketVersions",
    },
    "transfer": LOGS_AND_XRAY | {
        "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
        "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging",
        "s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectVersionTagging", "s3:DeleteObjectVersion",
        "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:ListBucket", "s3:ListBucketVersions",
    },
    "integrity_check": LOGS_AND_XRAY | {"kms:Decrypt", "s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"},
    "evaluate_findings": LOGS_AND_XRAY | {
        "kms:Decrypt", "macie2:GetClassificationExportConfiguration", "macie2:GetFindings", "macie2:ListFindings",
        "s3:GetObject", "s3:ListBucket",
    },
    "request_review": LOGS_AND_XRAY | OPERATIONS_KEY | {"dynamodb:PutItem", "sns:Publish"},
    "review_api": LOGS_AND_XRAY | OPERATIONS_KEY | {
        "dynamodb:GetItem", "dynamodb:UpdateItem", "states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess",
    },
    "state_machine": {
        "events:PutEvents", "kms:Decrypt", "kms:GenerateDataKey", "lambda:InvokeFunction",
        "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:UpdateLogDelivery",
        "macie2:CreateClassificationJob", "macie2:DescribeClassificationJob", "macie2:UpdateClassificationJob",
        "s3:DeleteObjectVersion", "sns:Publish",
        "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
    },
    "trigger": {"states:StartExecution"},
    # CDK's: the review API's CloudWatch role and the AwsCustomResource provider have AWS managed
    # policies only (see MANAGED_POLICIES); the provider's own policy sets the export configuration.
    "review_api_cloudwatch": set(),
    "custom_resource_provider": {"macie2:PutClassificationExportConfiguration"},
}
MANAGED_POLICIES = {
    "review_api_cloudwatch": ["service-role/AmazonAPIGatewayPushToCloudWatchLogs"],
    "custom_resource_provider": ["service-role/AWSLambdaBasicExecutionRole"],
}

#: Every S3 action that writes an object into a bucket or changes its tags, ACL, retention, legal
#: hold or encryption (Service Authorization Reference for Amazon S3). Listed here, not imported, so
#: that the guard is checked against an independent list.
WRITE_ACTIONS = {
    "s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectVersionAcl",
    "s3:PutObjectTagging", "s3:PutObjectVersionTagging", "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging",
    "s3:PutObjectRetention", "s3:PutObjectLegalHold",
    "s3:ReplicateObject", "s3:ReplicateTags", "s3:ReplicateDelete",
    "s3:UpdateObjectEncryption",
}
GUARD_SIDS = {
    "quarantine_bucket": "OnlyThePipelineWritesToQuarantine",
    "review_bucket": "OnlyThePipelineWritesToReview",
    "vault_bucket": "OnlyThePipelineWritesToTheVault",
}


@pytest.fixture(scope="module")
def sample(sample_synth):
    return sample_synth


@pytest.fixture(scope="module")
def options():
    return synthesize(build_options)


def _pipeline(synth):
    return next(c for c in synth.stack.node.children if hasattr(c, "external_setup"))


def _logical_id(synth, construct) -> str:
    return synth.stack.get_logical_id(construct.node.default_child)


def _roles(synth) -> dict[str, str]:
    """{name in EXPECTED_ACTIONS: logical id of the role}."""
    pipeline = _pipeline(synth)
    roles = {
        name: _logical_id(synth, getattr(pipeline, attribute).role)
        for name, attribute in (
            ("prepare_scan", "prepare_scan_function"), ("transfer", "transfer_function"),
            ("integrity_check", "integrity_function"), ("evaluate_findings", "evaluate_function"),
            ("request_review", "request_review_function"), ("review_api", "review_api_function"),
            ("state_machine", "state_machine"),
        )
    }
    roles["trigger"] = _logical_id(synth, pipeline.node.find_child("TriggerRole"))
    for logical_id, resource in synth.resources("AWS::IAM::Role").items():
        arns = json.dumps(resource["Properties"].get("ManagedPolicyArns", []))
        if "AmazonAPIGatewayPushToCloudWatchLogs" in arns:
            roles["review_api_cloudwatch"] = logical_id
        elif "AWSLambdaBasicExecutionRole" in arns:
            roles["custom_resource_provider"] = logical_id
    return roles


def _statements(synth, role_logical_id: str) -> list[dict]:
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _actions(statements) -> set[str]:
    return {a for s in statements if s["Effect"] == "Allow" for a in _as_list(s["Action"])}


def _bucket_arn(synth, bucket) -> dict:
    return synth.stack.resolve(bucket.bucket_arn)


def _objects_of(synth, bucket) -> dict:
    return synth.stack.resolve(bucket.arn_for_objects("*"))


# ---------------------------------------------------------------------- every role, every action
def test_every_role_has_exactly_the_listed_actions(sample):
    roles = _roles(sample)
    assert set(roles) == set(EXPECTED_ACTIONS)
    assert set(roles.values()) == set(sample.resources("AWS::IAM::Role")), "a role that is not in EXPECTED_ACTIONS"
    actual = {name: _actions(_statements(sample, logical_id)) for name, logical_id in roles.items()}
    assert actual == EXPECTED_ACTIONS
    for name, policies in MANAGED_POLICIES.items():
        arns = json.dumps(sample.resources("AWS::IAM::Role")[roles[name]]["Properties"]["ManagedPolicyArns"])
        assert all(p in arns for p in policies) and arns.count("arn:") == len(policies), (name, arns)
    for name in set(roles) - set(MANAGED_POLICIES):
        assert "ManagedPolicyArns" not in sample.resources("AWS::IAM::Role")[roles[name]]["Properties"], name


def test_no_allow_statement_has_an_action_wildcard(sample, options):
    for synth in (sample, options):
        for policy in synth.resources("AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                assert not any("*" in a for a in _as_list(statement["Action"])), statement


def test_only_the_transfer_role_writes_objects_and_only_where_the_workflow_moves_them(sample, options):
    for synth in (sample, options):
        pipeline = _pipeline(synth)
        roles = _roles(synth)
        writers = {name for name, lid in roles.items() if _actions(_statements(synth, lid)) & WRITE_ACTIONS}
        assert writers == {"transfer"}
        written = [
            r for s in _statements(synth, roles["transfer"]) if set(_as_list(s["Action"])) & WRITE_ACTIONS
            for r in _as_list(s["Resource"])
        ]
        zones = (pipeline.quarantine_bucket, pipeline.review_bucket, pipeline.vault_bucket)
        assert sorted(map(json.dumps, written)) == sorted(json.dumps(_objects_of(synth, b)) for b in zones)


def test_deletes_are_by_version_and_never_in_the_vault_and_ingress_only_by_the_workflow(sample, options):
    for synth in (sample, options):
        pipeline = _pipeline(synth)
        roles = _roles(synth)
        deleting = {}
        for name, logical_id in roles.items():
            for statement in _statements(synth, logical_id):
                for action in _as_list(statement["Action"]):
                    if action.startswith("s3:Delete"):
                        deleting.setdefault((name, action), []).extend(map(json.dumps, _as_list(statement["Resource"])))
        assert set(deleting) == {("transfer", "s3:DeleteObjectVersion"), ("state_machine", "s3:DeleteObjectVersion")}
        assert sorted(deleting[("transfer", "s3:DeleteObjectVersion")]) == sorted(
            json.dumps(_objects_of(synth, b)) for b in (pipeline.quarantine_bucket, pipeline.review_bucket)
        )
        assert deleting[("state_machine", "s3:DeleteObjectVersion")] == [json.dumps(_objects_of(synth, pipeline.ingress_bucket))]


def test_the_evaluator_decrypts_only_what_s3_reads_from_the_results_bucket(sample):
    pipeline = _pipeline(sample)
    [decrypt] = [s for s in _statements(sample, _roles(sample)["evaluate_findings"]) if "kms:Decrypt" in _as_list(s["Action"])]
    results = pipeline.discovery_results_bucket
    assert decrypt["Resource"] == sample.stack.resolve(pipeline.data_key.key_arn)
    # With an S3 Bucket Key the context is the bucket's ARN, without one the object's: both, nothing else.
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [_bucket_arn(sample, results), _objects_of(sample, results)]},
    }


# ---------------------------------------------------------------------- the zones' write guards
@pytest.mark.parametrize("zone", list(GUARD_SIDS))
def test_every_zone_denies_every_object_write_to_all_but_the_transfer_role(sample, options, zone):
    for synth in (sample, options):
        pipeline = _pipeline(synth)
        bucket = getattr(pipeline, zone)
        [policy] = [p for p in synth.resources("AWS::S3::BucketPolicy").values()
                    if p["Properties"]["Bucket"] == synth.stack.resolve(bucket.bucket_name)]
        [guard] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == GUARD_SIDS[zone]]
        assert guard["Effect"] == "Deny" and guard["Principal"] == {"AWS": "*"}
        assert set(guard["Action"]) == WRITE_ACTIONS
        assert guard["Resource"] == _objects_of(synth, bucket)
        transfer_role = synth.stack.resolve(pipeline.transfer_function.role.role_arn)
        assert guard["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": transfer_role}}


# ---------------------------------------------------------------------- key policies
def _key_statements(synth) -> list[dict]:
    return [s for key in synth.resources("AWS::KMS::Key").values() for s in key["Properties"]["KeyPolicy"]["Statement"]]


def test_macie_may_decrypt_through_s3_whether_or_not_its_role_exists_yet(sample, options):
    for synth in (sample, options):
        [statement] = [s for s in _key_statements(synth) if s.get("Sid") == "AllowMacieServiceLinkedRoleToReadStagedObjects"]
        assert statement["Principal"] == {"AWS": "*"} and statement["Action"] == "kms:Decrypt"
        slr = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, f":{MACIE_SLR}"]]}
        assert statement["Condition"] == {
            "ArnEquals": {"aws:PrincipalArn": slr},
            "StringEquals": {
                "kms:CallerAccount": {"Ref": "AWS::AccountId"},
                "kms:ViaService": {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]},
            },
        }


def test_no_key_policy_names_a_principal_that_may_not_exist(sample, options):
    """KMS rejects a key policy whose principal does not exist: only the account, roles of this
    stack, service principals and a condition-bound ``*`` may appear."""
    for synth in (sample, options):
        for statement in _key_statements(synth):
            principal = statement["Principal"]
            for value in _as_list(principal.get("AWS", [])):
                text = json.dumps(value)
                assert value == "*" or text.endswith(':root"]]}') or "Fn::GetAtt" in text, statement
                if value == "*":
                    assert "aws:PrincipalArn" in json.dumps(statement.get("Condition", {})), statement


def test_cfn_lint_accepts_the_options_template(options):
    findings = lint_template(options.template)
    assert errors_of(findings) == [], format_findings(errors_of(findings))
