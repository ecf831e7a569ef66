"""The sample stack's template: what is deployed, checked resource by resource.

Synthesized once per session. Every assertion names a property a security reviewer would check,
and fails on an empty or broken template.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from aws_cdk import Duration
from aws_cdk.assertions import Match, Template

import app as sample_app
from support.asl import resolve_intrinsics, run_asl_validator
from support.botocore_model import sdk_tasks_in_definition, validate_sdk_task
from support.cfn_lint import errors_of, format_findings, lint_template
from template_support import masked, walk_states

MACIE_SLR = "role/aws-service-role/macie.amazonaws.com/AWSServiceRoleForAmazonMacie"


@pytest.fixture(scope="module")
def sample(sample_synth):
    return sample_synth


@pytest.fixture(scope="module")
def template(sample) -> Template:
    return Template.from_json(sample.template)


def _data_buckets(sample) -> dict:
    return {k: v for k, v in sample.resources("AWS::S3::Bucket").items() if "LoggingConfiguration" in v["Properties"]}


# ---------------------------------------------------------------------- cdk-nag, cfn-lint, ASL
def test_cdk_nag_has_no_unacknowledged_findings(sample):
    violations = [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in sample.nag_report.violations]
    assert violations == []
    assert sample.nag_report.success


def test_every_acknowledgment_has_a_reason(sample):
    acks = []
    for construct in sample.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                acks.extend(entry.data.items())
    assert len(acks) >= 20, "the sample must carry its cdk-nag acknowledgments"
    for rule, reason in acks:
        assert rule.removeprefix("Annotation::").startswith("AwsSolutions-"), rule
        assert len(reason) > 30, (rule, reason)


def test_cfn_lint_reports_no_errors(sample):
    findings = lint_template(sample.template)
    assert errors_of(findings) == [], format_findings(errors_of(findings))


def test_asl_validator_accepts_the_state_machine(sample):
    ok, output = run_asl_validator(sample.definition)
    assert ok, output


def test_every_sdk_task_matches_the_botocore_model(sample):
    tasks = sdk_tasks_in_definition(sample.definition)
    # Exactly the Macie job's calls: every object is moved, deleted and reported by a handler.
    assert {(service, action) for _, service, action, _ in tasks} == {
        ("macie2", "createClassificationJob"),
        ("macie2", "describeClassificationJob"),
        ("macie2", "updateClassificationJob"),
    }
    problems = []
    for path, service, action, parameters in tasks:
        problems += [f"{path}: {p}" for p in validate_sdk_task(service, action, resolve_intrinsics(parameters, sample.template))]
    assert problems == []


# ---------------------------------------------------------------------- the workflow
def test_every_task_retries_transient_errors_and_catches_everything(sample):
    task_states = [(path, s) for path, _, s in walk_states(sample.definition["States"]) if s["Type"] == "Task"]
    assert len(task_states) == 17  # 10 function calls, 3 Macie calls, 4 notifications
    states = {name: state for _, name, state in walk_states(sample.definition["States"])}
    for path, state in task_states:
        assert state.get("Retry"), f"{path} has no Retry"
        assert state.get("Catch") and state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], f"{path} has no final Catch for States.ALL"
        # Fail closed: everything caught ends in a failure report, a chunk left where it is, or (for the
        # waits and the optional steps) a path that never makes an object CLEAN.
        for catcher in state["Catch"]:
            assert catcher["Next"] in states, (path, catcher)
    for name, state in states.items():
        if state["Type"] == "Map":
            assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Report failed batch"}], name


#: Each integration's throttling and transient errors as Step Functions names them (Step Functions
#: developer guide: "Handle Lambda service exceptions"; "Add EventBridge events with Step Functions":
#: a non-zero FailedEntryCount, throttled entries included, fails the task with EventBridge.FailedEntry;
#: AWS SDK integrations name undeclared error codes such as SlowDown <Service>.<Service>Exception).
THROTTLING_AND_TRANSIENT = {
    "arn:aws:states:::lambda:invoke": [
        "Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.AWSLambdaException",
        "Lambda.SdkClientException", "Lambda.ClientExecutionTimeoutException",
    ],
    "arn:aws:states:::sns:publish": ["SNS.ThrottledException", "SNS.KMSThrottlingException", "SNS.InternalErrorException"],
    "arn:aws:states:::events:putEvents": ["EventBridge.FailedEntry", "EventBridge.InternalException"],
    "arn:aws:states:::aws-sdk:s3:": ["S3.S3Exception", "S3.SdkClientException"],
    "arn:aws:states:::aws-sdk:macie2:": [
        "Macie2.ThrottlingException", "Macie2.InternalServerException", "Macie2.Macie2Exception", "Macie2.SdkClientException",
    ],
}


#: (resource, error) retried more than 10 times, and at most how many.
LONG_RETRIES = {("arn:aws:states:::aws-sdk:macie2:createClassificationJob", "Macie2.ThrottlingException"): 30}


def retry_problems(definition: dict) -> list[str]:
    """Every Task state whose integration's throttling or transient errors are not all retried with
    a bounded, jittered exponential backoff (one problem per state and error)."""
    problems = []
    for path, _, state in walk_states(definition["States"]):
        if state["Type"] != "Task":
            continue
        resource = state["Resource"].removesuffix(".waitForTaskToken")
        [errors] = [e for prefix, e in THROTTLING_AND_TRANSIENT.items() if resource.startswith(prefix)] or [None]
        if errors is None:
            problems.append(f"{path}: no known errors for {resource}")
            continue
        for error in errors:
            retrier = next((r for r in state.get("Retry", []) if {error, "States.TaskFailed", "States.ALL"} & set(r["ErrorEquals"])), None)
            # Creating the batch's one job rides out Macie's 0.1 requests/s for about two hours: throttling
            # delays a batch, never fails it (the client token makes every retry the same job).
            most = LONG_RETRIES.get((state["Resource"], error), 10)
            if retrier is None:
                problems.append(f"{path}: {error} is not retried")
            elif not (retrier.get("JitterStrategy") == "FULL" and retrier.get("BackoffRate", 2) > 1
                      and 2 <= retrier["MaxAttempts"] <= most and retrier.get("MaxDelaySeconds")):
                problems.append(f"{path}: {error} is retried without a bounded, jittered backoff: {retrier}")
    return problems


def test_every_task_retries_its_services_throttling_and_transient_errors(sample):
    assert retry_problems(sample.definition) == []


def test_state_names_are_the_documented_contract(sample):
    """The names docs/batching.md, the README's diagram and the local engine rely on (contract States)."""
    from macie_pipeline.contract import States

    names = {name for _, name, _ in walk_states(sample.definition["States"])}
    contract = {value for key, value in vars(States).items() if key.isupper()}
    assert len(contract) == 17
    assert contract | {
        "Anything staged?", "Macie job status?", "Cancel Macie job", "Review needed?", "Review timed out",
        "Scan failed", "Notify scan failure", "Scan finished",
    } <= names


def _vault_write_paths(sample) -> tuple[dict, dict]:
    pipeline = sample.stack.node.find_child("Pipeline")
    return (
        resolve_intrinsics(sample.stack.resolve(pipeline.vault_bucket.bucket_name), sample.template),
        sample.stack.resolve(pipeline.vault_bucket.bucket_arn),
    )


def test_no_state_and_no_state_machine_permission_writes_the_vault(sample):
    """Fail closed, structurally: the vault is written only inside the transfer function (route_chunk,
    decide_chunk), which honours a CLEAN verdict line or an APPROVE decision item: the workflow cannot
    name the vault, nor carry a verdict or a decision into that function."""
    vault_name, vault_arn = _vault_write_paths(sample)
    states = {name: (path, state) for path, name, state in walk_states(sample.definition["States"])}
    for path, state in states.values():
        assert vault_name not in json.dumps(state), f"{path} names the vault"
    pipeline = sample.stack.node.find_child("Pipeline")
    role = sample.stack.resolve(pipeline.state_machine.role.role_name)
    machine = [st for p in sample.resources("AWS::IAM::Policy").values() if role in p["Properties"]["Roles"]
               for st in p["Properties"]["PolicyDocument"]["Statement"]]
    assert machine and not [st for st in machine if json.dumps(vault_arn) in json.dumps(st["Resource"])]
    # Only two states invoke the operations that may write the vault, each with ids and references only.
    transfer = sample.stack.resolve(pipeline.transfer_function.function_arn)
    writers = {
        name: state["Parameters"]["Payload"] for name, (_, state) in states.items()
        if state["Type"] == "Task" and state["Parameters"].get("Payload", {}).get("operation") in ("route_chunk", "decide_chunk")
    }
    assert writers == {
        "Route chunk": {"operation": "route_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk", "executionArn.$": "$.executionArn"},
        "Apply decisions to chunk": {"operation": "decide_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk",
                                     "executionArn.$": "$.executionArn"},
    }
    for name in writers:
        function = states[name][1]["Parameters"]["FunctionName"]
        assert function == resolve_intrinsics(transfer, sample.template), name
    # Routing runs only after the evaluator wrote the verdicts; decisions only after the review (or its timeout).
    top = sample.definition["States"]
    assert top["Evaluate findings"]["Next"] == "Route objects"
    assert [n for n, st in top.items() if "Route objects" in _targets(st)] == ["Evaluate findings"]
    assert sorted(n for n, st in top.items() if "Apply decisions" in _targets(st)) == ["Review timed out", "Wait for reviewer"]
    # A review that is not answered in time is a denial kept in quarantine: never an approval, never a deletion.
    assert top["Review timed out"]["Parameters"]["decision"] == "TIMEOUT"
    # The verdict and decision lines are written by their one function (the batch bucket's guards, test_iam).


def _targets(state: dict) -> set:
    found = {state.get("Next"), state.get("Default")} | {r["Next"] for r in state.get("Choices", [])}
    return (found | {c["Next"] for c in state.get("Catch", [])}) - {None}


def test_macie_job_is_scoped_by_scan_tag_and_idempotent(sample):
    start = next(s for _, n, s in walk_states(sample.definition["States"]) if n == "Start Macie job")
    params = start["Parameters"]
    assert params["ClientToken.$"] == "$.batchId"  # one job per batch, whatever the retries
    assert params["JobType"] == "ONE_TIME"
    assert params["ManagedDataIdentifierSelector"] == "RECOMMENDED"
    term = params["S3JobDefinition"]["Scoping"]["Includes"]["And"][0]["TagScopeTerm"]
    assert term == {
        "Comparator": "EQ",
        "Key": "TAG",
        "TagValues": [{"Key": "macie-pipeline:scan-id", "Value.$": "$.batchId"}],
        "Target": "S3_OBJECT",
    }
    assert len(params["CustomDataIdentifierIds"]) == 1 and len(params["AllowListIds"]) == 1
    # The job scans only the quarantine bucket (where the batch's copies are staged), nothing else.
    pipeline = sample.stack.node.find_child("Pipeline")
    [definition] = params["S3JobDefinition"]["BucketDefinitions"]
    assert definition["Buckets"] == [resolve_intrinsics(sample.stack.resolve(pipeline.quarantine_bucket.bucket_name), sample.template)]
    assert list(params["S3JobDefinition"]) == ["BucketDefinitions", "Scoping"]
    throttle = next(r for r in start["Retry"] if r["ErrorEquals"] == ["Macie2.ThrottlingException"])
    assert throttle["MaxAttempts"] >= 6 and throttle["BackoffRate"] >= 2 and throttle["JitterStrategy"] == "FULL"


def test_poll_loop_is_bounded_and_handles_every_job_status(sample):
    import botocore.session

    from macie_pipeline.workflow import EXTRA_POLLS, max_polls

    states = {n: s for _, n, s in walk_states(sample.definition["States"])}
    status = states["Macie job status?"]
    handled = {rule["StringEquals"] for rule in _comparisons(status["Choices"]) if rule.get("Variable") == "$.macie.job.JobStatus"}
    # Every status Macie's API model knows is named (anything else goes to the Default, incomplete).
    statuses = set(botocore.session.get_session().get_service_model("macie2").shape_for("JobStatus").enum)
    assert statuses == {"COMPLETE", "CANCELLED", "RUNNING", "IDLE", "PAUSED", "USER_PAUSED"}
    assert handled == statuses
    bound = next(c for c in status["Choices"] if c.get("Variable") == "$.poll.count")
    # 6 h / 15 min polls (the backstop; job events wake the scan) plus the wake-ups by events
    assert bound["NumericGreaterThanEquals"] == max_polls(Duration.minutes(15), Duration.hours(6)) == 24 + EXTRA_POLLS
    assert bound["Next"] == "Cancel Macie job"
    assert status["Choices"].index(bound) == 2  # after COMPLETE and CANCELLED, before any rule that waits again
    assert status["Default"] == "Scan incomplete"
    assert states["Scan incomplete"]["Result"] is False
    assert states["Cancel Macie job"]["Next"] == "Scan incomplete"
    assert [c["Next"] for c in states["Cancel Macie job"]["Catch"]] == ["Scan incomplete"]
    wait = states["Wait for Macie job"]
    assert wait["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken") and wait["TimeoutSeconds"] == 900
    assert wait["Catch"][0]["ErrorEquals"] == ["States.Timeout", "States.HeartbeatTimeout"]
    assert wait["Catch"][0]["Next"] == "Describe Macie job"


def _comparisons(rules) -> list[dict]:
    """Every comparison of a Choice's rules, those nested in And, Or and Not too."""
    found = []
    for rule in rules if isinstance(rules, list) else [rules]:
        nested = rule.get("And") or rule.get("Or") or ([rule["Not"]] if "Not" in rule else None)
        found += _comparisons(nested) if nested else [rule]
    return found


def test_approval_waits_for_a_task_token_with_a_timeout(sample):
    states = {n: s for _, n, s in walk_states(sample.definition["States"])}
    ask = states["Wait for reviewer"]
    assert ask["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert ask["TimeoutSeconds"] == 3 * 24 * 3600
    assert ask["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    timeout_catch = ask["Catch"][0]
    assert set(timeout_catch["ErrorEquals"]) == {"States.Timeout", "States.HeartbeatTimeout"}
    assert timeout_catch["Next"] == "Review timed out"


def test_state_machine_logs_without_execution_data_and_traces(template):
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "LoggingConfiguration": Match.object_like({"IncludeExecutionData": False, "Level": "ALL"}),
            "TracingConfiguration": {"Enabled": True},
        },
    )


# ---------------------------------------------------------------------- data protection
def test_every_data_bucket_is_encrypted_with_the_pipeline_key_and_locked_down(sample):
    buckets = _data_buckets(sample)
    assert len(buckets) == 6  # ingress, quarantine, review, vault, discovery results, batches
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", logical_id
        assert "Fn::GetAtt" in rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"], logical_id
        assert rule["BucketKeyEnabled"] is True, logical_id
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        }, logical_id
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}, logical_id
        assert "BucketName" not in props, f"{logical_id} has a fixed physical name"
        assert bucket["DeletionPolicy"] == "Retain", logical_id


def test_every_bucket_denies_plain_http_and_old_tls(sample):
    policies = sample.resources("AWS::S3::BucketPolicy")
    buckets = sample.resources("AWS::S3::Bucket")
    covered = set()
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        deny_http = [s for s in statements if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
        deny_tls = [s for s in statements if s["Effect"] == "Deny" and s.get("Condition", {}).get("NumericLessThan", {}).get("s3:TlsVersion") == 1.2]
        if deny_http and deny_tls:
            covered.add(policy["Properties"]["Bucket"]["Ref"])
    assert covered == set(buckets)


def test_keys_rotate_and_macie_may_decrypt_only_through_s3(sample):
    keys = sample.resources("AWS::KMS::Key")
    assert len(keys) == 2
    assert all(k["Properties"]["EnableKeyRotation"] is True for k in keys.values())
    macie = [
        s
        for k in keys.values()
        for s in k["Properties"]["KeyPolicy"]["Statement"]
        if MACIE_SLR in json.dumps(s)
    ]
    assert len(macie) == 1
    [statement] = macie
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Condition"]["StringEquals"]["kms:ViaService"] == {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    # The role is bound by condition (a principal that does not exist yet would make KMS reject the policy).
    assert statement["Principal"] == {"AWS": "*"}
    assert MACIE_SLR in json.dumps(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"])
    assert statement["Condition"]["StringEquals"]["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}


def test_no_role_can_delete_from_the_vault_or_write_to_ingress(sample):
    pipeline = sample.stack.node.find_child("Pipeline")
    vault = sample.stack.resolve(pipeline.vault_bucket.bucket_arn)
    ingress = sample.stack.resolve(pipeline.ingress_bucket.bucket_arn)
    for logical_id, policy in sample.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = json.dumps(statement["Resource"])
            if json.dumps(vault) in resources:
                assert not [a for a in actions if "Delete" in a or a in ("s3:*", "*")], (logical_id, statement)
            if json.dumps(ingress) in resources:
                assert not [a for a in actions if a.startswith("s3:Put") or a in ("s3:*", "*")], (logical_id, statement)


def test_review_table_and_topic_are_encrypted_with_the_customer_key(template):
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": Match.any_value()},
            "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})


def test_finding_policy_and_unknown_format_policy_reach_the_evaluator(sample):
    env = next(
        f["Properties"]["Environment"]["Variables"]
        for f in sample.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "evaluate_findings.handler"
    )
    assert json.loads(env["FINDING_POLICY"]) == {"HIGH": "REVIEW", "LOW": "REVIEW", "MEDIUM": "REVIEW"}
    assert env["UNKNOWN_FORMAT_POLICY"] == "REVIEW"
    assert env["RESULTS_PREFIX"] == "macie-discovery-results"


# ---------------------------------------------------------------------- trigger, API, alarms
def _rule(sample, prefix: str) -> dict:
    [rule] = [v for k, v in sample.resources("AWS::Events::Rule").items() if k.startswith(prefix)]
    return rule


def _function(sample, handler: str) -> tuple[str, dict]:
    [found] = [(k, f) for k, f in sample.resources("AWS::Lambda::Function").items() if f["Properties"].get("Handler") == handler]
    return found


def test_object_created_rule_queues_the_ingress_buckets_events(sample):
    assert len(sample.resources("AWS::Events::Rule")) == 2  # ObjectCreatedRule, SweepRule
    rule = _rule(sample, "PipelineObjectCreatedRule")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": next(k for k in sample.resources("AWS::S3::Bucket") if k.startswith("PipelineIngress"))}]
    [target] = rule["Properties"]["Targets"]
    [queue_id] = sample.resources("AWS::SQS::Queue").keys() - {k for k in sample.resources("AWS::SQS::Queue") if "DeadLetter" in k}
    assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]} and "RoleArn" not in target
    ingress = next(v for k, v in sample.resources("AWS::S3::Bucket").items() if k.startswith("PipelineIngress"))
    assert ingress["Properties"]["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


def test_intake_queues_are_encrypted_with_the_operations_key_tls_only_and_dead_lettered(sample):
    pipeline = sample.stack.node.find_child("Pipeline")
    key = sample.stack.resolve(pipeline.operations_key.key_arn)
    queues = sample.resources("AWS::SQS::Queue")
    queue = queues[sample.stack.get_logical_id(pipeline.intake_queue.node.default_child)]
    dlq_id = sample.stack.get_logical_id(pipeline.intake_dead_letter_queue.node.default_child)
    assert set(queues) == {dlq_id, sample.stack.get_logical_id(pipeline.intake_queue.node.default_child)}
    for props in (queue["Properties"], queues[dlq_id]["Properties"]):
        assert props["KmsMasterKeyId"] == key
    assert queue["Properties"]["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 5}
    assert queues[dlq_id]["Properties"]["MessageRetentionPeriod"] == 14 * 86400
    _, prepare = _function(sample, "prepare_scan.handler")
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * prepare["Properties"]["Timeout"] == 6 * 900
    for policy in sample.resources("AWS::SQS::QueuePolicy").values():
        [deny] = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_object_created_rule_may_send_to_the_intake_queue(sample):
    pipeline = sample.stack.node.find_child("Pipeline")
    queue_arn = sample.stack.resolve(pipeline.intake_queue.queue_arn)
    allows = [st for p in sample.resources("AWS::SQS::QueuePolicy").values() for st in p["Properties"]["PolicyDocument"]["Statement"]
              if st["Effect"] == "Allow"]
    assert allows == [{
        "Action": "sqs:SendMessage", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": sample.stack.resolve(pipeline.trigger_rule.rule_arn)}},
        "Sid": "AllowTheObjectCreatedRuleToSend",
    }]
    key = sample.resources("AWS::KMS::Key")[sample.stack.get_logical_id(pipeline.operations_key.node.default_child)]
    events_statements = [st for st in key["Properties"]["KeyPolicy"]["Statement"] if st["Principal"] == {"Service": "events.amazonaws.com"}]
    assert [st["Sid"] for st in events_statements] == ["AllowEventBridgeToQueueObjectEvents"]
    [statement] = events_statements
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_the_batcher_consumes_the_queue_in_batches_and_reports_item_failures(sample):
    [mapping] = sample.resources("AWS::Lambda::EventSourceMapping").values()
    prepare_id, _ = _function(sample, "prepare_scan.handler")
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": prepare_id}
    assert props["BatchSize"] == 10_000 and props["MaximumBatchingWindowInSeconds"] == 300
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_sweep_rule_invokes_the_batcher_for_lost_events(sample):
    rule = _rule(sample, "PipelineSweepRule")
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    [target] = rule["Properties"]["Targets"]
    prepare_id, _ = _function(sample, "prepare_scan.handler")
    assert target["Arn"] == {"Fn::GetAtt": [prepare_id, "Arn"]}
    assert json.loads(target["Input"]) == {"source": "sensitive-data-scan-pipeline.sweep", "sweep": "lost"}
    permissions = [p["Properties"] for p in sample.resources("AWS::Lambda::Permission").values()
                   if p["Properties"]["Principal"] == "events.amazonaws.com"]
    assert [p["FunctionName"] for p in permissions] == [{"Fn::GetAtt": [prepare_id, "Arn"]}]


def test_intake_alarms_watch_the_queue_age_and_the_dead_letter_queue(sample):
    pipeline = sample.stack.node.find_child("Pipeline")
    alarms = {a["Properties"]["MetricName"]: a["Properties"] for a in sample.resources("AWS::CloudWatch::Alarm").values()
              if a["Properties"].get("Namespace") == "AWS/SQS"}
    age, depth = alarms["ApproximateAgeOfOldestMessage"], alarms["ApproximateNumberOfMessagesVisible"]
    assert age["Threshold"] == 2 * 300 + 15 * 60 and age["ComparisonOperator"] == "GreaterThanThreshold"
    assert age["Dimensions"][0]["Value"] == sample.stack.resolve(pipeline.intake_queue.queue_name)
    assert depth["Threshold"] == 1 and depth["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert depth["Dimensions"][0]["Value"] == sample.stack.resolve(pipeline.intake_dead_letter_queue.queue_name)


def test_the_batch_bucket_expires_batches_and_map_results_after_the_claim_ttl(sample):
    pipeline = sample.stack.node.find_child("Pipeline")
    bucket = sample.resources("AWS::S3::Bucket")[sample.stack.get_logical_id(pipeline.batch_bucket.node.default_child)]
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    days = -(-int(2 * (6 * 3600 + 3 * 86400)) // 86400)  # claim TTL (twice max_scan_wait + approval_timeout), rounded up
    for rule_id, prefix in (("ExpireBatches", "batches/"), ("ExpireMapResults", "map-results/")):
        assert rules[rule_id]["Prefix"] == prefix and rules[rule_id]["ExpirationInDays"] == days == 7
        assert rules[rule_id]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert rules["RemoveExpiredDeleteMarkers"]["ExpiredObjectDeleteMarker"] is True
    assert "LoggingConfiguration" in bucket["Properties"]


def test_macie_job_events_reach_the_job_events_function(sample):
    [subscription] = sample.resources("AWS::Logs::SubscriptionFilter").values()
    job_events_id, _ = _function(sample, "job_events.handler")
    props = subscription["Properties"]
    assert props["LogGroupName"] == "/aws/macie/classificationjobs"
    assert props["DestinationArn"] == {"Fn::GetAtt": [job_events_id, "Arn"]}
    for event in ("JOB_COMPLETED", "JOB_CANCELLED", "JOB_PAUSED_BY_MACIE_SERVICE_QUOTA_MET", "BUCKET_*", "ACCOUNT_*", "OBJECT_*"):
        assert f'$.eventType = "{event}"' in props["FilterPattern"], event
    [permission] = [p["Properties"] for p in sample.resources("AWS::Lambda::Permission").values()
                    if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [job_events_id, "Arn"]}]
    assert permission["Principal"] == "logs.amazonaws.com"
    # The log group is Macie's, account-wide: created if missing, never deleted with the stack.
    [creation] = [v for k, v in sample.template["Resources"].items() if k.startswith("PipelineMacieJobLogGroup") and v["Type"] == "Custom::AWS"]
    create = json.loads(json.dumps(creation["Properties"]["Create"]))
    assert "createLogGroup" in json.dumps(create) and "ResourceAlreadyExistsException" in json.dumps(create)
    assert "Delete" not in creation["Properties"]
    assert any(k.startswith("PipelineMacieJobLogGroup") for k in subscription["DependsOn"])


def test_every_function_gets_exactly_its_contract_variables(sample):
    from macie_pipeline.contract import ENVIRONMENTS

    assert set(ENVIRONMENTS) == {"prepare_scan", "transfer", "integrity_check", "evaluate_findings", "job_events",
                                 "request_review", "review_api"}
    for folder, environment in ENVIRONMENTS.items():
        _, fn = _function(sample, f"{folder}.handler")
        variables = fn["Properties"]["Environment"]["Variables"]
        given = set(variables) - {"POWERTOOLS_SERVICE_NAME"}
        assert given <= set(environment.variables()), (folder, given - set(environment.variables()))
        required = {f.metadata["env"] for f in dataclasses.fields(environment) if f.default is dataclasses.MISSING}
        assert required <= given, (folder, required - given)


def test_the_batcher_gets_the_batch_settings(sample):
    pipeline = sample.stack.node.find_child("Pipeline")
    _, fn = _function(sample, "prepare_scan.handler")
    env = fn["Properties"]["Environment"]["Variables"]
    assert env["STATE_MACHINE_ARN"] == sample.stack.resolve(pipeline.state_machine.state_machine_arn)
    assert env["BATCH_BUCKET"] == sample.stack.resolve(pipeline.batch_bucket.bucket_name)
    assert (env["MAX_BATCH_OBJECTS"], env["CHUNK_OBJECTS"], env["LOST_EVENT_AGE_SECONDS"]) == ("10000", "200", "3600")
    assert fn["Properties"]["Timeout"] == 900 and fn["Properties"]["MemorySize"] >= 1024
    _, transfer = _function(sample, "transfer.handler")
    env = transfer["Properties"]["Environment"]["Variables"]
    assert env["EVENT_BUS_NAME"] == "default" and env["DENY_POLICY"] == "QUARANTINE"
    assert env["STATE_TABLE"] == sample.stack.resolve(pipeline.state_table.table_name)
    for handler in ("transfer.handler", "integrity_check.handler"):
        assert _function(sample, handler)[1]["Properties"]["Timeout"] == 900, handler


def test_review_api_is_throttled_logged_and_traced(template):
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            # The URL carries the review id: no X-Ray segments that would record it.
            "TracingEnabled": False,
            "MethodSettings": [Match.object_like({"ThrottlingRateLimit": 5, "ThrottlingBurstLimit": 10, "DataTraceEnabled": False})],
        },
    )
    methods = template.find_resources("AWS::ApiGateway::Method")
    # GET and POST /reviews/{reviewId}, GET /signed-in (the sign-in's callback)
    assert sorted(m["Properties"]["HttpMethod"] for m in methods.values()) == ["GET", "GET", "POST"]


def test_alarms_cover_failed_and_timed_out_executions_and_every_function(sample):
    alarms = sample.resources("AWS::CloudWatch::Alarm").values()
    metrics = sorted(a["Properties"]["MetricName"] for a in alarms)
    assert metrics.count("Errors") == 7
    assert {"ExecutionsFailed", "ExecutionsTimedOut"} <= set(metrics)
    topic = next(iter(sample.resources("AWS::SNS::Topic")))
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": topic}] for a in alarms)


def test_functions_are_traced_pinned_and_log_to_encrypted_groups(sample):
    functions = {k: v for k, v in sample.resources("AWS::Lambda::Function").items() if v["Properties"].get("Handler", "").endswith(".handler") and "Layers" in v["Properties"]}
    assert len(functions) == 7
    groups = sample.resources("AWS::Logs::LogGroup")
    for logical_id, fn in functions.items():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.13" and props["Architectures"] == ["x86_64"], logical_id
        assert props["TracingConfig"] == {"Mode": "Active"}, logical_id
        group = groups[props["LoggingConfig"]["LogGroup"]["Ref"]]
        assert "KmsKeyId" in group["Properties"], logical_id


def test_snapshot(sample, snapshot):
    assert masked(sample.template) == snapshot


def test_sample_app_synth_fails_on_an_unacknowledged_finding():
    """The registration in app.py is what makes `make synth` a cdk-nag gate: prove it bites."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App()
    stack = sample_app.build_app(app)
    s3.Bucket(stack, "UnloggedBucket")  # no access logs, no TLS policy: AwsSolutions-S1 and S10
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="AwsSolutions-S1|Validation failed|ValidationFailed"):
        app.synth()


def test_state_machine_may_use_the_topic_key(sample):
    """SnsPublish grants only sns:Publish; publishing to a KMS-encrypted topic also needs the key."""
    pipeline = sample.stack.node.find_child("Pipeline")
    key_arn = sample.stack.resolve(pipeline.operations_key.key_arn)
    role = sample.stack.resolve(pipeline.state_machine.role.role_name)
    statements = [
        st
        for policy in sample.resources("AWS::IAM::Policy").values()
        if role in policy["Properties"]["Roles"]
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert any(
        st["Resource"] == key_arn and {"kms:GenerateDataKey", "kms:Decrypt"} <= set(st["Action"]) for st in statements
    )


def test_only_the_transfer_role_may_write_to_the_vault(sample):
    pipeline = sample.stack.node.find_child("Pipeline")
    vault = sample.stack.resolve(pipeline.vault_bucket.bucket_name)
    [policy] = [p for p in sample.resources("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == vault]
    [deny] = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st.get("Sid") == "OnlyThePipelineWritesToTheVault"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert "s3:PutObject" in deny["Action"]
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": sample.stack.resolve(pipeline.transfer_function.role.role_arn)}}


def test_a_failing_chunk_never_aborts_the_batch_or_a_pending_review(sample):
    """A chunk whose step fails (an ingress cleanup failure included: route_chunk reports it as
    INGRESS_CLEANUP_FAILED and keeps the outcome) ends its own child workflow, Succeeded; the maps
    tolerate every child failing; only a failure of the whole step ends in Report failed batch."""
    top = sample.definition["States"]
    children = {
        "Stage objects": ("Copy to quarantine", "Check integrity", "Chunk not staged"),
        "Route objects": ("Route chunk", "Chunk not routed"),
        "Apply decisions": ("Apply decisions to chunk", "Chunk not decided"),
    }
    for map_name, (*tasks, landing) in children.items():
        processor = top[map_name]["ItemProcessor"]["States"]
        assert top[map_name]["ToleratedFailurePercentage"] == 100, map_name
        assert processor[landing]["Type"] == "Succeed", map_name
        for task in tasks:
            assert processor[task]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": landing}], task
        assert not [n for n, st in processor.items() if st["Type"] == "Fail"], map_name
    # After routing, the review (if any) always runs: no Fail state between Route objects and Wait for reviewer.
    assert top["Route objects"]["Next"] == "Review needed?"
    assert not [n for n, st in top.items() if st["Type"] == "Fail" and "ngress" in n]


@pytest.mark.parametrize(
    "handler, prefix",
    [("prepare_scan.handler", "claim#*"), ("request_review.handler", "review#*"), ("review_api.handler", "review#*")],
)
def test_state_table_access_is_limited_to_each_functions_own_items(sample, handler, prefix):
    """The claim writer cannot read reviews (they hold task tokens); the review API cannot touch claims."""
    [fn] = [f for f in sample.resources("AWS::Lambda::Function").values() if f["Properties"].get("Handler") == handler]
    role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        st
        for policy in sample.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("dynamodb:") for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]]))
    ]
    assert statements, "the function must have table access"
    for st in statements:
        assert st["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [prefix]}}


def test_cloudwatch_alarms_may_publish_to_the_topic_and_use_its_key(sample):
    """A topic policy without an Allow for CloudWatch rejects alarm actions: every alarm would fire into nothing."""
    pipeline = sample.stack.node.find_child("Pipeline")
    [policy] = sample.resources("AWS::SNS::TopicPolicy").values()
    [allow] = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st.get("Sid") == "AllowCloudWatchAlarmsToPublish"]
    assert allow["Effect"] == "Allow" and allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish" and allow["Resource"] == sample.stack.resolve(pipeline.topic.topic_arn)
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1][-1] == ":alarm:*"
    key = sample.resources("AWS::KMS::Key")[sample.stack.get_logical_id(pipeline.operations_key.node.default_child)]
    [key_allow] = [st for st in key["Properties"]["KeyPolicy"]["Statement"] if st.get("Sid") == "AllowCloudWatchAlarmsToPublish"]
    assert key_allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert pipeline.external_setup == []


def test_macie_names_are_unique_per_account_and_events_keep_the_given_name(sample):
    """Macie custom data identifier and allow list names are unique per account and Region."""
    [cdi] = sample.resources("AWS::Macie::CustomDataIdentifier").values()
    [allow] = sample.resources("AWS::Macie::AllowList").values()
    assert cdi["Properties"]["Name"].startswith("EmployeeId-") and allow["Properties"]["Name"].startswith("TestCardNumbers-")
    [env] = [
        f["Properties"]["Environment"]["Variables"]
        for f in sample.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "evaluate_findings.handler"
    ]
    assert json.loads(env["CUSTOM_DATA_IDENTIFIER_NAMES"]) == {cdi["Properties"]["Name"]: "EmployeeId"}
