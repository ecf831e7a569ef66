"""What the pipeline left behind: result events, notifications, stored object versions, and per-object results.

Result events and SNS notifications are drained from the engine's capture queues and kept; object
versions are listed from the four zones with their bytes' SHA-256 and tags, and each upload is
found again under the keys the workflow gives it (:meth:`Inspector.places_of`).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Iterable, Optional, Sequence

from ..contract import DENIED_PREFIX, STAGING_PREFIX, SUPERSEDED_PREFIX
from . import batchfiles
from .deploy import Deployment
from .history import ExecutionHistory
from .results import TERMINAL_OUTCOMES, Execution, ObjectResult, RunResult, Uploaded


class Inspector:
    """Reads the deployment back; ``uploaded`` is the engine's list of uploads (shared, appended to by the runner)."""

    def __init__(self, deployment: Deployment, history: ExecutionHistory, uploaded: list[Uploaded]) -> None:
        self._deployment = deployment
        self._history = history
        self._uploaded = uploaded
        self._events: list[dict] = []
        self._notifications: list[dict] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ events and notifications
    def drain_notifications(self) -> list[dict]:
        """New SNS messages: ``{"subject", "event", "message", "link"?}`` (also kept in :attr:`notifications`)."""
        out = []
        link_pattern = re.compile(re.escape(self._deployment.review_base_url()) + r"reviews/[A-Za-z0-9_-]+")
        for body in self._drain(self._deployment.notification_queue):
            envelope = json.loads(body)
            attributes = envelope.get("MessageAttributes") or {}
            event = (attributes.get("event") or {}).get("Value")
            message = envelope.get("Message", "")
            item = {"subject": envelope.get("Subject"), "event": event, "message": message}
            link = link_pattern.search(message)
            if link:
                item["link"] = link.group(0)
            out.append(item)
        with self._lock:
            self._notifications.extend(out)
        return out

    def drain_events(self) -> list[dict]:
        """New result events (EventBridge envelopes), also kept in :attr:`events`."""
        events = [json.loads(body) for body in self._drain(self._deployment.event_queue)]
        with self._lock:
            self._events.extend(events)
        return events

    def _drain(self, queue_url: str) -> list[str]:
        sqs = self._deployment.sqs
        bodies = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages") or []
            if not messages:
                return bodies
            bodies += [message["Body"] for message in messages]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            failed = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
            if failed:
                raise RuntimeError(f"could not delete {len(failed)} message(s) from {queue_url}: {failed[0]}")

    @property
    def events(self) -> list[dict]:
        """Every result event so far."""
        self.drain_events()
        return list(self._events)

    @property
    def notifications(self) -> list[dict]:
        """Every notification so far."""
        self.drain_notifications()
        return list(self._notifications)

    # ------------------------------------------------------------------ objects
    def stored_versions(self) -> list[dict]:
        """Every object version (not delete markers) in the four zones: zone, bucket, key, version, sha256, tags."""
        s3 = self._deployment.s3
        found = []
        for zone, bucket in self._deployment.zones.items():
            paginator = s3.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=bucket):
                for version in page.get("Versions") or []:
                    body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
                    tags = s3.get_object_tagging(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["TagSet"]
                    found.append({
                        "zone": zone,
                        "bucket": bucket,
                        "key": version["Key"],
                        "versionId": version["VersionId"],
                        "isLatest": version["IsLatest"],
                        "sha256": hashlib.sha256(body).hexdigest(),
                        "tags": {t["Key"]: t["Value"] for t in tags},
                    })
        return found

    def places_of(self, uploaded: Uploaded, stored: Optional[list[dict]] = None) -> list[dict]:
        """Where the uploaded version's bytes are now, under the keys the workflow gives it.

        Ingress: the same version. Vault: the same key. Quarantine: ``scans/<scan-id>/<key>``,
        ``denied/<scan-id>/<key>`` or ``superseded/<scan-id>/<key>``. Review: ``<scan-id>/<key>``. Same bytes under another key are
        another object, not this one.
        """
        stored = self.stored_versions() if stored is None else stored
        # <scan id>/<key>, or <scan id>/#sha256/<hex of the key> when that would exceed 1,024 bytes (zone_key)
        hashed = "#sha256/" + hashlib.sha256(uploaded.key.encode("utf-8")).hexdigest()
        scan = r"[A-Za-z0-9_-]{1,64}/(?:" + re.escape(uploaded.key) + "|" + re.escape(hashed) + ")"
        shapes = {
            "quarantine": re.compile(
                "(?:" + "|".join(re.escape(p) for p in (STAGING_PREFIX, DENIED_PREFIX, SUPERSEDED_PREFIX)) + ")" + scan
            ),
            "review": re.compile(scan),
        }
        places = []
        for s in stored:
            if s["sha256"] != uploaded.sha256:
                continue
            if s["zone"] == "ingress":
                ok = s["key"] == uploaded.key and s["versionId"] == uploaded.version_id
            elif s["zone"] == "vault":
                ok = s["key"] == uploaded.key
            else:
                ok = bool(shapes[s["zone"]].fullmatch(s["key"]))
            if ok:
                places.append(s)
        return places

    # ------------------------------------------------------------------ results
    def result(self, version_ids: Iterable[str], executions: Sequence[str | Execution]) -> RunResult:
        """Where the uploads with these ingress version ids ended, and what the executions did.

        ``executions``: execution ARNs (looked up now) or finished :class:`Execution` objects, as
        :meth:`~macie_pipeline.local.runner.Runner.wait` returns them (used as they are).
        """
        events = self.events
        stored = self.stored_versions()
        wanted = set(version_ids)
        by_version: dict[tuple[str, str], list[dict]] = {}  # one pass over the events, not one per object
        for event in events:
            detail = event.get("detail") or {}
            obj = detail.get("object") or {}
            if detail.get("outcome") in TERMINAL_OUTCOMES:
                by_version.setdefault((obj.get("key"), obj.get("versionId")), []).append(event)
        by_sha: dict[str, list[dict]] = {}
        for version in stored:
            by_sha.setdefault(version["sha256"], []).append(version)
        finished = [e if isinstance(e, Execution) else self._history.execution(e) for e in executions]
        fates = self.fates(e.arn for e in finished)
        objects = [
            self._object_result(u, by_version.get((u.key, u.version_id), []), by_sha.get(u.sha256, []),
                                fates.get((self._deployment.zones["ingress"], u.key, u.version_id)))
            for u in self._uploaded if u.version_id in wanted
        ]
        return RunResult(objects, finished, events, self.notifications, stored)

    def fates(self, executions: Iterable[str]) -> dict[tuple[str, str, str], dict]:
        """(bucket, key, ingress version) -> its fate in the batch files of these executions (the
        execution's name is its batch id): the last line among routed/, decided/, reported/."""
        out: dict[tuple[str, str, str], dict] = {}
        for arn in executions:
            out.update(batchfiles.fates(self._deployment.s3, self._deployment.batch_bucket, arn.rsplit(":", 1)[-1]))
        return out

    def _object_result(self, uploaded: Uploaded, events: list[dict], stored: list[dict], fate: Optional[dict] = None) -> ObjectResult:
        """One upload's result: its last terminal result event (else its fate in the batch files: an
        event that was never sent), and the one place its bytes are in."""
        mine = [e["detail"] for e in events if _is_terminal_event_of(e, uploaded)]
        last = mine[-1] if mine else (fate or {})
        places = self.places_of(uploaded, stored)
        place = places[0] if len(places) == 1 else None
        findings = (last.get("findings") or {}).get("types") or {}
        return ObjectResult(
            key=uploaded.key,
            version_id=uploaded.version_id,
            outcome=last.get("outcome") or ("NOT_SCANNED" if not last else None),
            integrity=(last.get("integrity") or {}).get("status"),
            findings={str(k): int(v) for k, v in findings.items()},
            verdict=last.get("verdict"),
            zone=place["zone"] if place else ("deleted" if not places else "several"),
            bucket=place["bucket"] if place else None,
            final_key=place["key"] if place else None,
            tags=place["tags"] if place else {},
            review=last.get("review"),
            reason=_reason(last, mine),
        )


def _reason(detail: dict, details: list[dict]) -> Optional[str]:
    """Why the object ended where it did, from its result events: a failure's error (from the event
    that names it: the scan-wide report that follows has none), else the verdict's reasons, else the
    integrity check's reason."""
    if detail.get("outcome") == "FAILED":
        named = next((d for d in reversed(details) if d.get("outcome") == "FAILED" and d.get("error")), detail)
        held = named.get("heldIn")
        return f"{named.get('error') or 'the scan failed'}" + (f" (held in {held.lower()})" if held else "")
    reasons = [str(r) for r in detail.get("reasons") or [] if r]
    if reasons:
        return "; ".join(reasons)
    return (detail.get("integrity") or {}).get("reason") or None


def _is_terminal_event_of(event: dict, uploaded: Uploaded) -> bool:
    detail = event.get("detail") or {}
    obj = detail.get("object", {})
    return obj.get("key") == uploaded.key and obj.get("versionId") == uploaded.version_id and detail.get("outcome") in TERMINAL_OUTCOMES
