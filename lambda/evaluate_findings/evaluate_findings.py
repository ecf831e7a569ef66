"""Turn the findings and discovery results of a Macie job into a verdict per object (see docs/CONTRACTS.md).

Fails closed: an object Macie did not fully analyse, a finding without a known severity, or a job that
ended early or with errors never yields CLEAN.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import boto3
from botocore.config import Config

from pipeline_common.constants import CLEAN, INTEGRITY_RESULTS, REVIEW, VERDICTS
from pipeline_common.errors import InvalidInputError
from pipeline_common.log import get_logger
from pipeline_common.objects import object_ref

from macie_results import (
    finding_location,
    get_findings,
    job_results_prefix,
    list_finding_ids,
    read_analysis,
    results_location,
)
from verdicts import MISSING, FindingTally, JobState, Policy, decide, load_policy, parse_custom_identifier_names

logger = get_logger("evaluate_findings")

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)
_CLIENTS: dict[str, Any] = {}


def _client(name: str) -> Any:
    if name not in _CLIENTS:
        _CLIENTS[name] = boto3.client(name, config=_CONFIG)
    return _CLIENTS[name]


def _account_id(context: Any) -> str:
    arn = getattr(context, "invoked_function_arn", None)
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) < 5 or not parts[4].isdigit():
        raise InvalidInputError("cannot tell the AWS account id: the Lambda context has no invoked_function_arn")
    return parts[4]


def _job_fields(job: Any) -> Any:
    """Accept the job as the contract names it, or as Step Functions returns DescribeClassificationJob.

    The workflow passes the whole aws-sdk response (PascalCase: JobId, JobStatus, LastRunErrorStatus
    {Code}) rather than selecting optional fields in the definition, where a missing field would be
    an uncatchable States.Runtime error.
    """
    if not isinstance(job, Mapping) or "JobId" not in job:
        return job
    error = job.get("LastRunErrorStatus")
    return {
        "jobId": job.get("JobId"),
        "jobStatus": job.get("JobStatus"),
        "lastRunErrorStatus": error.get("Code") if isinstance(error, Mapping) else error,
    }


def _parse_event(event: Any) -> tuple[str, JobState, list[dict]]:
    if not isinstance(event, Mapping):
        raise InvalidInputError("the event must be an object with job, scanComplete and objects")
    job = _job_fields(event.get("job"))
    if not isinstance(job, Mapping) or not isinstance(job.get("jobId"), str) or not job.get("jobId"):
        raise InvalidInputError("job.jobId must be a non-empty string")
    objects = event.get("objects")
    if not isinstance(objects, list):
        raise InvalidInputError("objects must be a list")
    for index, item in enumerate(objects):
        if not isinstance(item, Mapping):
            raise InvalidInputError(f"objects[{index}] must be an object with source, staged and integrity")
        object_ref(item.get("source"), field=f"objects[{index}].source", need_version=False)
        object_ref(item.get("staged"), field=f"objects[{index}].staged", need_version=False)
        integrity = item.get("integrity")
        if not isinstance(integrity, Mapping) or not isinstance(integrity.get("status"), str):
            raise InvalidInputError(f"objects[{index}].integrity.status is required")
        if integrity["status"] not in INTEGRITY_RESULTS:
            raise InvalidInputError(
                f"objects[{index}].integrity.status must be one of {', '.join(INTEGRITY_RESULTS)}, got {integrity['status']!r}"
            )

    error_status = job.get("lastRunErrorStatus")
    if isinstance(error_status, Mapping):  # DescribeClassificationJob shape: {"code": "NONE"|"ERROR"}
        error_status = error_status.get("code")
    job_status = job.get("jobStatus") if isinstance(job.get("jobStatus"), str) else None
    # Fail closed: only an explicit true with a COMPLETE (or unreported) job status counts as complete.
    scan_complete = event.get("scanComplete") is True and job_status in (None, "COMPLETE")
    state = JobState(
        scan_complete=scan_complete,
        job_status=job_status,
        job_error=isinstance(error_status, str) and error_status.upper() == "ERROR",
    )
    return job["jobId"], state, list(objects)


def evaluate(event: Any, context: Any, *, macie: Any, s3: Any, env: Mapping[str, str]) -> dict:
    policy: Policy = load_policy(env)
    custom_names = parse_custom_identifier_names(env.get("CUSTOM_DATA_IDENTIFIER_NAMES"))
    job_id, job, objects = _parse_event(event)
    summary = {verdict: 0 for verdict in VERDICTS}
    if not objects:
        logger.info("No objects to evaluate")
        return {"objects": [], "summary": summary, "reviewRequired": False}

    index: dict[tuple[str, str], list[int]] = {}
    for position, item in enumerate(objects):
        staged = item["staged"]
        index.setdefault((staged["bucket"], staged["key"]), []).append(position)
    tallies = [FindingTally(custom_names=custom_names) for _ in objects]

    # Findings of the job, attributed by the staged bucket and key.
    total = ignored = 0
    for finding in get_findings(macie, list_finding_ids(macie, job_id)):
        total += 1
        positions = index.get(finding_location(finding))  # type: ignore[arg-type]
        if not positions:
            ignored += 1
            continue
        for position in positions:
            tallies[position].add(finding)
    logger.info("Read the job's findings", extra={"jobId": job_id, "findings": total, "ignoredFindings": ignored})
    if ignored:
        logger.warning(
            "Ignored findings for objects that are not part of this scan",
            extra={"jobId": job_id, "ignoredFindings": ignored},
        )

    # Sensitive data discovery results: proof that each object was analysed.
    location = results_location(macie, env)
    analysis: dict[tuple[str, str], tuple[str, str | None]] = {}
    if location is None:
        logger.warning("No sensitive data discovery results location is configured; every object counts as not analysed")
    else:
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
        prefix = job_results_prefix(location.key_prefix, _account_id(context), region, job_id)
        analysis, stats = read_analysis(s3, location, prefix, set(index))
        logger.info(
            "Read the discovery results",
            extra={
                "resultsBucket": location.bucket,
                "resultsPrefix": prefix,
                "files": stats.files,
                "records": stats.records,
                "matchedRecords": stats.matched,
                "badLines": stats.bad_lines,
                "badFiles": stats.bad_files,
            },
        )

    results = []
    for position, item in enumerate(objects):
        staged = item["staged"]
        status, reason = analysis.get((staged["bucket"], staged["key"]), (MISSING, None))
        integrity = item["integrity"]
        verdict = decide(
            integrity_status=integrity["status"],
            integrity_reason=integrity.get("reason") if isinstance(integrity.get("reason"), str) else None,
            findings=tallies[position],
            analysis=status,
            analysis_reason=reason,
            policy=policy,
            job=job,
        )
        final, reasons = verdict.verdict, list(verdict.reasons)
        if ignored and final == CLEAN:
            # A one-time job scoped to this scan's tag should find nothing else: if it did, the
            # attribution of findings to objects cannot be trusted, so nothing is CLEAN.
            final = REVIEW
            reasons.append(f"{ignored} finding(s) of this job could not be attributed to a scanned object")
        summary[final] += 1
        results.append(
            {
                **item,
                "verdict": final,
                "reasons": reasons,
                "analysis": status,
                "findings": tallies[position].summary(),
            }
        )
    review_required = summary[REVIEW] > 0
    logger.info("Evaluated the scan", extra={"jobId": job_id, "summary": summary, "reviewRequired": review_required})
    return {"objects": results, "summary": summary, "reviewRequired": review_required}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: Any) -> dict:
    return evaluate(event, context, macie=_client("macie2"), s3=_client("s3"), env=os.environ)
