"""Resume the execution waiting for a Macie job (docs/batching.md, Job completion).

Two entry points:
- ``{"operation": "wait", "taskToken", "jobId", "batchId"}`` from the workflow (.waitForTaskToken):
  stores the token on ``job#<jobId>`` and, when the job has already ended, resumes the execution at once;
- a CloudWatch Logs subscription event (``{"awslogs": {"data": <base64 gzip JSON>}}``) from the group
  ``/aws/macie/classificationjobs``: a wake-up event resumes the waiting execution (the workflow then
  describes the job; the event carries no verdict), an error event is recorded on the job's item.

Other pipelines share the log group: events of jobs this pipeline does not know are ignored.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import time
import zlib
from typing import Any, Callable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from pipeline_common.clients import ClientCache, client_config
from pipeline_common.contract import (
    JOB_ERROR_EVENT_PREFIXES,
    JOB_PREFIX,
    JOB_WAKE_EVENTS,
    TABLE_PARTITION_KEY,
    TABLE_TTL_ATTRIBUTE,
    JobEventsEnvironment,
)
from pipeline_common.errors import InvalidInputError, TransientError
from pipeline_common.log import get_logger
from pipeline_common.transient import as_pipeline_error, error_code

logger = get_logger("job_events")

_CLIENTS = ClientCache(client_config(read_timeout=20))

#: Job statuses after which nothing more happens: the waiting execution is resumed at once.
ENDED_STATUSES = ("COMPLETE", "CANCELLED")
#: At most this many error events are kept on a job's item.
MAX_ERRORS = 50
MAX_TEXT = 1000
#: SendTaskSuccess answers for a token that can no longer be used (already used, timed out, unknown).
STALE_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


def job_pk(job_id: str) -> str:
    return JOB_PREFIX + job_id


def _call(what: str, call: Callable[..., Any], /, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except (ClientError, BotoCoreError) as error:
        raise as_pipeline_error(what, error) from error


def _send(sfn: Any, token: str, output: Mapping[str, Any], job_id: str) -> bool:
    """SendTaskSuccess; a stale token is logged and ignored (False)."""
    try:
        sfn.send_task_success(taskToken=token, output=json.dumps(output))
    except ClientError as error:
        if error_code(error) in STALE_TOKEN_ERRORS:
            logger.info("the waiting task is gone; nothing to resume", extra={"jobId": job_id, "error": error_code(error)})
            return False
        raise as_pipeline_error("Step Functions SendTaskSuccess", error) from error
    except BotoCoreError as error:
        raise as_pipeline_error("Step Functions SendTaskSuccess", error) from error
    return True


# ---------------------------------------------------------------------------------------- wait
def _wait_request(event: Mapping[str, Any]) -> tuple[str, str, str]:
    values = []
    for name in ("taskToken", "jobId", "batchId"):
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"wait: {name} must be a non-empty string")
        values.append(value)
    return values[0], values[1], values[2]


def wait(event: Mapping[str, Any], *, clients: Any, env: JobEventsEnvironment, clock: Callable[[], float]) -> dict:
    """Store the task token on job#<jobId>, then resume at once if the job has already ended."""
    token, job_id, batch = _wait_request(event)
    _call(
        "DynamoDB UpdateItem (job token)",
        clients.client("dynamodb").update_item,
        TableName=env.state_table,
        Key={TABLE_PARTITION_KEY: {"S": job_pk(job_id)}},
        UpdateExpression="SET taskToken = :token, batchId = :batch, #ttl = :ttl",
        ExpressionAttributeNames={"#ttl": TABLE_TTL_ATTRIBUTE},
        ExpressionAttributeValues={
            ":token": {"S": token},
            ":batch": {"S": batch},
            ":ttl": {"N": str(int(clock()) + env.item_ttl_seconds)},
        },
    )
    job = _call("Macie DescribeClassificationJob", clients.client("macie2").describe_classification_job, jobId=job_id)
    status = job.get("jobStatus")
    resumed = False
    if status in ENDED_STATUSES:
        resumed = _send(clients.client("stepfunctions"), token, {"eventType": f"ALREADY_{status}"}, job_id)
    logger.info("waiting for the Macie job", extra={"jobId": job_id, "batchId": batch, "jobStatus": status, "resumed": resumed})
    return {"jobId": job_id, "jobStatus": status, "resumed": resumed}


# ---------------------------------------------------------------------------------------- log events
def decode_logs(event: Mapping[str, Any]) -> dict:
    """The CloudWatch Logs subscription payload (``awslogs.data``: base64 of gzip of JSON)."""
    data = (event.get("awslogs") or {}).get("data") if isinstance(event.get("awslogs"), Mapping) else None
    if not isinstance(data, str):
        raise InvalidInputError("awslogs.data must be a string")
    try:
        payload = json.loads(gzip.decompress(base64.b64decode(data)))
    except (binascii.Error, OSError, EOFError, zlib.error, ValueError) as error:
        raise InvalidInputError(f"awslogs.data is not base64 of gzipped JSON: {error}") from None
    if not isinstance(payload, Mapping):
        raise InvalidInputError("awslogs.data must hold a JSON object")
    return dict(payload)


def parse_message(message: Any) -> dict | None:
    """Macie's job event (a JSON object with jobId and eventType), or None when the line is not one."""
    try:
        value = json.loads(message) if isinstance(message, str) else None
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("jobId"), str) or not isinstance(value.get("eventType"), str):
        return None
    return value


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text[:MAX_TEXT]


def error_entry(message: Mapping[str, Any]) -> dict:
    """The ``errors`` list entry (attribute-value form) of one error event."""
    return {
        "M": {
            "eventType": {"S": message["eventType"]},
            "occurredAt": {"S": _text(message.get("occurredAt") or "")},
            "description": {"S": _text(message.get("description") or "")},
            "affectedResource": {"S": _text(message.get("affectedResource") or "")},
        }
    }


class _LogRun:
    """One invocation's log events: counts, and the AWS failures to raise once every line is done."""

    def __init__(self, clients: Any, env: JobEventsEnvironment) -> None:
        self.clients, self.env = clients, env
        self.counts = {"events": 0, "woken": 0, "errorsRecorded": 0, "ignored": 0, "badLines": 0}
        self.failures: list[Exception] = []

    def handle(self, log_event: Any) -> None:
        self.counts["events"] += 1
        message = parse_message(log_event.get("message") if isinstance(log_event, Mapping) else None)
        if message is None:
            self.counts["badLines"] += 1
            logger.warning("skipped a log line that is not a Macie job event",
                           extra={"logEventId": log_event.get("id") if isinstance(log_event, Mapping) else None})
            return
        job_id, event_type = message["jobId"], message["eventType"]
        try:
            if event_type.startswith(JOB_ERROR_EVENT_PREFIXES):
                self._record_error(message)
            if event_type in JOB_WAKE_EVENTS:
                self._wake(message)
            elif not event_type.startswith(JOB_ERROR_EVENT_PREFIXES):
                self.counts["ignored"] += 1
                logger.debug("job event needs no action", extra={"jobId": job_id, "eventType": event_type})
        except Exception as error:  # noqa: BLE001 - the other lines go on; raised at the end
            logger.exception("a job event could not be handled", extra={"jobId": job_id, "eventType": event_type})
            self.failures.append(error)

    def _wake(self, message: Mapping[str, Any]) -> None:
        job_id = message["jobId"]
        item = _call(
            "DynamoDB GetItem (job token)", self.clients.client("dynamodb").get_item,
            TableName=self.env.state_table, Key={TABLE_PARTITION_KEY: {"S": job_pk(job_id)}}, ConsistentRead=True,
        ).get("Item")
        token = ((item or {}).get("taskToken") or {}).get("S")
        if not token:
            self.counts["ignored"] += 1
            logger.debug("no execution of this pipeline waits for this job", extra={"jobId": job_id})
            return
        output = {"eventType": message["eventType"], "occurredAt": message.get("occurredAt")}
        if _send(self.clients.client("stepfunctions"), token, output, job_id):
            self.counts["woken"] += 1
            logger.info("resumed the execution waiting for the job", extra={"jobId": job_id, "eventType": message["eventType"]})

    def _record_error(self, message: Mapping[str, Any]) -> None:
        job_id = message["jobId"]
        try:
            self.clients.client("dynamodb").update_item(
                TableName=self.env.state_table,
                Key={TABLE_PARTITION_KEY: {"S": job_pk(job_id)}},
                UpdateExpression="SET #errors = list_append(if_not_exists(#errors, :empty), :entry)",
                ConditionExpression=f"attribute_exists({TABLE_PARTITION_KEY}) AND "
                "(attribute_not_exists(#errors) OR size(#errors) < :cap)",
                ExpressionAttributeNames={"#errors": "errors"},
                ExpressionAttributeValues={":empty": {"L": []}, ":entry": {"L": [error_entry(message)]},
                                           ":cap": {"N": str(MAX_ERRORS)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise as_pipeline_error("DynamoDB UpdateItem (job errors)", error) from error
            if error.response.get("Item"):
                logger.warning("the job already has the most error events kept; this one is only logged",
                               extra={"jobId": job_id, "eventType": message["eventType"], "description": _text(message.get("description"))})
            else:
                logger.debug("error event of a job this pipeline does not know", extra={"jobId": job_id})
                self.counts["ignored"] += 1
            return
        except BotoCoreError as error:
            raise as_pipeline_error("DynamoDB UpdateItem (job errors)", error) from error
        self.counts["errorsRecorded"] += 1
        logger.warning("Macie reported an error for the job", extra={
            "jobId": job_id, "eventType": message["eventType"], "description": _text(message.get("description"))})


def log_events(event: Mapping[str, Any], *, clients: Any, env: JobEventsEnvironment) -> dict:
    payload = decode_logs(event)
    if payload.get("messageType") == "CONTROL_MESSAGE":
        logger.info("CloudWatch Logs control message")
        return {"events": 0, "woken": 0, "errorsRecorded": 0, "ignored": 0, "badLines": 0}
    run = _LogRun(clients, env)
    for log_event in payload.get("logEvents") or []:
        run.handle(log_event)
    logger.info("handled the job events", extra=run.counts)
    if run.failures:
        # Lambda retries the delivery; a wake-up sent twice finds a used token, which is ignored.
        raise TransientError(f"{len(run.failures)} job event(s) could not be handled: {run.failures[0]}")
    return run.counts


def run(event: Any, *, clients: Any, env: JobEventsEnvironment, clock: Callable[[], float] = time.time) -> dict:
    if isinstance(event, Mapping) and event.get("operation") == "wait":
        return wait(event, clients=clients, env=env, clock=clock)
    if isinstance(event, Mapping) and "awslogs" in event:
        return log_events(event, clients=clients, env=env)
    keys = sorted(event)[:10] if isinstance(event, Mapping) else type(event).__name__
    raise InvalidInputError(f"job_events takes a wait operation or a CloudWatch Logs subscription event, got {keys}")


def handler(event: Any, context: Any) -> dict:
    env = JobEventsEnvironment.from_environment(os.environ)
    return run(event, clients=_CLIENTS, env=env)
