"""The snapshot refresher: recompute the indicator snapshots that changed, at one instant, on a CPU budget.

A refresh takes one repeatable-read snapshot of the store, computes the results of the indicators
whose inputs changed (the stale entries the relay recorded, `processors.read_snapshots.dependents`),
or of every indicator once the snapshots are half as old as ``processor.snapshot_max_age_s``, with the
read model's own code (`processors.read.internal_results` over `load_inputs`, at one fixed `as_of`),
for every period kind and declared grouping, and writes them, their instant and the stale entries it
took into account in one transaction. Its cost grows with the history, as a live read's does: it is a
recomputation, not incremental maintenance, so after a refresh that took X seconds the refresher waits
X * (1 - share) / share (``processor.snapshot_max_busy_share``), and changes coalesce meanwhile.

``python -m processors.snapshots`` runs it alone (``alcance run`` starts it when snapshots are on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from infra.errors import is_retryable
from infra.postgres import create_pool
from infra.retry import Backoff
from infra.roles import PROCESSOR, store_settings_for
from infra.settings import Settings
from infra.signals import on_stop_signals
from processors.indicators import catalogue
from processors.indicators.aggregate import ReadContext
from processors.read import cyclic_gc_paused, internal_results
from processors.read_inputs import load_inputs
from processors.read_snapshots import (
    PERIOD_KINDS,
    dependents,
    encode_result,
    grouping_name,
    groupings,
    settings_key,
)

logger = logging.getLogger(__name__)

# Between two checks for stale entries when nothing was refreshed.
POLL_INTERVAL_S = 1.0
# The longest pause between two failed refreshes while the store is unreachable.
BACKOFF_MAX_S = 30.0


@dataclass(frozen=True)
class RefreshPacing:
    """When the refresher may refresh again, and whether the snapshots are due for a refresh.

    Attributes:
        max_busy_share: Largest share of the time spent refreshing.
        max_age_s: Reads serve snapshots no older than this; every snapshot is renewed at half of it.
        poll_interval_s: Least pause between two checks.
    """

    max_busy_share: float
    max_age_s: float
    poll_interval_s: float = POLL_INTERVAL_S

    def pause_after(self, busy_s: float) -> float:
        """Seconds to wait after a refresh that took `busy_s` (0 when nothing was refreshed)."""
        share = self.max_busy_share
        return max(self.poll_interval_s, busy_s * (1 - share) / share)

    def chosen(
        self,
        *,
        stale: set[str],
        states: dict[str, tuple[float, str]],
        settings_key: str,
    ) -> list[catalogue.Indicator]:
        """The indicators a refresh recomputes.

        Args:
            stale: Stored indicators changed since the last refresh.
            states: Per snapshotted indicator, its age in seconds and the settings it was computed with.
            settings_key: The current settings (`processors.read_snapshots.settings_key`).

        Every indicator when one has no snapshot, one was computed with other settings or one is half as
        old as `max_age_s` (so all of them share one instant again); otherwise those reading a stale one.
        """
        renew = any(
            name not in states or states[name][1] != settings_key or states[name][0] >= self.max_age_s / 2
            for name in (entry.id for entry in catalogue.INDICATORS)
        )
        return list(catalogue.INDICATORS) if renew else dependents(stale)


@dataclass(frozen=True)
class Refreshed:
    """What one refresh did."""

    as_of: datetime
    indicators: tuple[str, ...]
    rows: int
    seconds: float


_STATES = """
SELECT indicator, extract(epoch FROM now() - as_of)::float8 AS age_s, settings FROM indicator_snapshot_state
"""
_WRITE_ROWS = """
INSERT INTO indicator_snapshot (indicator, period_kind, grouping, position, period_start, dimensions, result)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::date[], $6::text[]::jsonb[],
                     $7::text[])
"""
_WRITE_STATES = """
INSERT INTO indicator_snapshot_state (indicator, as_of, settings, refresh_ms)
SELECT name, $2, $3, $4 FROM unnest($1::text[]) AS name
"""
# Locked in key order (the relay upserts in that order too), then deleted only where the mark is the
# one the refresh saw: an indicator changed after the refresh's snapshot keeps its entry.
_TAKE_STALE = """
WITH seen AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS s(indicator, mark)),
     locked AS (SELECT t.indicator FROM indicator_stale AS t JOIN seen USING (indicator, mark)
                 ORDER BY t.indicator FOR UPDATE OF t)
DELETE FROM indicator_stale WHERE indicator IN (SELECT indicator FROM locked)
"""


async def refresh(
    connection: asyncpg.Connection,
    settings: Settings,
    pacing: RefreshPacing,
    *,
    as_of: datetime | None = None,
) -> Refreshed | None:
    """Refresh the snapshots that are due, on `connection` (outside any transaction).

    Returns None when nothing is due, or when another refresher holds the schema's refresh lock (two
    refreshes overlapping could otherwise write an older result after a newer one).
    """
    lock = f"{settings.postgres.db_schema}.indicator_snapshot"
    if not await connection.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock):
        return None
    try:
        return await _refresh_locked(connection, settings, pacing, as_of)
    finally:
        await connection.execute("SELECT pg_advisory_unlock(hashtext($1))", lock)


async def _refresh_locked(
    connection: asyncpg.Connection, settings: Settings, pacing: RefreshPacing, as_of: datetime | None
) -> Refreshed | None:
    began = time.perf_counter()
    key = settings_key(settings)
    margin = Decimal(str(settings.processor.roi_margin_coefficient))
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
    with cyclic_gc_paused():
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            instant = as_of or datetime.now(UTC)
            stale = dict(await connection.fetch("SELECT indicator, mark FROM indicator_stale"))
            states = {row[0]: (row[1], row[2]) for row in await connection.fetch(_STATES)}
            chosen = pacing.chosen(stale=set(stale), states=states, settings_key=key)
            if not chosen:
                return None
            for period in PERIOD_KINDS:
                inputs = await load_inputs(connection, chosen, period, None)
                for by in dict.fromkeys(by for entry in chosen for by in groupings(entry)):
                    entries = [entry for entry in chosen if by in groupings(entry)]
                    ctx = ReadContext(period, by, instant, settings.processor.cohort_grace_days)
                    computed = internal_results(entries, inputs, ctx, margin_coefficient=margin)
                    for name, results in computed.items():
                        for position, result in enumerate(results):
                            for column, value in zip(
                                columns,
                                (
                                    name,
                                    period,
                                    grouping_name(by),
                                    position,
                                    date.fromisoformat(result["period"]["start"]),
                                    encode_result(result["dimensions"]),
                                    encode_result(result),
                                ),
                                strict=True,
                            ):
                                column.append(value)
                    # Let the process's signal handlers run between groupings.
                    await asyncio.sleep(0)
                del inputs
    names = [entry.id for entry in chosen]
    elapsed_ms = round((time.perf_counter() - began) * 1000)
    async with connection.transaction():
        await connection.execute("DELETE FROM indicator_snapshot WHERE indicator = ANY($1::text[])", names)
        await connection.execute(_WRITE_ROWS, *columns)
        await connection.execute(
            "DELETE FROM indicator_snapshot_state WHERE indicator = ANY($1::text[])", names
        )
        await connection.execute(_WRITE_STATES, names, instant, key, elapsed_ms)
        # Every stale entry seen is taken into account: each changed indicator's dependents were refreshed.
        await connection.execute(_TAKE_STALE, list(stale), list(stale.values()))
    seconds = time.perf_counter() - began
    logger.info(
        "refreshed the snapshots of %d indicators (%d results) as of %s in %.0f ms",
        len(names),
        len(columns[0]),
        instant.isoformat(),
        seconds * 1000,
    )
    return Refreshed(instant, tuple(names), len(columns[0]), seconds)


class SnapshotRefresher:
    """Refreshes the snapshots of a schema until stopped, within its share of the time.

    Args:
        settings: Resolved settings.
        pool: A pool on the store's schema.
    """

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        processor = settings.processor
        self.pacing = RefreshPacing(processor.snapshot_max_busy_share, processor.snapshot_max_age_s)
        self.refreshes = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh what is due, pause per `RefreshPacing.pause_after`, until `stop` is set.

        Errors reaching PostgreSQL are logged and retried after a growing pause; the reads meanwhile
        fall back to live computation, since the stale entries stay.
        """
        backoff = Backoff(POLL_INTERVAL_S, BACKOFF_MAX_S)
        failures = 0
        while not stop.is_set():
            pause = self.pacing.poll_interval_s
            try:
                async with self.pool.acquire() as connection:
                    done = await refresh(connection, self.settings, self.pacing)
                failures = 0
                if done is not None:
                    self.refreshes += 1
                    pause = self.pacing.pause_after(done.seconds)
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                pause = backoff.delay(failures)
                failures += 1
                logger.warning(
                    "snapshot refresh failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, pause
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)


async def run_refresher(settings: Settings) -> int:
    """Refresh until SIGTERM or SIGINT. Returns the number of refreshes."""
    pool = await create_pool(store_settings_for(settings.postgres, PROCESSOR))
    stop = asyncio.Event()
    refresher = SnapshotRefresher(settings, pool)
    try:
        with on_stop_signals(stop.set):
            # Announced once a stop signal can be handled: supervisors wait for this line.
            logger.info("snapshot refresher started on schema %s", settings.postgres.db_schema)
            await refresher.run(stop)
    finally:
        await pool.close()
    logger.info("snapshot refresher stopped after %d refreshes", refresher.refreshes)
    return refresher.refreshes


def main() -> None:
    """Entry point of ``python -m processors.snapshots``.

    Settings come from the environment or, with ``--settings-from-stdin``, from the parent over a pipe.
    """
    from infra.child_settings import settings_of_this_process
    from infra.logs import setup_logging

    settings = settings_of_this_process()
    setup_logging(settings.log)
    asyncio.run(run_refresher(settings))


if __name__ == "__main__":
    main()
