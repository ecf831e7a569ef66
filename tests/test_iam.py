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
BATCH_FILES_READ = {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"}
BATCH_FILES_WRITE = {"s3:PutObject", "kms:GenerateDataKey"}
SQS_CONSUME = {"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"}
EXPECTED_ACTIONS = {
    # No s3:GetObjectVersion: an event or a ListObjectVersions page carries every field of a manifest line.
    "prepare_scan": LOGS_AND_XRAY | OPERATIONS_KEY | BATCH_FILES_WRITE | SQS_CONSUME | {
        "dynamodb:GetItem", "dynamodb:PutItem", "s3:ListBucket", "s3:ListBucketVersions",
        "states:StartExecution", "states:DescribeExecution",
    },
    "transfer": LOGS_AND_XRAY | BATCH_FILES_READ | BATCH_FILES_WRITE | {
        "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey",
        "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging",
        "s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectVersionTagging", "s3:DeleteObjectVersion",
        "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:ListBucket", "s3:ListBucketVersions",
        "events:PutEvents", "dynamodb:BatchGetItem",  # decide_chunk reads the decisions with BatchGetItem only
    },
    "integrity_check": LOGS_AND_XRAY | BATCH_FILES_READ | BATCH_FILES_WRITE | {"s3:GetObjectVersion"},
    "evaluate_findings": LOGS_AND_XRAY | BATCH_FILES_READ | BATCH_FILES_WRITE | {
        "kms:DescribeKey", "macie2:GetClassificationExportConfiguration", "macie2:GetFindings", "macie2:ListFindings",
        "events:PutEvents", "dynamodb:GetItem",
    },
    # wait: UpdateItem (the token), DescribeClassificationJob, SendTaskSuccess; log events: GetItem, UpdateItem.
    "job_events": LOGS_AND_XRAY | OPERATIONS_KEY | {
        "dynamodb:GetItem", "dynamodb:UpdateItem", "macie2:DescribeClassificationJob", "states:SendTaskSuccess",
    },
    "request_review": LOGS_AND_XRAY | OPERATIONS_KEY | BATCH_FILES_READ | {"dynamodb:PutItem", "sns:Publish", "s3:PutObject"},
    # TransactWriteItems needs the permission of each operation in it: Update (the review) and Put (each decision).
    "review_api": LOGS_AND_XRAY | OPERATIONS_KEY | BATCH_FILES_READ | {
        "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem",
        "states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess",
    },
    # No events:PutEvents and no s3:DeleteObjectVersion any more: the handlers send the result events
    # and delete the scanned ingress versions. The Distributed Maps read the chunk index (GetObject on
    # batches/*), write their results (map-results/*) and run child executions of this state machine.
    "state_machine": {
        "kms:Decrypt", "kms:GenerateDataKey", "lambda:InvokeFunction",
        "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:UpdateLogDelivery",
        "macie2:CreateClassificationJob", "macie2:DescribeClassificationJob", "macie2:UpdateClassificationJob",
        "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
        "states:StartExecution", "states:DescribeExecution", "states:StopExecution", "states:RedriveExecution",
        "sns:Publish",
        "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
    },
    # CDK's: the review API's CloudWatch role and the AwsCustomResource provider have AWS managed
    # policies only (see MANAGED_POLICIES); the provider's own policies set the export configuration
    # and create Macie's job log group if it does not exist yet.
    "review_api_cloudwatch": set(),
    "custom_resource_provider": {"macie2:PutClassificationExportConfiguration", "logs:CreateLogGroup"},
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
            ("job_events", "job_events_function"), ("state_machine", "state_machine"),
        )
    }
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


def test_only_the_transfer_role_writes_objects_into_a_zone_and_only_where_the_workflow_moves_them(sample, options):
    for synth in (sample, options):
        pipeline = _pipeline(synth)
        roles = _roles(synth)
        zones = (pipeline.ingress_bucket, pipeline.quarantine_bucket, pipeline.review_bucket, pipeline.vault_bucket)
        zone_arns = {json.dumps(_objects_of(synth, b)) for b in zones} | {json.dumps(_bucket_arn(synth, b)) for b in zones}
        writers = {
            name for name, lid in roles.items() for s in _statements(synth, lid)
            if s["Effect"] == "Allow" and set(_as_list(s["Action"])) & WRITE_ACTIONS
            and {json.dumps(r) for r in _as_list(s["Resource"])} & zone_arns
        }
        assert writers == {"transfer"}
        written = [
            r for s in _statements(synth, roles["transfer"]) if set(_as_list(s["Action"])) & WRITE_ACTIONS
            for r in _as_list(s["Resource"]) if json.dumps(r) in zone_arns
        ]
        assert sorted(map(json.dumps, written)) == sorted(json.dumps(_objects_of(synth, b)) for b in zones[1:])


def _batch_file_patterns() -> dict[str, set[str]]:
    """{role name: patterns under batches/<batch id>/ it writes}, from the contract."""
    from macie_pipeline.contract import _contract

    return {name: set(patterns) for name, patterns in _contract.BATCH_FILE_WRITERS.items()}


def test_batch_files_are_written_only_by_their_writer(sample, options):
    """Every object write outside the zones is a batch file of the role's own kinds (contract
    BATCH_FILE_WRITERS), or, for the state machine, its map runs' results: no role may write a
    verdict or decision line but the one function that makes it."""
    writers = _batch_file_patterns()
    assert writers["evaluate_findings"] >= {"verdicts/*"} and "verdicts/*" not in set().union(
        *(p for n, p in writers.items() if n != "evaluate_findings"))
    for synth in (sample, options):
        pipeline = _pipeline(synth)
        zones = {json.dumps(_objects_of(synth, b)) for b in (pipeline.quarantine_bucket, pipeline.review_bucket, pipeline.vault_bucket)}
        for name, lid in _roles(synth).items():
            written = {json.dumps(r) for s in _statements(synth, lid) if set(_as_list(s["Action"])) & WRITE_ACTIONS
                       for r in _as_list(s["Resource"])} - zones
            patterns = {f"batches/*/{p}" for p in writers.get(name, ())} | ({"map-results/*"} if name == "state_machine" else set())
            expected = {json.dumps(synth.stack.resolve(pipeline.batch_bucket.arn_for_objects(p))) for p in patterns}
            assert written == expected, name


def test_the_batch_bucket_denies_each_kind_of_file_to_all_but_its_writers(sample, options):
    for synth in (sample, options):
        pipeline = _pipeline(synth)
        roles = _roles(synth)
        [policy] = [p for p in synth.resources("AWS::S3::BucketPolicy").values()
                    if p["Properties"]["Bucket"] == synth.stack.resolve(pipeline.batch_bucket.bucket_name)]
        guards = {json.dumps(s["Resource"]): s for s in policy["Properties"]["PolicyDocument"]["Statement"]
                  if s["Effect"] == "Deny" and s.get("Sid", "").startswith("OnlyItsWriterWrites")}
        by_pattern: dict[str, set[str]] = {"map-results/*": {"state_machine"}}
        for name, patterns in _batch_file_patterns().items():
            for pattern in patterns:
                by_pattern.setdefault(f"batches/*/{pattern}", set()).add(name)
        assert set(guards) == {json.dumps(synth.stack.resolve(pipeline.batch_bucket.arn_for_objects(p))) for p in by_pattern}
        for pattern, names in by_pattern.items():
            guard = guards[json.dumps(synth.stack.resolve(pipeline.batch_bucket.arn_for_objects(pattern)))]
            assert guard["Principal"] == {"AWS": "*"} and set(guard["Action"]) == WRITE_ACTIONS, pattern
            allowed = _as_list(guard["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
            assert sorted(map(json.dumps, allowed)) == sorted(
                json.dumps({"Fn::GetAtt": [roles[n], "Arn"]}) for n in names), pattern


def test_the_evaluator_decrypts_only_what_s3_reads_from_the_results_bucket(sample):
    pipeline = _pipeline(sample)
    [decrypt] = [s for s in _statements(sample, _roles(sample)["evaluate_findings"])
                 if "kms:Decrypt" in _as_list(s["Action"]) and "Condition" in s]
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


# ---------------------------------------------------------------------- the new work, statement by statement
def _with_action(synth, role: str, action: str) -> list[dict]:
    return [s for s in _statements(synth, _roles(synth)[role]) if action in _as_list(s["Action"])]


def _leading_keys(statement) -> list:
    return statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]


def test_state_table_items_each_function_reaches(sample):
    expected = {
        "prepare_scan": ["claim#*"], "transfer": ["review#*"], "evaluate_findings": ["job#*"], "job_events": ["job#*"],
        "request_review": ["review#*"], "review_api": ["review#*"],
    }
    for role, prefixes in expected.items():
        statements = [s for s in _statements(sample, _roles(sample)[role]) if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))]
        assert statements, role
        assert all(_leading_keys(s) == prefixes for s in statements), role


def test_the_batcher_starts_and_describes_only_its_own_executions(sample):
    pipeline = _pipeline(sample)
    [start] = _with_action(sample, "prepare_scan", "states:StartExecution")
    assert start["Resource"] == sample.stack.resolve(pipeline.state_machine.state_machine_arn)
    [describe] = _with_action(sample, "prepare_scan", "states:DescribeExecution")
    name = sample.stack.resolve(pipeline.state_machine.state_machine_name)
    assert name in describe["Resource"]["Fn::Join"][1] and describe["Resource"]["Fn::Join"][1][-1] == ":*"
    assert ":execution:" in json.dumps(describe["Resource"])
    [listing] = _with_action(sample, "prepare_scan", "s3:ListBucketVersions")
    assert listing["Resource"] == _bucket_arn(sample, pipeline.ingress_bucket)
    # The batcher never reads an ingress object (nor its metadata): it only lists versions.
    assert not [s for s in _statements(sample, _roles(sample)["prepare_scan"])
                if json.dumps(_objects_of(sample, pipeline.ingress_bucket)) in json.dumps(s["Resource"])]


def test_job_events_resumes_only_this_state_machine_and_describes_only_jobs(sample):
    pipeline = _pipeline(sample)
    [resume] = _with_action(sample, "job_events", "states:SendTaskSuccess")
    assert _as_list(resume["Action"]) == ["states:SendTaskSuccess"]
    assert resume["Resource"] == sample.stack.resolve(pipeline.state_machine.state_machine_arn)
    [describe] = _with_action(sample, "job_events", "macie2:DescribeClassificationJob")
    assert json.dumps(describe["Resource"]).endswith(':classification-job/*"]]}')


def test_result_events_are_put_on_the_pipelines_bus_only(sample):
    bus = sample.stack.resolve(_pipeline(sample).event_bus.event_bus_arn)
    for role in ("transfer", "evaluate_findings"):
        [put] = _with_action(sample, role, "events:PutEvents")
        assert put["Resource"] == bus, role


def test_batch_files_are_read_by_the_functions_that_need_them(sample):
    pipeline = _pipeline(sample)
    batches = sample.stack.resolve(pipeline.batch_bucket.arn_for_objects("batches/*"))
    for role in ("transfer", "integrity_check", "evaluate_findings", "request_review", "review_api"):
        reads = [s for s in _with_action(sample, role, "s3:GetObject") if s["Resource"] == batches]
        assert reads, role
        lists = [s for s in _with_action(sample, role, "s3:ListBucket") if s["Resource"] == _bucket_arn(sample, pipeline.batch_bucket)]
        assert lists, f"{role}: without ListBucket a missing batch file is a 403, not a 404"
    assert not [s for s in _statements(sample, _roles(sample)["prepare_scan"]) if "s3:GetObject" in _as_list(s["Action"])]


def test_cfn_lint_accepts_the_options_template(options):
    findings = lint_template(options.template)
    assert errors_of(findings) == [], format_findings(errors_of(findings))
