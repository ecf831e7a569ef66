"""The benchmark (``python -m macie_pipeline.local bench``): its counts agree with what happened, and its
dollars are its counts times the prices table. Small runs, not timed."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from macie_pipeline.local import bench, cli
from macie_pipeline.local.prices import PRICES
from macie_pipeline.local.template import choose_pipeline

OBJECTS = 20  # one whole round of the mix: 14 clean, 4 sensitive, 2 corrupt


@pytest.fixture(scope="module")
def output():
    """``bench --objects 20 --trigger object-created --json``, run once: (exit code, parsed stdout)."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["bench", "--objects", str(OBJECTS), "--trigger", "object-created", "--json"])
    return code, json.loads(stdout.getvalue())


@pytest.fixture(scope="module")
def report(output):
    return output[1]["runs"][0]


def test_json_is_one_object_with_the_runs_and_the_prices_table(output):
    code, document = output
    assert code == cli.EXIT_OK
    assert set(document) == {"prices_read", "prices", "runs"}
    assert document["prices_read"] == bench.prices_read()
    assert document["prices"] == bench.prices_table()
    assert [r["trigger"] for r in document["runs"]] == ["object-created"]


def test_every_object_ends_where_its_kind_should(report):
    assert report["objects"] == OBJECTS and report["failed_executions"] == 0
    assert report["outcomes"] == {"APPROVED": 4, "QUARANTINED": 2, "VAULT": 14}


def test_object_created_makes_one_execution_and_one_macie_job_per_object(report):
    totals = report["totals"]
    assert totals["executions"] == totals["standard_executions"] == OBJECTS
    assert totals["macie_calls"]["CreateClassificationJob"] == OBJECTS
    assert totals["express_executions"] == totals["express_state_transitions"] == totals["sqs_requests"] == 0


def test_lambda_invocations_match_the_lambda_tasks_in_the_histories(report):
    totals = report["totals"]
    invocations = totals["lambda_invocations"]
    reviews = invocations["request_review"]
    assert reviews == 4  # one per sensitive object
    # The review page is opened (GET) and answered (POST): API Gateway invokes the review handler twice.
    assert invocations["review_api"] == 2 * reviews
    assert sum(invocations.values()) - invocations["review_api"] == totals["lambda_tasks_in_histories"]
    assert set(totals["lambda_gb_seconds"]) == set(invocations) and all(v > 0 for v in totals["lambda_gb_seconds"].values())


def test_figures_per_1000_objects_are_the_totals_scaled(report):
    totals, per = report["totals"], report["per_1000_objects"]
    factor = 1000 / OBJECTS
    assert per["standard_state_transitions"] == totals["standard_state_transitions"] * factor
    assert per["macie_calls"] == {k: v * factor for k, v in totals["macie_calls"].items()}
    assert per["s3_requests"] == {k: v * factor for k, v in totals["s3_requests"].items()}


def test_dollars_are_the_counts_times_the_prices_table(report):
    per, usd = report["per_1000_objects"], report["usd_per_1000_objects"]
    s3 = per["s3_requests"]
    expected = {
        "step_functions_standard": per["standard_state_transitions"] * PRICES["sfn_standard_transition"]["usd"],
        "step_functions_express": per["express_executions"] * PRICES["sfn_express_request"]["usd"],
        "lambda_requests": sum(per["lambda_invocations"].values()) * PRICES["lambda_request"]["usd"],
        "lambda_duration": sum(per["lambda_gb_seconds"].values()) * PRICES["lambda_gb_second"]["usd"],
        "s3_put_copy_post_list": s3["put_copy_post_list"] * PRICES["s3_tier1_request"]["usd"],
        "s3_get_and_other": s3["get_and_other"] * PRICES["s3_tier2_request"]["usd"],
        "sqs": per["sqs_requests"] * PRICES["sqs_request"]["usd"],
        "eventbridge": per["eventbridge_events"] * PRICES["eventbridge_custom_event"]["usd"],
        "sns": per["sns_publishes"] * PRICES["sns_publish"]["usd"],
    }
    assert {k: v for k, v in usd.items() if k != "total"} == pytest.approx(expected)
    assert usd["total"] == pytest.approx(sum(expected.values()))
    assert usd["step_functions_standard"] > 0 and usd["s3_put_copy_post_list"] > 0


def test_result_events_and_summaries_are_counted(report):
    totals = report["totals"]
    assert totals["eventbridge_events"] == totals["other_calls"]["events.PutEvents"]  # one entry per PutEvents today
    assert totals["sns_publishes"] == OBJECTS + totals["lambda_invocations"]["request_review"]  # a summary each, plus review requests


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


def test_generated_objects_are_the_same_for_the_same_count():
    assert bench.generate_objects(40) == bench.generate_objects(40)
    assert list(bench.generate_objects(OBJECTS)) == list(bench.generate_objects(40))[:OBJECTS]
    assert sum(1 for body in bench.generate_objects(OBJECTS).values() if body == b"") == 1


def test_scheduled_batch_makes_one_macie_job():
    stack, state_machine = choose_pipeline([bench.schedule_sample()], None, None)
    assert bench.trigger_of(stack) == "schedule"
    report = bench.run(stack, state_machine, "schedule", 10)
    assert report["totals"]["executions"] == 1 and report["totals"]["macie_calls"]["CreateClassificationJob"] == 1
    assert report["objects_per_execution_max"] == 50
    assert report["outcomes"] == {"APPROVED": 2, "QUARANTINED": 1, "VAULT": 7}
