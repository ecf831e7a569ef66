"""A batch at data-lake scale through the synthesized sample pipeline (issue 11): 1,000 objects whose
keys are 1,024 bytes long (S3's limit), one intake batch, one execution, one Macie job, every fate
right, and the invariants hold. Small objects keep it fast; the run's time is printed (``-s``).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter

import pytest

from macie_pipeline.local.engine import LocalPipeline
from macie_pipeline.local.template import choose_pipeline, synth_sample

OBJECTS = 1000
CLEAN = b"id,item,quantity\n1,pen,3\n"
CARD = b"name,card\nAlex Doe,4539 1488 0343 6467\n"
CORRUPT_PARQUET = b"PAR1\x15\x04\x15\x10not really parquet"


def long_key(i: int, kind: str) -> str:
    """``lake/<kind>/<i>/kkk...k.csv``: exactly 1,024 bytes."""
    suffix = ".parquet" if kind == "corrupt" else ".csv"
    head = f"lake/{kind}/{i:05d}/"
    return head + "k" * (1024 - len(head) - len(suffix)) + suffix


def body(i: int, kind: str) -> bytes:
    if kind == "card":
        return CARD.replace(b"Alex", f"Alex{i}".encode())
    if kind == "corrupt":
        return CORRUPT_PARQUET + str(i).encode()
    return CLEAN.replace(b"pen", f"pen{i}".encode())


def kind_of(i: int) -> str:
    """Mostly clean objects; one in 50 holds a card number (approved or denied), one in 100 is corrupt."""
    return "card" if i % 50 == 7 else "corrupt" if i % 100 == 13 else "clean"


@pytest.fixture(scope="module")
def sample():
    return choose_pipeline([synth_sample()], None, None)


def test_a_batch_of_a_thousand_objects_with_1024_byte_keys_uses_one_job_and_every_fate_is_right(sample):
    files = {long_key(i, kind_of(i)): body(i, kind_of(i)) for i in range(OBJECTS)}
    assert all(len(key.encode()) == 1024 for key in files)
    cards = sorted(k for k in files if "/card/" in k)
    decisions = {key: ("approve" if n % 2 == 0 else "deny") for n, key in enumerate(cards)}
    started = time.monotonic()
    stack, state_machine = sample
    with LocalPipeline(stack, state_machine, review_wait_seconds=120) as engine:
        result = engine.run(files, decision=decisions, timeout=900)
        ran = time.monotonic() - started
        violations = engine.invariant_violations(stored=result.stored)
        jobs = len(engine.macie.jobs)
        creates = sum(1 for c in engine.sdk_calls if c[1] == "CreateClassificationJob")
    print(f"\n{OBJECTS} objects with 1,024-byte keys: run {ran:.0f} s, with the invariants {time.monotonic() - started:.0f} s",
          file=sys.stderr)
    assert violations == []
    assert [e.status for e in result.executions] == ["SUCCEEDED"]
    assert (jobs, creates) == (1, 1)
    expected = {}
    for key in files:
        kind = key.split("/")[1]
        expected[key] = {"clean": ("VAULT", "vault"), "corrupt": ("QUARANTINED", "quarantine"),
                         "card": ("APPROVED", "vault") if decisions.get(key) == "approve" else ("DENIED", "quarantine")}[kind]
    assert {o.key: (o.outcome, o.zone) for o in result.objects} == expected
    assert Counter(o.outcome for o in result.objects) == Counter({"VAULT": 970, "QUARANTINED": 10, "APPROVED": 10, "DENIED": 10})
    # The vault keeps the original 1,024-byte keys; the staging and review zones hash them (zone_key).
    assert {o.final_key for o in result.objects if o.zone == "vault"} == {k for k, v in expected.items() if v[1] == "vault"}
    assert all("/#sha256/" in o.final_key for o in result.objects if o.zone == "quarantine")
    [review] = [n for n in result.notifications if n["event"] == "REVIEW_REQUESTED"]
    [summary] = [json.loads(n["message"])["summary"] for n in result.notifications if n["event"] == "SCAN_FINISHED"]
    assert review and summary
