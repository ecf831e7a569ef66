"""Macie's job status events in CloudWatch Logs, as the local Macie writes them.

Macie writes one log stream per job (named after the job id) to the log group
``/aws/macie/classificationjobs``, one JSON message per event: ``JOB_CREATED``,
``ONE_TIME_JOB_STARTED``, ``JOB_COMPLETED`` / ``JOB_CANCELLED`` / ``JOB_PAUSED_BY_USER`` /
``JOB_PAUSED_BY_MACIE_SERVICE_QUOTA_MET`` / ``JOB_RESUMED_...`` as the job reaches them, and error
events (``BUCKET_ACCESS_DENIED`` ...) naming the affected resource
(https://docs.aws.amazon.com/macie/latest/user/discovery-jobs-monitor-cw-logs.html).

:class:`JobEventLog` builds those messages and writes them from a thread of its own, as CloudWatch
Logs delivers to subscriptions asynchronously: a subscription filter on the group (moto delivers
to Lambda on ``PutLogEvents``) must never run a function while the local Macie, or the function
that called it, holds a lock. :meth:`JobEventLog.flush` waits until everything written so far has
been delivered.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import datetime, timezone
from typing import Any, Optional

from ..contract import MACIE_JOB_LOG_GROUP

#: The event Macie writes when a job reaches a status (IDLE is for scheduled jobs: no event).
STATUS_EVENTS = {
    "COMPLETE": "JOB_COMPLETED",
    "CANCELLED": "JOB_CANCELLED",
    "PAUSED": "JOB_PAUSED_BY_MACIE_SERVICE_QUOTA_MET",
    "USER_PAUSED": "JOB_PAUSED_BY_USER",
}
_DESCRIPTIONS = {
    "JOB_CREATED": "The job was created.",
    "ONE_TIME_JOB_STARTED": "The one-time job started running.",
    "JOB_COMPLETED": "The job finished running.",
    "JOB_CANCELLED": "The job was cancelled.",
    "JOB_PAUSED_BY_MACIE_SERVICE_QUOTA_MET": "The job was paused because the monthly sensitive data discovery quota was met.",
    "JOB_PAUSED_BY_USER": "The job was paused by a user.",
    "JOB_RESUMED_BY_USER": "The job was resumed by a user.",
    "JOB_RESUMED_AUTOMATICALLY_AFTER_QUOTA_RESET": "The job was resumed after the monthly quota was reset.",
    "BUCKET_ACCESS_DENIED": "Macie doesn't have permission to access the affected S3 bucket.",
    "BUCKET_DOES_NOT_EXIST": "The affected S3 bucket doesn't exist.",
}
_STOP = object()


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JobEventLog:
    """Writes job events to CloudWatch Logs (``logs_client``: moto's), in order, from one thread.

    ``written`` holds every message written, ``lost`` those a fault dropped (``lose``: event types
    never written, e.g. ``("JOB_COMPLETED",)`` to prove the workflow's poll backstop).
    """

    def __init__(self, account_id: str, logs_client: Any = None, lose: tuple[str, ...] = ()) -> None:
        self.account_id = account_id
        self.logs = logs_client
        self.lose = tuple(lose)
        self.written: list[dict] = []
        self.lost: list[dict] = []
        self._queue: queue.Queue = queue.Queue()
        self._streams: set[str] = set()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def message(self, job_id: str, job_name: str, run_date: datetime, event_type: str, **extra: Any) -> dict:
        """One event as Macie writes it."""
        message = {
            "adminAccountId": self.account_id,
            "jobId": job_id,
            "eventType": event_type,
            "occurredAt": _iso(datetime.now(timezone.utc)),
            "description": _DESCRIPTIONS.get(event_type, event_type.replace("_", " ").capitalize() + "."),
            "jobName": job_name,
            "operation": extra.pop("operation", ""),
            "runDate": _iso(run_date),
        }
        message.update(extra)
        return message

    def emit(self, message: dict) -> None:
        """Queue ``message`` for writing (a lost event type is recorded, not written)."""
        with self._lock:
            if message["eventType"] in self.lose:
                self.lost.append(message)
                return
            self.written.append(message)
            if self.logs is None:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._deliver, name="local-macie-job-events", daemon=True)
                self._thread.start()
        self._queue.put(message)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued event has been written (and its subscriptions run)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(10)

    def _deliver(self) -> None:
        while True:
            message = self._queue.get()
            try:
                if message is _STOP:
                    return
                self._write(message)
            except Exception:  # noqa: BLE001 - a delivery failure loses the event, as a lost event would
                pass
            finally:
                self._queue.task_done()

    def _write(self, message: dict) -> None:
        stream = message["jobId"]
        if stream not in self._streams:
            try:
                self.logs.create_log_group(logGroupName=MACIE_JOB_LOG_GROUP)
            except self.logs.exceptions.ResourceAlreadyExistsException:
                pass
            try:
                self.logs.create_log_stream(logGroupName=MACIE_JOB_LOG_GROUP, logStreamName=stream)
            except self.logs.exceptions.ResourceAlreadyExistsException:
                pass
            self._streams.add(stream)
        self.logs.put_log_events(
            logGroupName=MACIE_JOB_LOG_GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": int(time.time() * 1000), "message": json.dumps(message)}],
        )
