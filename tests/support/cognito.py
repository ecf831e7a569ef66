"""Reviewers in moto's Cognito: a pool, a public app client, the reviewers group, users and their real
(moto-signed, RS256) ID tokens; moto's public key set for the production verifier; tokens minted with
moto's private key for the cases moto does not issue (expired)."""

from __future__ import annotations

import gzip
import json
import secrets
import time
from importlib import resources
from typing import Any

import jwt
from jwt.algorithms import RSAAlgorithm

PASSWORD = "Correct-Horse-Battery-9"


def moto_jwks() -> dict:
    """moto's public key set (what its pools sign with), as the pool's jwks.json would serve it."""
    data = resources.files("moto.cognitoidp").joinpath("resources/jwks-public.json.gz").read_bytes()
    return json.loads(gzip.decompress(data))


def moto_private_key() -> Any:
    data = resources.files("moto.cognitoidp").joinpath("resources/jwks-private.json.gz").read_bytes()
    return RSAAlgorithm.from_jwk(gzip.decompress(data).decode())


def mint(claims: dict, *, kid: str = "dummy") -> str:
    """A token signed with moto's private key (so its signature verifies against moto_jwks)."""
    return jwt.encode(claims, moto_private_key(), algorithm="RS256", headers={"kid": kid})


class Pool:
    """A user pool in moto with a public app client (code grant, no secret) and a reviewers group."""

    def __init__(self, idp: Any, *, name: str = "reviewers", group: str = "reviewers",
                 callback: str = "https://reviews.example.com/prod/signed-in") -> None:
        self.idp = idp
        self.region = idp.meta.region_name
        self.id = idp.create_user_pool(PoolName=name, AdminCreateUserConfig={"AllowAdminCreateUserOnly": True})["UserPool"]["Id"]
        self.client_id = idp.create_user_pool_client(
            UserPoolId=self.id, ClientName="review", GenerateSecret=False, AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid", "email"], AllowedOAuthFlowsUserPoolClient=True, CallbackURLs=[callback],
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            ReadAttributes=["email", "email_verified"], SupportedIdentityProviders=["COGNITO"],
        )["UserPoolClient"]["ClientId"]
        self.group = group
        idp.create_group(UserPoolId=self.id, GroupName=group)
        self.subs: dict[str, str] = {}

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.id}"

    def user(self, email: str, *, reviewer: bool = True) -> str:
        """Create ``email`` (in the group when ``reviewer``), once; its subject."""
        if email not in self.subs:
            created = self.idp.admin_create_user(
                UserPoolId=self.id, Username=email, MessageAction="SUPPRESS",
                UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            )["User"]
            self.idp.admin_set_user_password(UserPoolId=self.id, Username=email, Password=PASSWORD, Permanent=True)
            if reviewer:
                self.idp.admin_add_user_to_group(UserPoolId=self.id, Username=email, GroupName=self.group)
            self.subs[email] = next(a["Value"] for a in created["Attributes"] if a["Name"] == "sub")
        return self.subs[email]

    def id_token(self, email: str, *, reviewer: bool = True) -> str:
        """A real ID token of ``email``, issued by moto's Cognito (ADMIN_USER_PASSWORD_AUTH)."""
        self.user(email, reviewer=reviewer)
        result = self.idp.admin_initiate_auth(
            UserPoolId=self.id, ClientId=self.client_id, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]
        return result["IdToken"]

    def claims(self, email: str, **changes: Any) -> dict:
        """The claims of a valid ID token of ``email`` (a reviewer), with ``changes`` applied."""
        now = int(time.time())
        claims = {
            "iss": self.issuer, "aud": self.client_id, "sub": self.user(email), "token_use": "id", "iat": now,
            "auth_time": now, "exp": now + 3600, "email": email, "cognito:groups": [self.group],
            "jti": secrets.token_hex(8),
        }
        claims.update(changes)
        return claims

    def environment(self, login: str = "https://login.example.com", signed_in: str = "https://reviews.example.com/prod/signed-in",
                    approvals: int = 1) -> dict[str, str]:
        """The review function's sign-in variables for this pool."""
        return {
            "REVIEWER_USER_POOL_ID": self.id, "REVIEWER_USER_POOL_CLIENT_ID": self.client_id, "REVIEWER_SIGN_IN_URL": login,
            "REVIEWER_SIGNED_IN_URL": signed_in, "REVIEWERS_GROUP": self.group, "REVIEW_APPROVALS_REQUIRED": str(approvals),
        }
