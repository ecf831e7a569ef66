"""Intake emulation on a hand-written template fragment: queues with a dead-letter queue, an event
rule to the queue, the event source mapping (the engine's pump), a schedule rule to a function, a
log group made by a Custom::AWS call and a subscription filter to a function."""

from __future__ import annotations

import base64
import gzip
import io
import json
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from macie_pipeline.contract import MACIE_JOB_LOG_GROUP
from macie_pipeline.local import patches
from macie_pipeline.local.faults import Faults
from macie_pipeline.local.host import EngineHost
from macie_pipeline.local.intake import IntakePump, IntakeResources
from macie_pipeline.local.template import ACCOUNT, REGION, Resolver, StackTemplate, physical_names
from tests.local.test_moto_batch_support import StubFunction

ROLE = f"arn:aws:iam::{ACCOUNT}:role/local-engine"

TEMPLATE = {
    "Resources": {
        "IntakeDeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1209600}},
        "IntakeQueue": {"Type": "AWS::SQS::Queue", "Properties": {
            "VisibilityTimeout": 900,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["IntakeDeadLetterQueue", "Arn"]}, "maxReceiveCount": 2},
        }},
        "PrepareScan": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "prepare_scan.handler", "Runtime": "python3.12"}},
        "JobEvents": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "job_events.handler", "Runtime": "python3.12"}},
        "PrepareScanSqsEventSource": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
            "FunctionName": {"Ref": "PrepareScan"},
            "EventSourceArn": {"Fn::GetAtt": ["IntakeQueue", "Arn"]},
            "BatchSize": 25,
            "MaximumBatchingWindowInSeconds": 300,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        }},
        "ObjectCreatedRule": {"Type": "AWS::Events::Rule", "Properties": {
            "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": ["ingress"]}}},
            "State": "ENABLED",
            "Targets": [{"Arn": {"Fn::GetAtt": ["IntakeQueue", "Arn"]}, "Id": "Target0"}],
        }},
        "SweepRule": {"Type": "AWS::Events::Rule", "Properties": {
            "ScheduleExpression": "rate(1 hour)",
            "State": "ENABLED",
            "Targets": [{"Arn": {"Fn::GetAtt": ["PrepareScan", "Arn"]}, "Id": "Target0",
                         "Input": '{"source":"sensitive-data-scan-pipeline.sweep","sweep":"lost"}'}],
        }},
        "MacieJobLogGroup": {"Type": "Custom::AWS", "Properties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
            "Create": {"Fn::Join": ["", ['{"service":"CloudWatchLogs","action":"createLogGroup","parameters":{"logGroupName":"',
                                        MACIE_JOB_LOG_GROUP, '"},"ignoreErrorCodesMatching":"ResourceAlreadyExistsException"}']]},
        }},
        "JobEventsSubscription": {"Type": "AWS::Logs::SubscriptionFilter", "DependsOn": ["MacieJobLogGroup"], "Properties": {
            "LogGroupName": MACIE_JOB_LOG_GROUP,
            "FilterPattern": "",
            "DestinationArn": {"Fn::GetAtt": ["JobEvents", "Arn"]},
        }},
    }
}


@pytest.fixture
def intake():
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        boto3.client("iam", region_name=REGION).create_role(RoleName="local-engine", AssumeRolePolicyDocument="{}")
        stack = StackTemplate("Fragment", TEMPLATE, Path("."))
        physical = physical_names(stack)
        calls: dict[str, list] = {"PrepareScan": [], "JobEvents": []}
        behaviour: dict = {"fail": set()}

        def prepare(event):
            calls["PrepareScan"].append(event)
            if "Records" not in event:
                return {"sweep": event["sweep"]}
            failures = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["detail"]["object"]["key"] in behaviour["fail"]]
            return {"batchItemFailures": [{"itemIdentifier": i} for i in failures]}

        functions = {"PrepareScan": StubFunction("prepare_scan", prepare),
                     "JobEvents": StubFunction("job_events", lambda event: calls["JobEvents"].append(event))}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("index.py", "#\n")
        for name in functions:
            session.client("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="index.handler",
                                                     Code={"ZipFile": buffer.getvalue()})
        sqs = session.client("sqs")
        deployment = SimpleNamespace(
            stack=stack, physical=physical, resolver=Resolver(stack, physical), functions=functions,
            sqs=sqs, logs=session.client("logs"), events=session.client("events"),
            queue_arn=lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"],
            function_named=lambda ref: functions.get(str(ref).rsplit(":function:", 1)[-1]),
        )
        for name, function in functions.items():
            function.name = name
        host = EngineHost(deployment, Faults(), review_wait_seconds=30)  # type: ignore[arg-type]
        patches.activate(host)
        try:
            resources = IntakeResources.create(deployment)
            yield SimpleNamespace(resources=resources, deployment=deployment, calls=calls, behaviour=behaviour,
                                  pump=IntakePump(sqs, host.invoke_function, resources.mappings))
        finally:
            patches.deactivate(host)


def _object_created(key: str) -> dict:
    return {"Source": "aws.s3", "DetailType": "Object Created", "Resources": ["arn:aws:s3:::ingress"],
            "Detail": json.dumps({"version": "0", "bucket": {"name": "ingress"}, "object": {"key": key, "size": 1, "etag": "e"}})}


def test_the_template_fragment_becomes_queues_rules_mapping_log_group_and_subscription(intake):
    r = intake.resources
    assert set(r.queues) == {"IntakeQueue", "IntakeDeadLetterQueue"}
    attributes = intake.deployment.sqs.get_queue_attributes(QueueUrl=r.queues["IntakeQueue"], AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 2 and attributes["VisibilityTimeout"] == "900"
    [mapping] = r.mappings
    assert (mapping.function, mapping.batch_size, mapping.window_seconds, mapping.report_failures) == ("PrepareScan", 25, 300, True)
    [schedule] = r.schedules
    assert schedule.function == "PrepareScan" and schedule.input == {"source": "sensitive-data-scan-pipeline.sweep", "sweep": "lost"}
    assert r.pattern_rules == ["ObjectCreatedRule"]
    assert MACIE_JOB_LOG_GROUP in r.log_groups and r.subscriptions == [(MACIE_JOB_LOG_GROUP, "JobEvents")]


def test_events_reach_the_queue_and_the_pump_batches_them_by_batch_size(intake):
    events = intake.deployment.events
    for start in range(0, 60, 10):
        events.put_events(Entries=[_object_created(f"k{n}") for n in range(start, start + 10)])
    events.put_events(Entries=[{**_object_created("elsewhere"), "Detail": json.dumps({"bucket": {"name": "other"}})}])
    batches = intake.pump.run()
    assert [len(b.message_ids) for b in batches] == [25, 25, 10]
    first = intake.calls["PrepareScan"][0]["Records"][0]
    assert first["eventSource"] == "aws:sqs" and first["eventSourceARN"].endswith(":IntakeQueue")
    assert {"messageId", "receiptHandle", "body", "attributes", "md5OfBody", "awsRegion"} <= set(first)
    assert json.loads(first["body"])["detail-type"] == "Object Created"
    assert intake.pump.run() == []  # everything was deleted


def test_batch_item_failures_are_redelivered_then_dead_lettered(intake):
    intake.behaviour["fail"] = {"bad"}
    intake.deployment.events.put_events(Entries=[_object_created("good"), _object_created("bad")])
    batches = intake.pump.run()
    # received twice (maxReceiveCount 2), then moved to the DLQ on the next receive
    assert [len(b.message_ids) for b in batches] == [2, 1]
    assert all(b.failed for b in batches)
    dlq = intake.resources.queues["IntakeDeadLetterQueue"]
    [dead] = intake.deployment.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(dead["Body"])["detail"]["object"]["key"] == "bad"


def test_a_window_of_zero_invokes_with_what_one_poll_gives(intake):
    from dataclasses import replace

    mapping = replace(intake.resources.mappings[0], batch_size=1, window_seconds=0)
    intake.deployment.events.put_events(Entries=[_object_created(f"k{n}") for n in range(3)])
    pump = IntakePump(intake.deployment.sqs, intake.pump.invoke, [mapping])
    assert [len(b.message_ids) for b in pump.run()] == [1, 1, 1]


def test_a_batch_closes_at_lambdas_payload_limit_whatever_its_batch_size(intake, monkeypatch):
    """Lambda invokes with at most 6 MB: 10,000 S3 events of about 1.3 KB make three batches, not one.
    Scaled down here: a limit of 12,000 bytes and events with 1,000-byte keys (about 2.3 KB a record)."""
    from macie_pipeline.local import intake as intake_module

    monkeypatch.setattr(intake_module, "LAMBDA_PAYLOAD_LIMIT", 12_000)
    keys = [f"{n:03d}" + "k" * 997 for n in range(12)]
    intake.deployment.events.put_events(Entries=[_object_created(k) for k in keys[:10]])
    intake.deployment.events.put_events(Entries=[_object_created(k) for k in keys[10:]])
    batches = intake.pump.run()
    sizes = [len(json.dumps({"Records": e["Records"]})) for e in intake.calls["PrepareScan"]]
    assert len(batches) > 1 and all(size <= 12_000 for size in sizes)
    delivered = [json.loads(r["body"])["detail"]["object"]["key"] for e in intake.calls["PrepareScan"] for r in e["Records"]]
    assert sorted(delivered) == keys  # every event delivered exactly once, none dead-lettered
    assert not any(b.failed for b in batches)


def test_log_events_reach_the_subscribed_function_in_process(intake):
    logs = intake.deployment.logs
    logs.create_log_stream(logGroupName=MACIE_JOB_LOG_GROUP, logStreamName="job1")
    logs.put_log_events(logGroupName=MACIE_JOB_LOG_GROUP, logStreamName="job1",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": json.dumps({"jobId": "job1", "eventType": "JOB_COMPLETED"})}])
    [event] = intake.calls["JobEvents"]
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    assert data["logGroup"] == MACIE_JOB_LOG_GROUP and data["logStream"] == "job1"
    assert json.loads(data["logEvents"][0]["message"])["eventType"] == "JOB_COMPLETED"
