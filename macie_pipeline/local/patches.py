"""The sixteen places where the local engine changes moto's (and one of boto3's) behaviour, and nothing else.

moto 5.2.5 executes Step Functions definitions (``execute_state_machine``) but cannot do what this
pipeline needs offline. Each patch below replaces one moto internal; :func:`check_patch_points`
verifies that every one of them still exists with the signature the engine expects, so a moto
upgrade that moves one fails loudly (``tests/local/test_patch_points.py``) instead of silently
running the real moto code path.

1. ``LambdaFunction._invoke_lambda`` (moto runs Lambda code only in Docker): the handler from the
   synthesized asset runs in this process (:mod:`macie_pipeline.local.functions`).
2. ``StateTaskServiceAwsSdk._eval_service_task`` (moto calls boto3 with the PascalCase parameters of
   the ASL and has no Macie jobs or findings): ``aws-sdk:macie2:*`` tasks go to the local Macie.
3. ``StateTaskServiceAwsSdk._from_error``: error names as Step Functions documents them for AWS
   SDK integrations, ``<Service>.<ErrorCode>`` with an ``Exception`` suffix (moto says
   ``s3.s3Exception`` for every S3 error).
4. ``WaitFunction._wait_interval`` and the ``time`` module of ``retrier_decl``: Wait states and
   Retry back-off are not slept through (the requested seconds are recorded).
5. ``StateTaskServiceCallback._eval_wait_for_task_token``: a ``.waitForTaskToken`` task waits the
   engine's own window, not its declared ``TimeoutSeconds`` (days for a review, the poll interval for
   the Macie job's backstop), so "no answer" times out in seconds. The host is told the state's name,
   so the job wait and the review wait get different windows.
6. ``DistributedIterationComponent._map_run``: moto records a Distributed Map's child executions in
   a throw-away event list; the engine keeps each map run's child events (the benchmark counts their
   state transitions) and hands them to the host with the map run's and the parent's ARNs.
7. ``AmazonStateLanguageParser.parse``: moto's grammar takes ``ToleratedFailurePercentage`` only as a
   decimal number (``100.0``), while CDK writes an integer (``100``), which moto refuses with an
   ``ASLParserException``. The definition text given to moto's parser has those integers written as
   decimals (same JSON value); the definition registered in moto stays as synthesized. The ANTLR
   parse of a definition text is kept (moto parses at create and at every execution's start); each
   execution still gets fresh evaluation components from moto's own Preprocessor.
8. ``SQSBackend.is_message_valid_based_on_retention_period``: moto computes *every* attribute of the
   queue (three passes over all its messages) to read ``MessageRetentionPeriod`` for each message it
   receives, so draining a queue of n messages costs n² (1,000 Object Created events took 99 s to
   pump). The engine reads the queue's retention period directly: same answer, one lookup.
9. ``boto3.s3.transfer._create_default_transfer_manager``: every managed copy (``s3.copy``) builds a
   TransferManager with its own thread pools; in Lambda that is one process per invocation, here
   every chunk's workers share one interpreter, and thousands of short-lived pools fight over
   ``concurrent.futures``' global lock and the GIL (1,000 objects spent more time starting threads
   than copying). While an engine is active the manager runs its tasks in the calling thread
   (s3transfer's ``NonThreadedExecutor``, what ``use_threads=False`` selects): the same requests in
   the same order, the handler's own thread pool still copies objects in parallel.
10. ``jsonpath_ng.ext.parse`` (what moto's EventBridge uses to build each target's input): moto
    parses the same ten JSONPath expressions again for every event it delivers (a PLY parser each
    time); the engine caches each expression's parse (parsed expressions are immutable).
11. ``SQSBackend.send_message``: moto reads the queue's ``attributes`` (three passes over every
    message in the queue) to learn ``ContentBasedDeduplication`` for each message it sends, so
    filling a queue with n messages costs n². While the engine sends, ``Queue.attributes`` is read
    as ``{"ContentBasedDeduplication": ...}`` for FIFO queues (it exists only there) and ``{}``
    otherwise: the one attribute send_message reads, with the value moto would give.

12. ``Queue.messages`` (SQS, a property): moto lists the visible messages of a queue for every
    ReceiveMessage, reading the clock twice per message (``visible``, ``delayed``); draining a queue of
    n messages ten at a time costs n²/10 clock reads (10,000 Object Created events: millions). While
    the engine is active the clock is read once per listing: the same messages, in the same order.
13. ``Queue.delete_message`` (SQS): moto scans every message of the queue twice for each receipt
    handle deleted, so deleting n messages costs n². The engine finds the message by an index of the
    queue's receipt handles (rebuilt from the queue when a handle is not in it) and deletes it as moto
    does: the message leaves the queue, its handles are recorded as deleted, an unknown handle is
    ``ReceiptHandleIsInvalid``.
14. ``DynamoDBBackend.transact_write_items``: to roll back, moto deep-copies a table once for *every*
    item of the transaction, before it writes anything: 101 copies of the whole table for a review
    transaction of 100 decisions (a review of 2,000 objects took 30 s of the engine's time, growing
    with the square of the batch). While the engine is active a table is copied once per transaction;
    the copies were identical, so the rollback is the same.
15. ``S3Backend._url_module`` (a property) and ``BackendDict._create_account_specific_backend``: for
    every S3 request moto *reloads* its ``moto.s3.urls`` module (twice), and every backend lookup takes
    a global lock and compares the BackendDict with every other (dict equality) to learn that it is
    already registered: together about a tenth of the engine's time. While the engine is active the
    loaded module is reused (the engine changes no environment variable that module reads) and an
    account that already has its backend, in a registered BackendDict, is served without the lock.
16. ``_VersionedKeyStore.items`` and ``.values`` (moto's S3 key store): moto lists a bucket from a
    copy of its key names and then reads each key again, so a key deleted by another thread in
    between raises ``KeyError`` out of ``ListObjectsV2`` (S3 itself never fails a listing because an
    object went away). This happens when batches overlap: one job's analysis lists the staging zone
    while another batch moves its objects out. While the engine is active a key that is gone by the
    time it is read is left out of the listing; every other key is listed as moto lists it.

Every patch is installed once per process and delegates to the *active* engine (a module-level
registry); with no engine active, moto's original code runs unchanged.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from botocore.exceptions import ClientError

MOTO_VERSION = "5.2.5"

_LAMBDA = "moto.awslambda.models:LambdaFunction._invoke_lambda"
_SDK_TASK = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
    "state_task_service_aws_sdk:StateTaskServiceAwsSdk._eval_service_task"
)
_SDK_ERROR = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
    "state_task_service_aws_sdk:StateTaskServiceAwsSdk._from_error"
)
_WAIT = "moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function:WaitFunction._wait_interval"
_RETRY_TIME = "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl:time"
_CALLBACK = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
    "state_task_service_callback:StateTaskServiceCallback._eval_wait_for_task_token"
)
_MAP_RUN = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration."
    "distributed_iteration_component:DistributedIterationComponent._map_run"
)
_PARSE = "moto.stepfunctions.parser.asl.parse.asl_parser:AmazonStateLanguageParser.parse"
_SQS_RETENTION = "moto.sqs.models:SQSBackend.is_message_valid_based_on_retention_period"
_TRANSFER_MANAGER = "boto3.s3.transfer:_create_default_transfer_manager"
_JSONPATH_PARSE = "jsonpath_ng.ext:parse"
_SQS_SEND = "moto.sqs.models:SQSBackend.send_message"
_SQS_MESSAGES = "moto.sqs.models:Queue.messages"
_SQS_DELETE = "moto.sqs.models:Queue.delete_message"
_DYNAMODB_TRANSACT = "moto.dynamodb.models:DynamoDBBackend.transact_write_items"
_S3_URL_MODULE = "moto.s3.models:S3Backend._url_module"
_BACKEND_LOOKUP = "moto.core.base_backend:BackendDict._create_account_specific_backend"
_S3_KEY_ITEMS = "moto.s3.utils:_VersionedKeyStore.items"
_S3_KEY_VALUES = "moto.s3.utils:_VersionedKeyStore.values"

# The parameters each patched function must have (after self); a change means moto moved.
EXPECTED_SIGNATURES: dict[str, tuple[str, ...]] = {
    _LAMBDA: ("event",),
    _SDK_TASK: ("env", "resource_runtime_part", "normalised_parameters", "state_credentials"),
    _SDK_ERROR: ("env", "ex"),
    _WAIT: ("env", "wait_seconds"),
    _CALLBACK: ("env", "timeout_seconds", "callback_endpoint", "heartbeat_endpoint"),
    _MAP_RUN: ("env", "eval_input"),
    _PARSE: ("definition",),
    _SQS_RETENTION: ("queue_name", "message"),
    _TRANSFER_MANAGER: ("client", "config", "osutil"),
    _JSONPATH_PARSE: ("path", "debug"),
    _SQS_SEND: ("queue_name", "message_body", "message_attributes", "delay_seconds", "deduplication_id", "group_id",
                "system_attributes", "validate_group_id"),
    _SQS_MESSAGES: (),  # a property: the parameters of its getter
    _SQS_DELETE: ("receipt_handle",),
    _DYNAMODB_TRANSACT: ("transact_items",),
    _S3_URL_MODULE: (),  # a property
    _BACKEND_LOOKUP: ("account_id",),
    _S3_KEY_ITEMS: (),
    _S3_KEY_VALUES: (),
}


class PatchPointMoved(RuntimeError):
    """moto no longer has a function the engine patches, or its signature changed."""


class Host(Protocol):
    """What the patches delegate to: the active engine's :class:`~macie_pipeline.local.host.EngineHost`."""

    def invoke_function(self, function_name: str, payload: Any) -> tuple[str, bool, str]: ...

    def call_sdk_task(self, service: str, action: str, parameters: dict) -> Optional[dict]: ...

    def sdk_error_name(self, service: str, error: ClientError) -> Optional[str]: ...

    def record_wait(self, kind: str, seconds: float) -> None: ...

    def callback_timeout(self, state_name: str, declared: int) -> float: ...

    def record_map_run(self, execution_arn: str, map_run_arn: str, child_executions: int, child_events: list) -> None: ...


@dataclass
class _Registry:
    host: Optional[Host] = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    installed: bool = False
    originals: dict[str, Any] = field(default_factory=dict)


_REGISTRY = _Registry()


def _resolve(point: str) -> tuple[Any, str]:
    module_name, _, attr_path = point.partition(":")
    module = __import__(module_name, fromlist=["_"])
    owner: Any = module
    parts = attr_path.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    return owner, parts[-1]


def check_patch_points() -> list[str]:
    """Problems with moto's patch points (empty = the engine can patch this moto)."""
    import moto

    problems = []
    if moto.__version__ != MOTO_VERSION:
        problems.append(f"moto {moto.__version__} is installed; the engine is verified with moto=={MOTO_VERSION}")
    for point, expected in EXPECTED_SIGNATURES.items():
        try:
            owner, name = _resolve(point)
            target = _REGISTRY.originals.get(point) or getattr(owner, name)
        except (ImportError, AttributeError) as error:
            problems.append(f"{point}: not found ({error})")
            continue
        target = target.fget if isinstance(target, property) else target
        params = tuple(p for p in inspect.signature(target).parameters if p != "self")
        if params != expected:
            problems.append(f"{point}: parameters {params}, expected {expected}")
    try:
        owner, name = _resolve(_RETRY_TIME)
        if not callable(getattr(_REGISTRY.originals.get(_RETRY_TIME) or getattr(owner, name), "sleep", None)):
            problems.append(f"{_RETRY_TIME}: has no sleep()")
    except (ImportError, AttributeError) as error:
        problems.append(f"{_RETRY_TIME}: not found ({error})")
    return problems


class _FastTime:
    """Stands in for ``time`` in moto's retrier: back-off intervals are recorded, not slept."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def sleep(self, seconds: float) -> None:
        host = _REGISTRY.host
        if host is None:
            self._real.sleep(seconds)
        else:
            host.record_wait("retry", seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def install() -> None:
    """Install every patch once per process (idempotent). Raises :class:`PatchPointMoved`."""
    with _REGISTRY.lock:
        if _REGISTRY.installed:
            return
        problems = check_patch_points()
        if problems:
            raise PatchPointMoved("The local engine cannot patch this moto:\n- " + "\n- ".join(problems))
        _install_lambda()
        _install_sdk()
        _install_waits()
        _install_callback()
        _install_map_run()
        _install_parser()
        _install_sqs_retention()
        _install_transfer_manager()
        _install_jsonpath_cache()
        _install_sqs_send()
        _install_sqs_receive_and_delete()
        _install_dynamodb_transactions()
        _install_request_routing()
        _install_s3_listing()
        _REGISTRY.installed = True


def activate(host: Host) -> None:
    install()
    with _REGISTRY.lock:
        if _REGISTRY.host is not None and _REGISTRY.host is not host:
            raise RuntimeError("Another local pipeline is active in this process; stop it first")
        _REGISTRY.host = host


def deactivate(host: Host) -> None:
    with _REGISTRY.lock:
        if _REGISTRY.host is host:
            _REGISTRY.host = None


def _swap(point: str, replacement: Any) -> Any:
    """Put ``replacement`` at ``point``; the original is returned and kept for :func:`check_patch_points`."""
    owner, name = _resolve(point)
    original = getattr(owner, name)
    _REGISTRY.originals[point] = original
    setattr(owner, name, replacement)
    return original


def _install_lambda() -> None:
    original = _swap(_LAMBDA, lambda self, event=None: _invoke_lambda(self, event))

    def _invoke_lambda(function: Any, event: Any) -> tuple[str, bool, str]:
        host = _REGISTRY.host
        if host is None:
            return original(function, event)
        return host.invoke_function(function.function_name, event)


def _install_sdk() -> None:
    original_task = _swap(
        _SDK_TASK,
        lambda self, env, resource_runtime_part, normalised_parameters, state_credentials: _task(
            self, env, resource_runtime_part, normalised_parameters, state_credentials
        ),
    )
    original_error = _swap(_SDK_ERROR, lambda self, env, ex: _from_error(self, env, ex))

    def _task(state: Any, env: Any, runtime: Any, parameters: dict, credentials: Any) -> None:
        host = _REGISTRY.host
        if host is not None:
            response = host.call_sdk_task(state.resource.api_name, state.resource.api_action, parameters)
            if response is not None:
                env.stack.append(response)
                return
        original_task(state, env, runtime, parameters, credentials)

    def _from_error(state: Any, env: Any, ex: Exception) -> Any:
        host = _REGISTRY.host
        if host is not None and isinstance(ex, ClientError):
            name = host.sdk_error_name(state.resource.api_name, ex)
            if name is not None:
                cause = f"{ex.response.get('Error', {}).get('Message', '')} (Service: {name.split('.')[0]})"
                return state._get_task_failure_event(env=env, error=name, cause=cause)
        return original_error(state, env, ex)


def _install_waits() -> None:
    original_wait = _swap(_WAIT, lambda self, env, wait_seconds: _wait(self, env, wait_seconds))

    def _wait(state: Any, env: Any, wait_seconds: int) -> None:
        host = _REGISTRY.host
        if host is None:
            return original_wait(state, env, wait_seconds)
        host.record_wait("wait", wait_seconds)
        return None

    _swap(_RETRY_TIME, _FastTime(time))


def _install_callback() -> None:
    original = _swap(
        _CALLBACK,
        lambda self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint: _callback(
            self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint
        ),
    )

    def _callback(state: Any, env: Any, timeout_seconds: int, endpoint: Any, heartbeat: Any) -> Any:
        host = _REGISTRY.host
        if host is not None:
            timeout_seconds = host.callback_timeout(str(getattr(state, "name", "")), timeout_seconds)
        return original(state, env, timeout_seconds, endpoint, heartbeat)


def _install_map_run() -> None:
    original = _swap(_MAP_RUN, lambda self, env, eval_input: _map_run(self, env, eval_input))

    def _map_run(component: Any, env: Any, eval_input: Any) -> None:
        host = _REGISTRY.host
        try:
            original(component, env, eval_input)
        finally:
            if host is not None:
                record = eval_input.map_run_record
                host.record_map_run(
                    record.execution_arn, record.map_run_arn, record.execution_counter.total.get(), env.event_manager.get_event_history()
                )


def normalise_definition(definition: str) -> str:
    """``definition`` with every integer ``ToleratedFailurePercentage`` written as a decimal (see 7)."""
    if "ToleratedFailurePercentage" not in definition:
        return definition
    try:
        document = json.loads(definition)
    except ValueError:
        return definition  # moto reports the syntax error itself

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: float(v) if k == "ToleratedFailurePercentage" and isinstance(v, int) and not isinstance(v, bool) else walk(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return json.dumps(walk(document))


def _install_parser() -> None:
    import functools

    original = _swap(_PARSE, staticmethod(lambda definition: _parse(definition)))

    @functools.lru_cache(maxsize=16)
    def _tree(definition: str) -> Any:
        """moto's parse of one definition text; its ANTLR tree is read-only once built."""
        return original(definition)[1]

    def _parse(definition: str) -> Any:
        if _REGISTRY.host is None:
            return original(definition)
        # The ANTLR parse (about a second for the pipeline's definition) is done once per definition
        # text; every execution still gets its own evaluation components from the tree.
        from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

        tree = _tree(normalise_definition(definition))
        return Preprocessor().visit(tree), tree


def _install_sqs_retention() -> None:
    from moto.core.utils import unix_time

    original = _swap(_SQS_RETENTION, lambda self, queue_name, message: _valid(self, queue_name, message))

    def _valid(backend: Any, queue_name: str, message: Any) -> bool:
        if _REGISTRY.host is None:
            return original(backend, queue_name, message)
        retention = int(backend.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > unix_time()


def _install_transfer_manager() -> None:
    from s3transfer.futures import NonThreadedExecutor
    from s3transfer.manager import TransferManager

    original = _swap(_TRANSFER_MANAGER, lambda client, config, osutil: _manager(client, config, osutil))

    def _manager(client: Any, config: Any, osutil: Any) -> Any:
        if _REGISTRY.host is None:
            return original(client, config, osutil)
        return TransferManager(client, config, osutil, NonThreadedExecutor)


def _install_jsonpath_cache() -> None:
    import functools

    original = _swap(_JSONPATH_PARSE, lambda path, debug=None: _parse_path(path, debug))
    cached = functools.lru_cache(maxsize=256)(lambda path, debug: original(path, debug=debug))

    def _parse_path(path: Any, debug: Any) -> Any:
        if _REGISTRY.host is None or not isinstance(path, str):
            return original(path, debug=debug)
        return cached(path, debug)


_SENDING = threading.local()


def _install_sqs_send() -> None:
    from moto.sqs.models import Queue

    original_send = _swap(_SQS_SEND, lambda self, queue_name, message_body, *args, **kwargs: _send(
        self, queue_name, message_body, *args, **kwargs))
    original_attributes = Queue.attributes
    _REGISTRY.originals["moto.sqs.models:Queue.attributes"] = original_attributes

    def _send(backend: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        if _REGISTRY.host is None:
            return original_send(backend, queue_name, message_body, *args, **kwargs)
        _SENDING.active = True
        try:
            return original_send(backend, queue_name, message_body, *args, **kwargs)
        finally:
            _SENDING.active = False

    def _attributes(queue: Any) -> dict[str, Any]:
        if not getattr(_SENDING, "active", False):
            return original_attributes.fget(queue)
        if queue.fifo_queue:
            return {"ContentBasedDeduplication": str(bool(queue.content_based_deduplication)).lower()}
        return {}

    Queue.attributes = property(_attributes)  # type: ignore[method-assign,assignment]


def _install_sqs_receive_and_delete() -> None:
    from moto.core.utils import unix_time_millis
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    original_messages = _swap(_SQS_MESSAGES, property(lambda queue: _messages(queue)))
    original_delete = _swap(_SQS_DELETE, lambda self, receipt_handle: _delete(self, receipt_handle))

    def _messages(queue: Any) -> list:
        if _REGISTRY.host is None:
            return original_messages.fget(queue)
        now = unix_time_millis()  # moto: Message.visible is now > visible_at, Message.delayed is now < delayed_until
        return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]

    def _delete(queue: Any, receipt_handle: str) -> None:
        if _REGISTRY.host is None:
            return original_delete(queue, receipt_handle)
        if receipt_handle in queue.deleted_messages:
            return None  # moto: already deleted, nothing to do
        index = queue.__dict__.get("_engine_receipt_handles") or {}
        message = index.get(receipt_handle)
        if message is None:
            index = {handle: m for m in queue._messages for handle in m.all_receipt_handles}
            queue.__dict__["_engine_receipt_handles"] = index
            message = index.get(receipt_handle)
        with queue._messages_lock:
            remaining = list(queue._messages)
            try:
                remaining.remove(message)  # Message has no __eq__: by identity
            except ValueError:
                raise ReceiptHandleIsInvalid() from None  # unknown, or no longer in the queue (moved to a DLQ)
            queue._messages = remaining
        queue.pending_messages.discard(message)
        queue.deleted_messages.update(message.all_receipt_handles)
        return None


_TRANSACTION = threading.local()


class _CopyOncePerTransaction:
    """Stands in for the ``copy`` module of ``moto.dynamodb.models``: inside a transaction, the rollback
    copy of a table is made once and handed out for each of the transaction's items."""

    def __init__(self, real: Any, table_type: type) -> None:
        self._real, self._table_type = real, table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        copies = getattr(_TRANSACTION, "copies", None)
        if copies is None or memo is not None or not isinstance(value, self._table_type):
            return self._real.deepcopy(value, memo)
        key = id(value)
        if key not in copies:
            copies[key] = (value, self._real.deepcopy(value))  # the value is kept so that its id stays its own
        return copies[key][1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _install_dynamodb_transactions() -> None:
    import copy

    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models.table import Table

    original = _swap(_DYNAMODB_TRANSACT, lambda self, transact_items: _transact(self, transact_items))
    _REGISTRY.originals["moto.dynamodb.models:copy"] = dynamodb_models.copy
    dynamodb_models.copy = _CopyOncePerTransaction(copy, Table)  # type: ignore[assignment]

    def _transact(backend: Any, transact_items: list) -> None:
        if _REGISTRY.host is None:
            return original(backend, transact_items)
        _TRANSACTION.copies = {}
        try:
            return original(backend, transact_items)
        finally:
            _TRANSACTION.copies = None


def _install_request_routing() -> None:
    from moto.core.base_backend import BackendDict

    original_module = _swap(_S3_URL_MODULE, property(lambda backend: _url_module(backend)))
    original_lookup = _swap(_BACKEND_LOOKUP, lambda self, account_id: _lookup(self, account_id))
    loaded: dict[str, Any] = {}

    def _url_module(backend: Any) -> Any:
        if _REGISTRY.host is None:
            return original_module.fget(backend)
        if "module" not in loaded:
            loaded["module"] = original_module.fget(backend)  # moto's reload, once per process
        return loaded["module"]

    def _lookup(backends: Any, account_id: str) -> None:
        if _REGISTRY.host is not None and dict.__contains__(backends, account_id) and any(
            registered is backends for registered in BackendDict._instances
        ):
            return None
        return original_lookup(backends, account_id)


def _install_s3_listing() -> None:
    original_items = _swap(_S3_KEY_ITEMS, lambda self: _items(self))
    original_values = _swap(_S3_KEY_VALUES, lambda self: _values(self))

    def _present(store: Any) -> Any:
        for key in dict(store):  # the names, as moto's _self_iterable copies them
            versions = dict.get(store, key)  # moto reads self[key]: the key's latest version
            if versions:
                yield key, versions[-1]

    def _items(store: Any) -> Any:
        return original_items(store) if _REGISTRY.host is None else _present(store)

    def _values(store: Any) -> Any:
        return original_values(store) if _REGISTRY.host is None else (version for _, version in _present(store))
