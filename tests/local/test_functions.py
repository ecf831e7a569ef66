"""In-process handlers: a function's environment is visible to its own invocation and nowhere else.

moto's interpreter runs Map iterations on threads that create boto3 clients while a handler runs, and
botocore iterates ``os.environ`` when it does. These tests hold the engine to that: other threads
never see a function's variables appear or vanish, and nothing a handler writes outlives it.
"""

from __future__ import annotations

import os
import threading
import time

from macie_pipeline.local.functions import LocalFunction

# Held since before any invocation, as boto3 sessions and botocore config providers hold it.
ENVIRON_AT_IMPORT = os.environ

HANDLER = '''
import os

def handler(event, context):
    os.environ["WRITTEN_BY_HANDLER"] = "yes"
    if event.get("pause"):
        event["pause"]["entered"].set()
        event["pause"]["release"].wait(10)
    captured = event.get("captured", os.environ)
    return {"mine": os.environ.get("ONLY_MINE"), "captured": captured.get("ONLY_MINE"), "region": os.environ["AWS_REGION"],
            "written": os.environ["WRITTEN_BY_HANDLER"], "many": sum(k.startswith("MANY_") for k in os.environ)}
'''


def _function(tmp_path, variables):
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "envprobe.py").write_text(HANDLER)
    return LocalFunction("Probe", "probe-fn", "envprobe.handler", variables, code, [], [])


def test_a_functions_environment_is_its_own_threads_only(tmp_path, monkeypatch):
    monkeypatch.delenv("ONLY_MINE", raising=False)
    function = _function(tmp_path, {"ONLY_MINE": "secret-setting"})
    entered, release = threading.Event(), threading.Event()
    seen: dict = {}

    def invoke():
        seen["result"] = function.invoke({"pause": {"entered": entered, "release": release}, "captured": ENVIRON_AT_IMPORT})

    worker = threading.Thread(target=invoke)
    worker.start()
    assert entered.wait(10)
    # While the handler runs, this thread sees the process environment, untouched.
    during = dict(os.environ)
    release.set()
    worker.join(10)

    result, error, _ = seen["result"]
    assert error is None
    assert result["mine"] == result["captured"] == "secret-setting" and result["region"] == "us-east-1" and result["written"] == "yes"
    assert "ONLY_MINE" not in during and "WRITTEN_BY_HANDLER" not in during
    assert "ONLY_MINE" not in os.environ and "WRITTEN_BY_HANDLER" not in os.environ
    assert os.environ is ENVIRON_AT_IMPORT


def test_threads_iterating_the_environment_during_invocations_never_fail(tmp_path):
    """What botocore does on moto's threads (urllib's getproxies iterates os.environ). With keys
    added to and removed from the process environment, readers saw them at once, and now and then
    a KeyError (CI failed on one in the batch-of-50 scenario)."""
    function = _function(tmp_path, {f"MANY_{i}": str(i) for i in range(60)})
    stop, failures, rounds = threading.Event(), [], [0]

    def iterate():
        while not stop.is_set():
            try:
                snapshot = dict(os.environ.items())
                assert not any(k.startswith("MANY_") for k in snapshot)
            except (KeyError, AssertionError) as error:
                failures.append(repr(error))
            rounds[0] += 1
            time.sleep(0)  # let the invocations run

    readers = [threading.Thread(target=iterate) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        results = [function.invoke({}) for _ in range(100)]
    finally:
        stop.set()
        for reader in readers:
            reader.join(10)
    assert failures == []
    assert rounds[0] > 100
    assert {(r["many"], e) for r, e, _ in results} == {(60, None)}
