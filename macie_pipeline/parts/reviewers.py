"""The reviewers: who may decide a review. An Amazon Cognito user pool (created, or yours), its public
app client for the review API's sign-in (authorization code with PKCE, no secret), its managed login
and the reviewers group.

The created pool admits nobody by itself (no self sign-up: an administrator adds reviewers), asks for
14-character passwords of all character classes and TOTP MFA from everyone, runs threat protection
(Plus feature plan) and is protected from deletion, with the pipeline's removal policy.
"""

from __future__ import annotations

import hashlib

from aws_cdk import Aws, CfnOutput, Duration, Fn, Stack, Token
from aws_cdk import aws_cognito as cognito

from ..options import ReviewOptions
from .context import PartContext, acknowledge

#: Cognito's prefix domains: ``<prefix>.auth.<region>.amazoncognito.com``.
COGNITO_DOMAIN_SUFFIX = "amazoncognito.com"


class Reviewers:
    """``user_pool`` and ``client`` (created or given), ``sign_in_url`` (the base URL of the managed
    login), ``group_name`` and, when created, ``group``."""

    def __init__(self, ctx: PartContext, *, options: ReviewOptions, signed_in_url: str) -> None:
        self.group_name: str = options.reviewers_group
        self.group = None
        self.created = options.creates_user_pool
        if not self.created:
            self.user_pool: cognito.IUserPool = options.reviewer_user_pool
            self.client: cognito.IUserPoolClient = options.reviewer_user_pool_client
            self.sign_in_url: str = options.reviewer_sign_in_url.rstrip("/")
            return
        pool = self.user_pool = self._pool(ctx)
        prefix = self._domain_prefix(ctx, pool)
        domain = pool.add_domain(
            "ReviewerLogin",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix),
            managed_login_version=cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN,
        )
        self.sign_in_url = f"https://{prefix}.auth.{Aws.REGION}.{COGNITO_DOMAIN_SUFFIX}"
        self.client = self._client(pool, signed_in_url)
        branding = cognito.CfnManagedLoginBranding(
            ctx.scope, "ReviewerLoginBranding", user_pool_id=pool.user_pool_id,
            client_id=self.client.user_pool_client_id, use_cognito_provided_values=True,
        )
        branding.add_resource_dependency(domain.node.default_child)
        self.group = cognito.CfnUserPoolGroup(
            ctx.scope, "ReviewersGroup", user_pool_id=pool.user_pool_id, group_name=self.group_name,
            description="Members may approve or deny the objects held for review by SensitiveDataScanPipeline",
        )
        CfnOutput(ctx.scope, "ReviewerUserPoolId", value=pool.user_pool_id,
                  description="The reviewers' user pool: add reviewers with admin-create-user and admin-add-user-to-group")
        CfnOutput(ctx.scope, "ReviewerSignInUrl", value=self.sign_in_url, description="The reviewers' managed login")

    def _pool(self, ctx: PartContext) -> cognito.UserPool:
        pool = cognito.UserPool(
            ctx.scope,
            "ReviewerUserPool",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True, username=False),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(email=cognito.StandardAttribute(required=True, mutable=True)),
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_lowercase=True, require_uppercase=True, require_digits=True, require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=True,
            removal_policy=ctx.removal_policy,
        )
        return pool

    @staticmethod
    def _domain_prefix(ctx: PartContext, pool: cognito.UserPool) -> str:
        """Unique per account and pipeline (prefixes are global within a Region), stable across deployments."""
        digest = hashlib.sha256(pool.node.path.encode("utf-8")).hexdigest()[:10]
        account = Stack.of(ctx.scope).account
        if Token.is_unresolved(account):
            return Fn.join("-", ["review", digest, Aws.ACCOUNT_ID])
        return f"review-{digest}-{account}"

    @staticmethod
    def _client(pool: cognito.UserPool, signed_in_url: str) -> cognito.UserPoolClient:
        return pool.add_client(
            "ReviewerClient",
            generate_secret=False,  # a public client: nothing secret in the review function's environment
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[signed_in_url],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.hours(12),
            read_attributes=cognito.ClientAttributes().with_standard_attributes(email=True, email_verified=True),
            write_attributes=cognito.ClientAttributes(),
        )


def acknowledge_sign_in_methods(method, reason_prefix: str = "") -> None:
    """The review API's methods have no API Gateway authorizer: the handler signs reviewers in and checks them."""
    reason = (
        reason_prefix + "A review link is opened by a browser navigation, which carries cookies but never an Authorization "
        "header, and an authorizer can only refuse, not lead to sign-in: the review function runs the Cognito code flow "
        "with PKCE and verifies the reviewer's ID token itself on every request (signature against the pool's keys, "
        "issuer, audience, token use, expiry, reviewers group); decisions also need a CSRF field."
    )
    acknowledge(method, "AwsSolutions-APIG4", reason)
    acknowledge(method, "AwsSolutions-COG4", reason)
