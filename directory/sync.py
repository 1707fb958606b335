"""The directory sync: PLGN's consents into the ledger, PLGN's directory records into the firm store.

It writes straight to the directory's own schema and never to Kafka. One round:

1. reads the PLGN activity feed from its stored cursor; each page's consent entries, the firms they
   touch (kept, blanked or deleted) and the new cursor commit in one transaction, so an entry is recorded
   exactly once however often a page is read (entries are also idempotent by the activity id);
2. records the expiries that fell due and deletes what they leave uncovered;
3. reads every page of PLGN's directory endpoint: a firm with a current authorisation is kept with the
   authorised fields only, any other is deleted, and so is a stored firm PLGN no longer lists.

A feed item or a directory record that breaks its contract (`schemas/feeds/`) is logged with the reason
(no values) and counted, never recorded; a firm whose record is skipped keeps what was stored for it. A
directory page that breaks it stops the round with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import aiohttp
import asyncpg

from connectors.plgn_contract import directory_firm_violation, directory_page_violation
from connectors.pseudonym import Pseudonymiser
from directory.ledger import LedgerItemError, entry_from_item, expire_due, is_consent_item, record
from directory.notices import notify_recipients
from directory.schema import sql
from directory.store import FirmRecord, as_writer, reconcile, store_firm

logger = logging.getLogger(__name__)

_CURSOR = "feed_cursor"
_LISTED = "directory_firms"
_SET_STATE = """
INSERT INTO {s}.sync_state (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = clock_timestamp()
"""
# PLGN's directory record keys (a contact person nested under `contact`) -> directory field names.
_CONTACT_KEYS = {"name": "contactName", "email": "contactEmail", "telephone": "contactPhone"}
_TOP_KEYS = (
    "legalName", "tradeName", "country", "sector", "hsChapters", "products", "sizeBand",
    "exporterStatus", "website", "taxId",
)  # fmt: skip


class DirectoryContractError(ValueError):
    """A page of PLGN's directory endpoint breaks its contract; the message is the reason, without values."""


@dataclass
class SyncStats:
    """What a round did."""

    consent_entries: int = 0
    rejected_items: dict[str, int] = field(default_factory=dict)
    expired: int = 0
    firms_kept: int = 0
    firms_deleted: int = 0


@dataclass(frozen=True)
class DirectorySource:
    """Where PLGN serves its activity feed and its directory records, and the bearer token for both."""

    feed_endpoint: str
    directory_endpoint: str
    token: str | None = None
    page_size: int = 200


def firm_record(item: dict[str, Any], pseudonyms: Pseudonymiser) -> FirmRecord:
    """One directory record as a `FirmRecord` keyed by the firm's pseudonym (the evaluation store's key)."""
    values = {key: item[key] for key in _TOP_KEYS if item.get(key) is not None}
    found = item.get("contact")
    contact: dict[str, Any] = found if isinstance(found, dict) else {}
    values.update({name: contact[key] for key, name in _CONTACT_KEYS.items() if contact.get(key) is not None})
    return FirmRecord(pseudonyms.org(str(item["id"])), values)


class DirectorySync:
    """Runs sync rounds for one directory schema (see the module docstring)."""

    def __init__(
        self, source: DirectorySource, schema: str, pseudonyms: Pseudonymiser, session: aiohttp.ClientSession
    ) -> None:
        self.source = source
        self.schema = schema
        self.pseudonyms = pseudonyms
        self.session = session

    async def _get(self, url: str) -> Any:
        headers = {"Authorization": f"Bearer {self.source.token}"} if self.source.token else {}
        async with self.session.get(url, headers=headers) as response:
            response.raise_for_status()
            return await response.json(content_type=None)

    async def round(self, connection: asyncpg.Connection, now: datetime | None = None) -> SyncStats:
        """One sync round; each page commits on its own, so an interrupted round resumes where it stopped."""
        stats = SyncStats()
        await self._consents(connection, stats)
        async with connection.transaction():
            await as_writer(connection)
            orgs = await expire_due(connection, self.schema, now or datetime.now(UTC))
            stats.expired = len(orgs)
            stats.firms_deleted += await reconcile(connection, self.schema, orgs)
        await self._firms(connection, stats)
        logger.info(
            "directory sync: %d consent entries, %d rejected items, %d expired, %d firms kept, %d deleted",
            stats.consent_entries, sum(stats.rejected_items.values()), stats.expired, stats.firms_kept,
            stats.firms_deleted,
        )  # fmt: skip
        return stats

    async def _consents(self, connection: asyncpg.Connection, stats: SyncStats) -> None:
        stored = await connection.fetchval(
            sql("SELECT value FROM {s}.sync_state WHERE name = $1", self.schema), _CURSOR
        )
        url = urljoin(self.source.feed_endpoint, stored) if stored else await self._first_feed_page()
        while True:
            page = await self._get(url)
            items = page.get("orderedItems", page.get("items", [])) if isinstance(page, dict) else []
            following = page.get("next") if isinstance(page, dict) else None
            entries = []
            for item in items or []:
                if not is_consent_item(item):
                    continue
                try:
                    entries.append(entry_from_item(item, self.pseudonyms))
                except LedgerItemError as exc:
                    logger.warning("directory sync: feed item not recorded: %s", exc)
                    stats.rejected_items[str(exc)] = stats.rejected_items.get(str(exc), 0) + 1
            async with connection.transaction():
                await as_writer(connection)
                stats.consent_entries += await record(connection, self.schema, entries)
                stats.firms_deleted += await reconcile(connection, self.schema, {e.org_ref for e in entries})
                if following:
                    await connection.execute(sql(_SET_STATE, self.schema), _CURSOR, str(following))
            if not items or not following:
                return
            url = urljoin(self.source.feed_endpoint, str(following))

    async def _first_feed_page(self) -> str:
        collection = await self._get(self.source.feed_endpoint)
        first = collection["first"]
        return urljoin(self.source.feed_endpoint, str(first["id"] if isinstance(first, dict) else first))

    async def _firms(self, connection: asyncpg.Connection, stats: SyncStats) -> None:
        listed: set[str] = set()
        url: str | None = f"{self.source.directory_endpoint}?limit={self.source.page_size}"
        while url:
            page = await self._get(url)
            violation = directory_page_violation(page)
            if violation is not None:
                raise DirectoryContractError(violation)
            firms = []
            for item in page["items"]:
                reason = directory_firm_violation(item)
                if reason is None:
                    firms.append(firm_record(item, self.pseudonyms))
                    continue
                logger.warning("directory sync: directory record skipped: %s", reason)
                stats.rejected_items[reason] = stats.rejected_items.get(reason, 0) + 1
                named = item.get("id") if isinstance(item, dict) else None
                if directory_firm_violation({"id": named}) is None:
                    # PLGN still lists the firm: what was stored for it stays until a valid record.
                    listed.add(self.pseudonyms.org(str(named)))
            async with connection.transaction():
                await as_writer(connection)
                for firm in firms:
                    listed.add(firm.org_ref)
                    if await store_firm(connection, self.schema, firm):
                        stats.firms_kept += 1
            url = urljoin(url, page["next"]) if page.get("next") else None
        async with connection.transaction():
            await as_writer(connection)
            gone = await connection.fetch(
                sql("DELETE FROM {s}.firm WHERE NOT (org_ref = ANY ($1)) RETURNING org_ref", self.schema),
                sorted(listed),
            )
            stats.firms_deleted += len(gone)
            await notify_recipients(connection, self.schema, [row["org_ref"] for row in gone])
            await connection.execute(sql(_SET_STATE, self.schema), _LISTED, str(len(listed)))
