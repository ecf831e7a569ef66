"""The batch workflow (docs/batching.md, "The workflow (Standard)"), from its synthesized definition.

A minimal stack holds the :class:`ScanWorkflow` alone (inline functions, plain buckets), so these
tests do not depend on the rest of the construct.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn

from macie_pipeline.asl import definition_from_template, walk_states
from macie_pipeline.contract import States
from macie_pipeline.workflow import (
    EXTRA_POLLS,
    MAX_POLL_RATIO,
    ScanWorkflow,
    WorkflowResources,
    WorkflowSettings,
    max_polls,
)

HISTORY_LIMIT = 25_000  # events in one Standard execution's history
FUNCTIONS = ("Transfer", "IntegrityCheck", "EvaluateFindings", "RequestReview", "JobEvents")


_TYPES = {"BatchBucket": "AWS::S3::Bucket", "StateMachine": "AWS::StepFunctions::StateMachine"}


def _placeholder(template: dict, prefix: str) -> str:
    """The logical id of the resource built as ``prefix`` (a function, unless named in _TYPES)."""
    kind = _TYPES.get(prefix, "AWS::Lambda::Function")
    (logical_id,) = [
        name for name, resource in template["Resources"].items() if name.startswith(prefix) and resource["Type"] == kind
    ]
    return logical_id


def synthesize(**settings: Any) -> tuple[dict, dict, ScanWorkflow]:
    """(template, definition, workflow) of a stack holding only the workflow and its state machine."""
    app = cdk.App()
    stack = cdk.Stack(app, "WorkflowOnly")
    functions = {
        name: lambda_.Function(
            stack, name, runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
        )
        for name in FUNCTIONS
    }
    resources = WorkflowResources(
        transfer=functions["Transfer"],
        integrity_check=functions["IntegrityCheck"],
        evaluate_findings=functions["EvaluateFindings"],
        request_review=functions["RequestReview"],
        job_events=functions["JobEvents"],
        batch_bucket=s3.Bucket(stack, "BatchBucket", encryption_key=kms.Key(stack, "Key")),
        ingress_bucket=s3.Bucket(stack, "Ingress"),
        quarantine_bucket=s3.Bucket(stack, "Quarantine"),
        review_bucket=s3.Bucket(stack, "Review"),
        vault_bucket=s3.Bucket(stack, "Vault"),
        topic=sns.Topic(stack, "Topic"),
        event_bus=events.EventBus(stack, "Bus"),
        custom_data_identifier_ids=[],
        allow_list_ids=[],
        custom_data_identifier_arns=[],
        allow_list_arns=[],
    )
    values = {
        "managed_data_identifier_selector": "RECOMMENDED",
        "managed_data_identifier_ids": [],
        "poll_interval": Duration.minutes(1),
        "max_scan_wait": Duration.hours(6),
        "approval_timeout": Duration.days(3),
        "approval_heartbeat": None,
        "deny_policy": "QUARANTINE",
        **settings,
    }
    workflow = ScanWorkflow(stack, "Workflow", resources=resources, settings=WorkflowSettings(**values))
    sfn.StateMachine(stack, "StateMachine", definition_body=sfn.DefinitionBody.from_chainable(workflow.definition))
    template = app.synth().get_stack_by_name(stack.stack_name).template
    return template, definition_from_template(template), workflow


@pytest.fixture(scope="module")
def synthesized() -> tuple[dict, dict, ScanWorkflow]:
    return synthesize()


@pytest.fixture(scope="module")
def template(synthesized) -> dict:
    return synthesized[0]


@pytest.fixture(scope="module")
def definition(synthesized) -> dict:
    return synthesized[1]


@pytest.fixture(scope="module")
def states(definition) -> dict:
    return definition["States"]


def all_states(definition: dict) -> dict[str, dict]:
    """Every state by name, those of the maps' child workflows too (names are unique across scopes)."""
    found = {name: state for _path, name, state in walk_states(definition["States"])}
    assert len(found) == len(list(walk_states(definition["States"])))
    return found


def transitions(state: dict) -> set[str]:
    targets = {state["Next"]} if "Next" in state else set()
    targets |= {rule["Next"] for rule in state.get("Choices", [])}
    targets |= {state["Default"]} if "Default" in state else set()
    targets |= {catcher["Next"] for catcher in state.get("Catch", [])}
    return targets


def payload(state: dict) -> dict:
    """A LambdaInvoke's payload, the task token placeholder left as CDK renders it."""
    return state["Parameters"]["Payload"]


def function_of(state: dict, template: dict) -> str:
    return state["Parameters"]["FunctionName"].rsplit(":", 1)[-1].removeprefix("PLACEHOLDER_")


# ---------------------------------------------------------------------------------------------- shape
TOP_LEVEL = {
    States.BATCH_READY: {"Notify invalid input", "Nothing to scan", States.STAGE_OBJECTS},
    "Notify invalid input": {"Invalid input"},
    States.STAGE_OBJECTS: {States.COUNT_STAGED, States.REPORT_FAILED_BATCH},
    States.COUNT_STAGED: {"Anything staged?", States.REPORT_FAILED_BATCH},
    "Anything staged?": {States.START_MACIE_JOB, "No Macie job"},
    "No Macie job": {States.EVALUATE_FINDINGS},
    States.START_MACIE_JOB: {"Start polling", States.REPORT_FAILED_BATCH},
    "Start polling": {States.WAIT_FOR_MACIE_JOB},
    States.WAIT_FOR_MACIE_JOB: {States.DESCRIBE_MACIE_JOB, States.REPORT_FAILED_BATCH},
    States.DESCRIBE_MACIE_JOB: {"Count poll", States.REPORT_FAILED_BATCH},
    "Count poll": {"Macie job status?"},
    "Macie job status?": {"Scan complete", "Scan incomplete", "Cancel Macie job", "Notify job paused", States.WAIT_FOR_MACIE_JOB},
    "Notify job paused": {States.WAIT_FOR_MACIE_JOB},
    "Cancel Macie job": {"Scan incomplete"},
    "Scan complete": {States.EVALUATE_FINDINGS},
    "Scan incomplete": {States.EVALUATE_FINDINGS},
    States.EVALUATE_FINDINGS: {States.ROUTE_OBJECTS, States.REPORT_FAILED_BATCH},
    States.ROUTE_OBJECTS: {"Review needed?", States.REPORT_FAILED_BATCH},
    "Review needed?": {States.WAIT_FOR_REVIEWER, States.SUMMARIZE_BATCH},
    # NothingToReview (every REVIEW object failed to reach the review bucket): straight to the summary.
    States.WAIT_FOR_REVIEWER: {States.APPLY_DECISIONS, "Review timed out", States.SUMMARIZE_BATCH, States.REPORT_FAILED_BATCH},
    "Review timed out": {States.APPLY_DECISIONS},
    States.APPLY_DECISIONS: {States.SUMMARIZE_BATCH, States.REPORT_FAILED_BATCH},
    States.SUMMARIZE_BATCH: {States.NOTIFY_SCAN_SUMMARY, States.REPORT_FAILED_BATCH},
    States.NOTIFY_SCAN_SUMMARY: {"Scan finished", States.REPORT_FAILED_BATCH},
    States.REPORT_FAILED_BATCH: {"Notify scan failure"},
    "Notify scan failure": {"Scan failed"},
    "Scan finished": set(),
    "Scan failed": set(),
    "Invalid input": set(),
    "Nothing to scan": set(),
}
CHILDREN = {
    States.STAGE_OBJECTS: {
        States.COPY_TO_QUARANTINE: {States.CHECK_INTEGRITY, "Chunk not staged"},
        States.CHECK_INTEGRITY: {"Chunk not staged"},
        "Chunk not staged": set(),
    },
    States.ROUTE_OBJECTS: {States.ROUTE_CHUNK: {"Chunk not routed"}, "Chunk not routed": set()},
    States.APPLY_DECISIONS: {States.APPLY_DECISIONS_TO_CHUNK: {"Chunk not decided"}, "Chunk not decided": set()},
}


def test_states_and_transitions(definition, states):
    assert definition["StartAt"] == States.BATCH_READY
    assert {name: transitions(state) for name, state in states.items()} == TOP_LEVEL
    for name, expected in CHILDREN.items():
        processor = states[name]["ItemProcessor"]
        assert processor["StartAt"] == next(iter(expected))
        assert {child: transitions(state) for child, state in processor["States"].items()} == expected
    assert states["Scan finished"]["Type"] == "Succeed" and states["Nothing to scan"]["Type"] == "Succeed"
    assert states["Scan failed"]["Type"] == "Fail" and states["Invalid input"]["Type"] == "Fail"
    for name in ("Chunk not staged", "Chunk not routed", "Chunk not decided"):
        assert all_states(definition)[name]["Type"] == "Succeed"


def test_every_contract_state_name_is_used(definition):
    names = set(all_states(definition))
    contract = {value for key, value in vars(States).items() if key.isupper()}
    assert contract <= names, contract - names


def test_batch_ready_validates_the_input(states):
    choice = states[States.BATCH_READY]
    invalid, nothing = choice["Choices"]
    checks = invalid["Not"]["And"]
    for path, kind in [("$.batchId", "IsString"), ("$.manifest.bucket", "IsString"), ("$.manifest.chunks", "IsString"),
                       ("$.objectCount", "IsNumeric"), ("$.chunkCount", "IsNumeric")]:
        assert {"Variable": path, "IsPresent": True} in checks
        assert {"Variable": path, kind: True} in checks
        # presence is tested before the type (And is evaluated in order; a type test on a missing field fails)
        assert checks.index({"Variable": path, "IsPresent": True}) < checks.index({"Variable": path, kind: True})
    assert {"Variable": "$.manifest.chunks", "StringMatches": "batches/*"} in checks
    assert invalid["Next"] == "Notify invalid input" and invalid["Comment"] == "not a batch"
    assert nothing == {"Variable": "$.objectCount", "NumericLessThan": 1, "Next": "Nothing to scan", "Comment": "no object"}
    assert choice["Default"] == States.STAGE_OBJECTS


# ---------------------------------------------------------------------------------------------- tasks
def test_every_task_has_retry_and_catch(definition):
    tasks = {name: state for name, state in all_states(definition).items() if state["Type"] == "Task"}
    assert len(tasks) == 17  # 10 function calls, 3 Macie calls, 4 notifications
    for name, state in tasks.items():
        assert state.get("Retry"), f"{name} has no Retry"
        assert state.get("Catch"), f"{name} has no Catch"
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], f"{name}: the last Catch must take every error"
        for retrier in state["Retry"]:
            # enough attempts to ride out throttling, backing off exponentially to a capped delay
            assert retrier["MaxAttempts"] >= 4 and retrier["BackoffRate"] >= 2, (name, retrier)
            assert 0 < retrier["MaxDelaySeconds"] <= 600 and retrier["IntervalSeconds"] >= 1, (name, retrier)
        errors = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        if state["Resource"].startswith("arn:aws:states:::lambda:invoke"):
            assert {"Lambda.TooManyRequestsException", "Lambda.ServiceException", "TransientError"} <= errors, name
        elif ":macie2:" in state["Resource"]:
            assert "Macie2.ThrottlingException" in errors, name
        else:
            assert "States.TaskFailed" in errors, name


def test_maps_retry_only_a_failed_read_and_catch_everything(definition):
    for name, state in all_states(definition).items():
        if state["Type"] == "Map":
            assert [r["ErrorEquals"] for r in state["Retry"]] == [["States.ItemReaderFailed"]], name
            assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": States.REPORT_FAILED_BATCH}]


def test_distributed_maps_read_the_chunk_index_and_run_standard_children(states, template):
    bucket = f"PLACEHOLDER_{_placeholder(template, 'BatchBucket')}"
    maps = {name: state for name, state in states.items() if state["Type"] == "Map"}
    assert set(maps) == {States.STAGE_OBJECTS, States.ROUTE_OBJECTS, States.APPLY_DECISIONS}
    for name, state in maps.items():
        assert "ItemsPath" not in state, name
        assert state["ItemReader"] == {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": bucket, "Key.$": "$.manifest.chunks"},
        }
        assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
        assert state["MaxConcurrency"] == 10
        assert state["ToleratedFailurePercentage"] == 100
        assert state["ResultWriter"] == {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": bucket, "Prefix": "map-results"},
        }
        assert state["ResultPath"] is None
        assert state["ItemSelector"]["batchId.$"] == "$.batchId"
        assert state["ItemSelector"]["chunk.$"] == "$$.Map.Item.Value.chunk"
    assert "executionArn.$" not in maps[States.STAGE_OBJECTS]["ItemSelector"]
    for name in (States.ROUTE_OBJECTS, States.APPLY_DECISIONS):
        assert maps[name]["ItemSelector"]["executionArn.$"] == "$$.Execution.Id"


def test_map_concurrency_is_a_setting():
    _template, definition, _workflow = synthesize(map_concurrency=3)
    assert {s["MaxConcurrency"] for s in definition["States"].values() if s["Type"] == "Map"} == {3}


PAYLOADS = {
    States.COPY_TO_QUARANTINE: ("Transfer", {"operation": "stage_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk"}),
    States.CHECK_INTEGRITY: ("IntegrityCheck", {"operation": "check_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk"}),
    States.COUNT_STAGED: ("EvaluateFindings", {"operation": "count_staged", "batchId.$": "$.batchId", "chunkCount.$": "$.chunkCount"}),
    States.WAIT_FOR_MACIE_JOB: (
        "JobEvents",
        {"operation": "wait", "taskToken.$": "$$.Task.Token", "jobId.$": "$.macie.jobId", "batchId.$": "$.batchId"},
    ),
    States.EVALUATE_FINDINGS: (
        "EvaluateFindings",
        {"operation": "evaluate", "batchId.$": "$.batchId", "chunkCount.$": "$.chunkCount", "jobId.$": "$.macie.jobId",
         "job.$": "$.macie.job", "scanComplete.$": "$.macie.scanComplete"},
    ),
    States.ROUTE_CHUNK: (
        "Transfer",
        {"operation": "route_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk", "executionArn.$": "$.executionArn"},
    ),
    States.WAIT_FOR_REVIEWER: (
        "RequestReview",
        {"taskToken.$": "$$.Task.Token", "batchId.$": "$.batchId", "chunkCount.$": "$.chunkCount", "executionArn.$": "$$.Execution.Id",
         # decisions close before Apply decisions reads them: counted from when the wait began
         "stateEnteredTime.$": "$$.State.EnteredTime"},
    ),
    States.APPLY_DECISIONS_TO_CHUNK: (
        "Transfer",
        {"operation": "decide_chunk", "batchId.$": "$.batchId", "chunk.$": "$.chunk", "executionArn.$": "$.executionArn"},
    ),
    States.SUMMARIZE_BATCH: (
        "EvaluateFindings",
        {"operation": "summarize", "batchId.$": "$.batchId", "chunkCount.$": "$.chunkCount", "executionArn.$": "$$.Execution.Id",
         "evaluation.$": "$.evaluation.counts"},
    ),
    States.REPORT_FAILED_BATCH: (
        "Transfer",
        {"operation": "report_failed", "batchId.$": "$.batchId", "chunkCount.$": "$.chunkCount",
         "executionArn.$": "$$.Execution.Id", "error.$": "$.error"},
    ),
}


def test_function_payloads(definition, template):
    lambda_states = {
        name: state for name, state in all_states(definition).items()
        if state["Type"] == "Task" and state["Resource"].startswith("arn:aws:states:::lambda:invoke")
    }
    assert set(lambda_states) == set(PAYLOADS)
    for name, (function, expected) in PAYLOADS.items():
        state = lambda_states[name]
        assert function_of(state, template) == _placeholder(template, function), name
        assert payload(state) == expected, name


def test_selected_results(states):
    assert states[States.COUNT_STAGED]["ResultSelector"] == {"staged.$": "$.Payload.staged", "failed.$": "$.Payload.failed"}
    assert states[States.COUNT_STAGED]["ResultPath"] == "$.staging"
    # the evaluator returns its counts flat (a handful of numbers, no object): kept whole
    assert states[States.EVALUATE_FINDINGS]["ResultSelector"] == {
        "counts.$": "$.Payload", "reviewRequired.$": "$.Payload.reviewRequired"
    }
    assert states[States.SUMMARIZE_BATCH]["ResultSelector"] == {"summary.$": "$.Payload.summary"}
    null = "States.StringToJson('null')"
    assert states["No Macie job"]["Parameters"] == {"jobId.$": null, "job.$": null, "scanComplete": False}
    assert states["Anything staged?"]["Choices"] == [
        {"Variable": "$.staging.staged", "NumericGreaterThan": 0, "Next": States.START_MACIE_JOB}
    ]
    assert states["Review needed?"]["Choices"] == [
        {"Variable": "$.evaluation.reviewRequired", "BooleanEquals": True, "Next": States.WAIT_FOR_REVIEWER}
    ]


def test_start_macie_job_is_one_job_per_batch_and_rides_out_throttling(states):
    state = states[States.START_MACIE_JOB]
    assert state["Resource"] == "arn:aws:states:::aws-sdk:macie2:createClassificationJob"
    parameters = state["Parameters"]
    assert parameters["ClientToken.$"] == "$.batchId"
    (term,) = parameters["S3JobDefinition"]["Scoping"]["Includes"]["And"]
    assert term["TagScopeTerm"]["TagValues"] == [{"Key": "macie-pipeline:scan-id", "Value.$": "$.batchId"}]
    (throttling,) = [r for r in state["Retry"] if r["ErrorEquals"] == ["Macie2.ThrottlingException"]]
    delays = [
        min(throttling["IntervalSeconds"] * throttling["BackoffRate"] ** attempt, throttling["MaxDelaySeconds"])
        for attempt in range(throttling["MaxAttempts"])
    ]
    # full jitter waits half the computed delay on average: still about two hours of retries
    assert sum(delays) / 2 >= 2 * 3600
    assert state["ResultSelector"] == {"jobId.$": "$.JobId"} and state["ResultPath"] == "$.macie"


def test_wait_for_macie_job_is_event_driven_with_a_poll_backstop(states, synthesized):
    wait = states[States.WAIT_FOR_MACIE_JOB]
    assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert wait["TimeoutSeconds"] == 60
    assert wait["ResultPath"] is None
    assert wait["Catch"][0] == {
        "ErrorEquals": ["States.Timeout", "States.HeartbeatTimeout"], "ResultPath": None, "Next": States.DESCRIBE_MACIE_JOB
    }
    assert wait["Next"] == States.DESCRIBE_MACIE_JOB
    polls = synthesized[2].max_polls
    assert polls == 360 + EXTRA_POLLS
    rules = [(rule.get("Variable"), rule["Next"]) for rule in states["Macie job status?"]["Choices"]]
    assert rules[:3] == [
        ("$.macie.job.JobStatus", "Scan complete"),
        ("$.macie.job.JobStatus", "Scan incomplete"),
        ("$.poll.count", "Cancel Macie job"),
    ]
    assert states["Macie job status?"]["Choices"][2]["NumericGreaterThanEquals"] == polls
    paused = states["Macie job status?"]["Choices"][3]
    assert paused["And"] == [
        {"Variable": "$.macie.job.JobStatus", "StringEquals": "PAUSED"},
        {"Variable": "$.macie.pauseNotice", "IsPresent": False},
    ]
    assert paused["Next"] == "Notify job paused"
    waiting = states["Macie job status?"]["Choices"][4]
    assert sorted(rule["StringEquals"] for rule in waiting["Or"]) == ["IDLE", "PAUSED", "RUNNING", "USER_PAUSED"]
    assert waiting["Next"] == States.WAIT_FOR_MACIE_JOB
    assert states["Macie job status?"]["Default"] == "Scan incomplete"
    assert states["Notify job paused"]["Catch"][0]["Next"] == States.WAIT_FOR_MACIE_JOB


def test_review_timeout_goes_on_to_apply_decisions(states):
    ask = states[States.WAIT_FOR_REVIEWER]
    assert ask["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert ask["TimeoutSeconds"] == 3 * 24 * 3600
    assert ask["Catch"][0]["ErrorEquals"] == ["States.Timeout", "States.HeartbeatTimeout"]
    assert ask["Catch"][0]["Next"] == "Review timed out"
    assert ask["Catch"][1] == {"ErrorEquals": ["NothingToReview"], "ResultPath": "$.reviewError", "Next": States.SUMMARIZE_BATCH}
    assert ask["Catch"][2]["ErrorEquals"] == ["States.ALL"] and ask["Catch"][2]["Next"] == States.REPORT_FAILED_BATCH
    _template, definition, _workflow = synthesize(approval_heartbeat=Duration.hours(1))
    assert definition["States"][States.WAIT_FOR_REVIEWER]["HeartbeatSeconds"] == 3600


# ---------------------------------------------------------------------------------------------- state size
#: What the execution's state may hold at the top level: ids, references, counts and small results.
STATE_FIELDS = {
    "batchId", "trigger", "manifest", "objectCount", "chunkCount", "skipped",  # the input
    "staging", "macie", "poll", "evaluation", "review", "result",  # counts and job-level results
    "error", "reportError", "notifyError", "reviewError",  # {Error, Cause} of a caught failure
}
#: Fields of a chunk's child workflow input.
CHILD_FIELDS = {"batchId", "chunk", "executionArn", "error"}


def json_paths(value: Any) -> Iterator[str]:
    """Every JSONPath in ``value`` that reads the state (``$.x``), also those inside intrinsic functions."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and (key.endswith(".$") or key in ("ResultPath", "InputPath", "OutputPath", "Variable")):
                yield from re.findall(r"(?<![$\w])\$\.[\w.\[\]*]+", item)
            else:
                yield from json_paths(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_paths(item)


def test_state_never_holds_per_object_data(definition, states):
    """Only ids, references and counts: no Map reads items from the state, no state reads or writes a list of objects."""
    for name, state in all_states(definition).items():
        assert "ItemsPath" not in state and "Items" not in state, name
        if state["Type"] == "Map":
            assert "ItemReader" in state, name
    child_names = {child for spec in CHILDREN.values() for child in spec}
    for name, state in all_states(definition).items():
        fields = CHILD_FIELDS if name in child_names else STATE_FIELDS
        for path in json_paths({key: value for key, value in state.items() if key not in ("ItemProcessor", "ResultSelector")}):
            top = path[2:].split(".")[0].split("[")[0]
            assert top in fields, f"{name} reads or writes {path}"
        for path in json_paths(state.get("ResultSelector", {})):
            assert not re.search(r"objects|items|lines|routed", path, flags=re.IGNORECASE), f"{name} selects {path}"
        if state["Type"] == "Pass":
            assert "objects" not in json.dumps(state.get("Result", {})), name


# ---------------------------------------------------------------------------------------------- history
#: Events one state adds to the execution's history (Step Functions developer guide, "Execution
#: history event types"): Entered and Exited for every state; a Task also Scheduled, Started and
#: Succeeded (or Failed, TimedOut), a .waitForTaskToken task also Submitted; a Distributed Map also
#: Started, MapRunStarted and MapRunSucceeded (or Failed). Each retry of a Task adds Scheduled,
#: Started and Failed (and Submitted); of a Map, MapRunStarted, MapRunFailed and two more.
STATE_EVENTS = {"Task": 5, "Map": 6, "Pass": 2, "Choice": 2, "Wait": 2, "Succeed": 2, "Fail": 2, "Parallel": 6}
RETRY_EVENTS = {"Task": 3, "Map": 4}
EXECUTION_EVENTS = 2  # ExecutionStarted, ExecutionSucceeded (or Failed)


def _token_task(state: dict) -> bool:
    return state["Type"] == "Task" and state["Resource"].endswith(".waitForTaskToken")


def state_events(state: dict) -> int:
    return STATE_EVENTS[state["Type"]] + _token_task(state)


def retry_events(state: dict) -> int:
    """Events of every retry the state may make, bounded by each retrier's MaxAttempts (default 3)."""
    per_attempt = RETRY_EVENTS.get(state["Type"], 0) + _token_task(state)
    return sum(retrier.get("MaxAttempts", 3) for retrier in state.get("Retry", [])) * per_attempt


def strongly_connected(states: dict) -> list[set[str]]:
    """The cycles of the top-level graph (its strongly connected components with more than one state)."""
    reach = {name: set() for name in states}
    for name in states:
        stack = list(transitions(states[name]))
        while stack:
            target = stack.pop()
            if target not in reach[name]:
                reach[name].add(target)
                stack.extend(transitions(states[target]))
    components: list[set[str]] = []
    for name in states:
        component = {other for other in states if other in reach[name] and name in reach[other]}
        if len(component) > 1 and component not in components:
            components.append(component)
    return components


def worst_case_history(definition: dict, polls: int) -> tuple[int, int, int]:
    """(total, events per poll loop iteration, events of everything else) of the longest possible execution.

    The poll loop is the only cycle. Each iteration is counted as if it ran every state of the loop
    (``Notify job paused`` runs once per batch, so this holds 5 events per iteration in reserve,
    for retries); every other state runs at most once, with every retry its retriers allow; the
    loop's own retries are counted once more on top. Child workflows have histories of their own.
    """
    states = definition["States"]
    (loop,) = strongly_connected(states)
    per_iteration = sum(state_events(states[name]) for name in loop)
    rest = EXECUTION_EVENTS + sum(state_events(state) + retry_events(state) for name, state in states.items() if name not in loop)
    rest += sum(retry_events(states[name]) for name in loop)
    return per_iteration * polls + rest, per_iteration, rest


def test_worst_case_history_fits_at_the_largest_poll_ratio():
    """At the largest ratio the settings allow (max_scan_wait / poll_interval = 1,000, so 1,010 polls),
    the longest execution stays under 25,000 history events. Adding a state to the poll loop, or
    raising the cap, fails this test: keep the loop small."""
    poll = Duration.seconds(10)
    wait = Duration.seconds(10 * MAX_POLL_RATIO)
    polls = max_polls(poll, wait)
    assert polls == MAX_POLL_RATIO + EXTRA_POLLS == 1010
    _template, definition, workflow = synthesize(poll_interval=poll, max_scan_wait=wait)
    assert workflow.max_polls == polls
    states = definition["States"]
    (loop,) = strongly_connected(states)
    assert loop == {States.WAIT_FOR_MACIE_JOB, States.DESCRIBE_MACIE_JOB, "Count poll", "Macie job status?", "Notify job paused"}
    assert states["Macie job status?"]["Choices"][2]["NumericGreaterThanEquals"] == polls
    total, per_iteration, rest = worst_case_history(definition, polls)
    assert per_iteration == 6 + 5 + 2 + 2 + 5
    assert total < HISTORY_LIMIT, f"worst case {total} events = {per_iteration} x {polls} polls + {rest}"


def test_poll_ratio_is_capped():
    assert max_polls(Duration.minutes(1), Duration.hours(6)) == 370
    assert max_polls(Duration.minutes(45), Duration.days(30)) == 960 + EXTRA_POLLS
    assert max_polls(Duration.hours(1), Duration.minutes(30)) == 1 + EXTRA_POLLS
    with pytest.raises(ValueError, match="at most 1000"):
        max_polls(Duration.seconds(10), Duration.seconds(10 * MAX_POLL_RATIO + 1))
    with pytest.raises(ValueError, match="at most 1000"):
        synthesize(poll_interval=Duration.seconds(10), max_scan_wait=Duration.days(30))


# ---------------------------------------------------------------------------------------------- permissions
def _statements(template: dict) -> list[dict]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_maps_may_read_the_batches_and_write_results_only(template):
    bucket = _placeholder(template, "BatchBucket")
    s3_statements = [s for s in _statements(template) if any(str(a).startswith("s3:") for a in _actions(s))]
    assert {(tuple(_actions(s)), json.dumps(s["Resource"])) for s in s3_statements} == {
        (("s3:GetObject",), json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/batches/*"]]})),
        (
            ("s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"),
            json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/map-results/*"]]}),
        ),
    }
    machine = _placeholder(template, "StateMachine")
    start = [s for s in _statements(template) if "states:StartExecution" in _actions(s)]
    assert [s["Resource"] for s in start] == [{"Ref": machine}]
    assert any({"states:DescribeExecution", "states:StopExecution"} <= set(_actions(s)) for s in _statements(template))


def _actions(statement: dict) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]
