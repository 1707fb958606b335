"""Rebuild every indicator part from the stored facts (``alcance recompute``), with a progress line.

The rebuild runs in one transaction: it empties the part tables, re-derives each live fact's parts
with the current indicator functions (retracted events contribute nothing, as in incremental
processing), stores the re-derived parts on the fact so later retractions negate exactly them, and
publishes every cell once, including cells that no longer exist (with no parts). Processors and
readers wait on the table locks meanwhile; processors then continue on top of the rebuilt parts.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import asyncpg

from infra.postgres import create_pool
from infra.settings import Settings
from processors.base import CellKey
from processors.cell_values import apply_noted_changes
from processors.deltas import PartDeltas, parts_json
from processors.indicators.base import Part
from processors.store import apply_deltas, mark_changed
from schemas.events.base import Event
from schemas.registry import EVENT_ADAPTER

logger = logging.getLogger(__name__)

_CHUNK = 5_000
# Everything the batches derive from the facts: emptied and rebuilt together.
_DERIVED_TABLES = (
    "indicator_part, indicator_member, indicator_report, indicator_rollup, indicator_rollup_member,"
    " indicator_member_year, indicator_report_winner, indicator_cell_value, indicator_member_flip,"
    " indicator_report_change"
)

_LIVE_FACTS = """
SELECT event_id, payload::text
FROM fact
WHERE received AND NOT retracted AND retracts IS NULL AND event_id > $1
ORDER BY event_id
LIMIT $2
"""

_STORE_PARTS = """
UPDATE fact AS f SET parts = u.parts
FROM unnest($1::uuid[], $2::text[]) AS u(event_id, parts)
WHERE f.event_id = u.event_id
"""


@dataclass
class RecomputeSummary:
    """What a rebuild did."""

    facts: int = 0
    rows: int = 0
    cells: int = 0
    seconds: float = 0.0


class Progress:
    """A one-line progress display with rate and ETA, redrawn in place on a terminal.

    Args:
        total: Units expected.
        label: What is counted.
        stream: Where to draw (stderr by default); off a terminal a line is printed every few seconds.
    """

    def __init__(self, total: int, label: str = "facts", stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._tty = self.stream.isatty()

    def advance(self, count: int) -> None:
        """Count `count` more units and redraw when due."""
        self.done += count
        now = time.monotonic()
        if now - self._last_draw >= (0.2 if self._tty else 5.0) or self.done >= self.total:
            self._last_draw = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The current progress line."""
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        rate = self.done / elapsed
        share = self.done / self.total if self.total else 1.0
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_text = f"{eta:.0f} s" if eta != float("inf") else "?"
        width = 30
        filled = int(share * width)
        bar = "#" * filled + "-" * (width - filled)
        return (
            f"recompute [{bar}] {self.done}/{self.total} {self.label} ({share:.0%})"
            f" {rate:,.0f} {self.label}/s ETA {eta_text}"
        )

    def finish(self) -> None:
        """Draw the final line and end it."""
        self._draw(time.monotonic())
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        text = self.line(now)
        self.stream.write(f"\r{text}" if self._tty else f"{text}\n")
        self.stream.flush()


def _decode_payload(payload: str) -> Event:
    event: Event = EVENT_ADAPTER.validate_json(payload, strict=True)
    return event


# Every cell the stored month rows make up: each month with its quarter and year.
_CELLS = """
SELECT t.indicator, k.period_kind, k.period_start, t.dims
  FROM (SELECT indicator, period_start, dims FROM indicator_part
        UNION SELECT indicator, period_start, dims FROM indicator_member
        UNION SELECT indicator, period_start, dims FROM indicator_report) AS t
 CROSS JOIN LATERAL alcance_periods(t.period_start) AS k
"""


async def _stored_cells(connection: asyncpg.Connection) -> set[CellKey]:
    return {(r[0], r[1], r[2], r[3]) for r in await connection.fetch(_CELLS)}


async def rebuild(
    connection: asyncpg.Connection,
    *,
    contribute: Callable[[Event], list[Part]] | None = None,
    rollups: bool = False,
    cell_values: bool = True,
    progress: bool = True,
    chunk: int = _CHUNK,
    stream: TextIO | None = None,
) -> RecomputeSummary:
    """Rebuild the parts from the facts inside the caller's transaction.

    Raises:
        pydantic.ValidationError: when a stored fact no longer validates against its event model.
    """
    if contribute is None:
        from processors.indicators import contributions

        contribute = contributions
    started = time.monotonic()
    summary = RecomputeSummary()
    # Processors wait until the rebuild commits (and readers too, from the TRUNCATE on).
    await connection.execute(f"LOCK TABLE fact, {_DERIVED_TABLES} IN EXCLUSIVE MODE")
    old_cells = await _stored_cells(connection)
    await connection.execute(f"TRUNCATE {_DERIVED_TABLES}")
    # With rollups, rebuilt from every fact below: from this commit on, reads may take them.
    await connection.execute("UPDATE indicator_rollup_state SET complete = $1", rollups)
    await connection.execute("UPDATE indicator_cell_value_state SET complete = $1", cell_values)
    total = await connection.fetchval(
        "SELECT count(*) FROM fact WHERE received AND NOT retracted AND retracts IS NULL"
    )
    display = Progress(total, stream=stream) if progress else None
    last = "00000000-0000-0000-0000-000000000000"
    while True:
        rows = await connection.fetch(_LIVE_FACTS, last, chunk)
        if not rows:
            break
        deltas = PartDeltas()
        stored: list[tuple[object, str]] = []
        for event_id, payload in rows:
            parts = contribute(_decode_payload(payload))
            for part in parts:
                deltas.add(part, event_id)
            stored.append((event_id, parts_json(parts)))
        written, _ = await apply_deltas(
            connection, deltas, publish=False, rollups=rollups, cell_values=cell_values
        )
        if cell_values:
            await apply_noted_changes(connection)
        summary.rows += written
        await connection.execute(_STORE_PARTS, [s[0] for s in stored], [s[1] for s in stored])
        summary.facts += len(rows)
        last = rows[-1][0]
        if display is not None:
            display.advance(len(rows))
    if display is not None:
        display.finish()
    # Rebuilt from the facts: they hold what they were filled with, even if a crash had emptied them.
    await connection.execute("INSERT INTO indicator_cell_value_kept DEFAULT VALUES ON CONFLICT DO NOTHING")
    new_cells = await _stored_cells(connection)
    # Every stored cell belongs to a month cell, and the relay publishes a month with its quarter
    # and year: marking the months covers every cell.
    months = {cell for cell in old_cells | new_cells if cell[1] == "month"}
    if months:
        await mark_changed(connection, months)
    summary.cells = len(new_cells)
    summary.seconds = time.monotonic() - started
    return summary


async def recompute(settings: Settings, *, progress: bool = True) -> RecomputeSummary:
    """Rebuild every indicator part of the configured store from its facts (one transaction)."""
    pool = await create_pool(settings.postgres)
    try:
        async with pool.acquire() as connection, connection.transaction():
            summary = await rebuild(
                connection,
                progress=progress,
                rollups=settings.processor.rollups,
                cell_values=settings.processor.cell_values,
            )
    finally:
        await pool.close()
    logger.info(
        "recomputed %d cells (%d stored rows) from %d facts in %.1f s",
        summary.cells,
        summary.rows,
        summary.facts,
        summary.seconds,
    )
    return summary
