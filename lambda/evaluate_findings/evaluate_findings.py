"""Turn the findings and discovery results of a Macie job into a verdict per object (see docs/CONTRACTS.md).

Fails closed: an object Macie did not fully analyse, a finding without a known severity, or a job that
ended early or with errors never yields CLEAN. Findings and discovery results count only for the staged
version they name (``resourcesAffected.s3Object.versionId``); discovery results that cannot be read for
a permanent reason send every object to review instead of failing the scan.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import batch_evaluation
from macie_results import (
    finding_location,
    get_findings,
    job_fields,
    list_finding_ids,
    object_version,
    read_job_analysis,
)
from pipeline_common.clients import ClientCache, client_config
from pipeline_common.constants import INTEGRITY_RESULTS, REVIEW, VERDICTS
from pipeline_common.contract import EvaluateFindingsEnvironment
from pipeline_common.errors import InvalidInputError
from pipeline_common.log import get_logger
from pipeline_common.objects import object_ref
from verdicts import (
    Evidence,
    FindingTally,
    JobState,
    Policy,
    evaluated,
    load_policy,
    parse_custom_identifier_names,
)

logger = get_logger("evaluate_findings")

_CLIENTS = ClientCache(client_config(read_timeout=60))


def _parse_event(event: Any) -> tuple[str, JobState, list[dict]]:
    if not isinstance(event, Mapping):
        raise InvalidInputError("the event must be an object with job, scanComplete and objects")
    job = job_fields(event.get("job"))
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
    records, unreadable = read_job_analysis(macie, s3, env, job_id, set(index), region, context)
    for position, item in enumerate(objects):
        if unreadable is not None:
            evidence[position].analysis_reason = unreadable.reason()
        else:
            staged = item["staged"]
            evidence[position].add_records(records.get((staged["bucket"], staged["key"]), []))

    results = [
        evaluated(item, tallies[position], evidence[position], policy, job, ignored) for position, item in enumerate(objects)
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


def dispatch(event: Any, *, clients: Any, env: EvaluateFindingsEnvironment, region: str, context: Any) -> dict:
    """A batch operation (``operation``: count_staged, evaluate, summarize; docs/batching.md), or the
    payload of executions started before batches (``job``, ``scanComplete``, ``objects``): :func:`run`."""
    operation = event.get("operation") if isinstance(event, Mapping) else None
    if operation is None:
        return run(event, macie=clients.client("macie2"), s3=clients.client("s3"), env=env, region=region, context=context)
    return batch_evaluation.run(operation, event, clients=clients, env=env, region=region, context=context)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: Any) -> dict:
    env = EvaluateFindingsEnvironment.from_environment(os.environ)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    return dispatch(event, clients=_CLIENTS, env=env, region=region, context=context)
