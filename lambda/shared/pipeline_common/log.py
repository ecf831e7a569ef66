"""Structured logging for every handler (Powertools). Never log object contents or finding samples."""

from aws_lambda_powertools import Logger


def get_logger(service: str) -> Logger:
    return Logger(service=service, log_uncaught_exceptions=True)
