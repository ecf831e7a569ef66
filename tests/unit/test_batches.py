"""pipeline_common.batches without AWS: JSON Lines, the per-object guard, PutEvents grouping."""

from __future__ import annotations

import json

import pytest

from pipeline_common import batches
from pipeline_common.errors import InvalidInputError


def test_lines_round_trip_keys_that_str_splitlines_would_cut():
    keys = ["a\u2028b", "c\u2029d", "e\x85f", "g\x1ch\x0bi\x0cj", "k\rl", "ü/ß 1.csv"]
    body = b"".join(batches.dumps_line({"i": i, "key": key}) for i, key in enumerate(keys))
    assert [line["key"] for line in batches.parse_lines(body, name="f")] == keys


def test_parse_lines_names_the_file_and_line():
    with pytest.raises(InvalidInputError, match="f.jsonl line 2 is not JSON"):
        batches.parse_lines(b'{"i": 0}\n{"i": \n', name="f.jsonl")
    with pytest.raises(InvalidInputError, match="f.jsonl line 1 is not a JSON object"):
        batches.parse_lines(b"[1]\n", name="f.jsonl")
    with pytest.raises(InvalidInputError, match="f.jsonl is not UTF-8"):
        batches.parse_lines(b'{"k": "\xff"}\n', name="f.jsonl")
    assert batches.parse_lines(b'{"i": 0}\r\n\n{"i": 1}', name="f") == [{"i": 0}, {"i": 1}]


def test_for_each_object_keeps_order_and_turns_an_exception_into_that_lines_error():
    def work(line):
        if line["i"] == 3:
            raise ValueError("bad object")
        return {**line, "done": True}

    out = batches.for_each_object([{"i": i} for i in range(8)], work, workers=4)
    assert [line["i"] for line in out] == list(range(8))
    assert out[3] == {"i": 3, "error": {"Error": "ValueError", "Cause": "bad object"}}
    assert all(line["done"] for line in out if line["i"] != 3)


class Events:
    def __init__(self, refuse: int = 0):
        self.calls: list[list[dict]] = []
        self.refuse = refuse

    def put_events(self, Entries):  # noqa: N803
        self.calls.append(Entries)
        results = []
        for _ in Entries:
            if self.refuse:
                self.refuse -= 1
                results.append({"ErrorCode": "InternalFailure"})
            else:
                results.append({"EventId": "x"})
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}


def test_put_events_sends_ten_at_a_time_and_resends_failed_entries_once():
    entries = batches.result_entries("bus", [{"n": n} for n in range(23)])
    events = Events()
    assert batches.put_events(events, entries) == []
    assert [len(call) for call in events.calls] == [10, 10, 3]
    assert json.loads(entries[0]["Detail"]) == {"n": 0} and entries[0]["EventBusName"] == "bus"

    events = Events(refuse=3)  # the first call refuses 3 entries; their resend goes through
    assert batches.put_events(events, entries[:5]) == []
    assert [len(call) for call in events.calls] == [5, 3]

    events = Events(refuse=4)  # 3 refused, then 1 of the 3 resent refused again
    failed = batches.put_events(events, entries[:3])
    assert [entry["ErrorCode"] for entry in failed] == ["InternalFailure"]


def test_put_events_splits_by_size():
    big = batches.result_entries("bus", [{"pad": "x" * 100_000} for _ in range(5)])
    events = Events()
    batches.put_events(events, big)
    assert [len(call) for call in events.calls] == [2, 2, 1]
