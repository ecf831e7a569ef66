"""Faults a scenario injects: failing functions, failing AWS calls, and hooks around invocations.

A scenario says *what* goes wrong (``fail("transfer")``, ``fail_call("events", "PutEvents",
"InternalFailure")``) and *when* (after ``skip`` matching calls, for ``times`` calls); the engine asks
:class:`Faults` at each function invocation and each AWS call whether one fires.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from botocore.exceptions import ClientError

from .functions import InjectedFault, current_role

CALLERS = ("workflow", "handlers", "any")
_FAULT_LOCK = threading.Lock()


@dataclass
class _Countdown:
    """When an injected fault fires: after ``skip`` matching calls, for ``times`` calls (None: always)."""

    times: Optional[int]
    skip: int

    def fires(self) -> bool:
        with _FAULT_LOCK:  # moto runs Map iterations and Parallel branches in threads
            if self.skip > 0:
                self.skip -= 1
                return False
            if self.times is None:
                return True
            if self.times > 0:
                self.times -= 1
                return True
            return False


@dataclass
class _Fault(_Countdown):
    error_type: str = "RuntimeError"
    message: str = ""


@dataclass
class _CallFault(_Countdown):
    code: str = ""
    caller: str = "workflow"  # workflow | handlers | any
    status: int = 500
    #: Only calls whose parameters this accepts (one object's calls: ``{"Key": ...}``); None: every call.
    match: Optional[Callable[[dict], bool]] = None

    def applies(self, parameters: Optional[dict]) -> bool:
        in_handler = current_role() is not None
        if self.caller == "workflow" and in_handler or self.caller == "handlers" and not in_handler:
            return False
        if self.match is not None and not self.match(parameters or {}):
            return False
        return self.fires()


class Faults:
    """The faults and hooks registered by a scenario, by function role and by AWS operation."""

    def __init__(self) -> None:
        self._faults: dict[str, list[_Fault]] = {}
        self._hooks: dict[str, list[Callable[[Any], None]]] = {}
        self._after: dict[str, list[Callable[[Any], Any]]] = {}
        self._call_faults: dict[tuple[str, str], list[_CallFault]] = {}
        self._page_sizes: dict[tuple[str, str], tuple[str, int]] = {}

    # ------------------------------------------------------------------ what a scenario registers
    def fail(
        self, role: str, error_type: str = "RuntimeError", *, times: Optional[int] = None,
        message: str = "fault injected by the local engine",
    ) -> None:
        """Make the ``role`` function (``transfer``, ``evaluate_findings``...) raise ``error_type``."""
        self._faults.setdefault(role, []).append(_Fault(times=times, skip=0, error_type=error_type, message=message))

    def before_invoke(self, role: str, hook: Callable[[Any], None]) -> None:
        """Call ``hook(event)`` before each invocation of the ``role`` function (it may change S3)."""
        self._hooks.setdefault(role, []).append(hook)

    def after_invoke(self, role: str, hook: Callable[[Any], Any]) -> None:
        """Replace the ``role`` function's result with ``hook(result)`` (a faulty handler)."""
        self._after.setdefault(role, []).append(hook)

    def fail_call(
        self, service: str, operation: str, code: str, *, times: Optional[int] = None, skip: int = 0,
        caller: str = "workflow", status: int = 500, match: Optional[Callable[[dict], bool]] = None,
    ) -> None:
        """Make AWS calls (botocore names: ``events``/``PutEvents``) fail with ``code``.

        ``caller``: ``workflow`` (the state machine's own integrations), ``handlers`` or ``any``;
        ``skip``: let that many matching calls succeed first; ``times``: fail that many (default: all);
        ``match``: only calls whose API parameters it accepts (e.g. one object's key), see :func:`for_key`.
        """
        if caller not in CALLERS:
            raise ValueError("caller must be workflow, handlers or any")
        self._call_faults.setdefault((service, operation), []).append(
            _CallFault(times=times, skip=skip, code=code, caller=caller, status=status, match=match)
        )

    def page_size(self, service: str, operation: str, parameter: str, size: int) -> None:
        """Cap a listing's page: every ``service``/``operation`` call gets ``parameter`` (``MaxKeys``)
        at most ``size``, as if the service paged that small (moto pages ListObjectVersions by 1,000)."""
        if size < 1:
            raise ValueError("size must be at least 1")
        self._page_sizes[(service, operation)] = (parameter, size)

    # ------------------------------------------------------------------ where the engine applies them
    def before(self, role: str, event: Any) -> None:
        """Run before the ``role`` function's handler: the hooks, then any fault that fires."""
        for hook in self._hooks.get(role, []):
            hook(event)
        for injected in self._faults.get(role, []):
            if injected.fires():
                raise InjectedFault(injected.error_type, injected.message)

    def after(self, role: str, result: Any) -> Any:
        """The ``role`` function's result as the after-invoke hooks rewrite it."""
        for hook in self._after.get(role, []):
            result = hook(result)
        return result

    def raise_call_fault(self, service: str, operation: str, parameters: Optional[dict] = None) -> None:
        """Raise the ``ClientError`` of the first call fault on ``service``/``operation`` that fires now."""
        for injected in self._call_faults.get((service, operation), []):
            if injected.applies(parameters):
                raise ClientError(
                    {"Error": {"Code": injected.code, "Message": "fault injected by the local engine"},
                     "ResponseMetadata": {"HTTPStatusCode": injected.status, "RequestId": "local"}},
                    operation,
                )

    def shape_call(self, service: str, operation: str, parameters: dict) -> dict:
        """The call's parameters with the page size a scenario set (see :meth:`page_size`)."""
        capped = self._page_sizes.get((service, operation))
        if capped is None:
            return parameters
        name, size = capped
        return {**parameters, name: min(int(parameters.get(name) or size), size)}


def for_key(key: str, *names: str) -> Callable[[dict], bool]:
    """A call-fault ``match`` for one object: the call's ``Key`` (or ``names``: other parameters, e.g.
    ``CopySource``) is ``key``, or ends with ``/<key>`` (a zone key: ``scans/<batch>/<key>``)."""
    def matches(parameters: dict) -> bool:
        for name in names or ("Key",):
            value = parameters.get(name)
            if isinstance(value, dict):
                value = value.get("Key")
            if isinstance(value, str) and (value == key or value.endswith("/" + key)):
                return True
        return False
    return matches
