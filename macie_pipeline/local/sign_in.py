"""The reviewers' sign-in, offline: moto's Cognito plus a local stand-in for the pool's managed login.

* :class:`LocalReviewers` creates the stack's reviewers' user pool, app client and group in moto's
  cognito-idp from the template (or, when the stack uses a pool of its own that is not in the template,
  a stand-in with the same group), and adds reviewers (``admin-create-user`` +
  ``admin-add-user-to-group``, as the README tells an administrator).
* moto has no managed login page, so :meth:`LocalReviewers.serve` answers the two endpoints the review
  function uses, under ``/oauth2/`` of the local review server: ``authorize`` (a sign-in form; the
  tokens come from moto through ``AdminInitiateAuth``, as the managed login gets them from Cognito) and
  ``token`` (the authorization-code exchange, with the PKCE verifier checked against the challenge).
* :func:`moto_jwks` is moto's public key set: the review function's verifier gets it instead of the
  HTTPS fetch of ``jwks.json`` (the only substituted part of the verification).
* :class:`ReviewerBrowser` is what ``--decision approve|deny`` uses: a reviewer with cookies who signs
  in through those pages and posts the review form with its CSRF field.

The function that checks a decision is the production code; nothing here verifies a token.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import re
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from html import escape
from importlib import resources
from typing import Any, Mapping, Optional

#: What the server answers: status, headers, body.
Response = tuple[int, dict[str, str], bytes]

_HTML = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
_JSON = {"Content-Type": "application/json", "Cache-Control": "no-store"}
CODE_SECONDS = 300
#: How long the engine's reviewer waits for a page. Pages are served by the review function in this
#: process, which shares the interpreter with every running chunk: with thousands of objects in flight
#: a page can take tens of seconds (30 s timed out at 10,000 objects).
PAGE_TIMEOUT_SECONDS = 600
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def moto_jwks() -> dict:
    """moto's public key set (every moto pool signs with its one private key, ``kid`` "dummy")."""
    data = resources.files("moto.cognitoidp").joinpath("resources/jwks-public.json.gz").read_bytes()
    return json.loads(gzip.decompress(data))


def _b64url_sha256(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


class LocalReviewers:
    """The reviewers' pool in moto and the local managed-login stand-in for it."""

    def __init__(self, idp: Any, *, pool_id: str, client_id: str, group: str, callback_url: str) -> None:
        self.idp = idp
        self.pool_id, self.client_id, self.group, self.callback_url = pool_id, client_id, group, callback_url
        self._codes: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._passwords: dict[str, str] = {}
        self.jwks_url = ""  # set by the deployment: what the review function may ask for

    def fetch_jwks(self, url: str) -> Mapping[str, Any]:
        """The review function's key-set fetch: moto's keys for this pool's jwks.json, nothing else."""
        if url != self.jwks_url:
            raise OSError(f"the local engine serves only {self.jwks_url}, not {url}")
        return moto_jwks()

    # ------------------------------------------------------------------ users
    def add_reviewer(self, email: str, *, reviewer: bool = True) -> str:
        """Create ``email`` with a generated password (in the reviewers group when ``reviewer``); the password."""
        password = "Local-" + secrets.token_urlsafe(12) + "-9a"
        self.idp.admin_create_user(
            UserPoolId=self.pool_id, Username=email, MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        )
        self.idp.admin_set_user_password(UserPoolId=self.pool_id, Username=email, Password=password, Permanent=True)
        if reviewer:
            self.idp.admin_add_user_to_group(UserPoolId=self.pool_id, Username=email, GroupName=self.group)
        self._passwords[email] = password
        return password

    # ------------------------------------------------------------------ the endpoints
    def serve(self, method: str, path: str, query: str, body: bytes) -> Optional[Response]:
        """The answer for ``/oauth2/authorize`` and ``/oauth2/token``; None for any other path."""
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if path == "/oauth2/authorize" and method == "GET":
            return self._form(params, "")
        if path == "/oauth2/authorize" and method == "POST":
            return self._authorize(params, dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"))))
        if path == "/oauth2/token" and method == "POST":
            return self._token(dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"))))
        return None

    def _check_request(self, params: Mapping[str, str]) -> Optional[str]:
        if params.get("client_id") != self.client_id:
            return "unknown client_id"
        if params.get("redirect_uri") != self.callback_url:
            return "redirect_uri is not a callback URL of the client"
        if params.get("response_type") != "code" or params.get("code_challenge_method") != "S256":
            return "only the authorization code grant with PKCE (S256) is enabled"
        if not params.get("code_challenge") or not params.get("state"):
            return "code_challenge and state are required"
        return None

    def _form(self, params: Mapping[str, str], error: str) -> Response:
        problem = self._check_request(params)
        if problem:
            return 400, dict(_HTML), _page("Sign-in error", f"<p>{escape(problem)}</p>")
        note = f'<p class="error">{escape(error)}</p>' if error else ""
        form = (
            f"{note}<p>Local stand-in for the reviewers' managed login (moto's Cognito).</p>"
            '<form method="post" action=""><p><label>Email <input name="username" type="email" autocomplete="username"></label></p>'
            '<p><label>Password <input name="password" type="password" autocomplete="current-password"></label></p>'
            '<p><button type="submit" id="sign-in">Sign in</button></p></form>'
        )
        return 200, dict(_HTML), _page("Sign in", form)

    def _authorize(self, params: Mapping[str, str], form: Mapping[str, str]) -> Response:
        if self._check_request(params):
            return self._form(params, "")
        try:
            result = self.idp.admin_initiate_auth(
                UserPoolId=self.pool_id, ClientId=self.client_id, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": form.get("username", ""), "PASSWORD": form.get("password", "")},
            )
        except Exception:  # noqa: BLE001 - moto's NotAuthorized/UserNotFound: the same answer, as Cognito gives
            return self._form(params, "Incorrect username or password.")
        tokens = result.get("AuthenticationResult") or {}
        if "IdToken" not in tokens:
            return self._form(params, f"The sign-in needs a step the local stand-in does not offer ({result.get('ChallengeName')}).")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {"id_token": tokens["IdToken"], "challenge": params["code_challenge"],
                                 "redirect_uri": params["redirect_uri"]}
        target = params["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": params["state"]})
        return 302, {"Location": target, **_HTML}, b""

    def _token(self, form: Mapping[str, str]) -> Response:
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # a code is used once
        valid = (
            grant is not None and form.get("grant_type") == "authorization_code" and form.get("client_id") == self.client_id
            and form.get("redirect_uri") == grant["redirect_uri"]
            and hmac.compare_digest(_b64url_sha256(form.get("code_verifier", "")), grant["challenge"])
        )
        if not valid:
            return 400, dict(_JSON), json.dumps({"error": "invalid_grant"}).encode()
        return 200, dict(_JSON), json.dumps({"id_token": grant["id_token"], "token_type": "Bearer", "expires_in": 3600}).encode()


def _page(title: str, content: str) -> bytes:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
        f"<body><h1>{escape(title)}</h1>{content}</body></html>\n"
    ).encode()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class ReviewerBrowser:
    """A reviewer's browser, as far as the review flow needs one: cookies (sent back to the local server,
    which browsers treat as a secure context), redirects followed, the sign-in form filled in."""

    MAX_REDIRECTS = 8

    def __init__(self, email: str, password: str) -> None:
        self.email, self.password = email, password
        self.cookies: dict[str, str] = {}
        self._opener = urllib.request.build_opener(_NoRedirects)

    def _send(self, method: str, url: str, form: Optional[Mapping[str, str]] = None) -> tuple[int, Any, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if data is not None else {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=PAGE_TIMEOUT_SECONDS) as response:
                status, head, body = response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as error:
            status, head, body = error.code, error.headers, error.read().decode()
        for value in head.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            cookie_value = rest.split(";", 1)[0]
            if "Max-Age=0" in value or not cookie_value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie_value
        return status, head, body

    def open(self, url: str, form: Optional[Mapping[str, str]] = None) -> tuple[int, str]:
        """GET (or POST ``form``) ``url``, following redirects and signing in when led to the sign-in form."""
        status, head, body = self._send("POST" if form is not None else "GET", url, form)
        for _ in range(self.MAX_REDIRECTS):
            if status not in (301, 302, 303, 307):
                return status, body
            url = urllib.parse.urljoin(url, head["Location"])
            if urllib.parse.urlsplit(url).path.endswith("/oauth2/authorize"):
                status, head, body = self._send("GET", url)
                if status == 200:
                    status, head, body = self._send("POST", url, {"username": self.email, "password": self.password})
                continue
            status, head, body = self._send("GET", url)
        raise RuntimeError(f"too many redirects from {url}")

    def post_form(self, url: str, page: str, form: Mapping[str, str]) -> tuple[int, str]:
        """POST ``form`` to ``url`` with the CSRF field of ``page`` (the review page it was shown on)."""
        found = _CSRF.search(page)
        return self.open(url, {**form, **({"csrf": found.group(1)} if found else {})})
