"""Coordinators sign in through a real OpenID Connect provider (oidc-provider-mock, run in a thread)."""

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
from web.oidc import RelyingParty, verify_id_token
from web.problems import ProblemError

CLIENT_ID = "alcance-dashboard"


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with warnings.catch_warnings():
        # Its Authlib imports modules Authlib deprecates; nothing of alcance uses them.
        warnings.simplefilter("ignore", DeprecationWarning)
        from oidc_provider_mock import run_server_in_thread
    with run_server_in_thread(require_nonce=True) as server:
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


async def test_a_coordinator_signs_in_through_the_provider_and_gets_a_session(oidc_base_url: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(f"{oidc_base_url}/login/oidc", allow_redirects=False) as response:
            assert response.status == 303
            authorize = response.headers["Location"]
        asked = parse_qs(urlsplit(authorize).query)
        assert asked["code_challenge_method"] == ["S256"] and asked["nonce"] and asked["state"]
        assert asked["client_id"] == [CLIENT_ID]
        # The provider's sign-in form: the person enters who they are.
        async with browser.post(
            authorize, data={"sub": "coordinadora@aladi.org"}, allow_redirects=False
        ) as r:
            assert r.status == 302, await r.text()
            callback = r.headers["Location"]
        assert callback.startswith(f"{oidc_base_url}/login/oidc/callback?")
        async with browser.get(callback, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
            cookie = response.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        async with browser.get(f"{oidc_base_url}/?lang=es") as response:
            assert response.status == 200 and "Inscripciones" in await response.text()
        # The same answer from the provider cannot be used twice.
        async with browser.get(callback, allow_redirects=False) as response:
            assert response.status == 400


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
