"""Helpers for the handler tests (tests/handlers): a Lambda context, a botocore ClientError, captured Powertools logs."""

from __future__ import annotations

import io
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Iterator

from botocore.exceptions import ClientError


@dataclass
class FakeContext:
    """The fields of a Lambda context that Powertools' ``inject_lambda_context`` reads."""

    function_name: str = "fn"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    aws_request_id: str = "req-1"


def client_error(code: str, status: int = 503, operation: str = "Op", message: str = "boom") -> ClientError:
    """A ClientError as botocore raises it: error ``code``, HTTP ``status``, from ``operation``."""
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@contextmanager
def captured_logs(*modules: ModuleType) -> Iterator[io.StringIO]:
    """Everything the Powertools ``logger`` of each handler module writes, as JSON lines in one stream.

    One handler per module, with that logger's own formatter, on the standard logger Powertools logs
    through (named after the service); removed again on exit.
    """
    stream = io.StringIO()
    attached = []
    for module in modules:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(module.logger.registered_formatter)
        logging.getLogger(module.logger.service).addHandler(handler)
        attached.append((module.logger.service, handler))
    try:
        yield stream
    finally:
        for name, handler in attached:
            logging.getLogger(name).removeHandler(handler)
