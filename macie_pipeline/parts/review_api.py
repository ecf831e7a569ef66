"""The reviewers' API: GET shows what is under review, POST records a decision (API Gateway + Lambda)."""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from .. import defaults
from .context import PartContext, acknowledge

REVIEW_STAGE = "review"


class ReviewApi:
    """``api`` (the REST API) and ``url``, the base of every review link."""

    def __init__(self, ctx: PartContext, *, handler: lambda_.IFunction, operations_key, iam_auth: bool) -> None:
        self._iam_auth = iam_auth
        self.api = self._rest_api(ctx, handler, operations_key)
        # Built from the API id and stage name, not from the stage resource: the stage depends on the
        # review handler, whose permissions name the state machine, which invokes this function.
        self.url = f"https://{self.api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{REVIEW_STAGE}/"
        CfnOutput(ctx.scope, "ReviewApiUrl", value=self.api.url, description="Base URL of the review API")

    def grant_decision(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call GET and POST ``/reviews/*`` (only meaningful with IAM authorization)."""
        if not self._iam_auth:
            raise ValueError(
                "grant_review_decision needs review_api_iam_auth=True: without IAM authorization anyone with a "
                "review link can decide, whatever IAM allows"
            )
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["execute-api:Invoke"],
            resource_arns=[self.api.arn_for_execute_api(method, "/reviews/*", REVIEW_STAGE) for method in ("GET", "POST")],
        )

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
        auth = apigw.AuthorizationType.IAM if self._iam_auth else apigw.AuthorizationType.NONE
        for method in ("GET", "POST"):
            m = review.add_method(
                method,
                integration,
                authorization_type=auth,
                request_validator=validator,
                request_parameters={"method.request.path.reviewId": True},
            )
            self._acknowledge_authorization(m)
        acknowledge(api,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                    "API Gateway execution logging needs the account's CloudWatch role; this is AWS's policy for exactly that.")
        acknowledge(api.deployment_stage, "AwsSolutions-APIG3",
                    "WAF is an account-level choice (cost, shared web ACLs); the stage is throttled to 5 requests/s.")
        return api

    def _acknowledge_authorization(self, method: apigw.Method) -> None:
        if self._iam_auth:
            acknowledge(method, "AwsSolutions-COG4", "The method requires IAM (SigV4) authorization instead of a Cognito user pool.")
            return
        acknowledge(method, "AwsSolutions-APIG4",
                    "The link is a capability: an unguessable (256-bit), single-use review id that expires with the approval; "
                    "set review_api_iam_auth=True to require IAM as well.")
        acknowledge(method, "AwsSolutions-COG4",
                    "No Cognito user pool: see AwsSolutions-APIG4; IAM authorization is available through review_api_iam_auth.")
