"""A batch's files in the batch bucket, read back (docs/batching.md, "Files of a batch").

The workflow keeps nothing per object in its state: each object's fate is in the chunk files,
``routed/`` (the outcome of routing) and, for objects held for review, ``decided/`` (the outcome
after the reviewer's decision, or the timeout). :func:`fates` reads them into one line per object
version, the later stage winning.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from ..contract import BATCH_PREFIX, CHUNK_INDEX, SUMMARY, batch_key

#: The stages that decide an object's fate, in order (a later stage's line replaces an earlier one).
FATE_STAGES = ("routed", "decided", "reported")


def object_id(source: dict) -> tuple[str, str, str]:
    """(bucket, key, versionId) of a line's ``source`` (the ingress version)."""
    return str(source.get("bucket")), str(source.get("key")), str(source.get("versionId"))


def stage_lines(s3: Any, bucket: str, batch_id: str, stage: str) -> Iterator[dict]:
    """Every line of every chunk file of one stage (a missing stage yields nothing)."""
    prefix = f"{BATCH_PREFIX}{batch_id}/{stage}/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in sorted(page.get("Contents") or [], key=lambda e: e["Key"]):
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read().decode("utf-8")
            for line in body.splitlines():
                if line.strip():
                    yield json.loads(line)


def fates(s3: Any, bucket: str, batch_id: str) -> dict[tuple[str, str, str], dict]:
    """Object version -> its last line among :data:`FATE_STAGES` (with ``"stage"`` added)."""
    out: dict[tuple[str, str, str], dict] = {}
    for stage in FATE_STAGES:
        for line in stage_lines(s3, bucket, batch_id, stage):
            out[object_id(line.get("source") or {})] = {**line, "stage": stage}
    return out


def manifest(s3: Any, bucket: str, batch_id: str) -> list[dict]:
    """The batch's manifest lines, in batch order."""
    return list(stage_lines(s3, bucket, batch_id, "manifest"))


def read_json(s3: Any, bucket: str, batch_id: str, name: str) -> Any:
    """A JSON file of the batch (``chunks.json``, ``summary.json``), or None if it is not there."""
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=batch_key(batch_id, name))["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def chunk_index(s3: Any, bucket: str, batch_id: str) -> list[dict]:
    return read_json(s3, bucket, batch_id, CHUNK_INDEX) or []


def summary(s3: Any, bucket: str, batch_id: str) -> Any:
    return read_json(s3, bucket, batch_id, SUMMARY)
