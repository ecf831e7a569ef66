"""Benchmark: the local Macie's classification job on N small tagged objects in moto (no engine).

Not a test (pytest does not collect ``bench_*.py``). Run it from the repository root::

    .venv/bin/python tests/benchmarks/bench_local_macie.py --objects 2000
    .venv/bin/python tests/benchmarks/bench_local_macie.py --objects 2000 --profile /tmp/macie.prof

Puts N objects of the bench's mix into a versioned bucket (tagged with one scan id, plus N/4 objects of
another scan that the job must leave out), runs one job to COMPLETE and prints the seconds it took,
the S3 calls it made by operation, and the findings.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import botocore.client  # noqa: E402
from moto import mock_aws  # noqa: E402

from macie_pipeline.local import awsmodel, bench  # noqa: E402
from macie_pipeline.local.macie import LocalMacie, MacieBehavior  # noqa: E402

ACCOUNT, REGION, BUCKET, TAG = "123456789012", "us-east-1", "quarantine", "macie-pipeline:scan-id"


def _request(scan_id: str) -> dict:
    sfn = {
        "ClientToken": scan_id, "JobType": "ONE_TIME", "Name": f"scan-{scan_id}", "SamplingPercentage": 100,
        "ManagedDataIdentifierSelector": "RECOMMENDED",
        "S3JobDefinition": {
            "BucketDefinitions": [{"AccountId": ACCOUNT, "Buckets": [BUCKET]}],
            "Scoping": {"Includes": {"And": [{"TagScopeTerm": {
                "Comparator": "EQ", "Key": "TAG", "TagValues": [{"Key": TAG, "Value": scan_id}], "Target": "S3_OBJECT"}}]}},
        },
    }
    return awsmodel.sfn_params_to_api("macie2", "createClassificationJob", sfn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--profile", metavar="FILE")
    args = parser.parse_args()
    calls: Counter[str] = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counted(client, operation, params):  # noqa: ANN001
        calls[operation] += 1
        return original(client, operation, params)

    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        for n, (key, body) in enumerate(bench.generate_objects(args.objects + args.objects // 4).items()):
            scan = "scan-1" if n < args.objects else "scan-0"
            s3.put_object(Bucket=BUCKET, Key=f"scans/{scan}/{key}", Body=body, Tagging=f"{TAG}={scan}")
        macie = LocalMacie(account_id=ACCOUNT, region=REGION, s3_client=s3, behavior=MacieBehavior(run_seconds=None))
        job_id = macie.call("CreateClassificationJob", _request("scan-1"))["jobId"]
        botocore.client.BaseClient._make_api_call = counted
        profile = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if profile:
            profile.enable()
        macie._set_status(macie.jobs[job_id], "COMPLETE")
        if profile:
            profile.disable()
            profile.dump_stats(args.profile)
        seconds = time.perf_counter() - started
        botocore.client.BaseClient._make_api_call = original
        macie.close()
        types = Counter(f["type"] for f in macie.findings.values())
    print(json.dumps({"objects": args.objects, "seconds": round(seconds, 2), "per_object_ms": round(seconds * 1000 / args.objects, 2),
                      "s3_calls": dict(calls), "findings": dict(types)}, indent=2))


if __name__ == "__main__":
    main()
