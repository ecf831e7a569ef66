"""Who is deciding: the reviewer's Cognito ID token, verified by the review function itself.

A review link is opened by a browser navigation, which carries cookies but never an
``Authorization`` header, so the function runs the OAuth 2.0 authorization-code flow with PKCE
against the user pool's managed login and checks the token on every request:

* RS256 signature against the pool's JSON Web Key Set (fetched from
  ``https://cognito-idp.<region>.amazonaws.com/<pool id>/.well-known/jwks.json``, cached per
  container, fetched again once when a token names an unknown ``kid``);
* ``iss`` = the pool, ``aud`` = the app client, ``token_use`` = ``id``, ``exp``/``iat`` with
  :data:`LEEWAY_SECONDS` of leeway, ``sub`` present;
* membership of the reviewers group (``cognito:groups``) for anything beyond "this review exists".

A decision (POST) also needs the CSRF field, the hex SHA-256 of the session token (an attacker's page
cannot read the HttpOnly cookie, so it cannot compute it), compared in constant time, and is refused
when the browser says the request is cross-site (``Origin`` of another site, ``Sec-Fetch-Site``
``cross-site``). The identity recorded comes from the verified token only, plus the source address
API Gateway saw.

The fetch of the key set is the only part a test or the local engine replaces (``fetch_jwks``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, Callable, Mapping, Optional
from urllib.parse import urlencode, urlsplit

import jwt
from jwt.algorithms import RSAAlgorithm

#: Seconds of clock skew accepted on ``exp`` and ``iat``.
LEEWAY_SECONDS = 60
#: The session cookie (the ID token) and the sign-in cookie (state, PKCE verifier, where to return).
SESSION_COOKIE = "review_session"
SIGN_IN_COOKIE = "review_sign_in"
SIGN_IN_COOKIE_SECONDS = 600
#: The form field carrying the CSRF token.
CSRF_FIELD = "csrf"
#: Largest token or key set accepted (a Cognito ID token is a few KiB).
MAX_TOKEN_BYTES = 16 * 1024
MAX_JWKS_BYTES = 64 * 1024
JWKS_TIMEOUT_SECONDS = 3
#: An unknown ``kid`` triggers at most one fetch of the key set in this many seconds.
JWKS_REFETCH_SECONDS = 60

FetchJwks = Callable[[str], Mapping[str, Any]]


class SignInRefused(Exception):
    """The request carries no acceptable identity. ``reason`` is short and safe to log and show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailable(Exception):
    """The pool's key set could not be fetched or read: a transient failure, not a refusal."""


class NotAReviewer(SignInRefused):
    """A valid token of a user who is not in the reviewers group."""


@dataclass(frozen=True)
class SignInSettings:
    """The pool and app client whose tokens are accepted, where its managed login is, the group
    whose members may decide and the callback URL registered with the client."""

    region: str
    user_pool_id: str
    client_id: str
    login_base_url: str  # e.g. https://<prefix>.auth.<region>.amazoncognito.com
    reviewers_group: str
    redirect_uri: str  # <api>/signed-in

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    def authorize_url(self, state: str, challenge: str) -> str:
        query = urlencode({
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "scope": "openid email", "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
        })
        return f"{self.login_base_url.rstrip('/')}/oauth2/authorize?{query}"

    @property
    def token_url(self) -> str:
        return f"{self.login_base_url.rstrip('/')}/oauth2/token"


@dataclass(frozen=True)
class Reviewer:
    """A verified reviewer: from the token (``sub``, ``email``, ``groups``) and API Gateway (address)."""

    sub: str
    email: str
    groups: tuple[str, ...]
    source_ip: str
    user_agent: str = ""

    @property
    def reviewer(self) -> str:
        """What the 0.x ``reviewer`` field holds: the email (the subject when the token has none)."""
        return self.email or self.sub

    def audit(self, at: str) -> dict:
        """One entry of a decision's ``approvals`` map."""
        return {"email": self.email, "groups": list(self.groups), "at": at, "sourceIp": self.source_ip}


def _https_json(url: str) -> Mapping[str, Any]:
    if urlsplit(url).scheme != "https":
        raise SignInRefused("the key set must be fetched over HTTPS")
    with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310 - https only, checked above
        return json.loads(response.read(MAX_JWKS_BYTES + 1)[:MAX_JWKS_BYTES])


class KeySet:
    """The pool's signing keys by ``kid``, cached for the life of the container."""

    def __init__(self, url: str, fetch: Optional[FetchJwks] = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self._fetch = fetch or _https_json
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: Optional[float] = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys and self._may_fetch():
                self._load()
            key = self._keys.get(kid)
        if key is None:
            raise SignInRefused("the token is not signed by a key of the reviewers' user pool")
        return key

    def _may_fetch(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= JWKS_REFETCH_SECONDS

    def _load(self) -> None:
        """Fetch the key set; a failure leaves the cached keys as they were and may be tried again at once."""
        try:
            document = self._fetch(self.url)
            keys = {}
            for jwk in document.get("keys") or [] if isinstance(document, Mapping) else []:
                if isinstance(jwk, Mapping) and jwk.get("kty") == "RSA" and isinstance(jwk.get("kid"), str):
                    keys[jwk["kid"]] = RSAAlgorithm.from_jwk(dict(jwk))
        except (OSError, ValueError, TypeError, jwt.PyJWTError) as error:
            raise KeysUnavailable(f"the user pool's keys could not be read ({type(error).__name__})") from None
        self._fetched_at = self._clock()
        self._keys = keys


_DECODE_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the sign-in has expired"),
    (jwt.ImmatureSignatureError, "the token was issued in the future"),
    (jwt.InvalidAudienceError, "the token was issued to another app client"),
    (jwt.InvalidIssuerError, "the token was issued by another user pool"),
    (jwt.InvalidSignatureError, "the token's signature is not valid"),
)


class TokenVerifier:
    """Checks ID tokens of one pool and client (see the module's docstring)."""

    def __init__(self, settings: SignInSettings, keys: KeySet, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.keys = keys
        self.clock = clock

    def claims(self, token: str) -> dict:
        """The verified claims of ``token``; SignInRefused otherwise."""
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise SignInRefused("no sign-in")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise SignInRefused("the sign-in token is malformed") from None
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise SignInRefused("the sign-in token is not an RS256 token of the user pool")
        key = self.keys.key(header["kid"])
        try:
            claims = jwt.decode(
                token, key, algorithms=["RS256"], audience=self.settings.client_id, issuer=self.settings.issuer,
                leeway=LEEWAY_SECONDS, options={"require": ["exp", "iat", "iss", "aud", "sub", "token_use"]},
            )
        except jwt.PyJWTError as error:
            reason = next((text for kind, text in _DECODE_ERRORS if isinstance(error, kind)), None)
            raise SignInRefused(reason or f"the sign-in token is not valid ({type(error).__name__})") from None
        if claims.get("token_use") != "id":
            raise SignInRefused("the token is not an ID token")
        if claims["iat"] > self.clock() + LEEWAY_SECONDS:
            raise SignInRefused("the token was issued in the future")
        return claims

    def reviewer(self, token: str, *, source_ip: str, user_agent: str = "", require_group: bool = True) -> Reviewer:
        """The verified reviewer of ``token``; NotAReviewer when outside the group (and it is required)."""
        claims = self.claims(token)
        groups = claims.get("cognito:groups")
        groups = tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else ()
        email = claims.get("email") if isinstance(claims.get("email"), str) else ""
        who = Reviewer(sub=str(claims["sub"]), email=email, groups=groups, source_ip=source_ip, user_agent=user_agent)
        if require_group and self.settings.reviewers_group not in groups:
            raise NotAReviewer(f"{who.reviewer} is not in the reviewers group")
        return who


# ------------------------------------------------------------------------------------- the code flow
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_pkce() -> tuple[str, str]:
    """(verifier, S256 challenge) as RFC 7636 defines them."""
    verifier = _b64url(secrets.token_bytes(48))  # 64 characters of [A-Za-z0-9_-]
    return verifier, pkce_challenge(verifier)


def pkce_challenge(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_state() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(session_token: str) -> str:
    """The CSRF field of a page shown to the holder of ``session_token``."""
    return hashlib.sha256(session_token.encode("utf-8")).hexdigest()


def csrf_matches(session_token: str, submitted: Optional[str]) -> bool:
    return isinstance(submitted, str) and hmac.compare_digest(csrf_token(session_token), submitted)


def cookies_of(headers: Any) -> dict[str, str]:
    """The request's cookies (every ``Cookie`` header); unparsable ones are ignored."""
    values = []
    if isinstance(headers, Mapping):
        values = [v for k, v in headers.items() if isinstance(k, str) and k.lower() == "cookie" and isinstance(v, str)]
    cookies: dict[str, str] = {}
    for value in values:
        jar = SimpleCookie()
        try:
            jar.load(value)
        except CookieError:
            continue
        cookies.update({name: morsel.value for name, morsel in jar.items()})
    return cookies


def set_cookie(name: str, value: str, *, path: str, max_age: int) -> str:
    """A ``Set-Cookie`` value: Secure, HttpOnly, SameSite=Lax, scoped to ``path`` (the API stage)."""
    return f"{name}={value}; Path={path}; Max-Age={max(int(max_age), 0)}; Secure; HttpOnly; SameSite=Lax"


def clear_cookie(name: str, *, path: str) -> str:
    return set_cookie(name, "", path=path, max_age=0)


def sign_in_cookie_value(state: str, verifier: str, return_path: str) -> str:
    """state, PKCE verifier and the path to return to, in one cookie value (URL-safe base64 JSON)."""
    raw = json.dumps({"s": state, "v": verifier, "r": return_path}, separators=(",", ":")).encode("utf-8")
    return _b64url(raw)


def parse_sign_in_cookie(value: Optional[str]) -> Optional[tuple[str, str, str]]:
    if not value or len(value) > 2048:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("s", "v", "r")):
        return None
    return data["s"], data["v"], data["r"]


def cross_site(headers: Any, own_origin: str) -> bool:
    """True when the browser says the request does not come from the review page's own origin:
    ``Sec-Fetch-Site`` ``cross-site`` or ``same-site`` (another API of the same parent domain), or an
    ``Origin`` other than ``own_origin``. ``Origin: null`` says nothing (browsers send it for a form of a
    page with ``Referrer-Policy: no-referrer``, as the review page is); browsers that send neither header
    are judged by the CSRF field alone."""
    lowered = {k.lower(): v for k, v in headers.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(
        headers, Mapping) else {}
    if lowered.get("sec-fetch-site", "").strip().lower() in ("cross-site", "same-site"):
        return True
    origin = (lowered.get("origin") or "null").strip().rstrip("/").lower()
    return origin != "null" and origin != own_origin.rstrip("/").lower()


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def exchange_code(settings: SignInSettings, code: str, verifier: str, timeout: float = 5) -> str:
    """The ID token for an authorization code (public client: no secret), from the pool's token endpoint."""
    body = urlencode({
        "grant_type": "authorization_code", "client_id": settings.client_id, "code": code,
        "redirect_uri": settings.redirect_uri, "code_verifier": verifier,
    }).encode("ascii")
    request = urllib.request.Request(
        settings.token_url, data=body, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    parts = urlsplit(settings.token_url)
    # HTTPS, or plain HTTP to this machine's loopback only (nothing a deployed function can reach): the
    # local engine's stand-in for the managed login.
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))):
        raise SignInRefused("the token endpoint must be an HTTPS URL")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the pool's own endpoint
            document = json.loads(response.read(MAX_JWKS_BYTES))
    except (OSError, ValueError):
        raise SignInRefused("the sign-in could not be completed") from None
    token = document.get("id_token") if isinstance(document, dict) else None
    if not isinstance(token, str):
        raise SignInRefused("the sign-in returned no ID token")
    return token
