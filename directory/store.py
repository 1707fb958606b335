"""The directory's firm rows: only firms with a current authorisation, only the fields some consent covers.

A firm whose last authorisation ends is deleted (not hidden); a field no current consent covers any more
is blanked. Every write runs as the writer role, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from directory.ledger import CONTACT_FIELDS
from directory.notices import notify_recipients
from directory.schema import WRITER_ROLE, sql

# Directory field names (as PLGN's consents list them) and the firm columns that hold them.
FIELD_COLUMNS: Mapping[str, str] = {
    "legalName": "legal_name",
    "tradeName": "trade_name",
    "country": "country",
    "sector": "sector",
    "hsChapters": "hs_chapters",
    "products": "products",
    "sizeBand": "size_band",
    "exporterStatus": "exporter_status",
    "website": "website",
    "taxId": "tax_id",
    "contactName": "contact_name",
    "contactEmail": "contact_email",
    "contactPhone": "contact_phone",
}

# Fields some current consent covers, for any recipient: a firm consent, and for a contact field the
# contact person's consent as well.
_STORABLE = """
WITH covering AS (SELECT subject_kind, f AS field FROM {s}.org_authorisations($1) a, unnest(a.fields) f)
SELECT coalesce(array_agg(DISTINCT c.field), '{}') FROM covering c
 WHERE c.subject_kind = 'ORG'
   AND (c.field <> ALL ($2::text[])
        OR EXISTS (SELECT 1 FROM covering p WHERE p.subject_kind = 'PERSON' AND p.field = c.field))
"""

# The columns in FIELD_COLUMNS' order; every value is a parameter.
_UPSERT = """
INSERT INTO {s}.firm (org_ref, legal_name, trade_name, country, sector, hs_chapters, products, size_band,
    exporter_status, website, tax_id, contact_name, contact_email, contact_phone)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (org_ref) DO UPDATE SET
    legal_name = EXCLUDED.legal_name,
    trade_name = EXCLUDED.trade_name,
    country = EXCLUDED.country,
    sector = EXCLUDED.sector,
    hs_chapters = EXCLUDED.hs_chapters,
    products = EXCLUDED.products,
    size_band = EXCLUDED.size_band,
    exporter_status = EXCLUDED.exporter_status,
    website = EXCLUDED.website,
    tax_id = EXCLUDED.tax_id,
    contact_name = EXCLUDED.contact_name,
    contact_email = EXCLUDED.contact_email,
    contact_phone = EXCLUDED.contact_phone,
    updated_at = clock_timestamp()
"""
_BLANK = """
UPDATE {s}.firm SET
    legal_name = CASE WHEN 'legalName' = ANY ($2) THEN legal_name END,
    trade_name = CASE WHEN 'tradeName' = ANY ($2) THEN trade_name END,
    country = CASE WHEN 'country' = ANY ($2) THEN country END,
    sector = CASE WHEN 'sector' = ANY ($2) THEN sector END,
    hs_chapters = CASE WHEN 'hsChapters' = ANY ($2) THEN hs_chapters END,
    products = CASE WHEN 'products' = ANY ($2) THEN products END,
    size_band = CASE WHEN 'sizeBand' = ANY ($2) THEN size_band END,
    exporter_status = CASE WHEN 'exporterStatus' = ANY ($2) THEN exporter_status END,
    website = CASE WHEN 'website' = ANY ($2) THEN website END,
    tax_id = CASE WHEN 'taxId' = ANY ($2) THEN tax_id END,
    contact_name = CASE WHEN 'contactName' = ANY ($2) THEN contact_name END,
    contact_email = CASE WHEN 'contactEmail' = ANY ($2) THEN contact_email END,
    contact_phone = CASE WHEN 'contactPhone' = ANY ($2) THEN contact_phone END
 WHERE org_ref = $1
"""


@dataclass(frozen=True)
class FirmRecord:
    """A firm as PLGN's directory endpoint gives it, keyed by the firm's pseudonym."""

    org_ref: str
    values: Mapping[str, Any] = field(default_factory=dict)
    """Directory field name -> value (fields the endpoint left out are absent)."""


async def storable_fields(connection: asyncpg.Connection, schema: str, org_ref: str) -> set[str]:
    """The fields of `org_ref` that some current consent covers (empty: the firm must not be stored)."""
    found = await connection.fetchval(sql(_STORABLE, schema), org_ref, sorted(CONTACT_FIELDS))
    return {name for name in found if name in FIELD_COLUMNS}


async def as_writer(connection: asyncpg.Connection) -> None:
    """Switch the caller's transaction to the writer role (the firm table's policies let it write)."""
    await connection.execute(f"SET LOCAL ROLE {WRITER_ROLE}")


async def store_firm(connection: asyncpg.Connection, schema: str, firm: FirmRecord) -> bool:
    """Keep `firm` with only its storable fields, or delete it when none is; True when a row remains."""
    allowed = await storable_fields(connection, schema, firm.org_ref)
    if not allowed:
        await connection.execute(sql("DELETE FROM {s}.firm WHERE org_ref = $1", schema), firm.org_ref)
        return False
    values = [firm.values.get(name) if name in allowed else None for name in FIELD_COLUMNS]
    await connection.execute(sql(_UPSERT, schema), firm.org_ref, *values)
    return True


async def reconcile(connection: asyncpg.Connection, schema: str, org_refs: Iterable[str]) -> int:
    """Delete the rows of `org_refs` no consent covers any more, blank the fields none covers.

    Returns:
        How many rows were deleted.
    """
    deleted = 0
    refs = sorted(set(org_refs))
    for org_ref in refs:
        allowed = await storable_fields(connection, schema, org_ref)
        if not allowed:
            status = await connection.execute(sql("DELETE FROM {s}.firm WHERE org_ref = $1", schema), org_ref)
            deleted += status == "DELETE 1"
            continue
        await connection.execute(sql(_BLANK, schema), org_ref, sorted(allowed))
    # The states that received what a firm no longer shares with them are told to delete it.
    await notify_recipients(connection, schema, refs)
    return deleted
