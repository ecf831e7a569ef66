"""The pure parts of the reviewers' sign-in (lambda/review_api/reviewer_identity.py): the key set's
cache, PKCE, cookies, CSRF, the cross-site check, the token endpoint's scheme. Token verification
itself is tested with moto-issued tokens in tests/handlers/test_review_api.py."""

from __future__ import annotations

import time

import pytest

import reviewer_identity as signin
from support.cognito import mint, moto_jwks

SETTINGS = signin.SignInSettings(
    region="eu-west-1", user_pool_id="eu-west-1_Pool", client_id="client-1", login_base_url="https://login.example.com/",
    reviewers_group="reviewers", redirect_uri="https://api.example.com/review/signed-in",
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_key_set_is_cached_and_fetched_again_at_most_once_a_minute_for_an_unknown_kid() -> None:
    fetched: list[str] = []
    clock = Clock()

    def fetch(url: str) -> dict:
        fetched.append(url)
        return moto_jwks()

    keys = signin.KeySet(SETTINGS.jwks_url, fetch, clock)
    assert keys.key("dummy") is keys.key("dummy") and fetched == [SETTINGS.jwks_url]
    with pytest.raises(signin.SignInRefused, match="not signed by a key"):
        keys.key("rotated")
    assert len(fetched) == 1  # fetched less than a minute ago: a flood of unknown kids costs nothing
    clock.now += signin.JWKS_REFETCH_SECONDS
    with pytest.raises(signin.SignInRefused):
        keys.key("rotated")
    assert len(fetched) == 2
    assert SETTINGS.jwks_url == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool/.well-known/jwks.json"


def test_a_failed_key_fetch_is_unavailable_not_a_refusal_and_is_tried_again() -> None:
    answers = [OSError("timed out"), {"keys": [{"kty": "RSA", "kid": "bad", "n": "!", "e": "AQAB"}]}, moto_jwks()]

    def fetch(url: str) -> dict:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    keys = signin.KeySet(SETTINGS.jwks_url, fetch, Clock())
    with pytest.raises(signin.KeysUnavailable, match="OSError"):
        keys.key("dummy")
    with pytest.raises(signin.KeysUnavailable):
        keys.key("dummy")  # a malformed key set
    assert keys.key("dummy") is not None and answers == []


def test_a_token_must_be_an_id_token_of_the_pool_and_client_and_not_issued_in_the_future() -> None:
    verifier = signin.TokenVerifier(SETTINGS, signin.KeySet(SETTINGS.jwks_url, lambda url: moto_jwks()))
    now = int(time.time())
    claims = {"iss": SETTINGS.issuer, "aud": "client-1", "sub": "s-1", "token_use": "id", "iat": now, "exp": now + 600,
              "email": "a@example.com", "cognito:groups": ["reviewers", "other"]}
    who = verifier.reviewer(mint(claims), source_ip="192.0.2.1")
    assert (who.sub, who.email, who.groups, who.source_ip, who.reviewer) == ("s-1", "a@example.com", ("reviewers", "other"),
                                                                            "192.0.2.1", "a@example.com")
    for changes, reason in [
        ({"token_use": "access"}, "not an ID token"),
        ({"iat": now + 3600}, "issued in the future"),
        ({"exp": now - 61}, "expired"),
        ({"aud": "client-2"}, "another app client"),
        ({"iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other"}, "another user pool"),
        ({"cognito:groups": ["other"]}, "not in the reviewers group"),
    ]:
        with pytest.raises(signin.SignInRefused, match=reason):
            verifier.reviewer(mint({**claims, **changes}), source_ip="192.0.2.1")
    with pytest.raises(signin.SignInRefused, match="not an RS256 token"):
        verifier.claims("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
    with pytest.raises(signin.SignInRefused, match="no sign-in"):
        verifier.claims("")


def test_pkce_matches_rfc_7636_and_the_authorize_url_asks_for_code_with_s256() -> None:
    assert signin.pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    verifier, challenge = signin.new_pkce()
    assert 43 <= len(verifier) <= 128 and signin.pkce_challenge(verifier) == challenge
    url = SETTINGS.authorize_url("st", challenge)
    assert url.startswith("https://login.example.com/oauth2/authorize?response_type=code&client_id=client-1&")
    assert "code_challenge_method=S256" in url and "scope=openid+email" in url


def test_cookies_csrf_and_the_sign_in_cookie() -> None:
    cookie = signin.set_cookie("review_session", "tok", path="/review/", max_age=90)
    assert cookie == "review_session=tok; Path=/review/; Max-Age=90; Secure; HttpOnly; SameSite=Lax"
    assert signin.cookies_of({"cookie": "a=1; review_session=tok", "Other": "x"}) == {"a": "1", "review_session": "tok"}
    assert signin.cookies_of({"Cookie": 'bad"cookie'}) == {} and signin.cookies_of(None) == {}
    assert signin.csrf_matches("tok", signin.csrf_token("tok")) and not signin.csrf_matches("tok", signin.csrf_token("tok2"))
    assert not signin.csrf_matches("tok", None)
    value = signin.sign_in_cookie_value("st", "ver", "/review/reviews/x")
    assert signin.parse_sign_in_cookie(value) == ("st", "ver", "/review/reviews/x")
    assert signin.parse_sign_in_cookie("not-base64!") is None and signin.parse_sign_in_cookie(None) is None


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),
        ({"Origin": "https://api.example.com"}, False),
        ({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, False),
        ({"Sec-Fetch-Site": "none"}, False),
        ({"Origin": "https://evil.example"}, True),
        ({"sec-fetch-site": "cross-site"}, True),
        ({"Sec-Fetch-Site": "same-site"}, True),
    ],
)
def test_cross_site_requests_are_recognised(headers, refused) -> None:
    assert signin.cross_site(headers, signin.origin_of(SETTINGS.redirect_uri)) is refused


def test_the_token_endpoint_must_be_https_except_on_loopback() -> None:
    plain = signin.SignInSettings(**{**SETTINGS.__dict__, "login_base_url": "http://login.example.com"})
    with pytest.raises(signin.SignInRefused, match="must be an HTTPS URL"):
        signin.exchange_code(plain, "code", "verifier")
