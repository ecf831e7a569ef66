"""The functions' environments as the contract defines them (pipeline_common.contract): no AWS."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Optional

import pytest

import integrity_core
from pipeline_common.contract import (
    ENVIRONMENTS,
    EvaluateFindingsEnvironment,
    FunctionEnvironment,
    IntegrityCheckEnvironment,
    InvalidEnvironment,
    JobEventsEnvironment,
    PrepareScanEnvironment,
    RequestReviewEnvironment,
    ReviewApiEnvironment,
    TransferEnvironment,
    variable,
)

LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambda"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProbeEnvironment(FunctionEnvironment):
    """One variable of each kind, so that one environment can be wrong in every way at once."""

    FUNCTION: ClassVar[str] = "probe"

    table: str = variable("TABLE")
    batch: int = variable("BATCH", default=25, kind="int")
    policy: Optional[str] = variable("POLICY", default=None, kind="json")
    prefix: str = variable("PREFIX", default="")


# One fully set environment per function: every variable given a value other than its default.
EXAMPLES: dict[type[FunctionEnvironment], FunctionEnvironment] = {
    PrepareScanEnvironment: PrepareScanEnvironment(
        state_table="state", ingress_bucket="ingress", batch_bucket="batches",
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:scan", ingress_prefix="in/",
        ingress_suffix=".csv", max_batch_objects=7, chunk_objects=3, chunk_bytes=4096, lost_event_age_seconds=120,
        claim_ttl_seconds=3600, log_level="DEBUG",
    ),
    TransferEnvironment: TransferEnvironment(
        batch_bucket="batches", ingress_bucket="ingress", quarantine_bucket="quarantine", review_bucket="review",
        vault_bucket="vault", event_bus="bus", state_table="state", deny_policy="DELETE", workers=3, log_level="ERROR",
    ),
    IntegrityCheckEnvironment: IntegrityCheckEnvironment(
        batch_bucket="batches", chunk_rows=10, max_json_document_bytes=2048, workers=2,
    ),
    EvaluateFindingsEnvironment: EvaluateFindingsEnvironment(
        batch_bucket="batches", state_table="state", event_bus="bus",
        finding_policy='{"HIGH": "DENY"}', unknown_format_policy="ALLOW",
        custom_data_identifier_names='{"EmployeeId-1a2b": "EmployeeId"}', results_bucket="results", results_prefix="macie/",
    ),
    JobEventsEnvironment: JobEventsEnvironment(state_table="state", item_ttl_seconds=60, log_level="DEBUG"),
    RequestReviewEnvironment: RequestReviewEnvironment(
        state_table="state", topic_arn="arn:aws:sns:us-east-1:123456789012:reviews", batch_bucket="batches",
        review_timeout_seconds=600, review_api_url="https://reviews.example.com/prod/", log_level="WARNING",
    ),
    ReviewApiEnvironment: ReviewApiEnvironment(
        state_table="state", batch_bucket="batches", user_pool_id="eu-west-1_abc", user_pool_client_id="client",
        sign_in_url="https://login.example.com", signed_in_url="https://api.example.com/review/signed-in",
        reviewers_group="reviewers", approvals_required=2, log_level="ERROR",
    ),
}


def test_every_function_has_an_environment_and_an_example():
    functions = {p.name for p in LAMBDA_DIR.iterdir() if p.is_dir() and p.name != "shared"}
    assert set(ENVIRONMENTS) == functions
    assert set(EXAMPLES) == set(ENVIRONMENTS.values())
    for name, cls in ENVIRONMENTS.items():
        assert cls.FUNCTION == name and (LAMBDA_DIR / name / f"{name}.py").is_file()


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda cls: cls.__name__)
def test_to_environment_and_back_is_the_same_environment(cls):
    example = EXAMPLES[cls]
    variables = example.to_environment()
    assert set(variables) == set(cls.variables())
    assert all(isinstance(value, str) for value in variables.values())
    assert cls.from_environment(variables) == example
    assert cls.from_environment({**variables, "UNRELATED": "x"}) == example  # other variables are ignored


def test_values_are_written_as_text_and_unset_optionals_are_left_out():
    probe = ProbeEnvironment(table="t", batch=3)
    assert probe.to_environment() == {"TABLE": "t", "BATCH": "3", "PREFIX": ""}
    assert ProbeEnvironment.from_environment(probe.to_environment()) == probe
    assert ProbeEnvironment.variables() == ("TABLE", "BATCH", "POLICY", "PREFIX")


def test_unset_or_blank_variables_take_their_defaults():
    assert ProbeEnvironment.from_environment({"TABLE": "t"}) == ProbeEnvironment(table="t", batch=25, policy=None, prefix="")
    assert ProbeEnvironment.from_environment({"TABLE": "t", "BATCH": "", "POLICY": "  "}) == ProbeEnvironment(table="t")
    assert ProbeEnvironment.from_environment({"TABLE": "t", "BATCH": " 5 "}).batch == 5
    assert ProbeEnvironment.from_environment({"TABLE": "t", "POLICY": "[1]"}).policy == "[1]"  # kept as its text


def test_defaults_match_the_construct_and_the_integrity_core():
    """integrity_core may not import pipeline_common: its own defaults must agree with the contract's."""
    prepare = PrepareScanEnvironment(state_table="s", ingress_bucket="b", batch_bucket="c", state_machine_arn="arn")
    assert (prepare.max_batch_objects, prepare.chunk_objects) == (10_000, 200)  # Trigger's and chunk_objects' defaults
    defaults = IntegrityCheckEnvironment(batch_bucket="c")
    assert (defaults.chunk_rows, defaults.max_json_document_bytes) == (
        integrity_core.DEFAULT_CHUNK_ROWS, integrity_core.DEFAULT_MAX_JSON_DOCUMENT_BYTES,
    )
    required = {"BATCH_BUCKET": "c", "STATE_TABLE": "s", "EVENT_BUS_NAME": "bus"}
    assert EvaluateFindingsEnvironment(batch_bucket="c", state_table="s", event_bus="bus") == (
        EvaluateFindingsEnvironment.from_environment(required)
    )


def test_one_error_names_every_missing_or_bad_variable():
    with pytest.raises(InvalidEnvironment) as caught:
        ProbeEnvironment.from_environment({"TABLE": " ", "BATCH": "many", "POLICY": "{not json", "PREFIX": "p/"})
    message = str(caught.value)
    assert message.startswith("probe: environment variable ")
    assert "TABLE must be set" in message
    assert "BATCH must be an integer, got 'many'" in message
    assert "POLICY must be JSON (" in message
    assert "PREFIX" not in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("raw", "problem"), [("0", "must be at least 1, got 0"), ("-3", "must be at least 1, got -3"),
                                              ("2.5", "must be an integer, got '2.5'")])
def test_integers_are_whole_and_positive(raw, problem):
    with pytest.raises(InvalidEnvironment, match=f"BATCH {problem}"):
        ProbeEnvironment.from_environment({"TABLE": "t", "BATCH": raw})


def test_real_environments_name_their_function_and_variables():
    with pytest.raises(InvalidEnvironment, match=r"^prepare_scan: environment variable STATE_TABLE must be set; "
                                                 r"INGRESS_BUCKET must be set; BATCH_BUCKET must be set; "
                                                 r"STATE_MACHINE_ARN must be set; MAX_BATCH_OBJECTS must be an integer"):
        PrepareScanEnvironment.from_environment({"MAX_BATCH_OBJECTS": "lots"})
    with pytest.raises(InvalidEnvironment, match="FINDING_POLICY must be JSON.*CUSTOM_DATA_IDENTIFIER_NAMES must be JSON"):
        EvaluateFindingsEnvironment.from_environment({"FINDING_POLICY": "HIGH=DENY", "CUSTOM_DATA_IDENTIFIER_NAMES": "{"})
    with pytest.raises(InvalidEnvironment, match="TOPIC_ARN must be set; BATCH_BUCKET must be set; REVIEW_TIMEOUT_SECONDS must be at least 1"):
        RequestReviewEnvironment.from_environment({"STATE_TABLE": "s", "REVIEW_API_URL": "https://x/", "REVIEW_TIMEOUT_SECONDS": "0"})
    with pytest.raises(InvalidEnvironment, match="^review_api: environment variable STATE_TABLE must be set; BATCH_BUCKET must be set; "
                       "REVIEWER_USER_POOL_ID must be set; REVIEWER_USER_POOL_CLIENT_ID must be set; REVIEWER_SIGN_IN_URL "
                       "must be set; REVIEWER_SIGNED_IN_URL must be set$"):
        ReviewApiEnvironment.from_environment({})


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind 'float'"):
        variable("X", kind="float")


def test_variable_name_maps_a_field_to_its_variable_and_refuses_unknown_fields():
    assert PrepareScanEnvironment.variable_name("ingress_bucket") == "INGRESS_BUCKET"
    assert RequestReviewEnvironment.variable_name("review_api_url") == "REVIEW_API_URL"
    with pytest.raises(KeyError, match="no field 'bucket'"):
        PrepareScanEnvironment.variable_name("bucket")
