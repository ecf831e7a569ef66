"""Running the pipeline: uploads, the events S3 and the scheduler would send, executions, reviews.

:meth:`Runner.run` is the whole loop: upload the files, deliver their events through the stack's
trigger rules (or one scheduled event), drive the executions to their end while answering review
requests through the review page as a reviewer would, and report where every object ended.
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Protocol, Sequence, Union

from .deploy import Deployment
from .history import ExecutionHistory
from .inspection import Inspector
from .intake import IntakePump, PumpedBatch
from .results import FINAL_OUTCOMES, Execution, RunResult, Uploaded
from .sign_in import ReviewerBrowser
from .template import ACCOUNT, REGION

DECISIONS = ("approve", "deny", "none", "manual")
#: What a reviewer may choose for one object of a review page (anything else: left undecided).
OBJECT_DECISIONS = ("approve", "deny")

#: How often Runner.wait looks at the executions, the notifications and the result events: every
#: POLL_MIN_SECONDS while something happens, slowing down to POLL_MAX_SECONDS while nothing does.
POLL_MIN_SECONDS, POLL_MAX_SECONDS = 0.05, 0.25
#: A run's reviewer: one of :data:`DECISIONS` for every review, or object key -> "approve" | "deny"
#: (keys not in the mapping are left undecided: denied when the review is finished).
Decision = Union[str, Mapping[str, str]]


class Watcher(Protocol):
    """What a caller of :meth:`Runner.run` may want to hear while executions run (the CLI prints it)."""

    def review_requested(self, link: str, message: dict) -> None:
        """A review was requested: ``link`` is the review page."""

    def progress(self, finished: int, total: int) -> None:
        """Called about 20 times a second while executions run."""


class EngineError(RuntimeError):
    """The engine could not run the pipeline (the message says why)."""


def _event(detail_type: str, source: str, resources: list[str], detail: dict) -> dict:
    """An EventBridge event envelope from this account and region, sent now."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": resources,
        "detail": detail,
    }


class Runner:
    """Starts executions of the deployed state machine and drives them to their end."""

    def __init__(self, deployment: Deployment, history: ExecutionHistory, inspector: Inspector, uploaded: list[Uploaded]) -> None:
        self._deployment = deployment
        self._browser: Optional[ReviewerBrowser] = None
        self._history = history
        self._inspector = inspector
        self.uploaded = uploaded
        self.pump: Optional[IntakePump] = None  # set by the engine once deployed

    # ------------------------------------------------------------------ objects and events
    def upload(self, key: str, body: bytes, **kwargs: Any) -> Uploaded:
        """Put ``body`` into the ingress bucket (the pipeline is not started: see :meth:`deliver`)."""
        response = self._deployment.s3.put_object(Bucket=self._deployment.zones["ingress"], Key=key, Body=body, **kwargs)
        uploaded = Uploaded(key, response["VersionId"], response["ETag"].strip('"'), len(body), hashlib.sha256(body).hexdigest())
        self.uploaded.append(uploaded)
        return uploaded

    def object_created_event(self, uploaded: Uploaded) -> dict:
        """The EventBridge event S3 sends for the upload (detail as documented for "Object Created")."""
        bucket = self._deployment.zones["ingress"]
        return _event("Object Created", "aws.s3", [f"arn:aws:s3:::{bucket}"], {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": uploaded.key, "size": uploaded.size, "etag": uploaded.etag, "version-id": uploaded.version_id,
                "sequencer": uuid.uuid4().hex[:18].upper(),
            },
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        })

    def scheduled_event(self) -> dict:
        """The event an EventBridge schedule sends."""
        return _event("Scheduled Event", "aws.events", [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/local-schedule"], {})

    # ------------------------------------------------------------------ executions
    def deliver(self, event: dict) -> Optional[str]:
        """Send an event through the trigger rules as EventBridge would: an execution if one matches."""
        from moto.events.models import EventPattern

        for rule in self._deployment.trigger_rules:
            if "EventPattern" in rule and EventPattern.load(json.dumps(rule["EventPattern"])).matches_event(event):
                return self.start(event)
            if "ScheduleExpression" in rule and event.get("detail-type") == "Scheduled Event":
                return self.start(event)
        return None

    def start(self, event: Any) -> str:
        """Start an execution on ``event`` directly (no trigger rule involved)."""
        arn = self._deployment.sfn.start_execution(
            stateMachineArn=self._deployment.state_machine_arn, name=str(uuid.uuid4()), input=json.dumps(event)
        )["executionArn"]
        self._history.started(arn)
        return arn

    def run(
        self,
        files: Mapping[str, bytes],
        *,
        decision: Decision = "approve",
        schedule: bool = False,
        timeout: float = 120.0,
        watch: Optional[Watcher] = None,
    ) -> RunResult:
        """Upload ``files`` (key -> bytes), run the pipeline on them, answer reviews, and report.
        ``decision``: see :data:`Decision`; ``watch`` is told of review requests and of progress
        (objects finished, see :class:`Watcher`)."""
        check_decision(decision)
        uploaded = [self.upload(key, body) for key, body in files.items()]
        if self._batched():
            started = self._trigger_batches(uploaded, schedule)
        else:
            started = self._trigger(uploaded, schedule)
        finished = self.wait(started, decision=decision, timeout=timeout, watch=watch, objects=uploaded)
        return self._inspector.result([u.version_id for u in uploaded], finished)

    # ------------------------------------------------------------------ batches (docs/batching.md)
    def _batched(self) -> bool:
        """The pipeline takes its objects through the intake queue or a sweep (PrepareScan starts executions)."""
        intake = getattr(self._deployment, "intake", None)
        return bool(intake and (intake.mappings or intake.schedules))

    def _trigger_batches(self, uploaded: list[Uploaded], schedule: bool) -> list[str]:
        """Sweep (``schedule``) or deliver the uploads' events to the intake queue and pump it; then
        the executions PrepareScan started."""
        if schedule:
            if not self.sweep("all"):
                raise EngineError("The pipeline has no schedule or sweep rule")
        else:
            self.put_object_created_events(uploaded)
            self.pump_intake()
        return self.discover_executions()

    def put_object_created_events(self, uploaded: Sequence[Uploaded]) -> None:
        """Put the "Object Created" events S3 sends to EventBridge for the uploads, 10 per PutEvents
        (moto's own S3 EventBridge notifications are not used: their detail has ``eTag``, not
        ``etag``, a numeric ``time`` and the reason ``ObjectCreated``, and they go to every bus)."""
        entries = []
        for item in uploaded:
            event = self.object_created_event(item)
            entries.append({"Source": event["source"], "DetailType": event["detail-type"], "Resources": event["resources"],
                            "Detail": json.dumps(event["detail"])})
        for start in range(0, len(entries), 10):
            response = self._deployment.events.put_events(Entries=entries[start:start + 10])
            if response.get("FailedEntryCount"):
                raise EngineError(f"EventBridge refused {response['FailedEntryCount']} Object Created event(s)")

    def pump_intake(self) -> list[PumpedBatch]:
        """Run the intake queue's event source mapping until the queue is empty (see IntakePump)."""
        if self.pump is None:
            raise EngineError("The engine is not deployed")
        return self.pump.run()

    def sweep(self, kind: Optional[str] = None) -> list[tuple[str, Any]]:
        """Fire the schedule rules' function targets (``kind``: only targets whose input's ``sweep``
        is ``kind``); (function, result) of each invocation."""
        if self.pump is None:
            raise EngineError("The engine is not deployed")
        fired = []
        for target in self._deployment.intake.schedules:
            payload = target.input if target.input is not None else self.scheduled_event()
            if kind is not None and isinstance(target.input, dict) and target.input.get("sweep") not in (None, kind):
                continue
            body, error, _ = self.pump.invoke(target.function, payload)
            if error:
                raise EngineError(f"{target.function} failed on the {target.rule} schedule: {body}")
            fired.append((target.function, json.loads(body) if body else None))
        return fired

    def discover_executions(self) -> list[str]:
        """The executions of the state machine not seen before (PrepareScan starts them), now known to the history."""
        known = set(self._history.arns)
        found = []
        for page in self._deployment.sfn.get_paginator("list_executions").paginate(stateMachineArn=self._deployment.state_machine_arn):
            for execution in page["executions"]:
                if execution["executionArn"] not in known:
                    found.append(execution["executionArn"])
        for arn in reversed(found):  # oldest first
            self._history.started(arn)
        return list(reversed(found))

    def _trigger(self, uploaded: list[Uploaded], schedule: bool) -> list[str]:
        """One scheduled execution, or one per upload that a trigger rule matches."""
        if schedule:
            arn = self.deliver(self.scheduled_event())
            if arn is None:
                raise EngineError("The pipeline has no schedule trigger (it is triggered on object created)")
            return [arn]
        started = []
        for item in uploaded:
            arn = self.deliver(self.object_created_event(item))
            if arn is not None:
                started.append(arn)
        return started

    def wait(
        self, executions: Sequence[str], *, decision: Decision = "approve", timeout: float = 120.0,
        watch: Optional[Watcher] = None, objects: Optional[Sequence[Uploaded]] = None,
    ) -> list[Execution]:
        """Drive executions to their end, answering review requests as ``decision`` says (``manual``:
        a person answers through the review page; ``none``: nobody does). ``watch`` hears of the
        ``objects`` (default: every upload) that reached a final outcome, from the result events."""
        check_decision(decision)
        deadline = time.monotonic() + timeout
        progress = _Progress(objects if objects is not None else list(self.uploaded))
        running = list(dict.fromkeys(executions))
        pause = POLL_MIN_SECONDS
        while True:
            notifications = self._inspector.drain_notifications()
            for message in notifications:
                if message.get("event") == "REVIEW_REQUESTED":
                    self._review_requested(message, decision, watch)
            # An execution that ended stays ended: only the running ones are asked again.
            running = [arn for arn in running if self._history.status(arn) == "RUNNING"]
            events = self._inspector.drain_events() if watch is not None else []
            if watch is not None:
                progress.add(events)
                watch.progress(progress.finished if running else progress.total, progress.total)
            if not running:
                break
            if time.monotonic() > deadline:
                details = "; ".join(f"{a.rsplit(':', 1)[-1]} last in {self._history.states(a)[-1:]}" for a in running)
                raise EngineError(f"{len(running)} execution(s) still running after {timeout:.0f} s: {details}")
            # The engine's own polling competes with the executions for the one interpreter: it slows
            # down while nothing happens and speeds up again when something does.
            pause = POLL_MIN_SECONDS if notifications or events else min(pause * 2, POLL_MAX_SECONDS)
            time.sleep(pause)
        macie = getattr(self._deployment, "macie", None)
        if macie is not None:
            macie.flush_events()
        self._inspector.drain_notifications()
        self._inspector.drain_events()
        return [self._history.execution(arn) for arn in executions]

    # ------------------------------------------------------------------ reviews
    def _review_requested(self, message: dict, decision: Decision, watch: Optional[Watcher]) -> None:
        if watch is not None:
            if decision == "manual":  # a person decides: they sign in as the run's generated reviewer
                browser = self.reviewer()
                message = {**message, "signIn": {"email": browser.email, "password": browser.password}}
            watch.review_requested(message["link"], message)
        if not isinstance(decision, str) or decision in OBJECT_DECISIONS:
            self.answer_review(message["link"], decision)

    def reviewer(self) -> ReviewerBrowser:
        """The run's reviewer: generated once, in the reviewers group of the pool in moto, signed in
        through the local sign-in pages on first use."""
        if self._browser is None:
            reviewers = self._deployment.reviewers
            if reviewers is None:
                raise EngineError("The stack has no reviewers' sign-in (no review function with a user pool)")
            email = f"reviewer-{uuid.uuid4().hex[:8]}@example.com"
            self._browser = ReviewerBrowser(email, reviewers.add_reviewer(email))
        return self._browser

    def answer_review(self, link: str, decision: Decision) -> tuple[int, str]:
        """Answer a review as a reviewer would: open the link (GET: sign in, then the page), then POST
        with the page's CSRF field. ``decision`` ``approve`` or ``deny`` decides every object at once
        (``decision=<it>``); a mapping key -> decision goes through every page, chooses each listed
        object's radio button, saves the page, and finishes on the last one (objects not listed stay
        undecided: denied). Returns the last POST's status and page."""
        browser = self.reviewer()
        if isinstance(decision, str):
            return browser.post_form(link, _get(browser, link), {"decision": decision})
        body = _get(browser, link)
        first = ReviewPage.parse(body)
        status = 0
        for number in range(1, first.pages + 1):
            url = _page_url(link, number)
            if number > 1:
                body = _get(browser, url)
            page = first if number == 1 else ReviewPage.parse(body)
            choices = {name: decision[key] for key, name in page.radios.items() if decision.get(key) in OBJECT_DECISIONS}
            last = number == first.pages
            if not choices and not last:
                continue
            status, body = browser.post_form(url, body, {**choices, "action": "finish" if last else "save"})
            if status != 200:
                break
        return status, body


def check_decision(decision: Decision) -> None:
    """Raise ValueError unless ``decision`` is one of :data:`DECISIONS` or a mapping key -> approve | deny."""
    if isinstance(decision, str):
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
        return
    bad = sorted({str(v) for v in decision.values()} - set(OBJECT_DECISIONS) - {"none"})
    if bad:
        raise ValueError(f"a decision per object must be approve, deny or none, got {', '.join(bad)}")


class _Progress:
    """The objects of a run that reached a final outcome, counted from the result events as they come."""

    def __init__(self, objects: Sequence[Uploaded]) -> None:
        self._wanted = {(u.key, u.version_id) for u in objects}
        self._done: set[tuple[str, str]] = set()
        self.total = len(self._wanted)

    def add(self, events: Sequence[dict]) -> None:
        for event in events:
            detail = event.get("detail") or {}
            obj = detail.get("object") or {}
            version = (obj.get("key"), obj.get("versionId"))
            if detail.get("outcome") in FINAL_OUTCOMES and version in self._wanted:
                self._done.add(version)

    @property
    def finished(self) -> int:
        return len(self._done)


class ReviewPage(html.parser.HTMLParser):
    """What a reviewer sees on one page of a batch review: each undecided object's key and the name
    of its radio buttons (``o<index>``), and how many pages the review has."""

    _PAGES = re.compile(r"Page \d+ of (\d+)")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.radios: dict[str, str] = {}  # object key -> radio name
        self.pages = 1
        self._key: Optional[str] = None

    @classmethod
    def parse(cls, body: str) -> "ReviewPage":
        page = cls()
        page.feed(body)
        page.close()
        found = cls._PAGES.search(body)
        page.pages = int(found.group(1)) if found else 1
        return page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        attributes = dict(attrs)
        if tag == "tr":
            self._key = None
        elif tag == "code" and attributes.get("title") is not None and self._key is None:
            self._key = attributes["title"]
        elif tag == "input" and attributes.get("type") == "radio" and self._key is not None:
            self.radios.setdefault(self._key, str(attributes.get("name")))


def _page_url(link: str, number: int) -> str:
    return f"{link}?page={number}" if number > 1 else link


def _get(browser: ReviewerBrowser, url: str) -> str:
    status, body = browser.open(url)
    if status != 200:
        raise EngineError(f"The review page answered {status}")
    return body
