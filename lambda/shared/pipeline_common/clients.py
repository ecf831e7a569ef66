"""The boto3 clients of a function: created on first use, then kept for the execution environment's life.

Each handler module holds one :class:`ClientCache` and hands its clients to its ``run`` function, which
never creates a client itself (so tests inject stubbed or moto-backed ones).
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


def client_config(*, read_timeout: int, connect_timeout: int = 5, max_attempts: int = 5, **options: Any) -> Config:
    """A botocore Config with standard-mode retries and the given timeouts (seconds); ``options`` are
    further Config arguments (``max_pool_connections``, ``response_checksum_validation``...)."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        **options,
    )


class ClientCache:
    """boto3 clients and resources by service name, all built with one ``config``.

    ``ready`` pre-fills clients by service name (a test's stubbed client, for instance).
    """

    def __init__(self, config: Config, **ready: Any) -> None:
        self.config = config
        self._clients: dict[str, Any] = dict(ready)
        self._resources: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, config=self.config)
        return self._clients[service]

    def resource(self, service: str) -> Any:
        if service not in self._resources:
            self._resources[service] = boto3.resource(service, config=self.config)
        return self._resources[service]

    def clear(self) -> None:
        """Forget every client (the next use creates a new one)."""
        self._clients.clear()
        self._resources.clear()
