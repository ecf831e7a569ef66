"""pipeline_common.clients: one client per service, created on first use, with the function's timeouts (no AWS calls)."""

from __future__ import annotations

from pipeline_common.clients import ClientCache, client_config


def test_a_client_is_created_once_with_the_given_configuration():
    cache = ClientCache(client_config(read_timeout=7, connect_timeout=2, max_attempts=3, max_pool_connections=4))
    s3 = cache.client("s3")
    assert cache.client("s3") is s3 and cache.client("sqs") is not s3
    config = s3.meta.config
    assert (config.read_timeout, config.connect_timeout, config.max_pool_connections) == (7, 2, 4)
    assert config.retries["mode"] == "standard" and config.retries["total_max_attempts"] == 3 + 1  # botocore counts the first try
    dynamodb = cache.resource("dynamodb")
    assert cache.resource("dynamodb") is dynamodb and dynamodb.meta.client.meta.config.read_timeout == 7
    cache.clear()
    assert cache.client("s3") is not s3 and cache.resource("dynamodb") is not dynamodb


def test_ready_made_clients_are_used_as_they_are():
    stub = object()
    cache = ClientCache(client_config(read_timeout=1), s3=stub)
    assert cache.client("s3") is stub
