"""evaluate_findings on a batch (docs/batching.md): ``count_staged``, ``evaluate`` and ``summarize``.

Every per-object line lives in the batch bucket; these operations read and write them one chunk at a
time, so memory holds one chunk plus the job's findings and discovery results index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from macie_results import (
    UnreadableResults,
    aws_call,
    finding_location,
    get_findings,
    job_fields,
    list_finding_ids,
    object_version,
    read_job_analysis,
)
from pipeline_common.batches import (
    put_events,
    read_chunk,
    read_index,
    result_entries,
    write_chunk,
)
from pipeline_common.constants import CLEAN, CORRUPT, DENY, INTEGRITY_RESULTS, REVIEW, TABLE_PARTITION_KEY
from pipeline_common.contract import (
    DECIDED,
    JOB_PREFIX,
    MANIFEST,
    REPORTED,
    ROUTED,
    STAGED,
    SUMMARY,
    VERDICTS,
    EvaluateFindingsEnvironment,
    batch_key,
)
from pipeline_common.errors import InvalidInputError, TransientError
from pipeline_common.log import get_logger
from verdicts import (
    FINDINGS_CAP,
    DiscoveryRecord,
    Evidence,
    FindingTally,
    JobState,
    evaluated,
    load_policy,
    parse_custom_identifier_names,
)

logger = get_logger("evaluate_findings")

FAILED = "FAILED"
BATCH_VERDICTS = (CLEAN, REVIEW, DENY, CORRUPT, FAILED)
REVIEW_PENDING = "REVIEW_PENDING"
HELD_IN_INGRESS, HELD_IN_QUARANTINE, HELD_IN_REVIEW = "INGRESS", "QUARANTINE", "REVIEW"
SUMMARY_FAILURES = 100
RETURNED_FAILURES = 20
# Who decided (issue 12): decisions listed in summary.json and in the notification; reviewers counted.
SUMMARY_DECISIONS = 100
RETURNED_DECISIONS = 20
MAX_COUNTED_REVIEWERS = 50
OTHER_REVIEWERS = "(other reviewers)"
MAX_LISTED_KEY = 300
TIMEOUT_DECISION = "TIMEOUT"


# ---------------------------------------------------------------------------------------- requests
def _batch_args(event: Mapping[str, Any], operation: str) -> tuple[str, int]:
    batch, count = event.get("batchId"), event.get("chunkCount")
    if not isinstance(batch, str) or not batch:
        raise InvalidInputError(f"{operation}: batchId must be a non-empty string")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise InvalidInputError(f"{operation}: chunkCount must be a non-negative integer, got {count!r}")
    return batch, count


def _chunk_counts(s3: Any, bucket: str, batch: str) -> dict[int, int]:
    return {int(c["chunk"]): int(c.get("count") or 0) for c in read_index(s3, bucket, batch)}


def _is_staged(line: Mapping[str, Any]) -> bool:
    return bool(line.get("staged")) and not line.get("error")


# ---------------------------------------------------------------------------------------- count_staged
def count_staged(event: Mapping[str, Any], *, clients: Any, env: EvaluateFindingsEnvironment, **_: Any) -> dict:
    """``{"staged", "failed"}``: objects with a staged copy and no error, and every other object of the
    batch (objects of a chunk without a staged file too, counted from the chunk index)."""
    batch, chunk_count = _batch_args(event, "count_staged")
    s3 = clients.client("s3")
    expected = _chunk_counts(s3, env.batch_bucket, batch)
    staged = failed = 0
    for chunk in range(chunk_count):
        lines = read_chunk(s3, env.batch_bucket, batch, STAGED, chunk)
        if lines is None:
            failed += expected.get(chunk, 0)
            continue
        good = sum(1 for line in lines if _is_staged(line))
        staged += good
        failed += len(lines) - good + max(0, expected.get(chunk, 0) - len(lines))
    logger.info("counted the staged objects", extra={"batchId": batch, "staged": staged, "failed": failed})
    return {"staged": staged, "failed": failed}


# ---------------------------------------------------------------------------------------- evaluate
@dataclass
class FindingsIndex:
    """The job's findings, tallied per (staged bucket, key) and analysed version: read once per batch."""

    custom_names: Mapping[str, str]
    by_key: dict[tuple[Any, Any], dict[Any, FindingTally]] = field(default_factory=dict)
    matched: set[tuple[Any, Any]] = field(default_factory=set)
    total: int = 0

    def add_all(self, findings: Iterable[Mapping[str, Any]]) -> None:
        for finding in findings:
            versions = self.by_key.setdefault(finding_location(finding), {})
            version = object_version(finding)
            if version not in versions:
                versions[version] = FindingTally(custom_names=self.custom_names, keep_locations=True)
            versions[version].add(finding)
            self.total += 1

    def match(self, where: tuple[str, str]) -> None:
        if where in self.by_key:
            self.matched.add(where)

    def unattributed(self) -> int:
        """Findings about no staged object of the batch."""
        return sum(t.count for where, tallies in self.by_key.items() if where not in self.matched for t in tallies.values())

    def tally_for(self, where: tuple[str, str], evidence: Evidence) -> FindingTally:
        """The staged version's tally; findings about other versions are noted in ``evidence``."""
        bound = FindingTally(custom_names=self.custom_names, keep_locations=True)
        for version, tally in self.by_key.get(where, {}).items():
            if evidence.bound_to(version):
                bound = tally
            else:
                evidence.other_findings.extend([version] * tally.count)
        return bound


@dataclass
class Judge:
    """Everything a batch's verdicts depend on beyond the object's own line."""

    policy: Any
    job: JobState
    findings: FindingsIndex
    records: Mapping[tuple[str, str], list[DiscoveryRecord]]
    unreadable: UnreadableResults | None
    ignored: int = 0

    def line(self, line: Mapping[str, Any]) -> dict:
        """The verdicts/ line of one staged/ line."""
        problem = _not_evaluable(line)
        if problem is not None:
            return {**line, "verdict": FAILED, "analysis": None, "findings": None, "reasons": [problem]}
        staged = line["staged"]
        where = (staged["bucket"], staged["key"])
        evidence = Evidence(staged_version=staged.get("versionId"))
        tally = self.findings.tally_for(where, evidence)
        if self.unreadable is not None:
            evidence.analysis_reason = self.unreadable.reason()
        else:
            evidence.add_records(list(self.records.get(where, [])))
        return evaluated(line, tally, evidence, self.policy, self.job, self.ignored)


def _not_evaluable(line: Mapping[str, Any]) -> str | None:
    """Why an object cannot be evaluated (its staging or check failed), or None."""
    error = line.get("error")
    if error:
        cause = error.get("Cause") or error.get("Error") if isinstance(error, Mapping) else error
        return f"the object could not be staged and checked: {cause}"
    staged = line.get("staged")
    if not isinstance(staged, Mapping) or not staged.get("bucket") or not staged.get("key"):
        return "the object has no staged copy"
    integrity = line.get("integrity")
    if not isinstance(integrity, Mapping) or integrity.get("status") not in INTEGRITY_RESULTS:
        return "the object has no integrity result"
    return None


def _job_state(event: Mapping[str, Any], errors: list[str], capped: bool) -> JobState:
    """As the old payload: only an explicit true with a COMPLETE (or unreported) status is complete."""
    job = job_fields(event.get("job"))
    job = job if isinstance(job, Mapping) else {}
    error_status = job.get("lastRunErrorStatus")
    if isinstance(error_status, Mapping):
        error_status = error_status.get("code")
    status = job.get("jobStatus") if isinstance(job.get("jobStatus"), str) else None
    complete = event.get("jobId") is not None and event.get("scanComplete") is True and status in (None, "COMPLETE")
    return JobState(
        scan_complete=complete,
        job_status=status,
        job_error=isinstance(error_status, str) and error_status.upper() == "ERROR",
        error_events=tuple(errors),
        findings_capped=capped,
    )


def _job_errors(dynamodb: Any, env: EvaluateFindingsEnvironment, job_id: str) -> list[str]:
    """Event types of the error events job_events recorded on job#<jobId>."""
    item = aws_call(
        "DynamoDB GetItem (job errors)", dynamodb.get_item,
        TableName=env.state_table, Key={TABLE_PARTITION_KEY: {"S": JOB_PREFIX + job_id}}, ConsistentRead=True,
    ).get("Item") or {}
    entries = (item.get("errors") or {}).get("L") or []
    return [((e.get("M") or {}).get("eventType") or {}).get("S") or "UNKNOWN" for e in entries]


def _staged_lines(s3: Any, bucket: str, batch: str, chunk: int) -> list[dict]:
    """The chunk's staged lines; without a staged file, its manifest lines marked as not staged."""
    lines = read_chunk(s3, bucket, batch, STAGED, chunk)
    if lines is not None:
        return lines
    manifest = read_chunk(s3, bucket, batch, MANIFEST, chunk) or []
    error = {"Error": "ChunkNotStaged", "Cause": f"chunk {chunk} was not staged (its step failed after its retries)"}
    return [{**line, "staged": None, "integrity": None, "error": error} for line in manifest]


def _evaluate_args(event: Mapping[str, Any]) -> tuple[str, int, str | None]:
    batch, chunk_count = _batch_args(event, "evaluate")
    job_id = event.get("jobId")
    if job_id is not None and (not isinstance(job_id, str) or not job_id):
        raise InvalidInputError("evaluate: jobId must be a non-empty string or null")
    return batch, chunk_count, job_id


def evaluate(
    event: Mapping[str, Any], *, clients: Any, env: EvaluateFindingsEnvironment, region: str, context: Any
) -> dict:
    """Write verdicts/<chunk> for every chunk; returns the counts per verdict and reviewRequired."""
    policy = load_policy(env.finding_policy, env.unknown_format_policy)
    findings = FindingsIndex(parse_custom_identifier_names(env.custom_data_identifier_names))
    batch, chunk_count, job_id = _evaluate_args(event)
    s3, macie = clients.client("s3"), clients.client("macie2")
    records: Mapping[tuple[str, str], list[DiscoveryRecord]] = {}
    unreadable, errors = None, []
    if job_id is not None:
        findings.add_all(get_findings(macie, list_finding_ids(macie, job_id)))
        records, unreadable = read_job_analysis(macie, s3, env, job_id, None, region, context)
        errors = _job_errors(clients.client("dynamodb"), env, job_id)
    judge = Judge(policy, _job_state(event, errors, findings.total >= FINDINGS_CAP), findings, records, unreadable)
    for chunk in range(chunk_count):  # first pass: which findings name a staged object of the batch
        for line in read_chunk(s3, env.batch_bucket, batch, STAGED, chunk) or []:
            if isinstance(line.get("staged"), Mapping):
                findings.match((line["staged"].get("bucket"), line["staged"].get("key")))
    judge.ignored = findings.unattributed()
    counts = {verdict: 0 for verdict in BATCH_VERDICTS}
    for chunk in range(chunk_count):
        out = [judge.line(line) for line in _staged_lines(s3, env.batch_bucket, batch, chunk)]
        write_chunk(s3, env.batch_bucket, batch, VERDICTS, chunk, out)
        for line in out:
            counts[line["verdict"]] += 1
    result: dict[str, Any] = {verdict.lower(): n for verdict, n in counts.items()}
    result["reviewRequired"] = counts[REVIEW] > 0
    logger.info("evaluated the batch", extra={"batchId": batch, "jobId": job_id, "findings": findings.total,
                                              "unattributedFindings": judge.ignored, "jobErrorEvents": len(errors), **result})
    if unreadable is not None:
        result["discoveryResults"] = unreadable.summary()
    return result


# ---------------------------------------------------------------------------------------- summarize
def _by_index(lines: list[dict] | None) -> dict[int, dict]:
    return {line["i"]: line for line in lines or [] if isinstance(line.get("i"), int)}


def _final(routed: Mapping[str, Any] | None, decided: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The line that holds an object's final outcome, or None when it reached none."""
    if decided is not None and decided.get("outcome"):
        return decided
    if routed is not None and routed.get("outcome") and routed["outcome"] != REVIEW_PENDING:
        return routed
    return None


def _held(latest: Mapping[str, Any], routed: Mapping[str, Any] | None) -> str:
    if routed is not None and routed.get("outcome") == REVIEW_PENDING:
        return HELD_IN_REVIEW
    if isinstance(latest.get("staged"), Mapping) and latest.get("staged"):
        return HELD_IN_QUARANTINE
    return HELD_IN_INGRESS


def _no_outcome_error(latest: Mapping[str, Any], routed: Mapping[str, Any] | None) -> dict:
    error = latest.get("error")
    if isinstance(error, Mapping) and error:
        return dict(error)
    if routed is not None:
        cause = "the object was held for review and no decision was applied to it"
    elif latest.get("verdict"):
        cause = "the object was evaluated but never routed (its chunk's routing failed)"
    else:
        cause = "the object never reached an evaluation (its chunk failed before it)"
    return {"Error": "NoOutcome", "Cause": cause}


def _text(value: Any, limit: int = MAX_LISTED_KEY) -> str:
    text = str(value or "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _approvers(approvals: Any) -> list[str]:
    """The emails (else subjects) of the approvals of a four-eyes decision, in the order recorded."""
    if not isinstance(approvals, Mapping):
        return []
    return [_text((entry.get("email") if isinstance(entry, Mapping) else None) or sub)
            for sub, entry in list(approvals.items())[:MAX_COUNTED_REVIEWERS]]


@dataclass
class Reviews:
    """Who decided the batch's reviewed objects, bounded for thousands of objects: decisions per
    reviewer and decision, timeouts, and the first decisions with the deciding reviewer and time."""

    by_reviewer: dict[str, dict[str, Any]] = field(default_factory=dict)
    decided: int = 0
    timed_out: int = 0
    decisions: list[dict] = field(default_factory=list)

    def add(self, key: str, review: Mapping[str, Any]) -> None:
        decision = str(review.get("decision") or "")
        if decision == TIMEOUT_DECISION:
            self.timed_out += 1
            return
        self.decided += 1
        email = _text(review.get("reviewerEmail") or review.get("reviewer") or "unknown")
        name = email if email in self.by_reviewer or len(self.by_reviewer) < MAX_COUNTED_REVIEWERS else OTHER_REVIEWERS
        at = _text(review.get("decidedAt"))
        counts = self.by_reviewer.setdefault(name, {})
        counts[decision] = counts.get(decision, 0) + 1
        if at:  # when this reviewer decided: the first and the last decision (ISO UTC sorts as time)
            counts["firstAt"] = min(counts.get("firstAt") or at, at)
            counts["lastAt"] = max(counts.get("lastAt") or at, at)
        if len(self.decisions) < SUMMARY_DECISIONS:
            entry = {"key": _text(key), "decision": decision, "reviewer": email, "decidedAt": at}
            approvers = _approvers(review.get("approvals"))
            if approvers:
                entry["approvedBy"] = approvers
            self.decisions.append(entry)

    def document(self, listed: int | None = None) -> dict | None:
        """The ``reviews`` section (None: nothing was reviewed), listing at most ``listed`` decisions."""
        if not (self.decided or self.timed_out):
            return None
        shown = self.decisions[:listed] if listed is not None else list(self.decisions)
        return {"decided": self.decided, "timedOut": self.timed_out, "byReviewer": dict(sorted(self.by_reviewer.items())),
                "decisions": shown, "decisionsNotListed": self.decided - len(shown)}


@dataclass
class Summary:
    batch: str
    execution_arn: str | None
    objects: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    verdicts: dict[str, int] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    failure_count: int = 0
    reported: int = 0
    reviews: Reviews = field(default_factory=Reviews)

    def count(self, outcome: str, verdict: str, key: str, reason: str | None) -> None:
        self.objects += 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1
        if outcome == FAILED:
            self.failure_count += 1
            if len(self.failures) < SUMMARY_FAILURES:
                self.failures.append({"key": key, "reason": (reason or "")[:500]})

    def document(self) -> dict:
        document = {"batchId": self.batch, "executionArn": self.execution_arn, "objectCount": self.objects,
                    "outcomes": self.outcomes, "verdicts": self.verdicts, "failureCount": self.failure_count,
                    "reportedFailed": self.reported, "failures": self.failures}
        reviews = self.reviews.document()
        if reviews is not None:
            document["reviews"] = reviews
        return document


def _reason_of(line: Mapping[str, Any]) -> str | None:
    error = line.get("error")
    if isinstance(error, Mapping) and error:
        return str(error.get("Cause") or error.get("Error"))
    reasons = line.get("reasons")
    return "; ".join(str(r) for r in reasons) if isinstance(reasons, list) and reasons else None


class _Summarizer:
    def __init__(self, clients: Any, env: EvaluateFindingsEnvironment, summary: Summary) -> None:
        self.s3, self.events, self.env, self.summary = clients.client("s3"), clients.client("events"), env, summary
        self.unsent = 0

    def chunk(self, chunk: int) -> None:
        batch, bucket = self.summary.batch, self.env.batch_bucket
        stages = {stage: _by_index(read_chunk(self.s3, bucket, batch, stage, chunk))
                  for stage in (VERDICTS, ROUTED, DECIDED, REPORTED)}
        missing: list[dict] = []
        for line in read_chunk(self.s3, bucket, batch, MANIFEST, chunk) or []:
            i = line.get("i")
            verdict_line, routed, decided = (stages[s].get(i) for s in (VERDICTS, ROUTED, DECIDED))
            final = _final(routed, decided)
            verdict = next((x["verdict"] for x in (decided, routed, verdict_line) if x and x.get("verdict")), FAILED)
            if decided is not None and isinstance(decided.get("review"), Mapping):
                self.summary.reviews.add(line["source"]["key"], decided["review"])
            if final is not None:
                self.summary.count(final["outcome"], verdict, line["source"]["key"], _reason_of(final))
                continue
            latest = next(x for x in (decided, routed, verdict_line, line) if x is not None)
            failed = {"i": i, "source": line["source"], "outcome": FAILED, "heldIn": _held(latest, routed),
                      "error": _no_outcome_error(latest, routed)}
            self.summary.count(FAILED, verdict, line["source"]["key"], failed["error"].get("Cause"))
            if i in stages[REPORTED]:
                continue  # reported by an earlier attempt
            missing.append(failed)
        if missing:
            self._report(chunk, missing, stages[REPORTED])

    def _report(self, chunk: int, missing: list[dict], already: Mapping[int, dict]) -> None:
        details = [{"scanId": self.summary.batch, "executionArn": self.summary.execution_arn, "outcome": FAILED,
                    "heldIn": m["heldIn"], "object": m["source"], "error": m["error"]} for m in missing]
        entries = result_entries(self.env.event_bus, details)
        failed = {entry["Detail"] for entry in put_events(self.events, entries)}
        sent = [m for m, entry in zip(missing, entries, strict=True) if entry["Detail"] not in failed]
        self.unsent += len(missing) - len(sent)
        self.summary.reported += len(sent)
        lines = sorted([*already.values(), *sent], key=lambda x: x["i"])
        write_chunk(self.s3, self.env.batch_bucket, self.summary.batch, REPORTED, chunk, lines)
        logger.warning("objects of the batch reached no outcome; reported FAILED",
                       extra={"batchId": self.summary.batch, "chunk": chunk, "reported": len(sent), "unsent": len(missing) - len(sent)})


def summarize(event: Mapping[str, Any], *, clients: Any, env: EvaluateFindingsEnvironment, **_: Any) -> dict:
    """FAILED result events for objects with no outcome, summary.json, and a summary small enough for SNS."""
    batch, chunk_count = _batch_args(event, "summarize")
    arn = event.get("executionArn") if isinstance(event.get("executionArn"), str) else None
    summarizer = _Summarizer(clients, env, Summary(batch, arn))
    for chunk in range(chunk_count):
        summarizer.chunk(chunk)
    document = summarizer.summary.document()
    body = json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")
    aws_call("S3 PutObject (summary)", clients.client("s3").put_object, Bucket=env.batch_bucket,
             Key=batch_key(batch, SUMMARY), Body=body, ContentType="application/json")
    if summarizer.unsent:
        raise TransientError(f"{summarizer.unsent} FAILED result event(s) could not be sent; retry")
    logger.info("summarized the batch", extra={k: v for k, v in document.items() if k not in ("failures", "reviews")})
    summary = {**document, "failures": document["failures"][:RETURNED_FAILURES]}
    reviews = summarizer.summary.reviews.document(RETURNED_DECISIONS)
    if reviews is not None:  # the notification lists fewer decisions than summary.json
        summary["reviews"] = reviews
    evaluation = event.get("evaluation")
    if isinstance(evaluation, Mapping) and isinstance(evaluation.get("discoveryResults"), Mapping):
        # Macie's discovery results could not be read: every object went to review; say where and why.
        summary["discoveryResults"] = evaluation["discoveryResults"]
    return {"summary": summary}


OPERATIONS: dict[str, Callable[..., dict]] = {
    "count_staged": count_staged,
    "evaluate": evaluate,
    "summarize": summarize,
}


def run(operation: Any, event: Mapping[str, Any], *, clients: Any, env: EvaluateFindingsEnvironment, region: str, context: Any) -> dict:
    if operation not in OPERATIONS:
        raise InvalidInputError(f"operation must be one of {', '.join(OPERATIONS)}, got {operation!r}")
    return OPERATIONS[operation](event, clients=clients, env=env, region=region, context=context)

