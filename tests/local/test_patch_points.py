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
    assert len(patches.EXPECTED_SIGNATURES) == 18  # sixteen patches; 15 and 16 have two points each


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


def _original(point: str):
    owner, name = patches._resolve(point)
    target = patches._REGISTRY.originals.get(point) or getattr(owner, name)
    return target.fget if isinstance(target, property) else target


def test_the_sqs_receive_and_delete_patches_read_what_moto_reads():
    """Patches 12 and 13 repeat moto's own tests: visible is ``now > visible_at``, delayed is
    ``now < delayed_until``; a deleted message leaves the queue, its handles are recorded as deleted,
    an unknown handle is ReceiptHandleIsInvalid, an already deleted one is accepted."""
    import inspect as _inspect

    from moto.sqs.models import Message

    assert "message.visible and not message.delayed" in _inspect.getsource(_original(patches._SQS_MESSAGES))
    assert "current_time > self.visible_at" in _inspect.getsource(Message.visible.fget)
    assert "current_time < self.delayed_until" in _inspect.getsource(Message.delayed.fget)
    source = _inspect.getsource(_original(patches._SQS_DELETE))
    for statement in ("if receipt_handle in self.deleted_messages:", "raise ReceiptHandleIsInvalid()",
                      "self.pending_messages.discard(message)", "self.deleted_messages.update(message.all_receipt_handles)"):
        assert statement in source
    assert "__eq__" not in vars(Message)  # the patch removes a message by identity


def test_the_transaction_patch_copies_what_moto_copies():
    """Patch 14: moto copies each table of the transaction before it writes, and rolls back by
    putting the copies back; the module's ``copy`` is what the patch stands in for."""
    import inspect as _inspect

    import moto.dynamodb.models as dynamodb_models

    source = _inspect.getsource(_original(patches._DYNAMODB_TRANSACT))
    assert "original_table_state[table_name] = copy.deepcopy(" in source
    assert source.count("self.tables[table_name] = original_table_state[table_name]") == 2
    assert dynamodb_models.copy.deepcopy is not None


def test_the_request_routing_patches_skip_only_a_reload_and_a_lock():
    """Patch 15: moto's ``_url_module`` reloads ``moto.s3.urls`` (the engine keeps the loaded one);
    ``_create_account_specific_backend`` registers a missing account under a lock (the engine skips
    it only when the account is there and the BackendDict registered)."""
    import inspect as _inspect

    assert "reload(backend_urls_module)" in _inspect.getsource(_original(patches._S3_URL_MODULE))
    source = _inspect.getsource(_original(patches._BACKEND_LOOKUP))
    assert "if account_id not in list(self.keys()):" in source and "BackendDict._instances.append(self)" in source


def test_the_patched_queue_and_transactions_behave_as_moto_does():
    """With an engine active: receive, delete (twice, and an unknown handle), a delayed message, and a
    cancelled transaction that leaves its table as it was."""
    import boto3
    import pytest
    from botocore.exceptions import ClientError
    from moto import mock_aws

    host = object()
    with mock_aws():
        patches.activate(host)  # type: ignore[arg-type]
        try:
            sqs = boto3.client("sqs", region_name="us-east-1")
            url = sqs.create_queue(QueueName="q")["QueueUrl"]
            for i in range(25):
                sqs.send_message(QueueUrl=url, MessageBody=str(i))
            sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
            seen = []
            while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages"):
                seen += batch
            assert sorted(int(m["Body"]) for m in seen) == list(range(25))  # delayed and in-flight ones hidden
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(seen[:10])]
            assert len(sqs.delete_message_batch(QueueUrl=url, Entries=entries)["Successful"]) == 10
            assert len(sqs.delete_message_batch(QueueUrl=url, Entries=entries)["Successful"]) == 10  # again: accepted
            with pytest.raises(ClientError, match="ReceiptHandleIsInvalid"):
                sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            assert (attributes["ApproximateNumberOfMessagesNotVisible"], attributes["ApproximateNumberOfMessagesDelayed"]) == ("15", "1")

            ddb = boto3.client("dynamodb", region_name="us-east-1")
            ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
            ddb.put_item(TableName="t", Item={"pk": {"S": "taken"}, "n": {"N": "1"}})
            actions = [{"Update": {"TableName": "t", "Key": {"pk": {"S": f"k{i}"}}, "UpdateExpression": "SET n = :n",
                                   "ExpressionAttributeValues": {":n": {"N": "2"}}}} for i in range(5)]
            actions.append({"Put": {"TableName": "t", "Item": {"pk": {"S": "taken"}}, "ConditionExpression": "attribute_not_exists(pk)"}})
            with pytest.raises(ClientError, match="TransactionCanceledException"):
                ddb.transact_write_items(TransactItems=actions)
            items = ddb.scan(TableName="t")["Items"]
            assert items == [{"pk": {"S": "taken"}, "n": {"N": "1"}}]  # rolled back
            ddb.transact_write_items(TransactItems=actions[:5])
            assert len(ddb.scan(TableName="t")["Items"]) == 6
        finally:
            patches.deactivate(host)  # type: ignore[arg-type]


def test_the_s3_listing_patch_lists_what_moto_lists_but_a_key_gone_meanwhile():
    """Patch 16: moto's key store lists from a copy of its names and reads each key again (KeyError
    for a key deleted in between); with an engine active that key is left out, the rest is the same."""
    import inspect as _inspect

    from moto.s3.utils import _VersionedKeyStore

    assert "self[key]" in _inspect.getsource(_VersionedKeyStore._iteritems)
    assert "dict(self)" in _inspect.getsource(_VersionedKeyStore._self_iterable)
    store = _VersionedKeyStore()
    store["a"], store["b"], store["b"], store["c"] = "a1", "b1", "b2", "c1"
    assert list(store.items()) == [("a", "a1"), ("b", "b2"), ("c", "c1")]  # moto's own, no engine
    names = iter(store.items())
    assert next(names) == ("a", "a1")
    dict.pop(store, "b")  # another thread deletes b while the listing runs
    import pytest

    with pytest.raises(KeyError):
        list(names)
    host = object()
    patches.activate(host)  # type: ignore[arg-type]
    try:
        store["b"] = "b3"
        listing = store.items()
        assert next(listing) == ("a", "a1")
        dict.pop(store, "b")
        assert list(listing) == [("c", "c1")] and list(store.values()) == ["a1", "c1"]
    finally:
        patches.deactivate(host)  # type: ignore[arg-type]
