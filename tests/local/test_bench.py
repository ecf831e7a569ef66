"""The benchmark (``python -m macie_pipeline.local bench``) on the batch pipeline: its counts agree with
what happened (one Macie job per batch; transitions and invocations follow chunks, not objects), its
dollars are its counts times the prices table, ``--json`` is one object. Small runs, never timed."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from macie_pipeline.local import bench, cli
from macie_pipeline.local.prices import PRICES
from macie_pipeline.local.template import choose_pipeline

OBJECTS = 40  # two rounds of the mix: 28 clean, 8 sensitive, 4 corrupt; one chunk (200 objects a chunk)
FEWER = 20  # the same chunk count: what scales with chunks is the same as for OBJECTS


@pytest.fixture(scope="module")
def output():
    """``bench --objects 40 --trigger batched --json``, run once: (exit code, parsed stdout)."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["bench", "--objects", str(OBJECTS), "--trigger", bench.BATCHED, "--json"])
    return code, json.loads(stdout.getvalue())


@pytest.fixture(scope="module")
def report(output):
    return output[1]["runs"][0]


@pytest.fixture(scope="module")
def fewer():
    stack, state_machine = choose_pipeline([bench.sample_stack(bench.BATCHED)], None, None)
    return bench.run(stack, state_machine, bench.BATCHED, FEWER)


def test_json_is_one_object_with_the_runs_and_the_prices_table(output):
    code, document = output
    assert code == cli.EXIT_OK
    assert set(document) == {"prices_read", "prices", "runs"}
    assert document["prices_read"] == bench.prices_read()
    assert document["prices"] == bench.prices_table()
    run = document["runs"][0]
    assert [r["trigger"] for r in document["runs"]] == [bench.BATCHED]
    assert {"objects", "intake", "totals", "per_1000_objects", "usd_per_1000_objects", "targets", "engine_seconds"} <= set(run)


def test_every_object_ends_where_its_kind_should(report):
    assert report["objects"] == OBJECTS and report["failed_executions"] == 0 and report["note"] == ""
    assert report["outcomes"] == {"APPROVED": 8, "QUARANTINED": 4, "VAULT": 28}


def test_the_intake_makes_one_batch_one_execution_and_one_macie_job(report):
    totals, intake = report["totals"], report["intake"]
    assert (intake["batch_size"], intake["batch_window_seconds"]) == (10_000, 300)
    assert intake["sqs_batches"] == totals["executions"] == totals["lambda_invocations"]["prepare_scan"] == 1
    assert totals["macie_calls"]["CreateClassificationJob"] == 1 and report["targets"]["one_job_per_batch"]
    # Every event reached the queue once (EventBridge's SendMessage) and was received and deleted by the poller.
    assert totals["sqs_operations"]["SendMessage (EventBridge target)"] == OBJECTS
    assert totals["sqs_operations"]["DeleteMessageBatch"] == OBJECTS // 10
    assert 0 < intake["largest_sqs_event_bytes"] < bench.LAMBDA_PAYLOAD_LIMIT_BYTES and intake["batches_at_6mb_limit"] == 1


def test_the_distributed_maps_run_one_standard_child_per_chunk(report):
    totals = report["totals"]
    # One chunk; three maps (stage, route, apply decisions): three children, STANDARD, no Express.
    assert totals["map_runs"] == totals["map_child_executions"] == 3
    assert totals["standard_executions"] == totals["executions"] + totals["map_child_executions"]
    assert totals["standard_state_transitions"] == totals["parent_state_transitions"] + totals["map_child_state_transitions"]
    assert totals["map_child_state_transitions"] == 4  # copy + check, route, decide
    assert totals["express_executions"] == totals["express_state_transitions"] == 0
    invocations = totals["lambda_invocations"]
    assert (invocations["transfer"], invocations["integrity_check"]) == (3, 1)  # one a chunk and step


def test_transitions_and_invocations_follow_chunks_not_objects(report, fewer):
    assert fewer["objects"] == FEWER and fewer["failed_executions"] == 0
    for key in ("executions", "standard_state_transitions", "map_child_executions", "lambda_tasks_in_histories"):
        assert fewer["totals"][key] == report["totals"][key], key
    assert fewer["totals"]["lambda_invocations"] == report["totals"]["lambda_invocations"]
    # ... while per-object work (S3 copies, result events) doubles with the objects.
    assert report["totals"]["s3_operations"]["CopyObject"] == 2 * fewer["totals"]["s3_operations"]["CopyObject"]
    assert report["totals"]["eventbridge_events"] == 2 * fewer["totals"]["eventbridge_events"]


def test_lambda_invocations_match_the_histories_the_intake_and_the_review(report):
    totals = report["totals"]
    invocations = totals["lambda_invocations"]
    assert invocations["request_review"] == 1  # one review for the batch
    # The link (GET: to the sign-in), the sign-in's callback, the review page (GET) and the answer (POST).
    assert invocations["review_api"] == 4
    # job_events: the workflow's wait task plus one invocation per log delivery of the subscription.
    workflow = sum(invocations.values()) - invocations["review_api"] - invocations["prepare_scan"]
    assert workflow >= totals["lambda_tasks_in_histories"] and workflow - totals["lambda_tasks_in_histories"] < invocations["job_events"]
    assert set(totals["lambda_gb_seconds"]) == set(invocations) and all(v > 0 for v in totals["lambda_gb_seconds"].values())


def test_figures_per_1000_objects_are_the_totals_scaled(report):
    totals, per = report["totals"], report["per_1000_objects"]
    factor = 1000 / OBJECTS
    assert per["standard_state_transitions"] == totals["standard_state_transitions"] * factor
    assert per["macie_calls"] == {k: v * factor for k, v in totals["macie_calls"].items()}
    assert per["s3_requests"] == {k: v * factor for k, v in totals["s3_requests"].items()}
    assert report["targets"]["transitions_per_object"] == pytest.approx(totals["standard_state_transitions"] / OBJECTS)


def test_dollars_are_the_counts_times_the_prices_table(report):
    per, usd = report["per_1000_objects"], report["usd_per_1000_objects"]
    s3, dynamodb = per["s3_requests"], per["dynamodb"]
    expected = {
        "step_functions_standard": per["standard_state_transitions"] * PRICES["sfn_standard_transition"]["usd"],
        "step_functions_express": per["express_executions"] * PRICES["sfn_express_request"]["usd"],
        "lambda_requests": sum(per["lambda_invocations"].values()) * PRICES["lambda_request"]["usd"],
        "lambda_duration": sum(per["lambda_gb_seconds"].values()) * PRICES["lambda_gb_second"]["usd"],
        "s3_put_copy_post_list": s3["put_copy_post_list"] * PRICES["s3_tier1_request"]["usd"],
        "s3_get_and_other": s3["get_and_other"] * PRICES["s3_tier2_request"]["usd"],
        "sqs": per["sqs_requests"] * PRICES["sqs_request"]["usd"],
        "dynamodb": dynamodb["write_units"] * PRICES["dynamodb_write_request_unit"]["usd"]
        + dynamodb["read_units"] * PRICES["dynamodb_read_request_unit"]["usd"],
        "eventbridge": per["eventbridge_events"] * PRICES["eventbridge_custom_event"]["usd"],
        "sns": per["sns_publishes"] * PRICES["sns_publish"]["usd"],
    }
    assert {k: v for k, v in usd.items() if k != "total"} == pytest.approx(expected)
    assert usd["total"] == pytest.approx(sum(expected.values())) == pytest.approx(report["targets"]["usd_per_1000_objects"])
    assert all(usd[k] > 0 for k in ("step_functions_standard", "s3_put_copy_post_list", "sqs", "dynamodb"))


def test_window_zero_scans_one_object_per_execution_and_caps_its_objects(monkeypatch):
    monkeypatch.setattr(bench, "WINDOW_ZERO_MAX_OBJECTS", 6)
    monkeypatch.setattr(bench, "WINDOW_ZERO_WAVE", 3)
    stack, state_machine = choose_pipeline([bench.sample_stack(bench.WINDOW_ZERO)], None, None)
    assert bench.trigger_of(stack) == bench.WINDOW_ZERO
    report = bench.run(stack, state_machine, bench.WINDOW_ZERO, 10)
    totals = report["totals"]
    assert report["objects"] == 6 and report["objects_requested"] == 10 and "6 of 10" in report["note"]
    assert report["intake"]["batch_size"] == 1 and report["intake"]["sqs_batches"] == 6
    assert totals["executions"] == totals["macie_calls"]["CreateClassificationJob"] == 6
    assert report["failed_executions"] == 0 and sum(report["outcomes"].values()) == 6
    assert "window zero" in bench.format_reports([report])


def test_the_table_names_every_figure_and_the_prices_date(report):
    table = bench.format_reports([report])
    for label in ("Standard state transitions", "Distributed Map child executions", "Lambda invocations transfer",
                  "Lambda GB-s transfer", "S3 PUT/COPY/POST/LIST requests", "SQS requests", "DynamoDB write_units",
                  "EventBridge events", "SNS publishes", "total", "one Macie job per batch", f"read {bench.prices_read()}"):
        assert label in table, label


def test_bad_object_counts_are_usage_errors():
    assert cli.main(["bench", "--objects", "0"]) == cli.EXIT_USAGE


def test_every_price_names_its_unit_region_source_and_date():
    for name, entry in PRICES.items():
        assert entry["usd"] > 0 and entry["unit"] and entry["region"] == "us-east-1", name
        assert entry["source"].startswith("https://") and entry["read"] == bench.prices_read(), name


def test_transitions_count_every_state_entered_and_every_retry():
    history = [
        {"type": "ExecutionStarted"},
        {"type": "TaskStateEntered"}, {"type": "TaskScheduled"}, {"type": "TaskFailed"},
        {"type": "TaskScheduled"}, {"type": "TaskSucceeded"}, {"type": "TaskStateExited"},  # one retry
        {"type": "MapStateEntered"}, {"type": "PassStateEntered"}, {"type": "PassStateExited"}, {"type": "MapStateExited"},
        {"type": "SucceedStateEntered"}, {"type": "ExecutionSucceeded"},
    ]
    assert bench.transitions(history) == 4 + 1


@pytest.mark.parametrize(("operation", "kind"), [
    ("CopyObject", "put_copy_post_list"), ("PutObjectTagging", "put_copy_post_list"), ("ListObjectVersions", "put_copy_post_list"),
    ("HeadObject", "get_and_other"), ("GetObjectTagging", "get_and_other"), ("DeleteObject", "delete_free"),
])
def test_s3_operations_fall_in_their_price_class(operation, kind):
    assert bench.s3_price_class(operation) == kind


@pytest.mark.parametrize(("operation", "parameters", "units"), [
    ("PutItem", {}, (1, 0)), ("UpdateItem", {}, (1, 0)), ("GetItem", {}, (0, 1)),
    ("BatchGetItem", {"RequestItems": {"t": {"Keys": [{}, {}, {}]}}}, (0, 3)),
    ("BatchWriteItem", {"RequestItems": {"t": [{}, {}]}}, (2, 0)),
    ("TransactWriteItems", {"TransactItems": [{}, {}]}, (4, 0)), ("DescribeTable", {}, (0, 0)),
])
def test_dynamodb_calls_are_counted_in_request_units(operation, parameters, units):
    assert bench.dynamodb_units(operation, parameters) == units


def test_generated_objects_are_the_same_for_the_same_count():
    assert bench.generate_objects(40) == bench.generate_objects(40)
    assert list(bench.generate_objects(20)) == list(bench.generate_objects(40))[:20]
    assert sum(1 for body in bench.generate_objects(20).values() if body == b"") == 1
