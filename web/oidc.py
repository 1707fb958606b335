"""Coordinators' sign-in through an OpenID Connect provider: authorization code with PKCE, state and nonce.

Offered when `web.oidc_issuer` and `web.oidc_client_id` are set. The provider's discovery document
and keys are fetched with aiohttp (never a blocking client); the ID token is verified with joserfc
(signature, `iss`, `aud`, `exp`, `nonce`, and `azp` when present). An account at the provider is not
enough: the token's `web.oidc_role_claim` must hold `web.oidc_coordinator_value`, else the sign-in is
refused (403: a page in the person's language for a browser, a problem document for anything else).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from infra.settings import WebSettings
from web import identities
from web.auth import set_session_cookie
from web.identities import Identity
from web.pages.i18n import Speaker, language
from web.pages.render import render_notice
from web.problems import ProblemError
from web.state import POOL, SETTINGS

logger = logging.getLogger(__name__)

# A sign-in must come back from the provider within this time.
PENDING_TTL_S = 600.0
ALGORITHMS = ("RS256", "ES256", "PS256")
CALLBACK_PATH = "/login/oidc/callback"


@dataclass
class _Pending:
    nonce: str
    verifier: str
    redirect_uri: str
    created: float = field(default_factory=time.monotonic)


@dataclass
class RelyingParty:
    """The app's side of the sign-in: the provider's metadata and keys, and sign-ins under way."""

    settings: WebSettings
    metadata: dict[str, Any] | None = None
    keys: KeySet | None = None
    pending: dict[str, _Pending] = field(default_factory=dict)

    async def discover(self, client: aiohttp.ClientSession) -> dict[str, Any]:
        """The provider's discovery document (fetched once)."""
        if self.metadata is None:
            issuer = (self.settings.oidc_issuer or "").rstrip("/")
            async with client.get(f"{issuer}/.well-known/openid-configuration") as response:
                response.raise_for_status()
                self.metadata = await response.json()
        return self.metadata

    async def key_set(self, client: aiohttp.ClientSession, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys; fetched again when a token names a key not held."""
        if self.keys is None or refresh:
            metadata = await self.discover(client)
            async with client.get(metadata["jwks_uri"]) as response:
                response.raise_for_status()
                self.keys = KeySet.import_key_set(await response.json())
        return self.keys

    def forget_stale(self) -> None:
        """Drop sign-ins that never came back."""
        now = time.monotonic()
        for state in [s for s, p in self.pending.items() if now - p.created > PENDING_TTL_S]:
            del self.pending[state]


RELYING_PARTY = web.AppKey("oidc", RelyingParty)
HTTP = web.AppKey("oidc_http", aiohttp.ClientSession)


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _callback_url(request: web.Request) -> str:
    public = request.app[SETTINGS].web.public_url
    base = public.rstrip("/") if public else f"{request.scheme}://{request.host}"
    return base + CALLBACK_PATH


async def start(request: web.Request) -> web.StreamResponse:
    """Send the browser to the provider with a fresh state, nonce and PKCE challenge."""
    party = request.app[RELYING_PARTY]
    party.forget_stale()
    metadata = await party.discover(request.app[HTTP])
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    redirect_uri = _callback_url(request)
    party.pending[state] = _Pending(nonce=nonce, verifier=verifier, redirect_uri=redirect_uri)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": party.settings.oidc_client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid email profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    return web.Response(status=303, headers={"Location": f"{metadata['authorization_endpoint']}?{query}"})


async def callback(request: web.Request) -> web.StreamResponse:
    """Trade the code for an ID token, verify it, and open a coordinator's session."""
    party = request.app[RELYING_PARTY]
    pending = party.pending.pop(request.query.get("state", ""), None)
    if pending is None or "code" not in request.query:
        raise ProblemError(
            400, "Bad Request", "this sign-in is unknown or expired; start again at /login/oidc"
        )
    client = request.app[HTTP]
    metadata = await party.discover(client)
    secret = party.settings.oidc_client_secret
    form = {
        "grant_type": "authorization_code",
        "code": request.query["code"],
        "redirect_uri": pending.redirect_uri,
        "code_verifier": pending.verifier,
        "client_id": party.settings.oidc_client_id or "",
    }
    if secret is not None:
        form["client_secret"] = secret.get_secret_value()
    async with client.post(metadata["token_endpoint"], data=form) as response:
        if response.status != 200:
            logger.warning("the OpenID provider refused the code (HTTP %d)", response.status)
            raise ProblemError(401, "Unauthorized", "the identity provider refused the sign-in")
        tokens = await response.json()
    claims = await verify_id_token(party, client, str(tokens.get("id_token", "")), nonce=pending.nonce)
    settings = request.app[SETTINGS].web
    if not is_coordinator(claims, settings):
        # Who was refused is personal data: the log says only why.
        logger.info(
            "an OpenID Connect sign-in was refused: no %r in claim %r",
            settings.oidc_coordinator_value,
            settings.oidc_role_claim,
        )
        return refusal(request, settings)
    name = str(claims.get("email") or claims["sub"])
    identity = Identity(name=name, role="coordinator")
    cookie, _ = await identities.open_session(request.app[POOL], identity, max_s=settings.session_max_s)
    answer = web.Response(status=303, headers={"Location": "/", "Cache-Control": "no-store"})
    set_session_cookie(answer, cookie, settings)
    return answer


def is_coordinator(claims: dict[str, Any], settings: WebSettings) -> bool:
    """Whether verified ID token claims make their holder a coordinator.

    The claim may be one string (equal to the value) or a list of strings (one equal to it); anything
    else, or no claim, is not a coordinator.
    """
    held = claims.get(settings.oidc_role_claim)
    if isinstance(held, str):
        return held == settings.oidc_coordinator_value
    if isinstance(held, list):
        return settings.oidc_coordinator_value in [item for item in held if isinstance(item, str)]
    return False


def refusal(request: web.Request, settings: WebSettings) -> web.StreamResponse:
    """403 for a person the provider knows who is no coordinator: a page for a browser, else a problem."""
    if "text/html" not in request.headers.get("Accept", ""):
        raise ProblemError(
            403,
            "Forbidden",
            f"the identity provider's token has no {settings.oidc_coordinator_value!r} in its "
            f"{settings.oidc_role_claim!r} claim",
        )
    say = Speaker(language(request))
    return web.Response(
        status=403,
        text=render_notice("signin_refused.html", say),
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


async def verify_id_token(
    party: RelyingParty, client: aiohttp.ClientSession, id_token: str, *, nonce: str
) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, expiry, nonce and azp hold (401 else)."""
    metadata = await party.discover(client)
    try:
        try:
            token = jwt.decode(id_token, await party.key_set(client), algorithms=ALGORITHMS)
        except (JoseError, ValueError):
            # A rotated key: fetch the set once more before refusing.
            token = jwt.decode(id_token, await party.key_set(client, refresh=True), algorithms=ALGORITHMS)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": metadata["issuer"]},
            aud={"essential": True, "value": party.settings.oidc_client_id or ""},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        logger.warning("an ID token was refused: %s", type(exc).__name__)
        raise ProblemError(401, "Unauthorized", "the identity provider's token did not verify") from None
    claims = dict(token.claims)
    if "azp" in claims and claims["azp"] != party.settings.oidc_client_id:
        raise ProblemError(401, "Unauthorized", "the identity provider's token is for another client")
    return claims


def add_routes(app: web.Application, settings: WebSettings) -> None:
    """Offer OpenID Connect sign-in when an issuer and a client id are configured."""
    if not (settings.oidc_issuer and settings.oidc_client_id):
        return
    app[RELYING_PARTY] = RelyingParty(settings)

    async def http_client(app: web.Application) -> Any:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
            app[HTTP] = session
            yield

    app.cleanup_ctx.append(http_client)
    app.router.add_get("/login/oidc", start, allow_head=False)
    app.router.add_get(CALLBACK_PATH, callback, allow_head=False)
