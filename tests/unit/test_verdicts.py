"""The pure verdict logic of evaluate_findings: finding policy, severities, tallies and every verdict combination."""

from __future__ import annotations

import itertools

import pytest

from pipeline_common.constants import ALLOW, CLEAN, CORRUPT, DENY, REVIEW, UNCHECKED, VALID
from pipeline_common.errors import InvalidInputError
from verdicts import (
    COMPLETE,
    MISSING,
    PARTIAL,
    SKIPPED,
    DiscoveryRecord,
    Evidence,
    FindingTally,
    JobState,
    Policy,
    decide,
    detection_counts,
    load_policy,
    normalise_severity,
    parse_custom_identifier_names,
    parse_finding_policy,
    parse_unknown_format_policy,
    reported_detections,
)

ORDER = [CLEAN, REVIEW, DENY, CORRUPT]
ACTION_VERDICT = {ALLOW: CLEAN, REVIEW: REVIEW, DENY: DENY}
# One severity per action, so every subset of severities is every combination of finding actions.
MIXED_POLICY = {"LOW": ALLOW, "MEDIUM": REVIEW, "HIGH": DENY}


def finding(severity: str | None = "High", *, managed=(("CREDIT_CARD_NUMBER", 3),), custom=(("EmployeeId", 2),)) -> dict:
    """A realistic Macie sensitive data finding (GetFindings shape)."""
    result = {
        "status": {"code": "COMPLETE"},
        "sensitiveData": [
            {
                "category": "FINANCIAL_INFORMATION",
                "detections": [{"type": t, "count": n} for t, n in managed],
                "totalCount": sum(n for _, n in managed),
            }
        ],
        "customDataIdentifiers": {
            "detections": [
                {"name": name, "arn": f"arn:aws:macie2:us-east-1:123456789012:custom-data-identifier/{name}", "count": n}
                for name, n in custom
            ],
            "totalCount": sum(n for _, n in custom),
        },
    }
    value = {
        "id": "f-1",
        "type": "SensitiveData:S3Object/Multiple",
        "category": "CLASSIFICATION",
        "classificationDetails": {"jobId": "job-1", "result": result},
        "resourcesAffected": {"s3Bucket": {"name": "quarantine"}, "s3Object": {"key": "a.csv"}},
    }
    if severity is not None:
        value["severity"] = {"description": severity, "score": 3}
    return value


def tally_of(*severities: str | None) -> FindingTally:
    tally = FindingTally()
    for severity in severities:
        tally.add(finding(severity))
    return tally


@pytest.mark.parametrize("integrity", [VALID, CORRUPT, UNCHECKED])
@pytest.mark.parametrize("unknown_format", [ALLOW, REVIEW, DENY])
def test_every_combination_follows_precedence_and_reports_every_reason(integrity: str, unknown_format: str) -> None:
    policy = Policy(findings=MIXED_POLICY, unknown_format=unknown_format)
    severity_sets = [s for r in range(4) for s in itertools.combinations(["LOW", "MEDIUM", "HIGH"], r)]
    mismatches = []
    cases = 0
    for severities, analysis, scan_complete, job_error in itertools.product(
        severity_sets, [COMPLETE, PARTIAL, SKIPPED, MISSING], [True, False], [False, True]
    ):
        contributions = [CLEAN]
        if integrity == CORRUPT:
            contributions.append(CORRUPT)
        if integrity == UNCHECKED:
            contributions.append(ACTION_VERDICT[unknown_format])
        contributions += [ACTION_VERDICT[MIXED_POLICY[s]] for s in severities]
        if analysis != COMPLETE:
            contributions.append(REVIEW)
        if not scan_complete or job_error:
            contributions.append(REVIEW)
        expected = max(contributions, key=ORDER.index)
        # One reason per factor that was looked at and is not plainly fine.
        expected_reasons = (integrity != VALID) + len(severities) + (analysis != COMPLETE) + (not scan_complete) + job_error

        result = decide(
            integrity_status=integrity,
            findings=tally_of(*(s.title() for s in severities)),
            analysis=analysis,
            policy=policy,
            job=JobState(scan_complete=scan_complete, job_status="COMPLETE" if scan_complete else "CANCELLED", job_error=job_error),
        )
        cases += 1
        if result.verdict != expected or len(result.reasons) != expected_reasons:
            mismatches.append((severities, analysis, scan_complete, job_error, result))
    assert cases == 8 * 4 * 2 * 2
    assert mismatches == []


def test_reasons_name_each_cause_in_plain_words() -> None:
    result = decide(
        integrity_status=CORRUPT,
        integrity_reason="unparsable CSV\nat row 3",
        findings=tally_of("High", None),
        analysis=PARTIAL,
        analysis_reason="EXCEEDS_SIZE_QUOTA",
        policy=Policy(findings={"LOW": REVIEW, "MEDIUM": REVIEW, "HIGH": DENY}),
        job=JobState(scan_complete=False, job_status="CANCELLED", job_error=True),
    )
    assert result.verdict == CORRUPT
    assert result.reasons == [
        "integrity check failed: the object is empty or cannot be parsed (unparsable CSV at row 3)",
        "1 finding(s) had no recognised severity and were treated as HIGH",
        "2 HIGH-severity Macie finding(s); the finding policy denies them",
        "Macie analysed only part of the object (reason: EXCEEDS_SIZE_QUOTA)",
        "the Macie classification job did not complete (job status CANCELLED)",
        "the Macie classification job reported errors while analysing objects",
    ]


def test_clean_object_has_no_reasons_and_allowed_findings_are_still_reported() -> None:
    policy = Policy(findings={"LOW": ALLOW, "MEDIUM": REVIEW, "HIGH": DENY}, unknown_format=ALLOW)
    clean = decide(integrity_status=VALID, findings=FindingTally(), analysis=COMPLETE, policy=policy, job=JobState())
    assert clean.verdict == CLEAN and clean.reasons == []
    allowed = decide(integrity_status=UNCHECKED, findings=tally_of("Low"), analysis=COMPLETE, policy=policy, job=JobState())
    assert allowed.verdict == CLEAN
    assert allowed.reasons == [
        "the file format is not recognised, so its integrity could not be checked; allowed by the unknown-format policy",
        "1 LOW-severity Macie finding(s); allowed by the finding policy",
    ]


def test_unknown_status_values_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="integrity status 'BROKEN'"):
        decide(integrity_status="BROKEN", findings=FindingTally(), analysis=COMPLETE, policy=Policy(findings=MIXED_POLICY), job=JobState())
    with pytest.raises(InvalidInputError, match="analysis status 'DONE'"):
        decide(integrity_status=VALID, findings=FindingTally(), analysis="DONE", policy=Policy(findings=MIXED_POLICY), job=JobState())


def test_finding_policy_parsing() -> None:
    assert parse_finding_policy(None) == {"LOW": REVIEW, "MEDIUM": REVIEW, "HIGH": REVIEW}
    assert parse_finding_policy("  ") == {"LOW": REVIEW, "MEDIUM": REVIEW, "HIGH": REVIEW}
    assert parse_finding_policy('{"low": "allow", "HIGH": " Deny "}') == {"LOW": ALLOW, "MEDIUM": REVIEW, "HIGH": DENY}
    for text, message in [
        ('{"CRITICAL": "DENY"}', "unknown severity 'CRITICAL'"),
        ('{"HIGH": "BLOCK"}', "unknown action 'BLOCK' for HIGH"),
        ('{"HIGH": 1}', "unknown action 1 for HIGH"),
        ('["HIGH"]', "must be a JSON object"),
        ("{HIGH: DENY}", "not valid JSON"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            parse_finding_policy(text)


def test_unknown_format_policy_and_load_policy() -> None:
    assert parse_unknown_format_policy(None) == REVIEW
    assert parse_unknown_format_policy("deny") == DENY
    with pytest.raises(InvalidInputError, match="UNKNOWN_FORMAT_POLICY must be one of ALLOW, REVIEW, DENY, got 'QUARANTINE'"):
        parse_unknown_format_policy("QUARANTINE")
    policy = load_policy('{"HIGH": "DENY"}', "ALLOW")
    assert policy == Policy(findings={"LOW": REVIEW, "MEDIUM": REVIEW, "HIGH": DENY}, unknown_format=ALLOW)


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ({"description": "High", "score": 3}, "HIGH"),
        ({"description": " medium "}, "MEDIUM"),
        ({"description": "LOW"}, "LOW"),
        ({"description": "Critical"}, None),
        ({"score": 3}, None),
        (None, None),
        ("High", None),
    ],
)
def test_normalise_severity(severity, expected) -> None:
    assert normalise_severity(severity) == expected


def test_tally_sums_managed_and_custom_detections_and_fails_closed_on_unknown_severity() -> None:
    tally = FindingTally()
    tally.add(finding("Low", managed=[("CREDIT_CARD_NUMBER", 3), ("AWS_CREDENTIALS", 1)], custom=[("EmployeeId", 2)]))
    tally.add(finding("Medium", managed=[("CREDIT_CARD_NUMBER", 4)], custom=[]))
    assert tally.summary() == {
        "count": 2,
        "types": {"AWS_CREDENTIALS": 1, "CREDIT_CARD_NUMBER": 7, "EmployeeId": 2},
        "maxSeverity": "MEDIUM",
        "tagValue": "AWS_CREDENTIALS:1 CREDIT_CARD_NUMBER:7 EmployeeId:2",
    }
    tally.add(finding("Critical", managed=[], custom=[]))
    assert tally.max_severity == "HIGH"
    assert tally.unknown_severity == 1
    # A finding without detection detail still shows up under its finding type.
    assert tally.types["SensitiveData:S3Object/Multiple"] == 1
    assert FindingTally().summary() == {"count": 0, "types": {}, "maxSeverity": None, "tagValue": "none"}


def test_custom_identifiers_are_reported_by_the_name_given_not_the_unique_macie_name() -> None:
    names = parse_custom_identifier_names('{"EmployeeId-1a2b3c4d": "EmployeeId"}')
    tally = FindingTally(custom_names=names)
    tally.add(finding("Medium", managed=[("CREDIT_CARD_NUMBER", 1)], custom=[("EmployeeId-1a2b3c4d", 2), ("Unlisted-99", 1)]))
    assert tally.types == {"CREDIT_CARD_NUMBER": 1, "EmployeeId": 2, "Unlisted-99": 1}
    assert parse_custom_identifier_names(None) == {} and parse_custom_identifier_names(" ") == {}
    for bad in ("[1]", "{not json", '{"a": 1}', '{"a": ""}'):
        with pytest.raises(InvalidInputError, match="CUSTOM_DATA_IDENTIFIER_NAMES"):
            parse_custom_identifier_names(bad)


def test_detection_counts_ignore_malformed_counts() -> None:
    value = finding("High", managed=[("CREDIT_CARD_NUMBER", 3)], custom=[])
    value["classificationDetails"]["result"]["sensitiveData"][0]["detections"].append({"type": "PHONE_NUMBER", "count": "7"})
    assert detection_counts(value) == {"CREDIT_CARD_NUMBER": 3, "PHONE_NUMBER": 0}


def test_findings_tag_value_is_a_valid_s3_tag_value():
    from verdicts import findings_tag_value

    assert findings_tag_value({}) == "none"
    assert findings_tag_value({"CREDIT_CARD_NUMBER": 3, "Employee Id (custom)": 2}) == "CREDIT_CARD_NUMBER:3 Employee Id _custom_:2"
    long = findings_tag_value({f"TYPE_{i:03d}": i for i in range(100)})
    assert len(long) == 256 and long.endswith("...")


ALLOW_ALL = Policy(findings={"LOW": ALLOW, "MEDIUM": ALLOW, "HIGH": ALLOW}, unknown_format=ALLOW)


def judged(evidence: Evidence, findings: FindingTally | None = None):
    return decide(
        integrity_status=VALID,
        findings=findings or FindingTally(),
        analysis=evidence.analysis,
        analysis_reason=evidence.analysis_reason,
        policy=ALLOW_ALL,
        job=JobState(),
        evidence=evidence,
    )


def test_only_results_and_findings_about_the_staged_version_count() -> None:
    """Issue 10, item 1: a result or finding about another version of the key, or about no version,
    proves nothing about the staged version; an object without a staged version id binds nothing."""
    bound = Evidence(staged_version="v-stg")
    bound.add_records([DiscoveryRecord("v-stg", COMPLETE), DiscoveryRecord("v-stg", PARTIAL, "EXCEEDS_SIZE_QUOTA")])
    assert (bound.analysis, bound.analysis_reason, bound.other_results) == (PARTIAL, "EXCEEDS_SIZE_QUOTA", [])

    for version in ("v-replacement", None):
        swapped = Evidence(staged_version="v-stg")
        swapped.add_records([DiscoveryRecord(version, COMPLETE)])
        assert (swapped.analysis, swapped.other_results) == (MISSING, [version])
        verdict = judged(swapped)
        assert verdict.verdict == REVIEW
        assert verdict.reasons[-1] == (
            f"1 Macie discovery result(s) for the object's key are about version {version or 'no version id'}, "
            "not the staged version v-stg: they do not prove that the staged version was analysed"
        )

    unversioned = Evidence(staged_version=None)
    unversioned.add_records([DiscoveryRecord(None, COMPLETE)])
    assert not unversioned.bound_to(None) and unversioned.analysis == MISSING
    assert judged(unversioned).verdict == REVIEW

    # Results for the staged version are complete, but findings name other versions: never CLEAN,
    # and many versions are summarised, not listed without end.
    other = Evidence(staged_version="v-stg", analysis=COMPLETE, other_findings=["v-1", "v-2", "v-3", "v-4", None])
    verdict = judged(other)
    assert verdict.verdict == REVIEW
    assert verdict.reasons == [
        "5 Macie finding(s) for the object's key are about version no version id, v-1, v-2 and 2 more, not the staged version v-stg"
    ]


def test_detections_reported_without_a_listed_finding_need_review() -> None:
    """Issue 10, item 4: a discovery result that reports detections of a category no listed finding
    covers is at least REVIEW (it has no severity, so the finding policy cannot apply)."""
    record = {"classificationDetails": finding("High", managed=[("CREDIT_CARD_NUMBER", 3)], custom=[("EmployeeId", 2)])["classificationDetails"]}
    assert reported_detections(record) == {"FINANCIAL_INFORMATION": 3, "CUSTOM_IDENTIFIER": 2}
    # A malformed count with detections listed still counts; an empty result reports nothing.
    record["classificationDetails"]["result"]["sensitiveData"][0]["totalCount"] = "3"
    assert reported_detections(record)["FINANCIAL_INFORMATION"] == 1
    assert reported_detections({"classificationDetails": {"result": {"sensitiveData": [], "customDataIdentifiers": {"totalCount": 0}}}}) == {}

    evidence = Evidence(staged_version="v-stg")
    evidence.add_records([DiscoveryRecord("v-stg", COMPLETE, None, {"FINANCIAL_INFORMATION": 3, "CUSTOM_IDENTIFIER": 2})])
    unlisted = judged(evidence)
    assert unlisted.verdict == REVIEW
    assert unlisted.reasons == [
        "Macie's discovery result reports 5 detection(s) of CUSTOM_IDENTIFIER, FINANCIAL_INFORMATION without a listed finding"
    ]
    # The allowed finding covers both categories: its policy decides.
    covered = FindingTally()
    covered.add(finding("Low", managed=[("CREDIT_CARD_NUMBER", 3)], custom=[("EmployeeId", 2)]))
    assert judged(evidence, covered).verdict == CLEAN
    # A finding that covers only managed data leaves the custom identifier's detections unlisted.
    partial = FindingTally()
    partial.add(finding("Low", managed=[("CREDIT_CARD_NUMBER", 3)], custom=[]))
    assert judged(evidence, partial).reasons[-1] == (
        "Macie's discovery result reports 2 detection(s) of CUSTOM_IDENTIFIER without a listed finding"
    )


def test_a_reason_for_a_missing_result_replaces_the_default_and_is_given_once() -> None:
    """Issue 10, item 6: unreadable discovery results are named once per object, in full."""
    why = "the Macie sensitive data discovery results at s3://results/" + "p/" * 120 + " could not be read (AccessDenied)"
    verdict = judged(Evidence(staged_version="v-stg", analysis_reason=why))
    assert (verdict.verdict, verdict.reasons) == (REVIEW, [why])


def test_job_error_events_and_the_findings_cap_keep_every_object_from_clean() -> None:
    """Batches (docs/batching.md): an error event Macie logged for the job, or a job whose findings reached
    Macie's cap, means a missing finding proves nothing: REVIEW at least, stronger verdicts kept."""
    policy = Policy(findings={"LOW": ALLOW, "MEDIUM": REVIEW, "HIGH": DENY}, unknown_format=ALLOW)
    errors = JobState(error_events=("BUCKET_ACCESS_DENIED", "OBJECT_IO_ERROR", "OBJECT_IO_ERROR"))
    clean = decide(integrity_status=VALID, findings=FindingTally(), analysis=COMPLETE, policy=policy, job=errors)
    assert clean.verdict == REVIEW
    assert clean.reasons == [
        "Macie logged 3 error event(s) for the job (BUCKET_ACCESS_DENIED, OBJECT_IO_ERROR), so some objects may not have been analysed"
    ]
    denied = decide(integrity_status=VALID, findings=tally_of("High"), analysis=COMPLETE, policy=policy, job=errors)
    assert denied.verdict == DENY and len(denied.reasons) == 2
    capped = decide(integrity_status=VALID, findings=tally_of("Low"), analysis=COMPLETE, policy=policy, job=JobState(findings_capped=True))
    assert capped.verdict == REVIEW
    assert capped.reasons[-1] == "the Macie job reached its limit of 100,000 findings, so findings for this object may be missing"


# ------------------------------------------------------------------------------ where the findings are
def located(kind: str, occurrences: dict, name: str = "CREDIT_CARD_NUMBER", count: int = 3) -> dict:
    detection = {"type": name, "count": count, "occurrences": occurrences}
    result = {"sensitiveData": [{"category": kind, "totalCount": count, "detections": [detection]}]}
    return {"severity": {"description": "High"}, "classificationDetails": {"result": result}}


def test_locations_are_kept_per_type_as_macie_reports_them_without_any_value() -> None:
    """Issue 12: cells, records, line and offset ranges and pages become locations; nothing else of
    the occurrence is kept (a stray value in it never reaches the summary)."""
    tally = FindingTally(keep_locations=True, custom_names={"EmployeeId-x1": "EmployeeId"})
    tally.add(located("FINANCIAL_INFORMATION", {
        "cells": [{"row": 2, "column": 3, "columnName": "card_no", "cellReference": None, "value": "4111111111111111"}],
        "records": [{"recordIndex": 0, "jsonPath": "$.customers[1].card"}],
        "lineRanges": [{"start": 7, "end": 8, "startColumn": 12}],
        "offsetRanges": [{"start": 9, "end": 9}],
        "pages": [{"pageNumber": 4, "lineRange": {"start": 1, "end": 1}}, {"pageNumber": True}],
    }))
    custom = {"detections": [{"name": "EmployeeId-x1", "count": 1, "occurrences": {"lineRanges": [{"start": 3, "end": 3}]}}]}
    tally.add({"severity": {"description": "Low"}, "classificationDetails": {"result": {"customDataIdentifiers": custom}}})
    summary = tally.summary()
    assert summary["locations"] == {
        "CREDIT_CARD_NUMBER": [{"row": 2, "column": 3, "columnName": "card_no"},
                               {"recordIndex": 0, "jsonPath": "$.customers[1].card"},
                               {"lines": [7, 8]}, {"lines": [9, 9]}, {"page": 4}],
        "EmployeeId": [{"lines": [3, 3]}],
    }
    assert "4111111111111111" not in repr(summary)


def test_at_most_ten_locations_per_type_across_findings() -> None:
    tally = FindingTally(keep_locations=True)
    for first in (1, 8):  # two findings of 15 locations each (Macie's maximum per finding), overlapping
        tally.add(located("FINANCIAL_INFORMATION", {"cells": [{"row": r, "column": 1} for r in range(first, first + 15)]}))
    assert tally.summary()["locations"]["CREDIT_CARD_NUMBER"] == [{"row": r, "column": 1} for r in range(1, 11)]
    assert "locations" not in FindingTally().summary()  # the per-object (0.1) payload is unchanged
    many = FindingTally(keep_locations=True)  # and at most 100 per object, whatever the number of types
    for n in range(15):
        many.add(located("FINANCIAL_INFORMATION", {"lineRanges": [{"start": r, "end": r} for r in range(1, 16)]}, name=f"T{n:02}"))
    kept = many.summary()["locations"]
    assert sum(map(len, kept.values())) == 100 and list(kept) == [f"T{n:02}" for n in range(10)]
