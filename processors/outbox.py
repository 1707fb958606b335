"""The outbox relay: publish indicator cell changes from PostgreSQL to the indicators topic, in order.

Delivery guarantee: at-least-once; the highest version of a key carries the store's newest state.
Each batch transaction of the processors marks the month cells it changed in the outbox (a month
stands for itself, its quarter and its year); one relay at a time (an advisory lock per schema) takes
the oldest marks, draws a fresh version per cell from a sequence, reads the cells' current parts (the
values kept per cell, `processors.cell_values`), produces them, waits for the broker's acks and only
then deletes the marks. A crash between ack and delete publishes the cells again under higher
versions. Readers keep the highest version per key; nothing relies on compaction.

The relay runs inside every processor by default; ``python -m processors.outbox`` runs it alone
(with ``processor.relay`` off in the processors), so its rounds never share an event loop with batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from infra import telemetry
from infra.collector import settle_collector
from infra.errors import is_retryable
from infra.kafka import make_producer
from infra.kafka_acls import ensure_acls
from infra.postgres import create_pool
from infra.retry import Backoff
from infra.roles import PROCESSOR, RELAY_PRINCIPAL, kafka_settings_for, store_settings_for
from infra.settings import Settings
from infra.signals import on_stop_signals
from processors.base import CellKey, columns_of
from processors.cell_values import apply_noted_changes, refill_lost_values
from processors.cells import current_parts, published_cells
from processors.indicator_records import cell_identity, indicator_record
from schemas.cloudevents import KafkaRecord
from schemas.topics import TopicCatalogue

T = TypeVar("T")
logger = logging.getLogger(__name__)

# The longest pause between two failed relay rounds while the broker or the store is unreachable.
RELAY_BACKOFF_MAX_S = 5.0
# Failed rounds in a row after which a stopping relay gives up draining: the marks stay in the outbox
# (nothing is lost) and the next relay to start publishes them, while a stop must not wait on an outage.
RELAY_STOP_ATTEMPTS = 3

_FETCH = """
SELECT id, indicator, period_kind, period_start, dims
FROM indicator_outbox
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED
"""

# The later marks of the cells a round publishes (the oldest marks' cells), at most $6: committed before
# the round reads the cells' parts, their changes are in the values it publishes, so the round deletes
# them too. A backlog then drains in a round per cell rather than a round per mark.
_FETCH_SAME_CELLS = """
SELECT o.id
FROM indicator_outbox AS o
JOIN unnest($1::text[], $2::text[], $3::date[], $4::text[]) AS c(indicator, period_kind, period_start, dims)
  USING (indicator, period_kind, period_start, dims)
WHERE o.id > $5
LIMIT $6
FOR UPDATE OF o SKIP LOCKED
"""
# Later marks a round takes at most, per mark it took by age.
_SAME_CELLS_PER_MARK = 10

# Cells built and sent between two yields to the event loop.
_YIELD_EVERY = 200

# The stored indicators a round relayed, for the snapshot refresher (`processors.snapshots`); in the
# round's transaction, so an indicator leaves the outbox and enters the stale table at once.
_STALE = """
INSERT INTO indicator_stale (indicator) SELECT unnest($1::text[])
    ON CONFLICT (indicator) DO UPDATE SET mark = nextval('indicator_stale_seq')
"""

_VERSIONS = "SELECT nextval('indicator_version_seq') FROM generate_series(1, $1)"


class OutboxRelay:
    """Moves outbox rows to the indicators topic; one relay at a time per schema does the work.

    Args:
        settings: Resolved settings.
        pool: A pool on the store's schema.
        producer: A started producer to share; the relay makes (and stops) its own when omitted.
    """

    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, *, producer: AIOKafkaProducer | None = None
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.topic = TopicCatalogue.from_settings(settings).indicators.name
        self.published = 0
        self.rejected = 0
        self._producer = producer
        # Advisory locks are per database: name the lock after the schema so tenants do not contend.
        self._lock_name = f"{settings.postgres.db_schema}.indicator_outbox"
        self._margin = Decimal(str(settings.processor.roi_margin_coefficient))
        # Time the current round spent waiting for the broker (see `run`).
        self._broker_wait_s = 0.0
        # Outbox rows a round takes: quartered after a round that timed out, doubled back after one
        # that did not (see `run`), so a backlog too large to read in one statement still drains.
        self.round_limit = settings.processor.outbox_batch_size

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set, then relay round after round until nothing is left, and return.

        Errors reaching the broker or PostgreSQL (those the processors retry too, timeouts included)
        are logged and retried after the next pause, longer with each failure in a row (the shared
        backoff, up to `RELAY_BACKOFF_MAX_S`): a relay that ended would leave the outbox undrained.
        Once stopping, a failed round is retried too: after a timeout with a smaller round, otherwise up
        to `RELAY_STOP_ATTEMPTS` times in a row.
        """
        own = self._producer is None
        if self._producer is None:
            self._producer = make_producer(kafka_settings_for(self.settings.kafka, RELAY_PRINCIPAL))
            await self._producer.start()
        backoff = Backoff(self.settings.processor.outbox_poll_interval_ms / 1000, RELAY_BACKOFF_MAX_S)
        failures = 0
        # Failed rounds in a row that a smaller round cannot answer: what ends a stopping relay's drain.
        stuck = 0
        try:
            while True:
                stopping = stop.is_set()
                # A round's busy time is its wall time less the time spent waiting for the broker:
                # PostgreSQL's work for the round counts (it shares the cores with the batches), while
                # a broker outage must not buy a pause several times as long as the outage.
                started = time.monotonic()
                self._broker_wait_s = 0.0
                retry_in_s = 0.0
                try:
                    relayed = await self.publish_pending()
                    failures = stuck = 0
                    self._grow_round_limit(time.monotonic() - started)
                except Exception as exc:
                    if not is_retryable(exc):
                        raise
                    if isinstance(exc, TimeoutError) and self.round_limit > 1:
                        self.round_limit = max(1, self.round_limit // 4)
                    else:
                        stuck += 1
                    retry_in_s = backoff.delay(failures)
                    failures += 1
                    logger.warning(
                        "outbox relay round failed (%s: %s); retrying in %.2fs, %d rows a round",
                        type(exc).__name__,
                        exc,
                        retry_in_s,
                        self.round_limit,
                    )
                    relayed = 0
                if stopping:
                    if stuck >= RELAY_STOP_ATTEMPTS:
                        logger.warning("the outbox relay stops with marks left for the next relay")
                        return
                    if failures == 0 and relayed == 0:
                        return
                    await asyncio.sleep(retry_in_s)
                else:
                    with contextlib.suppress(TimeoutError):
                        busy_s = time.monotonic() - started - self._broker_wait_s
                        await asyncio.wait_for(stop.wait(), max(retry_in_s, self.pause_after(busy_s)))
        finally:
            if own:
                await self._producer.stop()
                self._producer = None

    def _grow_round_limit(self, round_s: float) -> None:
        """Double the rows a round takes, up to the setting, after a round well within the timeout."""
        if round_s < self.settings.postgres.command_timeout_s / 4:
            self.round_limit = min(self.round_limit * 2, self.settings.processor.outbox_batch_size)

    async def _waiting_for_broker(self, awaitable: Awaitable[T]) -> T:
        """`await awaitable`, adding the time it took to the round's wait for the broker."""
        began = time.monotonic()
        try:
            return await awaitable
        finally:
            self._broker_wait_s += time.monotonic() - began

    def pause_after(self, round_s: float) -> float:
        """Seconds to wait after a round that was busy (not waiting for the broker) for `round_s`.

        At least the poll interval; after a long round, long enough that rounds fill at most
        ``relay_max_busy_share`` of the time. Under load the marks pile up meanwhile and coalesce
        (a cell changed many times is published once), so the relay never crowds out the batches;
        the indicators topic then trails the store by a round and a pause, and catches up.
        """
        settings = self.settings.processor
        share = settings.relay_max_busy_share
        return max(settings.outbox_poll_interval_ms / 1000, round_s * (1 - share) / share)

    async def publish_pending(self) -> int:
        """Relay one round of the oldest outbox rows.

        Returns:
            The number of outbox rows relayed (0 when none are pending or another relay holds the lock).
        """
        if self._producer is None:
            raise RuntimeError("the relay has no producer; call run() or pass one")
        limit = self.round_limit
        started = time.perf_counter()
        if await refill_lost_values(self.pool):
            logger.warning(
                "the values kept per cell were lost (their tables are unlogged: a crash empties them);"
                " filled again from the month rows in %.0f ms",
                (time.perf_counter() - started) * 1000,
            )
        async with self.pool.acquire() as connection, connection.transaction():
            if not await connection.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext($1))", self._lock_name
            ):
                return 0
            rows = await connection.fetch(_FETCH, limit)
            if not rows:
                return 0
            marks = await self._same_cells(connection, rows, limit * _SAME_CELLS_PER_MARK)
            cells: list[CellKey] = list(
                dict.fromkeys(
                    cell for row in rows for cell in published_cells((row[1], row[2], row[3], row[4]))
                )
            )
            # Versions are drawn before the parts are read: a later round draws higher versions and
            # reads a newer state, so the highest version of a key always carries its newest state.
            versions = [record[0] for record in await connection.fetch(_VERSIONS, len(cells))]
            values: dict[CellKey, dict[str, Decimal]] = {cell: {} for cell in cells}
            reading = time.perf_counter()
            # The changes the batches noted, applied after the marks were taken: the values read
            # then include at least every batch whose marks this round takes.
            await apply_noted_changes(connection)
            stored = await current_parts(connection, cells)
            for (indicator, kind, start, dims, part), value in stored.items():
                values[(indicator, kind, start, dims)][part] = value
            read_ms = (time.perf_counter() - reading) * 1000
            as_of = datetime.now(UTC)
            with telemetry.tracer().start_as_current_span(
                f"send {self.topic}",
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": self.topic,
                    "messaging.batch.message_count": len(cells),
                },
            ):
                # One trace context for the round: every record of it is sent under this span.
                trace_headers = telemetry.inject_headers([])
                deliveries = []
                for index, (cell, version) in enumerate(zip(cells, versions, strict=True)):
                    if index % _YIELD_EVERY == _YIELD_EVERY - 1:
                        # A round can hold thousands of cells: let the processor's batches run too.
                        await asyncio.sleep(0)
                    record = self._record(cell, values[cell], version, as_of)
                    if record is None:
                        continue
                    deliveries.append(
                        await self._waiting_for_broker(
                            self._producer.send(
                                self.topic,
                                key=record.key,
                                value=record.value,
                                headers=[*record.headers, *trace_headers],
                            )
                        )
                    )
                await self._waiting_for_broker(asyncio.gather(*deliveries))
            if self.settings.processor.snapshots:
                # The snapshots of these indicators (and of those reading them) are stale from now on.
                await connection.execute(_STALE, sorted({row[1] for row in rows}))
            await connection.execute("DELETE FROM indicator_outbox WHERE id = ANY($1::bigint[])", marks)
        self.published += len(deliveries)
        logger.info(
            "relayed %d outbox marks as %d records in %.0f ms (%.0f ms keeping and reading the cells)",
            len(marks),
            len(deliveries),
            (time.perf_counter() - started) * 1000,
            read_ms,
        )
        return len(marks)

    @staticmethod
    async def _same_cells(connection: asyncpg.Connection, rows: list[asyncpg.Record], most: int) -> list[int]:
        """The ids of the round's marks (`rows`, the oldest) and of up to `most` later ones of their cells."""
        taken = [row[0] for row in rows]
        marked = list(dict.fromkeys((row[1], row[2], row[3], row[4]) for row in rows))
        later = await connection.fetch(_FETCH_SAME_CELLS, *columns_of(marked, 4), max(taken), most)
        return [*taken, *(record[0] for record in later)]

    def _record(
        self, cell: CellKey, parts: dict[str, Decimal], version: int, as_of: datetime
    ) -> KafkaRecord | None:
        indicator, period_kind, period_start, dims = cell
        try:
            dimensions, key = cell_identity(cell)
            return indicator_record(
                indicator=indicator,
                period_kind=period_kind,
                period_start=period_start,
                dimensions=dimensions,
                parts=parts,
                version=version,
                as_of=as_of,
                margin_coefficient=self._margin,
                key=key,
            )
        except ValueError as exc:
            # A cell outside the published contract (e.g. a dimension value with a key separator):
            # it stays readable in the store; say so loudly rather than stall the relay.
            self.rejected += 1
            logger.error(
                "indicator cell %s %s %s %s v%d not publishable: %s",
                indicator,
                period_kind,
                period_start,
                dims,
                version,
                exc.errors(include_url=False, include_input=False)[:1]
                if isinstance(exc, ValidationError)
                else exc,
            )
            return None


async def run_relay(settings: Settings) -> int:
    """Relay until SIGTERM or SIGINT, then publish what is pending and stop.

    Returns:
        The number of records published.
    """
    await ensure_acls(settings.kafka, TopicCatalogue.from_settings(settings))
    pool = await create_pool(store_settings_for(settings.postgres, PROCESSOR))
    stop = asyncio.Event()
    relay = OutboxRelay(settings, pool)
    try:
        with on_stop_signals(stop.set):
            # Announced once a stop signal can be handled: supervisors wait for this line.
            logger.info("relay started on schema %s", settings.postgres.db_schema)
            await relay.run(stop)
    finally:
        await pool.close()
    logger.info("relay stopped: %d records published, %d cells rejected", relay.published, relay.rejected)
    return relay.published


def main() -> None:
    """Entry point of ``python -m processors.outbox``: the relay alone, settings from the environment."""
    from infra.logs import setup_logging
    from infra.settings import load_settings

    settings = load_settings()
    setup_logging(settings.log)
    telemetry.setup_telemetry(settings.telemetry)
    # Each round keeps its cells' records alive until the broker acks them, as a batch does in a
    # processor: the same collector schedule spares their repeated traversal.
    settle_collector()
    asyncio.run(run_relay(settings))


if __name__ == "__main__":
    main()
