"""Who may use the web app: bearer tokens, one-time login links and browser sessions, stored hashed.

Every secret is 32 random bytes (256 bits), so its SHA-256 is enough to store: nobody can guess a
preimage, and a slow password hash (argon2) would only add tens of milliseconds to every request.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import asyncpg

Role = Literal["coordinator", "developer", "external", "state", "plgn"]
ROLES: tuple[Role, ...] = get_args(Role)
# Roles whose reads are suppressed for small cells and limited to fixed publication tables (`plgn`, PLGN's
# own client, exists to withdraw directory consents).
EXTERNAL_ROLES: frozenset[Role] = frozenset({"external", "state", "plgn"})
# Prefixes name what a secret is when one turns up somewhere (a scanner, a paste); not secrets themselves.
TOKEN_PREFIX = "alc_"  # noqa: S105
SESSION_PREFIX = "als_"
LOGIN_PREFIX = "all_"


class IdentityError(ValueError):
    """Raised when a credential cannot be created as asked (unknown role or member state, name taken)."""


@dataclass(frozen=True)
class Identity:
    """The caller of a request, as its token or session says; never taken from the request itself.

    Attributes:
        name: The credential's name (who it was issued to).
        role: coordinator and developer read everything; external and state read suppressed tables.
        member_state: The ALADI member state (ISO 3166-1 alpha-2) a `state` identity speaks for.
        credential_id: The token or login link it came from (None for an OpenID Connect session).
    """

    name: str
    role: Role
    member_state: str | None = None
    credential_id: uuid.UUID | None = None

    @property
    def audience(self) -> Literal["internal", "external"]:
        """Whether reads are suppressed for this identity."""
        return "external" if self.role in EXTERNAL_ROLES else "internal"


def new_secret(prefix: str) -> str:
    """A fresh secret: `prefix` and 32 random bytes, URL-safe."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    """What the store keeps of a secret."""
    return hashlib.sha256(secret.encode()).digest()


async def create_credential(
    pool: asyncpg.Pool,
    *,
    role: str,
    name: str | None = None,
    member_state: str | None = None,
    kind: Literal["token", "login_link"] = "token",
    ttl_s: float | None = None,
) -> tuple[uuid.UUID, str, str]:
    """Issue a token or login link; returns its id, name and secret (shown once, stored hashed).

    Raises:
        IdentityError: on an unknown role, a missing or non-member state for the `state` role, a state
            given for another role, or a name already used by a live token.
    """
    if role not in ROLES:
        raise IdentityError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
    if member_state is not None:
        member_state = member_state.upper()
    if (role == "state") != (member_state is not None):
        raise IdentityError("--state is required for role state and only for it")
    credential_id = uuid.uuid4()
    name = name or f"{role}-{credential_id.hex[:8]}"
    prefix = TOKEN_PREFIX if kind == "token" else LOGIN_PREFIX
    secret = new_secret(prefix)
    async with pool.acquire() as connection:
        if member_state is not None:
            members = [r["iso2"] for r in await connection.fetch("SELECT iso2 FROM country WHERE is_member")]
            if member_state not in members:
                raise IdentityError(
                    f"{member_state} is not an ALADI member state; valid: {', '.join(sorted(members))}"
                )
        try:
            await connection.execute(
                "INSERT INTO web_credential (id, kind, name, role, member_state, secret_sha256, expires_at)"
                " VALUES ($1, $2, $3, $4, $5, $6,"
                " CASE WHEN $7::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $7) END)",
                credential_id,
                kind,
                name,
                role,
                member_state,
                digest(secret),
                ttl_s,
            )
        except asyncpg.UniqueViolationError:
            raise IdentityError(
                f"a live token is already named {name!r}; revoke it or pick another"
            ) from None
    return credential_id, name, secret


async def revoke_credential(pool: asyncpg.Pool, id_or_name: str) -> int:
    """Revoke the live credential with this id or name, ending its sessions; returns how many were."""
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(
            "UPDATE web_credential SET revoked_at = now()"
            " WHERE revoked_at IS NULL AND (id::text = lower($1) OR name = $1) RETURNING id",
            id_or_name,
        )
        ids = [row["id"] for row in rows]
        await connection.execute("DELETE FROM web_session WHERE credential_id = ANY($1::uuid[])", ids)
    return len(ids)


async def list_credentials(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Every token (never its secret), newest first."""
    async with pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT id, name, role, member_state, created_at, expires_at, last_used_at, revoked_at"
            "  FROM web_credential"
            " WHERE kind = 'token' ORDER BY created_at DESC"
        )
    return [dict(row) for row in rows]


async def identity_for_token(pool: asyncpg.Pool, secret: str) -> Identity | None:
    """The identity of a live bearer token, or None; notes its last use (at most once a minute)."""
    async with pool.acquire() as connection:
        row = await connection.fetchrow(
            "SELECT id, name, role, member_state, last_used_at < now() - interval '1 minute'"
            "       OR last_used_at IS NULL AS stale"
            "  FROM web_credential WHERE secret_sha256 = $1 AND kind = 'token' AND revoked_at IS NULL"
            "   AND (expires_at IS NULL OR expires_at > now())",
            digest(secret),
        )
        # Written at most once a minute: a row rewritten on every request would bloat the table.
        if row is not None and row["stale"]:
            await connection.execute(
                "UPDATE web_credential SET last_used_at = now() WHERE id = $1", row["id"]
            )
    return None if row is None else _identity(row, row["id"])


async def open_session(pool: asyncpg.Pool, identity: Identity, *, max_s: float) -> tuple[str, datetime]:
    """A new browser session for `identity`; returns the cookie value and when the session ends."""
    secret = new_secret(SESSION_PREFIX)
    async with pool.acquire() as connection:
        expires_at: datetime = await connection.fetchval(
            "INSERT INTO web_session (secret_sha256, credential_id, name, role, member_state, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) RETURNING expires_at",
            digest(secret),
            identity.credential_id,
            identity.name,
            identity.role,
            identity.member_state,
            max_s,
        )
    return secret, expires_at


async def exchange_login_link(
    pool: asyncpg.Pool, secret: str, *, max_s: float
) -> tuple[str, datetime] | None:
    """Trade an unused, unexpired login link for a session (cookie value, end); None if it is not one."""
    async with pool.acquire() as connection:
        row = await connection.fetchrow(
            "UPDATE web_credential SET used_at = now(), last_used_at = now()"
            " WHERE secret_sha256 = $1 AND kind = 'login_link' AND used_at IS NULL AND revoked_at IS NULL"
            " AND expires_at > now() RETURNING id, name, role, member_state",
            digest(secret),
        )
    if row is None:
        return None
    return await open_session(pool, _identity(row, row["id"]), max_s=max_s)


async def identity_for_session(pool: asyncpg.Pool, secret: str, *, idle_s: float) -> Identity | None:
    """The identity of a live session (not idle too long, not past its end, credential not revoked).

    The last-seen time is written at most once a minute, so idleness is judged to within a minute.
    """
    async with pool.acquire() as connection:
        row = await connection.fetchrow(
            "SELECT s.credential_id, s.name, s.role, s.member_state,"
            "       s.last_seen_at < now() - interval '1 minute' AS stale"
            "  FROM web_session AS s"
            " WHERE s.secret_sha256 = $1 AND s.expires_at > now()"
            "   AND s.last_seen_at > now() - make_interval(secs => $2)"
            "   AND NOT EXISTS (SELECT 1 FROM web_credential c"
            "                    WHERE c.id = s.credential_id AND c.revoked_at IS NOT NULL)",
            digest(secret),
            idle_s,
        )
        if row is not None and row["stale"]:
            await connection.execute(
                "UPDATE web_session SET last_seen_at = now() WHERE secret_sha256 = $1", digest(secret)
            )
    return None if row is None else _identity(row, row["credential_id"])


async def close_session(pool: asyncpg.Pool, secret: str) -> None:
    """End a session (sign-out)."""
    async with pool.acquire() as connection:
        await connection.execute("DELETE FROM web_session WHERE secret_sha256 = $1", digest(secret))


def _identity(row: asyncpg.Record, credential_id: uuid.UUID | None) -> Identity:
    member_state = row["member_state"]
    return Identity(
        name=row["name"],
        role=row["role"],
        member_state=None if member_state is None else str(member_state).strip(),
        credential_id=credential_id,
    )
