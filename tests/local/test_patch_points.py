"""Canary: the moto internals the local engine replaces are still where, and what, it expects."""

from __future__ import annotations

import re
from pathlib import Path

import moto

from macie_pipeline.local import patches

ROOT = Path(__file__).resolve().parents[2]


def test_every_patch_point_exists_with_the_expected_signature():
    assert patches.check_patch_points() == []


def test_the_canary_detects_a_moved_patch_point(monkeypatch):
    monkeypatch.setitem(patches.EXPECTED_SIGNATURES, "moto.awslambda.models:LambdaFunction._no_such_method", ("event",))
    monkeypatch.setitem(patches.EXPECTED_SIGNATURES, patches._WAIT, ("env", "seconds"))
    problems = patches.check_patch_points()
    assert len(problems) == 2
    assert any("_no_such_method: not found" in p for p in problems)
    assert any("parameters ('env', 'wait_seconds'), expected ('env', 'seconds')" in p for p in problems)


def test_moto_is_pinned_exactly_where_it_is_installed_from():
    assert moto.__version__ == patches.MOTO_VERSION
    pins = re.findall(r"^moto\[all\]==([\d.]+)$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert pins == [patches.MOTO_VERSION]
    pyproject = ROOT / "pyproject.toml"
    if pyproject.exists():
        assert f'moto[all]=={patches.MOTO_VERSION}' in pyproject.read_text()


def test_the_map_run_patch_still_sees_the_childrens_event_list():
    """Patch 6 reads the children's events from ``env.event_manager`` after ``_map_run``: moto must
    still swap in a fresh EventManager around ``_map_run`` (else the children would land in the
    parent's history and the benchmark would count them twice)."""
    import inspect as _inspect

    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import distributed_iteration_component as dic

    source = _inspect.getsource(dic.DistributedIterationComponent._eval_body)
    assert "env.event_manager = EventManager()" in source
    assert source.index("env.event_manager = EventManager()") < source.index("self._map_run(")
    record = _inspect.signature(
        __import__("moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record",
                   fromlist=["MapRunRecord"]).MapRunRecord.__init__
    ).parameters
    assert "execution_arn" in record


def test_the_callback_patch_can_name_the_state():
    """Patch 5 tells the host the waiting state's name (job wait or review wait)."""
    import inspect as _inspect

    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    assert "self.name = " in _inspect.getsource(CommonStateField)


def test_every_patch_point_is_listed():
    assert len(patches.EXPECTED_SIGNATURES) == 11


def test_the_sqs_retention_patch_reads_what_moto_reads():
    """Patch 8 reads ``Queue.message_retention_period`` and ``Message.sent_timestamp`` (milliseconds),
    as moto's own check does through get_queue_attributes."""
    import inspect as _inspect

    from moto.sqs.models import Queue, SQSBackend

    original = patches._REGISTRY.originals.get(patches._SQS_RETENTION) or SQSBackend.is_message_valid_based_on_retention_period
    source = _inspect.getsource(original)
    assert '"MessageRetentionPeriod"' in source and "message.sent_timestamp / 1000" in source
    assert "MessageRetentionPeriod" in Queue.BASE_ATTRIBUTES


def test_the_transfer_manager_patch_builds_what_use_threads_false_builds():
    """Patch 9 builds the TransferManager boto3 builds for ``use_threads=False``; boto3's managed
    copy must still go through ``create_transfer_manager`` (else the patch would not apply)."""
    import inspect as _inspect

    from boto3.s3 import inject, transfer

    assert "executor_cls = NonThreadedExecutor" in _inspect.getsource(patches._REGISTRY.originals.get(patches._TRANSFER_MANAGER)
                                                                       or transfer._create_default_transfer_manager)
    assert "create_transfer_manager(self, " in _inspect.getsource(inject.copy)
    assert "_create_default_transfer_manager(client, config, osutil)" in _inspect.getsource(transfer.create_transfer_manager)


def test_the_sqs_send_patch_reads_only_content_based_deduplication():
    """Patch 11: moto's send_message reads one attribute of the queue, ContentBasedDeduplication, a
    FIFO attribute computed from ``content_based_deduplication``."""
    import inspect as _inspect

    from moto.sqs.models import Queue, SQSBackend

    original = patches._REGISTRY.originals.get(patches._SQS_SEND) or SQSBackend.send_message
    source = _inspect.getsource(original)
    assert source.count("queue.attributes") == 1 and 'queue.attributes.get("ContentBasedDeduplication")' in source
    assert "ContentBasedDeduplication" in Queue.FIFO_ATTRIBUTES
    assert "ContentBasedDeduplication" not in Queue.BASE_ATTRIBUTES


def test_moto_events_still_parses_its_input_paths_with_jsonpath_ng():
    """Patch 10 caches ``jsonpath_ng.ext.parse``, which moto's EventBridge imports at each call."""
    import inspect as _inspect

    from moto.events.utils import EventTemplateParser

    assert "from jsonpath_ng.ext import parse" in _inspect.getsource(EventTemplateParser.parse)


def test_the_parser_patch_rebuilds_components_from_a_kept_tree():
    """Patch 7 keeps moto's ANTLR tree and runs moto's Preprocessor on it for each execution, as
    moto's own parse does after the syntax check."""
    import inspect as _inspect

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = patches._REGISTRY.originals.get(patches._PARSE) or AmazonStateLanguageParser.parse
    source = _inspect.getsource(original)
    assert "program = preprocessor.visit(tree)" in source and "return program, tree" in source
