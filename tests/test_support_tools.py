"""Proof that the offline verification helpers in tests/support can pass AND fail.

One tiny CDK stack is synthesized per module; every other case uses hand-written
templates/definitions so each check is shown rejecting a known-bad input.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber

from support import asl as asl_tools
from support.asl import (
    AslValidatorMissing,
    asl_validator_path,
    definition_from_template,
    definitions_from_template,
    placeholder_arn,
    resolve_intrinsics,
    run_asl_validator,
)
from support.botocore_model import (
    EnumValidationError,
    botocore_service_name,
    install_enum_validation,
    sdk_tasks_in_definition,
    validate_sdk_task,
)
from support.cfn_lint import errors_of, format_findings, lint_template

STACK_NAME = "SupportToolsProbe"


# --------------------------------------------------------------------------
# the small synthesized stack (once per module)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_template() -> dict:
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sns as sns
    from aws_cdk import aws_stepfunctions as sfn
    from aws_cdk import aws_stepfunctions_tasks as tasks

    app = cdk.App()
    stack = cdk.Stack(app, STACK_NAME)
    fn = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
    )
    bucket = s3.Bucket(stack, "Bucket")
    topic = sns.Topic(stack, "Topic")

    invoke = tasks.LambdaInvoke(stack, "Invoke", lambda_function=fn, output_path="$.Payload")
    delete = tasks.CallAwsService(
        stack,
        "Delete object",
        service="s3",
        action="deleteObject",
        parameters={"Bucket": bucket.bucket_name, "Key": sfn.JsonPath.string_at("$.key")},
        iam_resources=[bucket.arn_for_objects("*")],
    )
    each = sfn.Map(stack, "Each item", items_path="$.items", max_concurrency=2)
    each.item_processor(delete)
    publish = tasks.SnsPublish(
        stack, "Publish", topic=topic, message=sfn.TaskInput.from_json_path_at("$.msg")
    )
    both = sfn.Parallel(stack, "Both").branch(publish).branch(sfn.Pass(stack, "Noop"))
    pause = sfn.Wait(stack, "Pause", time=sfn.WaitTime.duration(cdk.Duration.seconds(5)))
    done = (
        sfn.Choice(stack, "Done?")
        .when(sfn.Condition.boolean_equals("$.done", True), sfn.Succeed(stack, "Yes"))
        .otherwise(sfn.Fail(stack, "No", error="NotDone", cause="not done"))
    )
    chain = invoke.next(each).next(both).next(pause).next(done)
    sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(chain))
    return app.synth().get_stack_by_name(STACK_NAME).template


@pytest.fixture(scope="module")
def small_definition(small_template) -> dict:
    return definition_from_template(small_template)


def _walk(value):
    if isinstance(value, dict):
        for key, sub in value.items():
            yield key
            yield from _walk(sub)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)
    else:
        yield value


# --------------------------------------------------------------------------
# 1a. enum validation on a boto3 client + Stubber
# --------------------------------------------------------------------------

VALID_JOB = {
    "clientToken": "token-1",
    "name": "gate-object",
    "jobType": "ONE_TIME",
    "managedDataIdentifierSelector": "ALL",
    "s3JobDefinition": {
        "bucketDefinitions": [{"accountId": "123456789012", "buckets": ["quarantine"]}],
        "scoping": {
            "includes": {
                "and": [
                    {
                        "simpleScopeTerm": {
                            "comparator": "STARTS_WITH",
                            "key": "OBJECT_KEY",
                            "values": ["incoming/file.csv"],
                        }
                    }
                ]
            }
        },
    },
}
JOB_RESPONSE = {"jobArn": "arn:aws:macie2:us-east-1:123456789012:classification-job/1", "jobId": "1"}


@pytest.fixture
def macie_stub():
    client = boto3.client("macie2", region_name="us-east-1")
    install_enum_validation(client)
    with Stubber(client) as stubber:
        stubber.add_response("create_classification_job", JOB_RESPONSE)
        yield client, stubber


def test_enum_validation_accepts_valid_job(macie_stub):
    client, stubber = macie_stub
    assert client.create_classification_job(**VALID_JOB)["jobId"] == "1"
    stubber.assert_no_pending_responses()


def test_enum_validation_rejects_top_level_enum(macie_stub):
    client, _ = macie_stub
    with pytest.raises(EnumValidationError) as excinfo:
        client.create_classification_job(**{**VALID_JOB, "jobType": "ONCE"})
    assert isinstance(excinfo.value, ValueError)
    assert len(excinfo.value.violations) == 1
    assert excinfo.value.violations[0].startswith("jobType: 'ONCE'")
    assert "ONE_TIME" in str(excinfo.value)


def test_enum_validation_rejects_nested_enum(macie_stub):
    client, _ = macie_stub
    job = json.loads(json.dumps(VALID_JOB))
    job["s3JobDefinition"]["scoping"]["includes"]["and"] = [
        {
            "tagScopeTerm": {
                "comparator": "LIKE",
                "key": "TAG",
                "tagValues": [{"key": "stage", "value": "incoming"}],
                "target": "S3_OBJECT",
            }
        }
    ]
    with pytest.raises(EnumValidationError) as excinfo:
        client.create_classification_job(**job)
    (violation,) = excinfo.value.violations
    assert violation.startswith(
        "s3JobDefinition.scoping.includes.and[0].tagScopeTerm.comparator: 'LIKE' is not one of ["
    )
    assert "'EQ'" in violation


def test_stubber_still_validates_names_and_types(macie_stub):
    """The enum hook adds to, and does not replace, botocore's own validation."""
    client, _ = macie_stub
    with pytest.raises(ParamValidationError):
        client.create_classification_job(**{**VALID_JOB, "jobTypo": "ONE_TIME"})


# --------------------------------------------------------------------------
# 1b. Step Functions aws-sdk task parameters against the botocore model
# --------------------------------------------------------------------------

SFN_JOB_PARAMS = {
    "Name.$": "States.Format('gate-{}', $$.Execution.Name)",
    "ClientToken.$": "$$.Execution.Name",
    "JobType": "ONE_TIME",
    "ManagedDataIdentifierSelector": "ALL",
    "SamplingPercentage": 100,
    "S3JobDefinition": {
        "BucketDefinitions": [{"AccountId": "123456789012", "Buckets.$": "States.Array($.bucket)"}],
        "Scoping": {
            "Includes": {
                "And": [
                    {
                        "SimpleScopeTerm": {
                            "Comparator": "EQ",
                            "Key": "OBJECT_KEY",
                            "Values.$": "States.Array($.key)",
                        }
                    }
                ]
            }
        },
    },
    "Tags": {"Owner": "pipeline"},
}


def test_sdk_task_valid_macie_job_passes():
    assert validate_sdk_task("macie2", "createClassificationJob", SFN_JOB_PARAMS) == []


def test_sdk_task_unknown_parameter_reported():
    problems = validate_sdk_task(
        "macie2", "createClassificationJob", {**SFN_JOB_PARAMS, "JobKind": "ONE_TIME"}
    )
    assert len(problems) == 1 and problems[0].startswith("JobKind: unknown parameter")


def test_sdk_task_nested_unknown_parameter_reported_with_path():
    params = json.loads(json.dumps(SFN_JOB_PARAMS))
    params["S3JobDefinition"]["Scoping"]["Includes"]["And"][0]["SimpleScopeTerm"]["Vals"] = ["x"]
    problems = validate_sdk_task("macie2", "createClassificationJob", params)
    assert len(problems) == 1
    assert problems[0].startswith("S3JobDefinition.Scoping.Includes.And[0].SimpleScopeTerm.Vals: unknown")


def test_sdk_task_enum_violation_reported():
    problems = validate_sdk_task(
        "macie2",
        "createClassificationJob",
        {**SFN_JOB_PARAMS, "ManagedDataIdentifierSelector": "SOME"},
    )
    assert len(problems) == 1
    assert problems[0].startswith("ManagedDataIdentifierSelector: 'SOME' is not one of")


def test_sdk_task_missing_required_reported():
    params = {k: v for k, v in SFN_JOB_PARAMS.items() if k != "JobType"}
    problems = validate_sdk_task("macie2", "createClassificationJob", params)
    assert problems == ["JobType: missing required parameter of CreateClassificationJobRequest"]


def test_sdk_task_idempotency_token_not_required():
    params = {k: v for k, v in SFN_JOB_PARAMS.items() if k != "ClientToken.$"}
    assert validate_sdk_task("macie2", "createClassificationJob", params) == []


def test_sdk_task_wrong_static_types_reported():
    problems = validate_sdk_task(
        "macie2",
        "createClassificationJob",
        {**SFN_JOB_PARAMS, "SamplingPercentage": "100", "InitialRun": "yes", "Tags": ["x"]},
    )
    assert sorted(p.split(":")[0] for p in problems) == ["InitialRun", "SamplingPercentage", "Tags"]
    assert all("expected" in p for p in problems)


def test_sdk_task_unresolved_cfn_values_tolerated():
    params = {**SFN_JOB_PARAMS, "Name": {"Fn::Join": ["-", ["a", {"Ref": "X"}]]}}
    del params["Name.$"]
    params["S3JobDefinition"] = {
        "BucketDefinitions": [{"AccountId": {"Ref": "AWS::AccountId"}, "Buckets": [{"Ref": "B"}]}]
    }
    assert validate_sdk_task("macie2", "createClassificationJob", params) == []


def test_sdk_task_s3_delete_object_with_dynamic_key_passes():
    assert validate_sdk_task("s3", "deleteObject", {"Bucket": "b", "Key.$": "$.key"}) == []
    # ... and the same call without Key is caught
    assert validate_sdk_task("s3", "deleteObject", {"Bucket": "b"}) == [
        "Key: missing required parameter of DeleteObjectRequest"
    ]
    # a dynamic key still has to name a real member
    assert validate_sdk_task("s3", "deleteObject", {"Bucket": "b", "Key.$": "$.k", "Kee.$": "$.k"})[
        0
    ].startswith("Kee.$: unknown parameter")


def test_sdk_task_unknown_action_and_service_names():
    assert validate_sdk_task("s3", "deleteObjekt", {}) != []
    assert botocore_service_name("sfn") == "stepfunctions"
    assert botocore_service_name("eventbridge") == "events"
    assert botocore_service_name("macie2") == "macie2"
    assert validate_sdk_task("sfn", "startExecution", {"StateMachineArn": "arn", "Input.$": "$"}) == []
    assert validate_sdk_task("eventbridge", "putEvents", {"Entries": [{"Detail": "{}"}]}) == []


def test_sdk_tasks_found_through_parallel_and_map():
    definition = {
        "StartAt": "Top",
        "States": {
            "Top": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:macie2:describeClassificationJob",
                "Parameters": {"JobId.$": "$.jobId"},
                "Next": "Fan",
            },
            "Lambda": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True},
            "Fan": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {
                        "StartAt": "Each",
                        "States": {
                            "Each": {
                                "Type": "Map",
                                "End": True,
                                "ItemProcessor": {
                                    "StartAt": "Del",
                                    "States": {
                                        "Del": {
                                            "Type": "Task",
                                            "Resource": "arn:aws:states:::aws-sdk:s3:deleteObject",
                                            "Parameters": {"Bucket": "b", "Key.$": "$.k"},
                                            "End": True,
                                        }
                                    },
                                },
                            }
                        },
                    },
                    {
                        "StartAt": "Old",
                        "States": {
                            "Old": {
                                "Type": "Map",
                                "End": True,
                                "Iterator": {
                                    "StartAt": "Wait",
                                    "States": {
                                        "Wait": {
                                            "Type": "Task",
                                            "Resource": "arn:aws:states:::aws-sdk:sns:publish.waitForTaskToken",
                                            "Parameters": {"TopicArn": "t", "Message.$": "$$.Task.Token"},
                                            "End": True,
                                        }
                                    },
                                },
                            }
                        },
                    },
                ],
            },
        },
    }
    found = sdk_tasks_in_definition(definition)
    assert [(path, service, action) for path, service, action, _ in found] == [
        ("Top", "macie2", "describeClassificationJob"),
        ("Fan/Branches[0]/Each/ItemProcessor/Del", "s3", "deleteObject"),
        ("Fan/Branches[1]/Old/Iterator/Wait", "sns", "publish"),
    ]
    assert all(validate_sdk_task(s, a, p) == [] for _, s, a, p in found)


# --------------------------------------------------------------------------
# 2. ASL out of a synthesized template + asl-validator
# --------------------------------------------------------------------------


def test_definition_extracted_from_synthesized_stack(small_template, small_definition):
    assert isinstance(small_definition, dict)
    assert small_definition["StartAt"] == "Invoke"
    assert set(small_definition["States"]) == {"Invoke", "Each item", "Both", "Pause", "Done?", "Yes", "No"}
    assert not any(isinstance(t, str) and "Fn::" in t for t in _walk(small_definition))
    assert not any(t == "Ref" for t in _walk(small_definition))
    invoke = small_definition["States"]["Invoke"]
    assert invoke["Resource"] == "arn:aws:states:::lambda:invoke"
    fn_id = next(k for k, r in small_template["Resources"].items() if r["Type"] == "AWS::Lambda::Function")
    assert invoke["Parameters"]["FunctionName"] == (
        f"arn:aws:lambda:us-east-1:123456789012:function:PLACEHOLDER_{fn_id}"
    )
    publish = small_definition["States"]["Both"]["Branches"][0]["States"]["Publish"]
    assert publish["Parameters"]["TopicArn"].startswith("arn:aws:sns:us-east-1:123456789012:PLACEHOLDER_Topic")
    assert definitions_from_template(small_template) == {
        next(k for k, r in small_template["Resources"].items() if r["Type"] == "AWS::StepFunctions::StateMachine"): small_definition
    }


def test_asl_validator_accepts_synthesized_definition(small_definition):
    ok, output = run_asl_validator(small_definition)
    assert ok, output
    assert "is valid" in output


def test_asl_validator_rejects_missing_next_target(small_definition):
    broken = json.loads(json.dumps(small_definition))
    broken["States"]["Pause"]["Next"] = "Nowhere"
    ok, output = run_asl_validator(broken)
    assert not ok
    assert "MISSING_TRANSITION_TARGET" in output and "Nowhere" in output


def test_asl_validator_rejects_schema_errors():
    ok, output = run_asl_validator(
        {"StartAt": "A", "States": {"A": {"Type": "Wait", "Next": "B"}, "B": {"Type": "Succeed"}}}
    )
    assert not ok, output


def test_asl_validator_missing_binary_says_npm_ci(tmp_path):
    with pytest.raises(AslValidatorMissing, match="npm ci"):
        asl_validator_path(tmp_path)


def test_sdk_tasks_of_synthesized_definition_validate(small_definition):
    found = sdk_tasks_in_definition(small_definition)
    assert [(p, s, a) for p, s, a, _ in found] == [("Each item/ItemProcessor/Delete object", "s3", "deleteObject")]
    assert validate_sdk_task(*found[0][1:]) == []


def _machine(definition_string, **extra_props) -> dict:
    return {
        "Resources": {
            "Fn1": {"Type": "AWS::Lambda::Function", "Properties": {}},
            "Topic1": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Bucket1": {"Type": "AWS::S3::Bucket", "Properties": {}},
            "Queue1": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "SM1": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"DefinitionString": definition_string, **extra_props},
            },
        }
    }


def test_intrinsics_in_strings_bare_values_and_escapes():
    parts = [
        '{"StartAt":"A","States":{"A":{"Type":"Task","Comment":"say \\"hi\\" to ',
        {"Ref": "Bucket1"},
        '","Resource":"',
        {"Ref": "Fn1"},
        '","TimeoutSeconds":',
        {"Ref": "Bucket1"},
        ',"HeartbeatSeconds":',
        {"Fn::Select": [0, ["7", "8"]]},
        ',"Parameters":{"QueueUrl":"',
        {"Ref": "Queue1"},
        '","Obj":"arn:',
        {"Ref": "AWS::Partition"},
        ":s3:::",
        {"Ref": "Bucket1"},
        '/*","BucketArn":"',
        {"Fn::GetAtt": ["Bucket1", "Arn"]},
        '","Name":"',
        {"Fn::GetAtt": ["Topic1", "TopicName"]},
        '","Sub":"',
        {"Fn::Sub": "${AWS::Region}-${Fn1.Arn}-${!Literal}"},
        '"},"End":true}}}',
    ]
    d = definition_from_template(_machine({"Fn::Join": ["", parts]}))
    state = d["States"]["A"]
    assert state["Comment"] == 'say "hi" to PLACEHOLDER_Bucket1'
    assert state["Resource"] == "arn:aws:lambda:us-east-1:123456789012:function:PLACEHOLDER_Fn1"
    assert state["TimeoutSeconds"] == 1  # bare non-numeric value → 1
    assert state["HeartbeatSeconds"] == 7  # bare numeric value kept
    params = state["Parameters"]
    assert params["QueueUrl"] == "https://sqs.us-east-1.amazonaws.com/123456789012/PLACEHOLDER_Queue1"
    assert params["Obj"] == "arn:aws:s3:::PLACEHOLDER_Bucket1/*"
    assert params["BucketArn"] == "arn:aws:s3:::PLACEHOLDER_Bucket1"
    assert params["Name"] == "PLACEHOLDER_Topic1"
    assert params["Sub"] == (
        "us-east-1-arn:aws:lambda:us-east-1:123456789012:function:PLACEHOLDER_Fn1-${Literal}"
    )


def test_plain_string_definition_dict_and_substitutions():
    asl = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    assert definition_from_template(_machine(json.dumps(asl))) == asl

    template = _machine(
        '{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"${fn}","TimeoutSeconds":${t},"End":true}}}',
        DefinitionSubstitutions={"fn": {"Fn::GetAtt": ["Fn1", "Arn"]}, "t": 30},
    )
    d = definition_from_template(template)
    assert d["States"]["T"]["Resource"] == placeholder_arn(template, "Fn1")
    assert d["States"]["T"]["TimeoutSeconds"] == 30

    inline = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": {"Ref": "Topic1"}, "End": True}},
    }
    template = _machine("x")
    props = template["Resources"]["SM1"]["Properties"]
    del props["DefinitionString"]
    props["Definition"] = inline
    assert definition_from_template(template)["States"]["T"]["Resource"] == (
        "arn:aws:sns:us-east-1:123456789012:PLACEHOLDER_Topic1"
    )


def test_several_state_machines_need_a_prefix():
    template = _machine(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}))
    template["Resources"]["Other2"] = {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {"DefinitionString": json.dumps({"StartAt": "B", "States": {"B": {"Type": "Succeed"}}})},
    }
    with pytest.raises(LookupError):
        definition_from_template(template)
    assert definition_from_template(template, "Other")["StartAt"] == "B"
    assert set(definitions_from_template(template)) == {"SM1", "Other2"}


def test_resolve_intrinsics_for_task_parameters():
    template = _machine("{}")
    resolved = resolve_intrinsics(
        {"TopicArn": {"Ref": "Topic1"}, "Bucket": {"Ref": "Bucket1"}, "List": [{"Ref": "AWS::AccountId"}]},
        template,
    )
    assert resolved == {
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:PLACEHOLDER_Topic1",
        "Bucket": "PLACEHOLDER_Bucket1",
        "List": [asl_tools.ACCOUNT],
    }


# --------------------------------------------------------------------------
# 3. cfn-lint
# --------------------------------------------------------------------------


def test_cfn_lint_small_stack_has_no_errors(small_template):
    findings = lint_template(small_template)
    assert errors_of(findings) == [], format_findings(findings)
    assert all(f["level"] in {"warning", "informational"} for f in findings)


def test_cfn_lint_reports_invalid_property():
    template = {
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketNameX": "my-bucket"}}}
    }
    errors = errors_of(lint_template(template))
    assert [e["rule"] for e in errors] == ["E3002"]
    assert errors[0]["path"] == ["Resources", "Bucket", "Properties", "BucketNameX"]
    assert "BucketNameX" in errors[0]["message"]
