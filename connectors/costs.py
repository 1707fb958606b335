"""Cost entries of promotion activities and course offerings, read from a finance ledger in CSV.

ALADI's finance unit keeps costs outside both platforms; alcance reads its ledger export, one row per
cost entry, as the reference data behind ACT-01 (fully loaded cost), CVF-20 and every ROI figure.

The ledger is append-only. Columns (header row required):

| column | meaning |
| --- | --- |
| `cost_id` | the entry's id in the ledger (unique) |
| `activity_id` | the promotion activity or course offering the cost belongs to |
| `activity_type` | BUSINESS_ROUND, TRADE_FAIR, TRADE_MISSION, WEBINAR, COURSE_OFFERING, ... |
| `category` | STAFF, VENUE, PLATFORM, TRAVEL, MARKETING, CONTENT, TUTORS, IN_KIND, OTHER |
| `payer` | ALADI, HOST or PARTNER |
| `amount`, `currency`, `usd_amount` | the money, in its original currency and in USD at the entry date |
| `recorded_at` | when the cost was incurred (RFC 3339) |
| `voids` | optional: the `cost_id` this row cancels (a correction is a voiding row plus a new entry) |

The endpoint is the ledger's path (`file:///srv/finance/costs.csv` or a plain path). The cursor is
the number of data rows already published, so a restart resumes after the last committed row;
deterministic event ids (from `cost_id`) make any re-read harmless.

Delivery guarantee: at-least-once into Kafka with deterministic event ids (exactly-once in effect
downstream).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlparse

from pydantic import ValidationError

from connectors.base import Cursor, Page, PollingConnector
from connectors.exceptions import DeadLetterRecord, FatalSourceError
from schemas.events.base import Event, event_id_for
from schemas.events.finance import CostRecorded, FinanceEventRetracted

CostRow = Mapping[str, str]

REQUIRED_COLUMNS = ("cost_id", "activity_id", "activity_type", "category", "amount", "currency", "usd_amount")


class CostLedgerConnector(PollingConnector[CostRow]):
    """Reads cost entries from a CSV ledger file and publishes `finance.cost.recorded` events."""

    kind: ClassVar[str] = "costs"
    family: ClassVar[str] = "finance"

    async def fetch_page(self, cursor: Cursor | None) -> Page[CostRow]:
        """The rows after the `row` position of `cursor`, at most `page_size` of them."""
        start = int(cursor["row"]) if cursor else 0
        rows = await self._read_rows()
        page = rows[start : start + self.page_size]
        next_row = start + len(page)
        return Page(
            records=page,
            next_cursor={"row": next_row},
            exhausted=next_row >= len(rows),
        )

    def map_record(self, record: CostRow) -> list[Event]:
        """One cost entry, or the retraction of the entry a `voids` row cancels."""
        cost_id = (record.get("cost_id") or "").strip()
        if not cost_id:
            raise DeadLetterRecord("cost row without cost_id")
        voided = (record.get("voids") or "").strip()
        try:
            occurred_at = datetime.fromisoformat(record["recorded_at"])
            if voided:
                return [
                    FinanceEventRetracted.create(
                        source=self.name,
                        record_identity=f"{cost_id}:voids",
                        source_ref=cost_id,
                        occurred_at=occurred_at,
                        subject_key=record.get("activity_id") or voided,
                        retracted_event_id=event_id_for(self.name, voided),
                        reason=f"cost entry {voided} voided by {cost_id}",
                    )
                ]
            return [
                CostRecorded.create(
                    source=self.name,
                    record_identity=cost_id,
                    source_ref=cost_id,
                    occurred_at=occurred_at,
                    cost_id=cost_id,
                    activity_id=record["activity_id"],
                    activity_type=record["activity_type"],
                    category=record["category"],
                    payer=record.get("payer") or "ALADI",
                    money={
                        "amount": record["amount"],
                        "currency": record["currency"],
                        "usd_amount": record["usd_amount"],
                    },
                    country=(record.get("country") or None),
                )
            ]
        except (KeyError, ValueError, ValidationError) as exc:
            raise DeadLetterRecord(f"invalid cost row: {_short(exc)}") from exc

    async def _read_rows(self) -> list[CostRow]:
        text = await self._read_ledger()
        reader = csv.DictReader(io.StringIO(text))
        missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or ())]
        if missing:
            raise FatalSourceError(f"cost ledger lacks columns: {', '.join(missing)}")
        return list(reader)

    async def _read_ledger(self) -> str:
        endpoint = urlparse(self.source.endpoint)
        if endpoint.scheme not in ("", "file"):
            raise FatalSourceError(f"the cost ledger must be a file, not {endpoint.scheme}://")
        path = Path(unquote(endpoint.path))
        try:
            # A ledger is small; reading it in a thread keeps the event loop free.
            return await asyncio.to_thread(path.read_text, encoding="utf-8")
        except FileNotFoundError as exc:
            raise FatalSourceError(f"cost ledger not found: {path}") from exc


def _short(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        return f"{location}: {first['msg']}"
    return str(exc)
