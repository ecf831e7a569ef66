"""Public AWS prices the benchmark (``python -m macie_pipeline.local bench``) turns its counts into dollars with.

The one place prices live. Each entry: the price in US dollars, what one unit is, the Region, the
public page it was read from and the date it was read (with the ``search`` tool's stored copies of
those pages; a stored copy can be older than the live page). Marginal prices: free tiers (4,000
Standard transitions, 1 million Lambda requests and 400,000 GB-s, 1 million SQS requests a month...)
and volume discounts are left out, so an estimate is what the next 1,000 objects would cost in an
account already past its free tier. Where the stored copy of AWS's own page did not show the number
(its tables are rendered by script), the source is the page that did, and ``note`` says so.
"""

from __future__ import annotations

from typing import Mapping, TypedDict


class Price(TypedDict):
    usd: float
    unit: str
    region: str
    source: str
    read: str
    note: str


READ = "2026-12-05"
REGION = "us-east-1"


def _price(usd: float, unit: str, source: str, note: str = "") -> Price:
    return Price(usd=usd, unit=unit, region=REGION, source=source, read=READ, note=note)


PRICES: Mapping[str, Price] = {
    "sfn_standard_transition": _price(
        0.025 / 1000, "state transition (Standard workflow)", "https://aws.amazon.com/step-functions/pricing/",
        "$0.0250 per 1,000 state transitions in US East (N. Virginia); retries count as transitions",
    ),
    "sfn_express_request": _price(
        1.00 / 1_000_000, "Express workflow request (one execution started)",
        "https://aws.amazon.com/blogs/compute/building-cost-effective-aws-step-functions-workflows/",
        "$1.00 per million; the stored pricing page did not show the Express table",
    ),
    "sfn_express_gb_second": _price(
        0.00001667, "GB-second of Express workflow duration (100 ms steps, 64 MB chunks)",
        "https://www.wring.co/blog/aws-step-functions-pricing-guide",
        "third-party summary of https://aws.amazon.com/step-functions/pricing/ (first tier)",
    ),
    "lambda_request": _price(
        0.20 / 1_000_000, "Lambda request (invocation)", "https://aws.amazon.com/lambda/pricing/",
        "$0.20 per 1 million requests (also docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html)",
    ),
    "lambda_gb_second": _price(
        0.00001667, "GB-second of Lambda duration (x86, rounded up to 1 ms)", "https://aws.amazon.com/lambda/pricing/",
        "the page's US East examples use $0.00001667 per GB-s (first tier)",
    ),
    "s3_tier1_request": _price(
        0.005 / 1000, "S3 Standard PUT, COPY, POST or LIST request", "https://c3x.dev/blog/s3-request-fees-explained",
        "$0.005 per 1,000; third-party copy of https://aws.amazon.com/s3/pricing/ (its stored copy renders no table)",
    ),
    "s3_tier2_request": _price(
        0.0004 / 1000, "S3 Standard GET, SELECT or other request (HEAD, tagging reads)", "https://c3x.dev/blog/s3-request-fees-explained",
        "$0.0004 per 1,000; DELETE requests are free and not priced here",
    ),
    "sqs_request": _price(
        0.40 / 1_000_000, "SQS standard queue request (64 KB chunk)", "https://unanswered.io/guide/aws-sqs-pricing-and-cost-optimization",
        "$0.40 per million after the first million; third-party summary of https://aws.amazon.com/sqs/pricing/",
    ),
    "dynamodb_write_request_unit": _price(
        0.625 / 1_000_000, "DynamoDB on-demand write request unit (one standard write of up to 1 KB)",
        "https://airbyte.com/data-engineering-resources/dynamodb-pricing",
        "$0.625 per million WRU in US East after the November 2024 on-demand price cut (third-party summary of "
        "https://aws.amazon.com/dynamodb/pricing/on-demand/; older copies say $1.25)",
    ),
    "dynamodb_read_request_unit": _price(
        0.125 / 1_000_000, "DynamoDB on-demand read request unit (one strongly consistent read of up to 4 KB)",
        "https://airbyte.com/data-engineering-resources/dynamodb-pricing",
        "$0.125 per million RRU in US East (same source); an eventually consistent read is half a unit, counted as one here",
    ),
    "eventbridge_custom_event": _price(
        1.00 / 1_000_000, "EventBridge custom event published (64 KB chunk)", "https://aws.amazon.com/eventbridge/pricing/",
        "$1.00 per million custom events (figure from https://blog.awsfundamentals.com/aws-eventbridge-pricing-guide; "
        "the 64 KB chunk rule from AWS's page)",
    ),
    "sns_publish": _price(
        0.50 / 1_000_000, "SNS standard topic publish request (64 KB chunk)",
        "https://www.factualminds.com/blog/amazon-sns-pricing-publishes-fanout-protocols/",
        "$0.50 per million; third-party summary of https://aws.amazon.com/sns/pricing/; deliveries (email) not priced",
    ),
    "macie_gb_inspected": _price(
        1.00, "GB inspected by a sensitive data discovery job (first 50 TB a month)", "https://aws.amazon.com/macie/pricing/",
        "reference only, never in the estimate: read from a transcription of the page "
        "(github.com/api-evangelist/amazon-macie plans/amazon-macie-plans-pricing.yml)",
    ),
}


def price(name: str) -> float:
    """The price of one unit of ``name`` in US dollars."""
    return PRICES[name]["usd"]
