"""The reviewers' API: GET shows what is under review, POST records a decision, GET ``/signed-in`` is
the callback of the reviewers' sign-in (API Gateway + Lambda; the function signs reviewers in)."""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_

from .. import defaults
from .context import PartContext, acknowledge
from .reviewers import acknowledge_sign_in_methods

REVIEW_STAGE = "review"
#: The sign-in's callback, beside ``/reviews/{reviewId}`` (registered with the app client).
SIGNED_IN_PATH = "signed-in"


class ReviewApi:
    """``api`` (the REST API), ``url``, the base of every review link, and ``signed_in_url``, the
    callback of the sign-in."""

    def __init__(self, ctx: PartContext, *, handler: lambda_.IFunction, operations_key) -> None:
        self.api = self._rest_api(ctx, handler, operations_key)
        # Built from the API id and stage name, not from the stage resource: the stage depends on the
        # review handler, whose permissions name the state machine, which invokes this function.
        self.url = f"https://{self.api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{REVIEW_STAGE}/"
        self.signed_in_url = self.url + SIGNED_IN_PATH
        CfnOutput(ctx.scope, "ReviewSignedInUrl", value=self.signed_in_url,
                  description="The callback URL of the reviewers' sign-in (register it with your own app client)")
        CfnOutput(ctx.scope, "ReviewApiUrl", value=self.api.url, description="Base URL of the review API")

    def _rest_api(self, ctx: PartContext, handler: lambda_.IFunction, operations_key) -> apigw.RestApi:
        access_logs = defaults.log_group(ctx.scope, "ReviewApiAccessLogs", key=operations_key, removal_policy=ctx.removal_policy)
        api = apigw.RestApi(
            ctx.scope,
            "ReviewApi",
            description="Reviewer decisions for SensitiveDataScanPipeline",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=ctx.removal_policy,
            deploy_options=apigw.StageOptions(
                stage_name=REVIEW_STAGE,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                # No X-Ray: API Gateway segments record the request URL, and the URL carries the
                # review id, a bearer capability.
                tracing_enabled=False,
                throttling_rate_limit=5,
                throttling_burst_limit=10,
            ),
            disable_execute_api_endpoint=False,
        )
        validator = api.add_request_validator("ValidateRequests", validate_request_parameters=True, validate_request_body=True)
        integration = apigw.LambdaIntegration(handler, proxy=True)
        review = api.root.add_resource("reviews").add_resource("{reviewId}")
        for method in ("GET", "POST"):
            m = review.add_method(
                method,
                integration,
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=validator,
                request_parameters={"method.request.path.reviewId": True},
            )
            acknowledge_sign_in_methods(m)
        signed_in = api.root.add_resource(SIGNED_IN_PATH).add_method(
            # code and state are checked by the function, which answers a page when Cognito returns an error instead.
            "GET", integration, authorization_type=apigw.AuthorizationType.NONE,
        )
        acknowledge_sign_in_methods(signed_in, "The sign-in's callback: it exchanges a one-time code (bound to this browser "
                                               "by state and PKCE) for the reviewer's token. ")
        acknowledge(api,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                    "API Gateway execution logging needs the account's CloudWatch role; this is AWS's policy for exactly that.")
        acknowledge(api.deployment_stage, "AwsSolutions-APIG3",
                    "WAF is an account-level choice (cost, shared web ACLs); the stage is throttled to 5 requests/s.")
        return api
