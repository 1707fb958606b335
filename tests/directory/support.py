"""Ledger entries and firm rows for directory tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from directory.ledger import GIVEN, ConsentEntry, record
from directory.schema import WRITER_ROLE, sql
from directory.store import FirmRecord, as_writer, store_firm

NOW = datetime.now(UTC)


def grant(
    org: str,
    recipients: tuple[str, ...],
    fields: tuple[str, ...],
    *,
    consent: str | None = None,
    person: str | None = None,
    starts_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> ConsentEntry:
    consent_ref = consent or f"c-{org}-{person or 'org'}-{'-'.join(recipients)}"
    return ConsentEntry(
        consent_ref=consent_ref,
        org_ref=org,
        subject_kind="PERSON" if person else "ORG",
        subject_ref=person or org,
        status=GIVEN,
        recipients=recipients,
        fields=fields,
        starts_at=starts_at or NOW - timedelta(days=1),
        expires_at=expires_at,
        at=NOW - timedelta(days=1),
        actor="plgn",
        source_ref=f"feed:{consent_ref}",
        notice_version="2026-01",
        language="es",
    )


FULL = {
    "legalName": "Uvas del Sur S.A.",
    "tradeName": "Uvas del Sur",
    "country": "UY",
    "sector": "01",
    "hsChapters": ["08"],
    "products": ["uva de mesa"],
    "sizeBand": "SMALL",
    "exporterStatus": "REGULAR",
    "website": "https://uvas.example",
    "taxId": "214567890017",
    "contactName": "Ana Pérez",
    "contactEmail": "ana@uvas.example",
    "contactPhone": "+598 2 555 0101",
}


def firm_values(**changes: Any) -> dict[str, Any]:
    return {**FULL, **changes}


async def setup(
    admin: asyncpg.Connection, schema: str, entries: list[ConsentEntry], firms: dict[str, dict[str, Any]]
) -> None:
    async with admin.transaction():
        await as_writer(admin)
        await record(admin, schema, entries)
        for org, values in firms.items():
            await store_firm(admin, schema, FirmRecord(org, values))


async def stored_firms(connection: asyncpg.Connection, schema: str) -> dict[str, asyncpg.Record]:
    """Every firm row as stored, read as the directory's writer (the role the sync keeps them with)."""
    async with connection.transaction():
        await connection.execute(f"SET LOCAL ROLE {WRITER_ROLE}")
        rows = await connection.fetch(sql("SELECT * FROM {s}.firm", schema))
    return {row["org_ref"]: row for row in rows}
