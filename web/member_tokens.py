"""Member states' OAuth2 client-credentials access tokens: JWTs from a configured authorisation server.

Verified with joserfc against the server's JWKS (fetched with aiohttp, cached, fetched again for an
unknown key id at most once a minute): `typ` at+jwt, the issuer, the audience, an expiry no further than
`jwt_max_lifetime_s` ahead, scope `directory:read`, and the member state in `jwt_state_claim` (set per
client by the authorisation server, never by the request). A token that fails any check is no identity.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from infra.settings import DirectorySettings
from web.identities import Identity

logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
SCOPE = "directory:read"
_REFRESH_AFTER_S = 60.0


class MemberStateTokens:
    """Turns a member state's JWT into an `Identity` of role `state`, or None."""

    def __init__(self, settings: DirectorySettings, session: aiohttp.ClientSession) -> None:
        if not (settings.jwt_issuer and settings.jwt_audience and settings.jwt_jwks_url):
            raise ValueError("jwt_issuer, jwt_audience and jwt_jwks_url are all needed")
        self.settings = settings
        self.session = session
        self._keys: KeySet | None = None
        self._refreshed_at = float("-inf")

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        # Fetched once; again for an unknown key id, at most once a minute (a flood of made-up key ids
        # cannot turn into a flood of requests to the authorisation server).
        now = time.monotonic()
        if self._keys is None or (refresh and now - self._refreshed_at >= _REFRESH_AFTER_S):
            if self._keys is not None:
                self._refreshed_at = now
            async with self.session.get(str(self.settings.jwt_jwks_url)) as response:
                response.raise_for_status()
                self._keys = KeySet.import_key_set(await response.json(content_type=None))
        return self._keys

    async def identity(self, token: str) -> Identity | None:
        """The member state's identity the token carries, or None (the reason is logged, never the token)."""
        try:
            decoded = await self._decode(token)
            claims = self._checked(decoded)
        except (JoseError, ValueError) as exc:
            logger.info("member-state token refused: %s", exc)
            return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning(
                "member-state token not checked: the JWKS could not be fetched (%s)", type(exc).__name__
            )
            return None
        subject = str(claims.get("client_id") or claims.get("sub") or "unknown")
        state = str(claims[self.settings.jwt_state_claim])
        return Identity(name=f"jwt:{subject}"[:100], role="state", member_state=state)

    async def _decode(self, token: str) -> jwt.Token:
        try:
            return jwt.decode(token, await self._key_set(), algorithms=list(ALGORITHMS))
        except InvalidKeyIdError:
            # A key the cached set lacks may be a rotated one: fetch the set again (at most once a minute).
            return jwt.decode(token, await self._key_set(refresh=True), algorithms=list(ALGORITHMS))

    def _checked(self, token: jwt.Token) -> dict[str, Any]:
        typ = str(token.header.get("typ", "")).lower()
        if typ not in {"at+jwt", "application/at+jwt"}:
            raise ValueError("typ is not at+jwt")
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": str(self.settings.jwt_issuer)},
            aud={"essential": True, "value": str(self.settings.jwt_audience)},
            exp={"essential": True},
        )
        registry.validate(claims)
        if float(claims["exp"]) - time.time() > self.settings.jwt_max_lifetime_s:
            raise ValueError("the token lives longer than allowed")
        if SCOPE not in str(claims.get("scope", "")).split():
            raise ValueError(f"scope {SCOPE} is missing")
        state = claims.get(self.settings.jwt_state_claim)
        if not isinstance(state, str) or len(state) != 2 or not state.isupper():
            raise ValueError(f"claim {self.settings.jwt_state_claim} is not a member-state code")
        return claims
