"""The local Macie's job status events in CloudWatch Logs (as Macie writes them) and its background jobs."""

from __future__ import annotations

import time

import boto3
import pytest
from moto import mock_aws

from macie_pipeline.contract import MACIE_JOB_LOG_GROUP
from macie_pipeline.local.macie import LocalMacie, MacieBehavior
from tests.local.test_local_macie import ACCOUNT, EMPLOYEE, QUARANTINE, REGION, TEST_CARDS, job_request, put

FIELDS = {"adminAccountId", "jobId", "eventType", "occurredAt", "description", "jobName", "operation", "runDate"}


@pytest.fixture
def aws():
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=QUARANTINE)
        s3.put_bucket_versioning(Bucket=QUARANTINE, VersioningConfiguration={"Status": "Enabled"})
        yield s3, boto3.client("logs", region_name=REGION)


def _macie(s3, logs, **behavior) -> LocalMacie:
    return LocalMacie(account_id=ACCOUNT, region=REGION, s3_client=s3, custom_identifiers=[EMPLOYEE], allow_lists=[TEST_CARDS],
                      behavior=MacieBehavior(**behavior), logs_client=logs)


def _logged(logs, job_id: str) -> list[dict]:
    import json

    events = logs.get_log_events(logGroupName=MACIE_JOB_LOG_GROUP, logStreamName=job_id, startFromHead=True)["events"]
    return [json.loads(e["message"]) for e in events]


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_background_job_completes_on_its_own_and_logs_every_event(aws):
    s3, logs = aws
    put(s3, "a.csv", b"name,card\nAlex,4539 1488 0343 6467\n")
    macie = _macie(s3, logs, run_seconds=0.05)
    try:
        job_id = macie.call("CreateClassificationJob", job_request())["jobId"]
        _wait_for(lambda: _status(macie, job_id) == "COMPLETE")  # nobody described it
        assert macie.flush_events()
        messages = _logged(logs, job_id)
        assert [m["eventType"] for m in messages] == ["JOB_CREATED", "ONE_TIME_JOB_STARTED", "JOB_COMPLETED"]
        assert all(FIELDS <= set(m) and m["jobId"] == job_id and m["adminAccountId"] == ACCOUNT for m in messages)
        assert messages[0]["jobName"] == "sensitive-data-scan-scan-1" and messages[0]["operation"] == "CreateClassificationJob"
        assert macie.findings  # classified when it completed
        assert macie.call("DescribeClassificationJob", {"jobId": job_id})["jobStatus"] == "COMPLETE"
    finally:
        macie.close()


def test_a_describe_driven_job_logs_its_final_status_too(aws):
    s3, logs = aws
    macie = _macie(s3, logs, running_polls=1, job_status="CANCELLED")
    try:
        job_id = macie.call("CreateClassificationJob", job_request())["jobId"]
        assert macie.call("DescribeClassificationJob", {"jobId": job_id})["jobStatus"] == "RUNNING"
        assert macie.call("DescribeClassificationJob", {"jobId": job_id})["jobStatus"] == "CANCELLED"
        assert macie.flush_events()
        assert [m["eventType"] for m in _logged(logs, job_id)] == ["JOB_CREATED", "ONE_TIME_JOB_STARTED", "JOB_CANCELLED"]
    finally:
        macie.close()


def test_a_quota_paused_job_resumes_and_completes(aws):
    s3, logs = aws
    macie = _macie(s3, logs, run_seconds=0.02, job_status="PAUSED", resume_after_seconds=0.05)
    try:
        job_id = macie.call("CreateClassificationJob", job_request())["jobId"]
        _wait_for(lambda: _status(macie, job_id) == "COMPLETE")
        assert macie.flush_events()
        assert [m["eventType"] for m in _logged(logs, job_id)][2:] == [
            "JOB_PAUSED_BY_MACIE_SERVICE_QUOTA_MET", "JOB_RESUMED_AUTOMATICALLY_AFTER_QUOTA_RESET", "JOB_COMPLETED"]
    finally:
        macie.close()


def test_user_pause_and_resume_are_logged(aws):
    s3, logs = aws
    macie = _macie(s3, logs, run_seconds=5)
    try:
        job_id = macie.call("CreateClassificationJob", job_request())["jobId"]
        macie.call("UpdateClassificationJob", {"jobId": job_id, "jobStatus": "USER_PAUSED"})
        macie.call("UpdateClassificationJob", {"jobId": job_id, "jobStatus": "CANCELLED"})
        assert macie.flush_events()
        assert [m["eventType"] for m in _logged(logs, job_id)][2:] == ["JOB_PAUSED_BY_USER", "JOB_CANCELLED"]
    finally:
        macie.close()


def test_error_events_name_the_affected_bucket_and_lost_events_are_not_written(aws):
    s3, logs = aws
    macie = _macie(s3, logs, run_seconds=0.01, error_events=("BUCKET_ACCESS_DENIED",), lose_events=("JOB_COMPLETED",))
    try:
        job_id = macie.call("CreateClassificationJob", job_request())["jobId"]
        _wait_for(lambda: _status(macie, job_id) == "COMPLETE")
        assert macie.flush_events()
        messages = _logged(logs, job_id)
        assert [m["eventType"] for m in messages] == ["JOB_CREATED", "ONE_TIME_JOB_STARTED", "BUCKET_ACCESS_DENIED"]
        assert messages[2]["affectedResource"] == {"type": "S3_BUCKET_NAME", "value": QUARANTINE}
        assert [m["eventType"] for m in macie.events.lost] == ["JOB_COMPLETED"]
    finally:
        macie.close()


def test_without_a_logs_client_events_are_only_recorded(aws):
    s3, _ = aws
    macie = _macie(s3, None)
    job_id = macie.call("CreateClassificationJob", job_request())["jobId"]
    macie.call("DescribeClassificationJob", {"jobId": job_id})
    assert [m["eventType"] for m in macie.events.written] == ["JOB_CREATED", "ONE_TIME_JOB_STARTED", "JOB_COMPLETED"]
    macie.close()


def _status(macie: LocalMacie, job_id: str) -> str:
    """The job's status as DescribeClassificationJob gives it (under the service's lock, so a
    status change and its event are seen together)."""
    return macie.call("DescribeClassificationJob", {"jobId": job_id})["jobStatus"]
