"""job_events against moto DynamoDB, a stubbed Macie and a recording Step Functions client:
the wait operation, wake-ups and error events from Macie's CloudWatch Logs, and what must be ignored."""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any, Iterator

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

import job_events
from pipeline_common.clients import ClientCache
from pipeline_common.errors import InvalidInputError, TransientError
from support.lambda_helpers import captured_logs, client_error

REGION = "us-east-1"
TABLE = "state-table"
JOB = "3ce05dbb7ec5505def334104bf43bf6b"


class FakeSfn:
    """SendTaskSuccess recorder (moto's is a no-op); ``fail`` maps a token to the error code it answers."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.fail: dict[str, str] = {}

    def send_task_success(self, *, taskToken: str, output: str) -> dict:  # noqa: N803 - the boto3 parameter names
        if taskToken in self.fail:
            raise client_error(self.fail[taskToken], 400, "SendTaskSuccess")
        self.sent.append((taskToken, json.loads(output)))
        return {}


@pytest.fixture
def aws(monkeypatch) -> Iterator[dict]:
    monkeypatch.setenv("STATE_TABLE", TABLE)
    monkeypatch.setenv("ITEM_TTL_SECONDS", "3600")
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        macie = boto3.client("macie2", region_name=REGION)
        sfn = FakeSfn()
        with Stubber(macie) as stubber:
            monkeypatch.setattr(job_events, "_CLIENTS", ClientCache(job_events._CLIENTS.config, dynamodb=ddb, macie2=macie, stepfunctions=sfn))
            yield {"ddb": ddb, "macie": stubber, "sfn": sfn}
            stubber.assert_no_pending_responses()


def item(aws, job_id: str = JOB) -> dict | None:
    return aws["ddb"].get_item(TableName=TABLE, Key={"pk": {"S": f"job#{job_id}"}}, ConsistentRead=True).get("Item")


def wait(token: str = "token-1", job_id: str = JOB) -> dict:
    return job_events.handler({"operation": "wait", "taskToken": token, "jobId": job_id, "batchId": "b-1"}, None)


def describe(stubber: Stubber, status: str, job_id: str = JOB) -> None:
    stubber.add_response("describe_classification_job", {"jobId": job_id, "jobStatus": status}, {"jobId": job_id})


def macie_event(event_type: str, job_id: str = JOB, **extra: Any) -> str:
    return json.dumps({
        "adminAccountId": "123456789012", "jobId": job_id, "eventType": event_type,
        "occurredAt": "2024-05-01T10:15:00.000Z", "description": f"{event_type} happened",
        "jobName": "scan-b-1", "operation": "ListObjects", "runDate": "2024-05-01T10:00:00.000Z", **extra,
    })


def logs_event(*messages: str, message_type: str = "DATA_MESSAGE") -> dict:
    payload = {
        "messageType": message_type, "owner": "123456789012", "logGroup": "/aws/macie/classificationjobs",
        "logStream": JOB, "subscriptionFilters": ["pipeline"],
        "logEvents": [{"id": str(n), "timestamp": 1714558500000 + n, "message": m} for n, m in enumerate(messages)],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


# ---------------------------------------------------------------------------------------- wait
def test_wait_stores_the_token_and_a_running_job_is_left_to_its_events(aws):
    describe(aws["macie"], "RUNNING")
    before = int(time.time())
    assert wait() == {"jobId": JOB, "jobStatus": "RUNNING", "resumed": False}
    stored = item(aws)
    assert (stored["taskToken"]["S"], stored["batchId"]["S"]) == ("token-1", "b-1")
    assert before + 3600 <= int(stored["expiresAt"]["N"]) <= int(time.time()) + 3600
    assert aws["sfn"].sent == []


@pytest.mark.parametrize("status", ["COMPLETE", "CANCELLED"])
def test_wait_for_a_job_that_already_ended_resumes_at_once(aws, status):
    describe(aws["macie"], status)
    assert wait()["resumed"] is True
    assert aws["sfn"].sent == [("token-1", {"eventType": f"ALREADY_{status}"})]


def test_wait_keeps_the_error_events_already_recorded(aws):
    describe(aws["macie"], "RUNNING")
    wait("token-1")
    job_events.handler(logs_event(macie_event("BUCKET_ACCESS_DENIED", affectedResource={"type": "S3_BUCKET", "value": "q"})), None)
    describe(aws["macie"], "RUNNING")
    wait("token-2")  # a later wait of the same job (after a backstop timeout)
    stored = item(aws)
    assert stored["taskToken"]["S"] == "token-2" and len(stored["errors"]["L"]) == 1


def test_wait_with_a_bad_request_or_a_throttled_table(aws, monkeypatch):
    with pytest.raises(InvalidInputError, match="wait: jobId must be a non-empty string"):
        job_events.handler({"operation": "wait", "taskToken": "t", "batchId": "b"}, None)
    monkeypatch.setattr(aws["ddb"], "update_item", lambda **_: (_ for _ in ()).throw(client_error("ThrottlingException", 400)))
    with pytest.raises(TransientError):
        wait()


# ---------------------------------------------------------------------------------------- log events
def test_a_completion_event_wakes_the_waiting_execution(aws):
    describe(aws["macie"], "RUNNING")
    wait()
    result = job_events.handler(logs_event(macie_event("JOB_COMPLETED")), None)
    assert result == {"events": 1, "woken": 1, "errorsRecorded": 0, "ignored": 0, "badLines": 0}
    assert aws["sfn"].sent == [("token-1", {"eventType": "JOB_COMPLETED", "occurredAt": "2024-05-01T10:15:00.000Z"})]


def test_error_events_are_recorded_capped_and_a_used_token_is_ignored(aws):
    describe(aws["macie"], "RUNNING")
    wait()
    aws["sfn"].fail["token-1"] = "TaskTimedOut"  # the backstop fired first
    errors = [macie_event("BUCKET_ACCESS_DENIED", affectedResource={"type": "S3_BUCKET", "value": "quarantine"}),
              macie_event("OBJECT_IO_ERROR", affectedResource={"type": "S3_OBJECT", "value": "scans/b-1/a.csv"})]
    result = job_events.handler(logs_event(*errors, macie_event("JOB_COMPLETED")), None)
    assert result == {"events": 3, "woken": 0, "errorsRecorded": 2, "ignored": 0, "badLines": 0}
    recorded = item(aws)["errors"]["L"]
    assert recorded[0]["M"] == {
        "eventType": {"S": "BUCKET_ACCESS_DENIED"}, "occurredAt": {"S": "2024-05-01T10:15:00.000Z"},
        "description": {"S": "BUCKET_ACCESS_DENIED happened"},
        "affectedResource": {"S": '{"type": "S3_BUCKET", "value": "quarantine"}'},
    }
    job_events.handler(logs_event(*[macie_event("OBJECT_IO_ERROR")] * 60), None)
    assert len(item(aws)["errors"]["L"]) == job_events.MAX_ERRORS


def test_events_of_unknown_jobs_bad_lines_and_control_messages_are_skipped(aws):
    describe(aws["macie"], "RUNNING")
    wait()
    with captured_logs(job_events) as logs:
        result = job_events.handler(logs_event(
            "not json at all",
            json.dumps({"something": "else"}),
            macie_event("JOB_COMPLETED", job_id="another-pipelines-job"),
            macie_event("BUCKET_ACCESS_DENIED", job_id="another-pipelines-job"),
            macie_event("SCHEDULED_RUN_SKIPPED"),
            macie_event("JOB_COMPLETED"),
        ), None)
    assert result == {"events": 6, "woken": 1, "errorsRecorded": 0, "ignored": 3, "badLines": 2}
    assert item(aws, "another-pipelines-job") is None  # never created by an event
    assert [token for token, _ in aws["sfn"].sent] == ["token-1"]
    assert "skipped a log line that is not a Macie job event" in logs.getvalue()
    assert job_events.handler(logs_event(message_type="CONTROL_MESSAGE"), None)["events"] == 0


def test_an_aws_failure_on_one_line_does_not_stop_the_others_and_is_raised_at_the_end(aws, monkeypatch):
    describe(aws["macie"], "RUNNING")
    wait()
    aws["sfn"].fail["token-1"] = "ThrottlingException"
    with pytest.raises(TransientError, match="1 job event"):
        job_events.handler(logs_event(macie_event("JOB_COMPLETED"), macie_event("BUCKET_ACCESS_DENIED")), None)
    assert len(item(aws)["errors"]["L"]) == 1  # the line after the failure was handled


def test_other_events_are_invalid_input(aws):
    with pytest.raises(InvalidInputError, match=r"got \['operation'\]"):
        job_events.handler({"operation": "poll"}, None)
    with pytest.raises(InvalidInputError, match="not base64 of gzipped JSON"):
        job_events.handler({"awslogs": {"data": "bm90IGd6aXA="}}, None)
