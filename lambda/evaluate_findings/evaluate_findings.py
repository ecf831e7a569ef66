"""Turn the findings and discovery results of a Macie job into a verdict per object (see docs/CONTRACTS.md).

Fails closed: an object Macie did not fully analyse, a finding without a known severity, or a job that
ended early or with errors never yields CLEAN. Findings and discovery results count only for the staged
version they name (``resourcesAffected.s3Object.versionId``); discovery results that cannot be read for
a permanent reason send every object to review instead of failing the scan.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from macie_results import (
    ResultsLocation,
    UnreadableResults,
    finding_location,
    get_findings,
    job_results_prefix,
    list_finding_ids,
    object_version,
    read_analysis,
    results_location,
    unreadable_results,
)
from pipeline_common.clients import ClientCache, client_config
from pipeline_common.constants import CLEAN, INTEGRITY_RESULTS, REVIEW, VERDICTS
from pipeline_common.contract import EvaluateFindingsEnvironment
from pipeline_common.errors import InvalidInputError, PipelineError
from pipeline_common.log import get_logger
from pipeline_common.objects import object_ref
from verdicts import (
    DiscoveryRecord,
    Evidence,
    FindingTally,
    JobState,
    Policy,
    decide,
    load_policy,
    parse_custom_identifier_names,
)

logger = get_logger("evaluate_findings")

_CLIENTS = ClientCache(client_config(read_timeout=60))


def _account(context: Any) -> tuple[str, str]:
    """(partition, account id) from the Lambda context's invoked_function_arn."""
    arn = getattr(context, "invoked_function_arn", None)
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) < 5 or not parts[4].isdigit():
        raise InvalidInputError("cannot tell the AWS account id: the Lambda context has no invoked_function_arn")
    return parts[1] or "aws", parts[4]


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


def run(
    event: Any, *, macie: Any, s3: Any, env: EvaluateFindingsEnvironment, region: str, context: Any
) -> dict:
    """The verdict of every object of the scan, from the job's findings (``macie``) and discovery results
    (``s3``). ``context`` gives the account id (the Lambda context), ``region`` the job's region."""
    policy: Policy = load_policy(env.finding_policy, env.unknown_format_policy)
    custom_names = parse_custom_identifier_names(env.custom_data_identifier_names)
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
    # Every finding and discovery result is bound to the staged copy's version (the output of Copy to
    # quarantine): whatever Macie says about another version of the key proves nothing about this one.
    evidence = [Evidence(staged_version=item["staged"].get("versionId")) for item in objects]
    ignored = _tally_findings(macie, job_id, index, tallies, evidence)
    records, unreadable = _read_analysis(macie, s3, env, job_id, set(index), region, context)
    for position, item in enumerate(objects):
        if unreadable is not None:
            evidence[position].analysis_reason = unreadable.reason()
        else:
            staged = item["staged"]
            evidence[position].add_records(records.get((staged["bucket"], staged["key"]), []))

    results = [
        _evaluated(item, tallies[position], evidence[position], policy, job, ignored) for position, item in enumerate(objects)
    ]
    for result in results:
        summary[result["verdict"]] += 1
    review_required = summary[REVIEW] > 0
    logger.info("Evaluated the scan", extra={"jobId": job_id, "summary": summary, "reviewRequired": review_required})
    if unreadable is not None:
        # Carried by the workflow's scan summary notification to the operators.
        summary["discoveryResults"] = unreadable.summary()
    return {"objects": results, "summary": summary, "reviewRequired": review_required}


def _tally_findings(
    macie: Any,
    job_id: str,
    index: Mapping[tuple[str, str], list[int]],
    tallies: list[FindingTally],
    evidence: list[Evidence],
) -> int:
    """Add each finding of the job to the tally of the object(s) whose staged bucket, key and version
    it names; a finding about another version of such a key is noted in that object's evidence.
    Returns how many findings were about no object of the scan."""
    total = ignored = unbound = 0
    for finding in get_findings(macie, list_finding_ids(macie, job_id)):
        total += 1
        positions = index.get(finding_location(finding))  # type: ignore[arg-type]
        if not positions:
            ignored += 1
            continue
        version = object_version(finding)
        for position in positions:
            if evidence[position].bound_to(version):
                tallies[position].add(finding)
            else:
                evidence[position].other_findings.append(version)
                unbound += 1
    logger.info(
        "Read the job's findings",
        extra={"jobId": job_id, "findings": total, "ignoredFindings": ignored, "otherVersionFindings": unbound},
    )
    if ignored:
        logger.warning(
            "Ignored findings for objects that are not part of this scan",
            extra={"jobId": job_id, "ignoredFindings": ignored},
        )
    if unbound:
        logger.warning("Findings name another version than the staged one", extra={"jobId": job_id, "otherVersionFindings": unbound})
    return ignored


def _read_analysis(
    macie: Any,
    s3: Any,
    env: EvaluateFindingsEnvironment,
    job_id: str,
    wanted: set[tuple[str, str]],
    region: str,
    context: Any,
) -> tuple[dict[tuple[str, str], list[DiscoveryRecord]], UnreadableResults | None]:
    """The sensitive data discovery result records of the job (proof that each object was analysed),
    by staged bucket and key; empty without a results location, so that no object counts as analysed.

    A permanent AWS error (AccessDenied on S3 or KMS, no such bucket...) does not fail the scan: it is
    returned as UnreadableResults, and every object goes to review. Transient errors are raised.
    """
    partition, account_id = _account(context)
    location: ResultsLocation | None = None
    prefix: str | None = None
    try:
        location = results_location(macie, env.results_bucket, env.results_prefix)
        if location is None:
            logger.warning("No sensitive data discovery results location is configured; every object counts as not analysed")
            return {}, None
        prefix = job_results_prefix(location.key_prefix, account_id, region, job_id)
        analysis, stats = read_analysis(s3, location, prefix, wanted)
    except PipelineError as error:
        unreadable = unreadable_results(error, location, prefix, partition)
        logger.error(
            "The discovery results cannot be read; every object goes to review",
            extra={"resultsLocation": unreadable.location, "error": unreadable.error, "grant": unreadable.grant},
        )
        return {}, unreadable
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
    return analysis, None


def _evaluated(
    item: Mapping[str, Any],
    tally: FindingTally,
    evidence: Evidence,
    policy: Policy,
    job: JobState,
    ignored: int,
) -> dict:
    """The input object with its verdict, the reasons for it, its analysis status and findings summary."""
    integrity = item["integrity"]
    verdict = decide(
        integrity_status=integrity["status"],
        integrity_reason=integrity.get("reason") if isinstance(integrity.get("reason"), str) else None,
        findings=tally,
        analysis=evidence.analysis,
        analysis_reason=evidence.analysis_reason,
        policy=policy,
        job=job,
        evidence=evidence,
    )
    final, reasons = verdict.verdict, list(verdict.reasons)
    if ignored and final == CLEAN:
        # A one-time job scoped to this scan's tag should find nothing else: if it did, the
        # attribution of findings to objects cannot be trusted, so nothing is CLEAN.
        final = REVIEW
        reasons.append(f"{ignored} finding(s) of this job could not be attributed to a scanned object")
    return {**item, "verdict": final, "reasons": reasons, "analysis": evidence.analysis, "findings": tally.summary()}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: Any) -> dict:
    env = EvaluateFindingsEnvironment.from_environment(os.environ)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    return run(event, macie=_CLIENTS.client("macie2"), s3=_CLIENTS.client("s3"), env=env, region=region, context=context)
