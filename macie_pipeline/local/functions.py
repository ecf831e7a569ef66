"""Run a synthesized Lambda function's handler in this process.

The handler module is imported from the function's own asset folder (what ``cdk synth`` bundled),
with the pure-Python layers it declares on the path. Layers holding compiled extensions (the pandas
layer is built for Linux x86_64 and Python 3.13) cannot load into this interpreter; their packages
come from the local environment instead, and :attr:`LocalFunction.substituted_layers` says so.

Each invocation runs under one process-wide lock with its modules in ``sys.modules``, then restores
them: test code that imported the same module names from ``lambda/`` keeps its own module objects.
The function's environment variables are never written to the process environment: ``os.environ``
is given, once, a class that shows the invoking thread its own copy (process environment plus the
function's variables). moto's interpreter threads create boto3 clients, and botocore iterates
``os.environ`` while doing so; adding and removing keys under them raised ``KeyError`` there.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

from .template import ACCOUNT, REGION

_LOCK = threading.RLock()
_BASE_ENV = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "local",
}


class _PerThreadEnviron(os._Environ):
    """The class ``os.environ`` is given: the process environment, except on a thread inside
    :meth:`layer`, which sees its own copy.

    The object itself is kept (only its class changes), because boto3 sessions and botocore config
    providers hold references to it. Outside a layer every operation is ``os._Environ``'s own
    (``putenv`` included). Inside, reads, writes and iteration use the thread's private dict, so
    other threads never see a key appear or vanish.
    """

    def _layer(self) -> Optional[dict]:
        """This thread's own dict inside :meth:`layer`, else None."""
        return getattr(self.__dict__["_threads"], "data", None)

    @property
    def _data(self) -> dict:  # type: ignore[override]
        layer = self._layer()
        return self.__dict__["_data"] if layer is None else layer

    def __setitem__(self, key: str, value: str) -> None:
        layer = self._layer()
        if layer is None:
            super().__setitem__(key, value)
        else:
            layer[self.encodekey(key)] = self.encodevalue(value)

    def __delitem__(self, key: str) -> None:
        layer = self._layer()
        if layer is None:
            super().__delitem__(key)
            return
        try:
            del layer[self.encodekey(key)]
        except KeyError:
            raise KeyError(key) from None

    @contextmanager
    def layer(self, values: Mapping[str, str]) -> Iterator[None]:
        """On this thread only: the process environment plus ``values``."""
        data = dict(self.__dict__["_data"])  # one C-level copy of the process environment
        data.update({self.encodekey(k): self.encodevalue(v) for k, v in values.items()})
        threads = self.__dict__["_threads"]
        previous = self._layer()
        threads.data = data
        try:
            yield
        finally:
            threads.data = previous


def _per_thread_environ() -> _PerThreadEnviron:
    """Give ``os.environ`` the per-thread class once (it is transparent outside a layer)."""
    with _LOCK:
        environ = os.environ
        if not isinstance(environ, _PerThreadEnviron):
            environ.__dict__["_threads"] = threading.local()
            environ.__class__ = _PerThreadEnviron
        return environ  # type: ignore[return-value]


class InjectedFault(Exception):
    """Raised inside a handler invocation by a scenario's fault; Lambda reports ``error_type``."""

    def __init__(self, error_type: str, message: str = "fault injected by the local engine") -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


class _LogSink(io.TextIOBase):
    """Where the handlers' Powertools loggers write: the current invocation's buffer."""

    def __init__(self) -> None:
        self._local = threading.local()
        self.echo: Optional[Callable[[str], None]] = None

    def begin(self) -> None:
        self._local.buffer = []

    def end(self) -> str:
        text = "".join(getattr(self._local, "buffer", []))
        self._local.buffer = []
        return text

    def write(self, text: str) -> int:  # type: ignore[override]
        buffer = getattr(self._local, "buffer", None)
        if buffer is not None:
            buffer.append(text)
        if self.echo is not None:
            self.echo(text)
        return len(text)


LOG_SINK = _LogSink()
# Top-level modules loaded before any handler: the process's own, never swapped per function.
_PROCESS_MODULES = frozenset(name.split(".", 1)[0] for name in list(sys.modules))
# The role of the handler running on this thread (None: the workflow itself is calling AWS).
CURRENT = threading.local()
# The role of the handler being invoked (invocations are serialised by _LOCK), for the threads of
# the pools a handler starts (concurrent.futures names them ThreadPoolExecutor-...): their calls
# are the handler's calls.
_INVOKED: dict[str, Optional[str]] = {"role": None}
_POOL_THREAD_PREFIX = "ThreadPoolExecutor-"


def current_role() -> Optional[str]:
    """The handler on whose behalf this thread runs: its own invocation, or a worker of the handler
    being invoked; None for the workflow's own calls and the engine's."""
    role = getattr(CURRENT, "role", None)
    if role is None and threading.current_thread().name.startswith(_POOL_THREAD_PREFIX):
        return _INVOKED["role"]
    return role


@dataclass
class LocalFunction:
    """One synthesized function: handler, environment and code, runnable in process."""

    logical_id: str
    name: str
    handler: str
    environment: Mapping[str, str]
    code_dir: Path
    layer_dirs: list[Path]
    substituted_layers: list[str]
    memory_mb: int = 128
    timeout_seconds: int = 3
    #: Attributes set on the handler module once loaded (the review function's key-set fetch).
    module_overrides: Mapping[str, Any] = field(default_factory=dict)
    _modules: dict[str, Any] = field(default_factory=dict, repr=False)
    _entry: Optional[Callable[..., Any]] = field(default=None, repr=False)

    @property
    def role(self) -> str:
        """The handler module's name (``prepare_scan``, ``transfer``, ...): how scenarios name steps."""
        return self.handler.rsplit(".", 1)[0]

    def _own_top_level_names(self) -> set[str]:
        """Module names this function brings itself: its asset's and its layers' own modules
        (``pipeline_common``). Installed third-party packages of a layer (those with a
        ``.dist-info``, such as ``jmespath``) that the process has loaded already stay the process's,
        so moto's threads never see them swapped."""
        names = set()
        for folder in [self.code_dir, *self.layer_dirs]:
            distributions = {d.name.split("-", 1)[0].lower() for d in folder.glob("*.dist-info")}
            for entry in folder.iterdir():
                if entry.suffix == ".py":
                    name = entry.stem
                elif entry.is_dir() and (entry / "__init__.py").exists():
                    name = entry.name
                else:
                    continue
                if not (name.lower() in distributions and name in _PROCESS_MODULES):
                    names.add(name)
        return names

    @contextmanager
    def _activated(self) -> Iterator[None]:
        """This function's environment (on this thread only), modules and path, restored afterwards
        (call under _LOCK)."""
        wanted = dict(_BASE_ENV)
        wanted.update({
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
        })
        wanted.update(self.environment)
        names = self._own_top_level_names()
        with _per_thread_environ().layer(wanted):
            saved_modules = {
                m: sys.modules.pop(m) for m in list(sys.modules) if m.split(".", 1)[0] in names
            }
            sys.modules.update(self._modules)
            saved_path = list(sys.path)
            sys.path[:0] = [str(self.code_dir), *map(str, self.layer_dirs)]
            try:
                yield
            finally:
                self._modules = {m: sys.modules[m] for m in list(sys.modules) if m.split(".", 1)[0] in names}
                for m in self._modules:
                    sys.modules.pop(m, None)
                sys.modules.update(saved_modules)
                sys.path[:] = saved_path

    def _load(self) -> Callable[..., Any]:
        if self._entry is None:
            module_name, attribute = self.handler.rsplit(".", 1)
            source = self.code_dir / (module_name.replace(".", "/") + ".py")
            if not source.is_file():
                raise FileNotFoundError(f"{self.logical_id}: handler module {source} is not in its asset")
            spec = importlib.util.spec_from_file_location(module_name, source)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            for name, value in self.module_overrides.items():
                if not hasattr(module, name):
                    raise AttributeError(f"{self.logical_id}: handler module {module_name} has no {name} to replace")
                setattr(module, name, value)
            _route_loggers_to_sink()
            self._entry = getattr(module, attribute)
        return self._entry

    def invoke(
        self,
        event: Any,
        before: Optional[Callable[[Any], None]] = None,
        after: Optional[Callable[[Any], Any]] = None,
    ) -> tuple[Any, Optional[dict], str]:
        """(result, error payload or None, logs). ``before`` may raise to inject a fault; ``after``
        may replace the result (a scenario simulating a faulty handler)."""
        with _LOCK, self._activated():
            LOG_SINK.begin()
            context = LambdaContext(self.name, self.memory_mb, self.timeout_seconds)
            CURRENT.role = _INVOKED["role"] = self.role
            try:
                entry = self._load()
                if before is not None:
                    before(event)
                result = entry(event, context)
                if after is not None:
                    result = after(result)
                json.dumps(result)  # Lambda must serialise the result: fail here as Lambda would
                return result, None, LOG_SINK.end()
            except Exception as error:  # the handler's failure becomes Lambda's error payload
                error_type = error.error_type if isinstance(error, InjectedFault) else type(error).__name__
                payload = {
                    "errorType": error_type,
                    "errorMessage": str(error),
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_exception(error)[-6:],
                }
                return None, payload, LOG_SINK.end()
            finally:
                CURRENT.role = _INVOKED["role"] = None


def _route_loggers_to_sink() -> None:
    """Point every stdout StreamHandler of the handlers' loggers at the invocation log sink."""
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        if not isinstance(logger, logging.Logger):
            continue
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) in (sys.stdout, sys.__stdout__):
                handler.setStream(LOG_SINK)


def layer_is_pure_python(layer_dir: Path) -> bool:
    return not any(layer_dir.rglob("*.so"))
