"""Turn the execution input into a batch of claimed object versions (see docs/CONTRACTS.md, prepare_scan).

Each version is claimed in DynamoDB so that a duplicate event, or a schedule that fires while an earlier
scan still holds the object, never scans (and later moves) the same version twice.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterator, Mapping, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

import prepare_core
from pipeline_common.clients import ClientCache, client_config
from pipeline_common.contract import PrepareScanEnvironment
from pipeline_common.errors import TransientError
from pipeline_common.log import get_logger
from pipeline_common.transient import error_code, is_transient

logger = get_logger("prepare_scan")

# The skipped list travels in the state machine payload (256 KB): report at most this many entries.
MAX_SKIPPED_REPORTED = 100
_EXTRA_TRANSIENT_CODES = frozenset({"RequestTimeoutException"})

_CLIENTS = ClientCache(client_config(read_timeout=30))


def _reraise(error: Exception, action: str) -> NoReturn:
    """Raise TransientError for retryable failures (throttling, 5xx, network), else ``error`` as is."""
    if is_transient(error) or error_code(error) in _EXTRA_TRANSIENT_CODES:
        raise TransientError(f"{action} failed with {error_code(error)}; retry") from error
    raise error


def _claim(dynamodb: Any, env: PrepareScanEnvironment, ref: Mapping[str, Any], scan_id: str) -> str | None:
    """Claim ``ref`` for ``scan_id``. Returns None when claimed, else the scan id holding the claim."""
    now = time.time()
    try:
        dynamodb.put_item(
            TableName=env.state_table,
            Item=prepare_core.claim_item(ref, scan_id, now, env.claim_ttl_seconds),
            ConditionExpression=prepare_core.CLAIM_CONDITION,
            ExpressionAttributeValues=prepare_core.claim_condition_values(scan_id, now),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            holder = (error.response.get("Item") or {}).get("scanId", {}).get("S")
            return holder or "<unknown>"
        _reraise(error, "DynamoDB PutItem (claim)")
    except BotoCoreError as error:
        _reraise(error, "DynamoDB PutItem (claim)")
    return None


def _latest_versions(s3: Any, env: PrepareScanEnvironment) -> Iterator[dict[str, Any]]:
    """Every latest, non-delete-marker version under the ingress prefix, in key order."""
    paginator = s3.get_paginator("list_object_versions")
    kwargs: dict[str, Any] = {"Bucket": env.ingress_bucket, "PaginationConfig": {"PageSize": 1000}}
    if env.ingress_prefix:
        kwargs["Prefix"] = env.ingress_prefix
    try:
        for page in paginator.paginate(**kwargs):
            for version in page.get("Versions", []):
                if version.get("IsLatest"):
                    yield version
    except (ClientError, BotoCoreError) as error:
        _reraise(error, "S3 ListObjectVersions")


def _candidates(
    s3: Any, env: PrepareScanEnvironment, trigger: str, event: Mapping[str, Any]
) -> Iterator[tuple[dict, str | None]]:
    """``(ObjectRef, skip reason or None)`` for every object the event names."""
    if trigger == prepare_core.TRIGGER_OBJECT_CREATED:
        ref = prepare_core.object_from_event(event, env.ingress_bucket)
        yield ref, prepare_core.skip_reason(ref["key"], ref["size"], env.ingress_prefix)
        return
    for version in _latest_versions(s3, env):
        ref = prepare_core.object_from_version(env.ingress_bucket, version)
        reason = prepare_core.skip_reason(ref["key"], ref["size"], env.ingress_prefix, version.get("StorageClass"))
        yield ref, reason


def run(event: Any, *, s3: Any, dynamodb: Any, env: PrepareScanEnvironment) -> dict[str, Any]:
    """Claim the object versions the execution input names, up to ``env.max_batch_objects``."""
    execution_event, execution_name = prepare_core.parse_request(event)
    trigger = prepare_core.trigger_of(execution_event)
    scan_id = prepare_core.scan_id_for(execution_name)
    logger.append_keys(scanId=scan_id)

    objects: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    skipped_total = 0
    for ref, reason in _candidates(s3, env, trigger, execution_event):
        if len(objects) >= env.max_batch_objects:
            logger.info("batch is full; the remaining objects wait for the next run",
                        extra={"maxBatchObjects": env.max_batch_objects})
            break
        if reason is None:
            holder = _claim(dynamodb, env, ref, scan_id)
            if holder is None:
                objects.append(ref)
                logger.info("object claimed", extra={"key": ref["key"], "versionId": ref["versionId"],
                                                    "size": ref["size"]})
                continue
            reason = prepare_core.duplicate_reason(holder)
        skipped_total += 1
        logger.info("object skipped", extra={"key": ref["key"], "versionId": ref["versionId"], "reason": reason})
        if len(skipped) < MAX_SKIPPED_REPORTED:
            skipped.append({"key": ref["key"], "reason": reason})

    if skipped_total > len(skipped):
        logger.warning("skipped list truncated", extra={"skippedTotal": skipped_total, "reported": len(skipped)})
    logger.info("batch prepared", extra={"trigger": trigger, "objectCount": len(objects), "skipped": skipped_total})
    return {
        "scanId": scan_id,
        "trigger": trigger,
        "objects": objects,
        "skipped": skipped,
        "objectCount": len(objects),
    }


def handler(event: Any, context: Any) -> dict[str, Any]:
    env = PrepareScanEnvironment.from_environment(os.environ)
    return run(event, s3=_CLIENTS.client("s3"), dynamodb=_CLIENTS.client("dynamodb"), env=env)
