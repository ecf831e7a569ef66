"""Fixtures shared by the handler tests."""

from __future__ import annotations

from typing import Iterator

import boto3
import pytest
from moto import mock_aws

REGION = "us-east-1"
STATE_TABLE = "pipeline-state"


@pytest.fixture
def review_backend(monkeypatch: pytest.MonkeyPatch, review_api_url: str) -> Iterator[dict]:
    """The review flow's AWS side in moto: the state table, the review topic and an SQS queue subscribed
    to it, with the handlers' environment set. Each module using it defines ``review_api_url``.

    Named apart from ``aws``: test modules define their own ``aws`` fixtures, which would shadow it.
    """
    with mock_aws():
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=STATE_TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="review-requests")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("STATE_TABLE", STATE_TABLE)
        monkeypatch.setenv("TOPIC_ARN", topic)
        monkeypatch.setenv("REVIEW_API_URL", review_api_url)
        monkeypatch.setenv("REVIEW_TIMEOUT_SECONDS", "3600")
        yield {"table": boto3.resource("dynamodb", region_name=REGION).Table(STATE_TABLE), "sqs": sqs, "queue": queue}
