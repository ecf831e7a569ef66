"""What batch scanning needs from moto, proven on tiny definitions through the engine's own patches.

Each test registers a small hand-written definition in moto with the engine's patches active (an
:class:`~macie_pipeline.local.host.EngineHost` over stub functions) and checks one capability the
synthesized batch workflow relies on: a Distributed Map reading a chunk index from S3 with
STANDARD children and a ResultWriter; a ``.waitForTaskToken`` task resumed from a CloudWatch Logs
subscription, or timed out into its Catch when no token comes; the child executions' history
events, kept for the benchmark.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import boto3
import pytest
from moto import mock_aws

from macie_pipeline.contract import MACIE_JOB_LOG_GROUP, States
from macie_pipeline.local import patches
from macie_pipeline.local.faults import Faults
from macie_pipeline.local.host import EngineHost
from macie_pipeline.local.template import ACCOUNT, REGION

ROLE = f"arn:aws:iam::{ACCOUNT}:role/local-engine"
BUCKET = "batch-bucket-test"


@dataclass
class StubFunction:
    """Stands in for a LocalFunction: a Python callable run in process."""

    role: str
    body: Callable[[Any], Any]

    def invoke(self, event: Any, before: Any = None, after: Any = None) -> tuple[Any, Any, str]:
        try:
            return self.body(event), None, ""
        except Exception as error:  # noqa: BLE001 - Lambda's error payload
            return None, {"errorType": type(error).__name__, "errorMessage": str(error)}, ""


@pytest.fixture
def moto_engine():
    """moto with the interpreter on and the engine's patches delegating to a host over stub functions."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        deployment = SimpleNamespace(functions={})
        host = EngineHost(deployment, Faults(), review_wait_seconds=30, job_wait_seconds=1)  # type: ignore[arg-type]
        boto3.client("iam", region_name=REGION).create_role(RoleName="local-engine", AssumeRolePolicyDocument="{}")
        patches.activate(host)
        try:
            yield SimpleNamespace(
                host=host,
                functions=deployment.functions,
                s3=boto3.client("s3", region_name=REGION),
                sfn=boto3.client("stepfunctions", region_name=REGION),
                lam=boto3.client("lambda", region_name=REGION),
                logs=boto3.client("logs", region_name=REGION),
            )
        finally:
            patches.deactivate(host)


def _function(engine: Any, name: str, body: Callable[[Any], Any]) -> str:
    """A function moto knows (so invocations reach patch point 1) that runs ``body`` in process."""
    engine.functions[name] = StubFunction(name, body)
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "# in process\n")
    return engine.lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="index.handler", Code={"ZipFile": buffer.getvalue()},
    )["FunctionArn"]


def _run(engine: Any, definition: dict, payload: dict, timeout: float = 30.0) -> dict:
    arn = engine.sfn.create_state_machine(name=f"t{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    execution = engine.sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = engine.sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError(f"{execution} still running after {timeout} s")


def _history(engine: Any, arn: str) -> list[dict]:
    return engine.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


# ------------------------------------------------------------------------------ (a) Distributed Map
def _distributed_map(chunk_function_arn: str) -> dict:
    """The shape of "Stage objects": chunk index from S3, one STANDARD child per chunk, results to S3.
    ``ToleratedFailurePercentage`` is an integer, as CDK writes it (moto's grammar needs patch 7)."""
    return {
        "StartAt": States.STAGE_OBJECTS,
        "States": {
            States.STAGE_OBJECTS: {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket.$": "$.manifest.bucket", "Key.$": "$.manifest.chunks"},
                },
                "ItemSelector": {"batchId.$": "$.batchId", "chunk.$": "$$.Map.Item.Value.chunk"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": States.COPY_TO_QUARANTINE,
                    "States": {
                        States.COPY_TO_QUARANTINE: {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {"FunctionName": chunk_function_arn, "Payload": {
                                "operation": "stage_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk"}},
                            "OutputPath": "$.Payload",
                            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Chunk not staged"}],
                            "End": True,
                        },
                        "Chunk not staged": {"Type": "Succeed"},
                    },
                },
                "MaxConcurrency": 2,
                "ToleratedFailurePercentage": 100,
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": BUCKET, "Prefix": "batches/b-1/map-results/stage"},
                },
                "ResultPath": "$.stageRun",
                "Next": States.COUNT_STAGED,
            },
            States.COUNT_STAGED: {"Type": "Pass", "Parameters": {"batchId.$": "$.batchId", "done": True}, "End": True},
        },
    }


def test_distributed_map_reads_the_chunk_index_runs_every_child_and_the_parent_continues(moto_engine):
    engine = moto_engine
    engine.s3.create_bucket(Bucket=BUCKET)
    chunks = [{"chunk": n, "count": 200, "bytes": 1000} for n in range(5)]
    engine.s3.put_object(Bucket=BUCKET, Key="batches/b-1/chunks.json", Body=json.dumps(chunks))
    seen: list[dict] = []

    def stage_chunk(event: dict) -> dict:
        seen.append(event)
        if event["chunk"] == 3:
            raise RuntimeError("this chunk's handler fails outright")
        return {"chunk": event["chunk"], "copied": 200}

    arn = _function(engine, "transfer", stage_chunk)
    described = _run(engine, _distributed_map(arn), {"batchId": "b-1", "manifest": {"bucket": BUCKET, "chunks": "batches/b-1/chunks.json"}})

    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"batchId": "b-1", "done": True}
    assert sorted(e["chunk"] for e in seen) == [0, 1, 2, 3, 4]
    assert all(e == {"operation": "stage_chunk", "batchId": "b-1", "chunk": e["chunk"]} for e in seen)
    # The ResultWriter wrote the map run's manifest under the prefix.
    keys = [o["Key"] for o in engine.s3.list_objects_v2(Bucket=BUCKET, Prefix="batches/b-1/map-results/")["Contents"]]
    assert any(k.endswith("/manifest.json") for k in keys)
    # The parent's history shows the map run, not the children's states.
    parent = _history(engine, described["executionArn"])
    types = [e["type"] for e in parent]
    assert "MapRunStarted" in types and "MapRunSucceeded" in types
    entered = [e["stateEnteredEventDetails"]["name"] for e in parent if "stateEnteredEventDetails" in e]
    assert entered == [States.STAGE_OBJECTS, States.COUNT_STAGED]
    run = engine.sfn.describe_map_run(mapRunArn=engine.sfn.list_map_runs(executionArn=described["executionArn"])["mapRuns"][0]["mapRunArn"])
    assert run["executionCounts"]["total"] == 5 and run["executionCounts"]["succeeded"] == 5  # the failing chunk was caught


def test_the_map_runs_child_events_are_kept_for_counting_transitions(moto_engine):
    engine = moto_engine
    engine.s3.create_bucket(Bucket=BUCKET)
    engine.s3.put_object(Bucket=BUCKET, Key="batches/b-1/chunks.json", Body=json.dumps([{"chunk": n} for n in range(3)]))
    arn = _function(engine, "transfer", lambda event: {"ok": event["chunk"]})
    described = _run(engine, _distributed_map(arn), {"batchId": "b-1", "manifest": {"bucket": BUCKET, "chunks": "batches/b-1/chunks.json"}})
    assert described["status"] == "SUCCEEDED"

    [(map_run_arn, run)] = engine.host.map_runs.items()
    parent, events = run.execution_arn, run.events
    assert parent == described["executionArn"] and run.child_executions == 3
    assert map_run_arn == engine.sfn.list_map_runs(executionArn=parent)["mapRuns"][0]["mapRunArn"]
    types = [e["type"] for e in events]
    # Each child entered and left its one task state (3 children): the engine can count them.
    assert types.count("TaskStateEntered") == 3 and types.count("TaskStateExited") == 3
    assert types.count("TaskSucceeded") == 3
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered == [States.COPY_TO_QUARANTINE] * 3


def test_tolerated_failure_percentage_written_as_an_integer_parses_only_through_the_patch():
    definition = json.dumps(_distributed_map("arn:aws:lambda:us-east-1:123456789012:function:transfer"))
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = patches._REGISTRY.originals.get(patches._PARSE) or AmazonStateLanguageParser.parse
    with pytest.raises(Exception, match="ToleratedFailurePercentage"):
        original(definition)  # moto's own parser refuses CDK's integer (if this passes, drop patch 7)
    original(patches.normalise_definition(definition))
    assert json.loads(patches.normalise_definition(definition)) == json.loads(definition)


# ------------------------------------------------------------------------------ (b) task token from a log subscription
def _job_wait(function_arn: str, timeout_seconds: int) -> dict:
    """The shape of "Wait for Macie job": a Lambda task with a token, the poll interval as its timeout."""
    return {
        "StartAt": States.WAIT_FOR_MACIE_JOB,
        "States": {
            States.WAIT_FOR_MACIE_JOB: {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": function_arn, "Payload": {
                    "operation": "wait", "taskToken.$": "$$.Task.Token", "jobId.$": "$.jobId", "batchId.$": "$.batchId"}},
                "TimeoutSeconds": timeout_seconds,
                "ResultPath": "$.wake",
                "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timedOut", "Next": States.DESCRIBE_MACIE_JOB}],
                "Next": "Woken",
            },
            States.DESCRIBE_MACIE_JOB: {"Type": "Pass", "Result": "timed out", "ResultPath": "$.how", "End": True},
            "Woken": {"Type": "Pass", "Result": "woken", "ResultPath": "$.how", "End": True},
        },
    }


def _job_events_function(engine: Any, tokens: dict) -> str:
    """A stub job_events: ``wait`` stores the token; a log delivery sends SendTaskSuccess to it."""

    def job_events(event: dict) -> Any:
        if "awslogs" in event:
            data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
            for log_event in data["logEvents"]:
                message = json.loads(log_event["message"])
                token = tokens.get(message["jobId"])
                if token and message["eventType"] == "JOB_COMPLETED":
                    engine.sfn.send_task_success(taskToken=token, output=json.dumps({"eventType": message["eventType"]}))
            return None
        tokens[event["jobId"]] = event["taskToken"]
        return {"waiting": event["jobId"]}

    return _function(engine, "job_events", job_events)


def _log_job_event(engine: Any, job_id: str, event_type: str) -> None:
    message = {"adminAccountId": ACCOUNT, "jobId": job_id, "eventType": event_type, "occurredAt": "2025-01-01T00:00:00Z",
               "description": "", "jobName": job_id, "operation": "", "runDate": "2025-01-01T00:00:00Z"}
    try:
        engine.logs.create_log_stream(logGroupName=MACIE_JOB_LOG_GROUP, logStreamName=job_id)
    except engine.logs.exceptions.ResourceAlreadyExistsException:
        pass
    engine.logs.put_log_events(logGroupName=MACIE_JOB_LOG_GROUP, logStreamName=job_id,
                               logEvents=[{"timestamp": int(time.time() * 1000), "message": json.dumps(message)}])


def test_a_log_subscription_delivers_to_the_in_process_function_which_resumes_the_waiting_task(moto_engine):
    engine = moto_engine
    tokens: dict[str, str] = {}
    arn = _job_events_function(engine, tokens)
    engine.logs.create_log_group(logGroupName=MACIE_JOB_LOG_GROUP)
    engine.logs.put_subscription_filter(logGroupName=MACIE_JOB_LOG_GROUP, filterName="jobs", filterPattern="", destinationArn=arn)
    sm = engine.sfn.create_state_machine(name="wait", definition=json.dumps(_job_wait(arn, 3600)), roleArn=ROLE)["stateMachineArn"]
    execution = engine.sfn.start_execution(stateMachineArn=sm, input=json.dumps({"jobId": "job1", "batchId": "b-1"}))["executionArn"]
    deadline = time.monotonic() + 10
    while "job1" not in tokens and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "job1" in tokens

    _log_job_event(engine, "job1", "JOB_CREATED")  # not a wake-up: still waiting
    assert engine.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    _log_job_event(engine, "job1", "JOB_COMPLETED")
    while engine.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.02)
    described = engine.sfn.describe_execution(executionArn=execution)
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["how"] == "woken" and output["wake"] == {"eventType": "JOB_COMPLETED"}


def test_with_no_token_the_job_wait_times_out_after_the_engines_job_window_not_the_declared_one(moto_engine):
    engine = moto_engine
    engine.host.job_wait_seconds = 1
    engine.host.review_wait_seconds = 600  # the review window must not apply to the job wait
    arn = _job_events_function(engine, {})
    started = time.monotonic()
    described = _run(engine, _job_wait(arn, 3600), {"jobId": "job2", "batchId": "b-1"}, timeout=20)
    elapsed = time.monotonic() - started
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["how"] == "timed out" and output["timedOut"]["Error"] == "States.Timeout"
    assert elapsed < 10


def test_the_job_window_and_the_review_window_are_told_apart_by_state_name(moto_engine):
    host = moto_engine.host
    host.job_wait_seconds, host.review_wait_seconds = 2, 45
    assert host.callback_timeout(States.WAIT_FOR_MACIE_JOB, 3600) == 2
    assert host.callback_timeout(States.WAIT_FOR_REVIEWER, 3 * 24 * 3600) == 45
    assert host.callback_timeout(States.WAIT_FOR_REVIEWER, 10) == 10  # never more than declared


# ------------------------------------------------------------------------------ (c) history sizes
def test_history_event_counts_of_parent_and_children(moto_engine):
    engine = moto_engine
    engine.s3.create_bucket(Bucket=BUCKET)
    engine.s3.put_object(Bucket=BUCKET, Key="batches/b-1/chunks.json", Body=json.dumps([{"chunk": n} for n in range(4)]))
    arn = _function(engine, "transfer", lambda event: {"ok": event["chunk"]})
    described = _run(engine, _distributed_map(arn), {"batchId": "b-1", "manifest": {"bucket": BUCKET, "chunks": "batches/b-1/chunks.json"}})
    from macie_pipeline.local.history import ExecutionHistory

    history = ExecutionHistory(SimpleNamespace(sfn=engine.sfn), engine.host.map_runs)  # type: ignore[arg-type]
    counted = history.transitions(described["executionArn"])
    assert counted.parent == 2  # Stage objects, Count staged
    assert counted.children == 4  # one task state per child
    assert counted.child_executions == 4 and counted.total == 6
    # Every event of the parent and of its children, as the history limit is about events, not transitions.
    assert counted.child_events == 4 * 5  # entered, scheduled, started, succeeded, exited
