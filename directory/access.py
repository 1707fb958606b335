"""Member-state reads of the directory, consent withdrawals and the access log, as plain async functions.

Each takes a connection and the caller's verified identity (never anything from the request for the
member state) and runs in one transaction: reads as the API role (no bypass of row-level security) with
the requesting state set for that transaction only, then the access-log row (firms and fields returned,
or the denial) before the commit. The web layer only maps tokens to an `Identity` and results to JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from directory import notices
from directory.ledger import WITHDRAWN, ConsentEntry, record
from directory.schema import API_ROLE, sql
from directory.store import FIELD_COLUMNS, as_writer, reconcile

PAGE_MAX = 50
STATE_ROLE, PLGN_ROLE, COORDINATOR_ROLE = "state", "plgn", "coordinator"
SIZE_BANDS = frozenset({"MICRO", "SMALL", "MEDIUM", "LARGE", "UNKNOWN"})
_TWO_DIGITS = re.compile(r"[0-9]{2}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_REF = re.compile(r"o-[A-Za-z0-9_-]{1,100}")
_OUTPUT_COLUMNS = ("org_ref", "fields", *FIELD_COLUMNS.values())


@dataclass(frozen=True)
class Identity:
    """Who calls, as the verified token says: client id, role, and for role `state` its member state."""

    client_id: str
    role: str
    member_state: str | None = None


class DirectoryDenied(PermissionError):
    """Raised when the identity may not read the directory (the denial is logged first)."""


class InvalidFilter(ValueError):
    """Raised when a filter is not valid, naming the filter and what is valid (nothing is read)."""


@dataclass(frozen=True)
class FirmFilters:
    """The filters of `GET /api/v1/directory/firms`; each is checked before any query runs."""

    sector: str | None = None
    hs_chapter: str | None = None
    country: str | None = None
    size_band: str | None = None
    after: str | None = None
    limit: int = PAGE_MAX

    def check(self) -> None:
        """Raise `InvalidFilter` for the first filter that is not valid."""
        rules = (
            ("sector", self.sector, _TWO_DIGITS, "an ISIC Rev.4 division, 2 digits"),
            ("hs_chapter", self.hs_chapter, _TWO_DIGITS, "an HS chapter, 2 digits"),
            ("country", self.country, _COUNTRY, "an ISO 3166-1 alpha-2 code"),
            ("after", self.after, _REF, "a firm reference from a previous page"),
        )
        for name, value, pattern, valid in rules:
            if value is not None and not pattern.fullmatch(value):
                raise InvalidFilter(f"filter {name} is not valid: expected {valid}")
        if self.size_band is not None and self.size_band not in SIZE_BANDS:
            raise InvalidFilter(
                f"filter size_band is not valid: expected one of {', '.join(sorted(SIZE_BANDS))}"
            )
        if not 1 <= self.limit <= PAGE_MAX:
            raise InvalidFilter(f"filter limit is not valid: expected 1 to {PAGE_MAX}")


_LIST = """
SELECT org_ref, fields, legal_name, trade_name, country, sector, hs_chapters, products, size_band,
       exporter_status, website, tax_id, contact_name, contact_email, contact_phone
  FROM {s}.firm_shared
 WHERE ($1::text IS NULL OR sector = $1) AND ($2::text IS NULL OR $2 = ANY (hs_chapters))
   AND ($3::text IS NULL OR country = $3) AND ($4::text IS NULL OR size_band = $4)
   AND ($5::text IS NULL OR org_ref > $5)
 ORDER BY org_ref
 LIMIT $6
"""
_ONE = """
SELECT org_ref, fields, legal_name, trade_name, country, sector, hs_chapters, products, size_band,
       exporter_status, website, tax_id, contact_name, contact_email, contact_phone
  FROM {s}.firm_shared WHERE org_ref = $1
"""
_LOG = """
INSERT INTO {s}.access_log (client_id, role, member_state, request_id, query, org_refs, fields, outcome)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)
"""


def _firm(row: asyncpg.Record) -> dict[str, Any]:
    # Only the fields authorised for the requesting state: the others are NULL and left out.
    names = {column: name for name, column in FIELD_COLUMNS.items()}
    shared = {names[column]: row[column] for column in FIELD_COLUMNS.values() if row[column] is not None}
    return {"ref": row["org_ref"], **shared}


async def _log(
    connection: asyncpg.Connection,
    schema: str,
    identity: Identity,
    query: dict[str, Any],
    firms: list[dict[str, Any]],
    outcome: str,
    request_id: str | None,
) -> None:
    fields = sorted({name for firm in firms for name in firm if name != "ref"})
    await connection.execute(
        sql(_LOG, schema), identity.client_id, identity.role, identity.member_state, request_id,
        json.dumps(query, sort_keys=True), [firm["ref"] for firm in firms], fields, outcome,
    )  # fmt: skip


async def _read(
    connection: asyncpg.Connection,
    schema: str,
    identity: Identity,
    query: dict[str, Any],
    statement: str,
    args: tuple[Any, ...],
    request_id: str | None,
) -> list[dict[str, Any]]:
    async with connection.transaction():
        if not await _as_member(connection, schema, identity):
            await _log(connection, schema, identity, query, [], "denied", request_id)
            denied = True
            firms: list[dict[str, Any]] = []
        else:
            denied = False
            firms = [_firm(row) for row in await connection.fetch(sql(statement, schema), *args)]
            await _log(connection, schema, identity, query, firms, "granted", request_id)
    if denied:
        raise DirectoryDenied("the directory is read by member states only (a state token of a member)")
    return firms


async def _as_member(connection: asyncpg.Connection, schema: str, identity: Identity) -> bool:
    """Run the caller's transaction as the API role for the identity's state; whether that is a member."""
    await connection.execute(f"SET LOCAL ROLE {API_ROLE}")
    state = identity.member_state if identity.role == STATE_ROLE else None
    # For this transaction only; an empty value means no state, which the policies treat as none.
    await connection.execute("SELECT set_config('alcance.member_state', $1, true)", state or "")
    # Through a function the API role may call: whether the state set for this transaction is a member.
    return bool(await connection.fetchval(sql("SELECT {s}.requesting_member() IS NOT NULL", schema)))


async def list_firms(
    connection: asyncpg.Connection,
    identity: Identity,
    filters: FirmFilters,
    *,
    schema: str,
    request_id: str | None = None,
) -> list[dict[str, Any]]:
    """The firms authorised for the identity's member state that match `filters`, one page (≤ 50).

    Raises:
        InvalidFilter: a filter is not valid (nothing read, nothing logged).
        DirectoryDenied: the identity is no member state's (the denial is logged).
    """
    filters.check()
    query = {"path": "/directory/firms", **{k: v for k, v in asdict(filters).items() if v is not None}}
    args = (
        filters.sector,
        filters.hs_chapter,
        filters.country,
        filters.size_band,
        filters.after,
        filters.limit,
    )
    return await _read(connection, schema, identity, query, _LIST, args, request_id)


async def get_firm(
    connection: asyncpg.Connection,
    identity: Identity,
    ref: str,
    *,
    schema: str,
    request_id: str | None = None,
) -> dict[str, Any] | None:
    """One firm's authorised fields for the identity's member state, or None (not found or not authorised).

    Raises:
        InvalidFilter: `ref` is not a firm reference.
        DirectoryDenied: the identity is no member state's (the denial is logged).
    """
    if not _REF.fullmatch(ref):
        raise InvalidFilter("firm reference is not valid: expected a reference from the firm list")
    found = await _read(
        connection, schema, identity, {"path": "/directory/firms/{ref}", "ref": ref}, _ONE, (ref,), request_id
    )
    return found[0] if found else None


async def withdraw_consent(
    connection: asyncpg.Connection,
    identity: Identity,
    consent_ref: str,
    *,
    schema: str,
    request_id: str,
    at: datetime | None = None,
) -> bool:
    """Withdraw a whole consent for PLGN's client: effective for the next query, in one transaction.

    Appends `ConsentWithdrawn` (idempotent by request id), deletes the firm's row when no authorisation
    is left (or blanks the fields none covers) and logs the withdrawal. Returns False for an unknown consent.

    Raises:
        DirectoryDenied: the identity is not PLGN's client.
    """
    if identity.role != PLGN_ROLE:
        raise DirectoryDenied("consents are withdrawn by PLGN's client only")
    when = at or datetime.now(UTC)
    async with connection.transaction():
        await as_writer(connection)
        org_ref = await connection.fetchval(
            sql("SELECT org_ref FROM {s}.consent_current WHERE consent_ref = $1", schema), consent_ref
        )
        if org_ref is None:
            return False
        entry = ConsentEntry(
            consent_ref=consent_ref, org_ref=org_ref, subject_kind="ORG", subject_ref=org_ref,
            status=WITHDRAWN, recipients=(), fields=(), starts_at=when, at=when, actor=identity.client_id,
            source_ref=f"api:{request_id}",
        )  # fmt: skip
        await record(connection, schema, [entry])
        await reconcile(connection, schema, [org_ref])
        firms = [{"ref": org_ref}]
        await _log(
            connection,
            schema,
            identity,
            {"path": "/consents/{id}/withdrawal"},
            firms,
            "withdrawal",
            request_id,
        )
    return True


async def read_notices(
    connection: asyncpg.Connection, identity: Identity, *, schema: str, after: int = 0, limit: int = 50
) -> list[dict[str, Any]]:
    """The withdrawal notices of the identity's member state after `after` (by id), read as the API role.

    Raises:
        DirectoryDenied: the identity is no member state's.
    """
    async with connection.transaction():
        await _as_state(connection, schema, identity)
        return await notices.own_notices(connection, schema, after, limit)


async def acknowledge_notice(
    connection: asyncpg.Connection, identity: Identity, notice_id: int, *, schema: str
) -> bool:
    """Acknowledge a notice of the identity's member state (idempotent); False when it has no such notice.

    Raises:
        DirectoryDenied: the identity is no member state's.
    """
    async with connection.transaction():
        await _as_state(connection, schema, identity)
        return await notices.acknowledge(connection, schema, notice_id, identity.client_id)


async def _as_state(connection: asyncpg.Connection, schema: str, identity: Identity) -> None:
    if not await _as_member(connection, schema, identity):
        raise DirectoryDenied("withdrawal notices are read by member states only (a state token of a member)")


async def read_access_log(
    connection: asyncpg.Connection, identity: Identity, *, schema: str, after: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    """Access-log rows after `after` (by sequence), for coordinators.

    Raises:
        DirectoryDenied: the identity is not a coordinator.
    """
    if identity.role != COORDINATOR_ROLE:
        raise DirectoryDenied("the access log is read by coordinators only")
    async with connection.transaction():
        await as_writer(connection)
        rows = await connection.fetch(
            sql(
                "SELECT seq, at, client_id, role, member_state, query, org_refs, fields, outcome"
                " FROM {s}.access_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                schema,
            ),
            after,
            min(max(limit, 1), 1000),
        )
    return [{**dict(row), "query": json.loads(row["query"])} for row in rows]
