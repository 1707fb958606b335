"""Coordinators sign in through a real OpenID Connect provider (oidc-provider-mock, run in a thread).

The provider knows two people: a coordinator (the configured value among others in `roles`) and a
colleague whose account carries other roles only, who must not get in.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from pydantic import SecretStr

from infra.settings import Settings
from web.app import serving_web
from web.oidc import RelyingParty, is_coordinator, verify_id_token
from web.problems import ProblemError

CLIENT_ID = "alcance-dashboard"
COORDINATOR = "coordinadora@aladi.org"
COLLEAGUE = "analista@aladi.org"


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with warnings.catch_warnings():
        # Its Authlib imports modules Authlib deprecates; nothing of alcance uses them.
        warnings.simplefilter("ignore", DeprecationWarning)
        from oidc_provider_mock import User, run_server_in_thread
    people = [
        User(sub=COORDINATOR, claims={"email": COORDINATOR, "roles": ["staff", "alcance-coordinator"]}),
        User(sub=COLLEAGUE, claims={"email": COLLEAGUE, "roles": ["staff"]}),
    ]
    with run_server_in_thread(require_nonce=True, user_claims=people) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def oidc_settings(filled: Settings, issuer: str) -> Settings:
    web = filled.web.model_copy(
        update={"oidc_issuer": issuer, "oidc_client_id": CLIENT_ID, "oidc_client_secret": SecretStr("s3cret")}
    )
    return filled.model_copy(update={"web": web})


@pytest.fixture(scope="module")
async def oidc_base_url(oidc_settings: Settings) -> AsyncIterator[str]:
    async with serving_web(oidc_settings, stream=False) as url:
        yield url


async def signed_in_at_provider(browser: aiohttp.ClientSession, base_url: str, sub: str) -> str:
    """Start a sign-in at the app, sign in at the provider as `sub`; returns the app's callback address."""
    async with browser.get(f"{base_url}/login/oidc", allow_redirects=False) as response:
        assert response.status == 303
        authorize = response.headers["Location"]
    asked = parse_qs(urlsplit(authorize).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["nonce"] and asked["state"]
    assert asked["client_id"] == [CLIENT_ID]
    # The provider's sign-in form: the person enters who they are.
    async with browser.post(authorize, data={"sub": sub}, allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        callback = r.headers["Location"]
    assert callback.startswith(f"{base_url}/login/oidc/callback?")
    return callback


async def test_a_coordinator_signs_in_through_the_provider_and_gets_a_session(oidc_base_url: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        callback = await signed_in_at_provider(browser, oidc_base_url, COORDINATOR)
        async with browser.get(callback, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
            cookie = response.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        async with browser.get(f"{oidc_base_url}/?lang=es") as response:
            assert response.status == 200 and "Inscripciones" in await response.text()
        # The same answer from the provider cannot be used twice.
        async with browser.get(callback, allow_redirects=False) as response:
            assert response.status == 400


@pytest.mark.parametrize(
    ("accept_language", "words"),
    [("es", "Acceso denegado"), ("pt-BR,pt;q=0.9", "Acesso negado"), ("en-GB,en;q=0.8", "Sign-in refused")],
)
async def test_a_person_without_the_coordinator_role_is_refused_with_a_page_in_their_language(
    oidc_base_url: str, accept_language: str, words: str
) -> None:
    headers = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": accept_language}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers) as browser:
        callback = await signed_in_at_provider(browser, oidc_base_url, COLLEAGUE)
        async with browser.get(callback, allow_redirects=False) as response:
            assert response.status == 403
            assert response.content_type == "text/html"
            assert "Set-Cookie" not in response.headers
            page = await response.text()
        assert f"<h1>{words}</h1>" in page and 'href="/login/oidc"' in page
        async with browser.get(f"{oidc_base_url}/?lang=es") as response:
            assert response.status == 401


async def test_a_person_without_the_coordinator_role_gets_a_403_problem_outside_a_browser(
    oidc_base_url: str,
) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        callback = await signed_in_at_provider(client, oidc_base_url, COLLEAGUE)
        async with client.get(
            callback, allow_redirects=False, headers={"Accept": "application/json"}
        ) as response:
            assert response.status == 403
            assert response.content_type == "application/problem+json"
            assert "Set-Cookie" not in response.headers
            problem = await response.json()
        assert problem["status"] == 403
        assert "'alcance-coordinator'" in problem["detail"] and "'roles'" in problem["detail"]


@pytest.mark.parametrize(
    ("claims", "coordinator"),
    [
        ({"roles": ["staff", "alcance-coordinator"]}, True),
        ({"roles": "alcance-coordinator"}, True),
        ({"roles": ["staff"]}, False),
        ({"roles": "alcance-coordinator-deputy"}, False),
        ({"roles": {"alcance-coordinator": True}}, False),
        ({"groups": ["alcance-coordinator"]}, False),
        ({}, False),
    ],
)
def test_only_the_configured_value_in_the_configured_claim_makes_a_coordinator(
    oidc_settings: Settings, claims: dict[str, object], coordinator: bool
) -> None:
    assert is_coordinator({"sub": "x", **claims}, oidc_settings.web) is coordinator


def test_the_role_claim_and_value_are_settings(oidc_settings: Settings) -> None:
    web = oidc_settings.web.model_copy(
        update={"oidc_role_claim": "groups", "oidc_coordinator_value": "/aladi/coordinacion"}
    )
    assert is_coordinator({"groups": ["/aladi/coordinacion"]}, web)
    assert not is_coordinator({"roles": ["alcance-coordinator"]}, web)


async def test_an_id_token_that_does_not_verify_is_refused(oidc_settings: Settings, issuer: str) -> None:
    party = RelyingParty(oidc_settings.web)
    stranger = RSAKey.generate_key(2048)
    now = int(time.time())
    claims = {"iss": issuer, "aud": CLIENT_ID, "sub": "x", "exp": now + 300, "iat": now, "nonce": "n-1"}
    forged = jwt.encode({"alg": "RS256", "kid": "k"}, claims, stranger)
    async with aiohttp.ClientSession() as client:
        with pytest.raises(ProblemError) as refused:
            await verify_id_token(party, client, forged, nonce="n-1")
        assert refused.value.problem.status == 401
        with pytest.raises(ProblemError):
            await verify_id_token(party, client, "not-a-token", nonce="n-1")
