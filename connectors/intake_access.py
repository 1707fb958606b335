"""Who may post to the push intake, how often, and about what.

Clients are known by the SHA-256 of their bearer token (the configuration never holds a usable token);
a token must be at least `MIN_TOKEN_CHARS` long with `MIN_TOKEN_DISTINCT` distinct characters, so a
short or trivial token is refused at start-up (configured in clear) or can never match (presented).
Make one with `python -m connectors.intake_access <client name>`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from infra.settings import IntakeClient, IntakeSettings

MIN_TOKEN_CHARS = 32
MIN_TOKEN_DISTINCT = 10
DEFAULT_CLIENT = "default"


def token_sha256(token: str) -> str:
    """The hex SHA-256 of a token, as configured in `intake.clients[].token_sha256`.

    Tokens are long random strings, so a fast hash suffices: there is no dictionary to try.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def weak_token_reason(token: str) -> str | None:
    """Why `token` is too weak to admit anyone, or None when it is strong enough."""
    if len(token) < MIN_TOKEN_CHARS:
        return f"a token needs at least {MIN_TOKEN_CHARS} characters, this one has {len(token)}"
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        return f"a token needs at least {MIN_TOKEN_DISTINCT} distinct characters"
    return None


@dataclass(frozen=True, slots=True)
class Client:
    """An authenticated client and what it may post about (empty tuples: anything)."""

    name: str
    activities: tuple[str, ...] = ()
    registrations: frozenset[uuid.UUID] = frozenset()

    def refusal(self, statement: dict[str, Any]) -> str | None:
        """Why this client may not post `statement` (a checked statement), or None when it may."""
        if self.activities:
            object_id = str(statement["object"].get("id", ""))
            if not any(object_id.startswith(prefix) for prefix in self.activities):
                return f"client {self.name} may not post about activity {object_id[:200]}"
        if self.registrations:
            context = statement.get("context")
            registration = context.get("registration") if isinstance(context, dict) else None
            try:
                allowed = uuid.UUID(str(registration)) in self.registrations
            except ValueError:
                allowed = False
            if not allowed:
                return f"client {self.name} may only post statements of its own registrations"
        return None


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class Gatekeeper:
    """Authenticates bearer tokens and applies each client's rate limit.

    Raises:
        ValueError: when no client is configured or the plain `token` is too weak.
    """

    settings: IntakeSettings
    _clients: dict[str, tuple[IntakeClient, Client]] = field(init=False)
    _buckets: dict[str, _Bucket] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._clients = {}
        token = self.settings.token
        if token is not None:
            reason = weak_token_reason(token.get_secret_value())
            if reason is not None:
                raise ValueError(f"intake.token is too weak: {reason}")
            default = IntakeClient(name=DEFAULT_CLIENT, token_sha256=token_sha256(token.get_secret_value()))
            self._clients[default.token_sha256] = (default, Client(DEFAULT_CLIENT))
        names = [DEFAULT_CLIENT] * (token is not None) + [client.name for client in self.settings.clients]
        if len(set(names)) != len(names):
            raise ValueError(f"intake client names must be unique ({DEFAULT_CLIENT!r} is intake.token's)")
        for client in self.settings.clients:
            if client.token_sha256 in self._clients:
                raise ValueError(f"intake client {client.name} shares its token with another client")
            self._clients[client.token_sha256] = (
                client,
                Client(client.name, tuple(client.activities), frozenset(client.registrations)),
            )
        if not any(not configured.revoked for configured, _ in self._clients.values()):
            raise ValueError(
                "the push intake needs a client: set intake.token or intake.clients "
                "(python -m connectors.intake_access <name> makes one)"
            )

    def authenticate(self, authorization: str) -> Client | None:
        """The client named by an `Authorization: Bearer <token>` header, or None.

        None when the header is absent or not a bearer token, or the token is weak, unknown or revoked.
        """
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or weak_token_reason(token) is not None:
            return None
        digest = token_sha256(token)
        found = None
        # Compare with every entry in constant time so the answer's timing says nothing about the hash.
        for known, entry in self._clients.items():
            if hmac.compare_digest(known, digest):
                found = entry
        if found is None or found[0].revoked:
            return None
        return found[1]

    def retry_after_s(self, client: Client) -> float:
        """Take one request from the client's bucket: 0 when allowed, else seconds until one is free."""
        now = time.monotonic()
        rate, burst = self.settings.rate_per_s, float(self.settings.rate_burst)
        bucket = self._buckets.setdefault(client.name, _Bucket(tokens=burst, updated=now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate


def main() -> None:
    """Print a fresh token and the configuration entry that admits it.

    Run as `python -m connectors.intake_access <client name>`.
    """
    name = sys.argv[1] if len(sys.argv) > 1 else "platform"
    token = secrets.token_urlsafe(32)
    sys.stdout.write(
        f"token for {name} (give it to the platform; it is not stored): {token}\n"
        f'[[intake.clients]]\nname = "{name}"\ntoken_sha256 = "{token_sha256(token)}"\n'
    )


if __name__ == "__main__":
    main()
