"""A second scenario: every non-default option, synthesized once, checked where it lands."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_events as events
from aws_cdk.assertions import Annotations, Match

from macie_pipeline import (
    DenyPolicy,
    FindingAction,
    FindingPolicy,
    ManagedDataIdentifierSelector,
    ObjectLock,
    ObjectLockMode,
    SensitiveDataScanPipeline,
    Trigger,
    UnknownFormatPolicy,
)
from support.asl import run_asl_validator
from template_support import masked, synthesize, walk_states
from test_template import retry_problems


def _build(app: cdk.App) -> cdk.Stack:
    stack = cdk.Stack(app, "OptionsStack")
    SensitiveDataScanPipeline(
        stack,
        "Gate",
        removal_policy=cdk.RemovalPolicy.DESTROY,
        trigger=Trigger.on_schedule(events.Schedule.rate(Duration.hours(1)), prefix="incoming/", max_batch_objects=5000),
        chunk_objects=50,
        map_concurrency=20,
        job_completion_events=False,
        managed_data_identifier_selector=ManagedDataIdentifierSelector.EXCLUDE,
        managed_data_identifier_ids=["EMAIL_ADDRESS"],
        finding_policy=FindingPolicy(low=FindingAction.ALLOW, medium=FindingAction.REVIEW, high=FindingAction.DENY),
        unknown_format_policy=UnknownFormatPolicy.DENY,
        deny_policy=DenyPolicy.DELETE,
        poll_interval=Duration.minutes(2),
        max_scan_wait=Duration.hours(1),
        approval_timeout=Duration.hours(12),
        approval_heartbeat=Duration.hours(1),
        notification_emails=["security@example.com"],
        vault_object_lock=ObjectLock(mode=ObjectLockMode.COMPLIANCE, retention=Duration.days(30)),
        create_macie_session=True,
        reviewers_group="data-reviewers",
        review_approvals_required=2,
    )
    return stack


@pytest.fixture(scope="module")
def options():
    return synthesize(_build)


def _states(options) -> dict:
    return {name: state for _, name, state in walk_states(options.definition["States"])}


def test_nag_passes_and_asl_is_valid_with_every_option(options):
    assert [v.rule_name for v in options.nag_report.violations] == []
    ok, output = run_asl_validator(options.definition)
    assert ok, output


def test_every_task_retries_its_services_throttling_and_transient_errors(options):
    assert retry_problems(options.definition) == []


def test_missing_discovery_results_location_is_a_synth_warning(options):
    Annotations.from_stack(options.stack).has_warning(
        "/OptionsStack/Gate", Match.string_like_regexp("cannot prove objects were analysed")
    )


def test_schedule_trigger_sweeps_everything_instead_of_queueing_events(options):
    [(rule_id, rule)] = options.resources("AWS::Events::Rule").items()
    assert rule_id.startswith("GateScheduleRule")
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert "EventPattern" not in rule["Properties"]
    [(prepare_id, prepare)] = [
        (k, f) for k, f in options.resources("AWS::Lambda::Function").items() if f["Properties"].get("Handler") == "prepare_scan.handler"
    ]
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [prepare_id, "Arn"]} and "RoleArn" not in target
    assert json.loads(target["Input"]) == {"source": "sensitive-data-scan-pipeline.sweep", "sweep": "all"}
    env = prepare["Properties"]["Environment"]["Variables"]
    assert env["MAX_BATCH_OBJECTS"] == "5000" and env["INGRESS_PREFIX"] == "incoming/" and env["CHUNK_OBJECTS"] == "50"
    # No queue, no event source mapping, no sweep for lost events: the schedule sweeps everything.
    assert options.resources("AWS::SQS::Queue") == {} and options.resources("AWS::Lambda::EventSourceMapping") == {}
    assert not [a for a in options.resources("AWS::CloudWatch::Alarm").values() if a["Properties"].get("Namespace") == "AWS/SQS"]


def test_without_job_completion_events_there_is_no_subscription(options):
    assert options.resources("AWS::Logs::SubscriptionFilter") == {}
    assert not [k for k, v in options.template["Resources"].items() if v["Type"] == "Custom::AWS"]
    gate = options.stack.node.find_child("Gate")
    assert gate.job_events_subscription is None and gate.intake_queue is None and gate.sweep_rule is None


def test_policies_reach_the_evaluator_and_the_macie_job(options):
    env = next(
        f["Properties"]["Environment"]["Variables"]
        for f in options.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "evaluate_findings.handler"
    )
    assert json.loads(env["FINDING_POLICY"]) == {"LOW": "ALLOW", "MEDIUM": "REVIEW", "HIGH": "DENY"}
    assert env["UNKNOWN_FORMAT_POLICY"] == "DENY"
    assert "RESULTS_BUCKET" not in env
    params = _states(options)["Start Macie job"]["Parameters"]
    assert params["ManagedDataIdentifierSelector"] == "EXCLUDE"
    assert params["ManagedDataIdentifierIds"] == ["EMAIL_ADDRESS"]
    assert "CustomDataIdentifierIds" not in params and "AllowListIds" not in params


def _handler_function(synth, handler: str) -> tuple[str, dict]:
    [found] = [(k, f) for k, f in synth.resources("AWS::Lambda::Function").items() if f["Properties"].get("Handler") == handler]
    return found


def test_deny_policy_delete_deletes_only_on_an_explicit_deny(options, sample_synth):
    """decide_chunk deletes a held object only for a reviewer's DENY under DENY_POLICY=DELETE (an
    undecided object is DENIED and kept: tests/handlers/test_transfer_chunks.py); here: the setting
    reaches it, only it may delete, only by version and never in the vault, and the workflow cannot
    delete anything or hand it a decision."""
    for synth, policy in ((options, "DELETE"), (sample_synth, "QUARANTINE")):
        _, transfer = _handler_function(synth, "transfer.handler")
        assert transfer["Properties"]["Environment"]["Variables"]["DENY_POLICY"] == policy
        pipeline = next(c for c in synth.stack.node.children if hasattr(c, "external_setup"))
        role = transfer["Properties"]["Role"]["Fn::GetAtt"][0]
        deletes = {}
        for resource in synth.resources("AWS::IAM::Policy").values():
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                for action in actions:
                    if "Delete" in action and action.startswith("s3:"):
                        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                        roles = resource["Properties"]["Roles"]
                        deletes.setdefault((json.dumps(roles), action), []).extend(map(json.dumps, resources))
        assert list(deletes) == [(json.dumps([{"Ref": role}]), "s3:DeleteObjectVersion")]
        zones = (pipeline.ingress_bucket, pipeline.quarantine_bucket, pipeline.review_bucket)
        assert sorted(next(iter(deletes.values()))) == sorted(json.dumps(synth.stack.resolve(b.arn_for_objects("*"))) for b in zones)
        states = {name: state for _, name, state in walk_states(synth.definition["States"])}
        assert not [n for n, st in states.items() if st["Type"] == "Task" and ":aws-sdk:s3:" in st["Resource"]]
        without_comments = {n: {k: v for k, v in st.items() if k != "Comment"} for n, st in states.items()}
        assert "delete" not in json.dumps(without_comments).lower(), "a state deletes"
        decide = states["Apply decisions to chunk"]["Parameters"]["Payload"]
        assert decide == {"operation": "decide_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk", "executionArn.$": "$.executionArn"}
        # A timeout is no decision: the decisions are read from the table, never from the state.
        assert states["Review timed out"]["Parameters"]["decision"] == "TIMEOUT"


def test_timeouts_and_poll_bound_follow_the_settings(options):
    from macie_pipeline.workflow import EXTRA_POLLS

    states = _states(options)
    assert states["Wait for reviewer"]["TimeoutSeconds"] == 12 * 3600
    assert states["Wait for reviewer"]["HeartbeatSeconds"] == 3600
    assert states["Wait for Macie job"]["TimeoutSeconds"] == 120  # the poll backstop
    bound = next(c for c in states["Macie job status?"]["Choices"] if c.get("Variable") == "$.poll.count")
    assert bound["NumericGreaterThanEquals"] == 30 + EXTRA_POLLS  # 1 h / 2 min, plus wake-ups by job events
    assert {s["MaxConcurrency"] for s in states.values() if s["Type"] == "Map"} == {20}


def test_vault_object_lock_and_removal_policy(options):
    vault = next(v for k, v in options.resources("AWS::S3::Bucket").items() if k.startswith("GateVault"))
    assert vault["Properties"]["ObjectLockEnabled"] is True
    assert vault["Properties"]["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 30}},
    }
    assert all(b["DeletionPolicy"] == "Delete" for b in options.resources("AWS::S3::Bucket").values())


def test_reviewers_sign_in_through_the_created_pool_with_four_eyes_and_email_subscription_and_macie_session(options):
    methods = options.resources("AWS::ApiGateway::Method").values()
    # No API Gateway authorizer: the function signs reviewers in (a browser navigation carries no Authorization header).
    assert sorted(m["Properties"]["AuthorizationType"] for m in methods) == ["NONE", "NONE", "NONE"]
    [group] = options.resources("AWS::Cognito::UserPoolGroup").values()
    assert group["Properties"]["GroupName"] == "data-reviewers"
    [env] = [f["Properties"]["Environment"]["Variables"] for f in options.resources("AWS::Lambda::Function").values()
             if f["Properties"].get("Handler") == "review_api.handler"]
    assert (env["REVIEWERS_GROUP"], env["REVIEW_APPROVALS_REQUIRED"]) == ("data-reviewers", "2")
    [subscription] = options.resources("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    [session] = options.resources("AWS::Macie::Session").values()
    assert session["Properties"]["Status"] == "ENABLED"


def test_the_created_reviewers_pool_is_locked_down(options):
    [(pool_id, pool)] = options.resources("AWS::Cognito::UserPool").items()
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}  # no self sign-up
    assert props["Policies"]["PasswordPolicy"] == {
        "MinimumLength": 14, "RequireLowercase": True, "RequireUppercase": True, "RequireNumbers": True, "RequireSymbols": True,
        "TemporaryPasswordValidityDays": 3,
    }
    assert (props["MfaConfiguration"], props["EnabledMfas"]) == ("ON", ["SOFTWARE_TOKEN_MFA"])
    assert props["UserPoolTier"] == "PLUS" and props["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    assert props["DeletionProtection"] == "ACTIVE"
    # The pipeline's removal policy (DESTROY in this stack); deletion protection still has to be lifted first.
    assert (pool["DeletionPolicy"], pool["UpdateReplacePolicy"]) == ("Delete", "Delete")
    [client] = options.resources("AWS::Cognito::UserPoolClient").values()
    c = client["Properties"]
    assert c["UserPoolId"] == {"Ref": pool_id} and c.get("GenerateSecret", False) is False  # a public client
    assert (c["AllowedOAuthFlows"], c["AllowedOAuthScopes"], c["AllowedOAuthFlowsUserPoolClient"]) == (["code"], ["openid", "email"], True)
    [callback] = c["CallbackURLs"]
    assert json.dumps(callback).endswith('"/review/signed-in"]]}')
    assert c["SupportedIdentityProviders"] == ["COGNITO"] and c["PreventUserExistenceErrors"] == "ENABLED"
    [domain] = options.resources("AWS::Cognito::UserPoolDomain").values()
    assert domain["Properties"]["ManagedLoginVersion"] == 2
    assert len(options.resources("AWS::Cognito::ManagedLoginBranding")) == 1


@pytest.mark.parametrize(
    ("settings", "problems"),
    [
        ({"reviewer_user_pool": "POOL"},
         ["reviewer_user_pool given without reviewer_user_pool_client, reviewer_sign_in_url: to use your own user pool for "
          "reviewers pass all of reviewer_user_pool, reviewer_user_pool_client, reviewer_sign_in_url (or none, and the "
          "construct creates them)"]),
        ({"reviewer_user_pool_client": "CLIENT", "reviewer_sign_in_url": "http://login.example.com/path", "reviewers_group": "",
          "review_approvals_required": 3},
         ["reviewer_user_pool_client, reviewer_sign_in_url given without reviewer_user_pool: to use your own user pool for "
          "reviewers pass all of reviewer_user_pool, reviewer_user_pool_client, reviewer_sign_in_url (or none, and the "
          "construct creates them)",
          "reviewer_sign_in_url must be the https:// base URL of the pool's managed login (its domain, no path), got "
          "'http://login.example.com/path'",
          "reviewers_group must be a Cognito group name (1 to 128 characters, no spaces), got ''",
          "review_approvals_required must be 1 or 2 (four eyes), got 3"]),
    ],
)
def test_reviewer_settings_are_checked_together(settings, problems):
    stack = cdk.Stack(cdk.App(), "Reviewers")
    given = {name: (cognito.UserPool.from_user_pool_id(stack, "P", "eu-west-1_x") if value == "POOL" else
                    cognito.UserPoolClient.from_user_pool_client_id(stack, "C", "c") if value == "CLIENT" else value)
             for name, value in settings.items()}
    with pytest.raises(ValueError) as raised:
        SensitiveDataScanPipeline(stack, "Gate", **given)
    assert not isinstance(raised.value, TypeError)
    assert raised.value.problems == problems


def test_a_reviewers_pool_of_another_region_is_refused():
    stack = cdk.Stack(cdk.App(), "Here", env=cdk.Environment(account="111122223333", region="eu-west-1"))
    pool = cognito.UserPool.from_user_pool_arn(stack, "P", "arn:aws:cognito-idp:us-east-1:111122223333:userpool/us-east-1_x")
    client = cognito.UserPoolClient.from_user_pool_client_id(stack, "C", "c")
    with pytest.raises(ValueError, match="reviewer_user_pool is in us-east-1, the stack in eu-west-1"):
        SensitiveDataScanPipeline(stack, "Gate", reviewer_user_pool=pool, reviewer_user_pool_client=client,
                                  reviewer_sign_in_url="https://login.example.com")


def test_review_api_iam_auth_is_removed_and_names_its_replacement():
    with pytest.raises(TypeError, match="review_api_iam_auth was removed .*reviewer_user_pool.*review_approvals_required=2"):
        SensitiveDataScanPipeline(cdk.Stack(cdk.App(), "Old"), "Gate", review_api_iam_auth=True)
    assert not hasattr(SensitiveDataScanPipeline, "grant_review_decision")


def test_window_zero_scans_one_object_per_batch():
    def build(app: cdk.App) -> cdk.Stack:
        stack = cdk.Stack(app, "WindowZero")
        SensitiveDataScanPipeline(stack, "Gate", trigger=Trigger.on_object_created(
            prefix="in/", batch_window=Duration.seconds(0), max_batch_objects=500, sweep_interval=Duration.minutes(30),
            lost_event_age=Duration.minutes(20)))
        return stack

    app = cdk.App()
    stack = build(app)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    [mapping] = [v for v in template["Resources"].values() if v["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mapping["Properties"]["BatchSize"] == 1 and "MaximumBatchingWindowInSeconds" not in mapping["Properties"]
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    [sweep] = [v for k, v in template["Resources"].items() if k.startswith("GateSweepRule") and v["Type"] == "AWS::Events::Rule"]
    assert sweep["Properties"]["ScheduleExpression"] == "rate(30 minutes)"
    [age] = [v["Properties"] for v in template["Resources"].values()
             if v["Type"] == "AWS::CloudWatch::Alarm" and v["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"]
    assert age["Threshold"] == 15 * 60
    [(prepare_id, prepare)] = [(k, v) for k, v in template["Resources"].items() if v["Properties"].get("Handler") == "prepare_scan.handler"]
    env = prepare["Properties"]["Environment"]["Variables"]
    assert (env["LOST_EVENT_AGE_SECONDS"], env["MAX_BATCH_OBJECTS"], env["INGRESS_PREFIX"]) == ("1200", "500", "in/")
    # The queue, its redrive and its alarms are the same whatever the window.
    queues = {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == "AWS::SQS::Queue"}
    [dlq_id] = [k for k in queues if "DeadLetter" in k]
    [queue_id] = set(queues) - {dlq_id}
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["Properties"]["FunctionName"] == {"Ref": prepare_id}
    assert queues[queue_id]["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 5}
    assert queues[queue_id]["VisibilityTimeout"] >= 6 * prepare["Properties"]["Timeout"]
    [depth] = [v["Properties"] for v in template["Resources"].values()
               if v["Type"] == "AWS::CloudWatch::Alarm" and v["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"]
    assert depth["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    assert depth["Threshold"] == 1 and depth["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    # The sweep for lost events invokes the batcher with the documented input (docs/batching.md, Intake).
    [target] = sweep["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [prepare_id, "Arn"]}
    assert json.loads(target["Input"]) == {"source": "sensitive-data-scan-pipeline.sweep", "sweep": "lost"}
    # job_completion_events defaults to True: Macie's job log group is subscribed.
    [subscription] = [v["Properties"] for v in template["Resources"].values() if v["Type"] == "AWS::Logs::SubscriptionFilter"]
    assert subscription["LogGroupName"] == "/aws/macie/classificationjobs"


@pytest.mark.parametrize("window, batch_size", [(120, 10_000)])
def test_a_window_batches_up_to_max_batch_objects(window, batch_size):
    app = cdk.App()
    stack = cdk.Stack(app, f"Window{window}")
    SensitiveDataScanPipeline(stack, "Gate", trigger=Trigger.on_object_created(batch_window=Duration.seconds(window)))
    template = app.synth().get_stack_by_name(stack.stack_name).template
    [mapping] = [v["Properties"] for v in template["Resources"].values() if v["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (batch_size, window)
    [age] = [v["Properties"] for v in template["Resources"].values()
             if v["Type"] == "AWS::CloudWatch::Alarm" and v["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"]
    assert age["Threshold"] == 2 * window + 15 * 60


def test_snapshot(options, snapshot):
    assert masked(options.template) == snapshot
