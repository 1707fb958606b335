"""The evaluation store: facts, indicator parts and consumer offsets, written one batch per transaction.

Everything a batch changes (new facts, part deltas, outbox rows, the consumer's next offsets) commits
together or not at all, and the offsets row is guarded by an epoch per partition, so a consumer that
lost its partitions cannot commit. Writes are set-based (one statement per table via ``unnest``) and
idempotent: a duplicate event id conflicts on the facts' key and contributes nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from datetime import date

import asyncpg

from infra.errors import is_transaction_conflict
from infra.retry import TRANSACTION_ATTEMPTS, TRANSACTION_BACKOFF, retrying
from processors.base import (
    BatchOutcome,
    CellKey,
    FactIn,
    PartitionsLostError,
    TopicPartitionKey,
    columns_of,
)
from processors.cell_values import noting_member_flips, noting_reports
from processors.deltas import PartDeltas
from processors.facts import record_facts
from processors.rollups import apply_rollups

logger = logging.getLogger(__name__)


# The month rows' statements; with the cell values they also note what they change (below).
_UPSERT_MEMBERS = """
INSERT INTO indicator_member AS m (indicator, period_kind, period_start, dims, part, member, refcount)
SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[], $7::int[])
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (indicator, period_kind, period_start, dims, part, member)
DO UPDATE SET refcount = m.refcount + EXCLUDED.refcount
"""
_INSERT_REPORTS = """
INSERT INTO indicator_report AS r (indicator, period_kind, period_start, dims, part, member, event_id,
                                   order_key, amount)
SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[], $7::uuid[],
                     $8::text[], $9::numeric[])
ORDER BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT DO NOTHING
"""

_DELETE_DEAD_MEMBERS = """
DELETE FROM indicator_member AS m
USING unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[])
    AS u(indicator, period_kind, period_start, dims, part, member)
WHERE m.indicator = u.indicator AND m.period_kind = u.period_kind AND m.period_start = u.period_start
  AND m.dims = u.dims AND m.part = u.part AND m.member = u.member AND m.refcount <= 0
"""

_DELETE_REPORTS = """
DELETE FROM indicator_report AS r
USING unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[], $7::uuid[])
    AS u(indicator, period_kind, period_start, dims, part, member, event_id)
WHERE r.indicator = u.indicator AND r.period_kind = u.period_kind AND r.period_start = u.period_start
  AND r.dims = u.dims AND r.part = u.part AND r.member = u.member AND r.event_id = u.event_id
"""

# With the cell values, the same statements also note what they changed, for the relay to apply.
_NOTE_MEMBERS = noting_member_flips(_UPSERT_MEMBERS)
_NOTE_STORED_REPORTS = noting_reports(_INSERT_REPORTS, retracted=False)
_NOTE_DELETED_REPORTS = noting_reports(_DELETE_REPORTS, retracted=True)

_UPSERT_SUMS = """
INSERT INTO indicator_part AS p (indicator, period_kind, period_start, dims, part, kind, value, contributions)
SELECT u.indicator, u.period_kind, u.period_start, u.dims, u.part, 'sum', u.value, u.contributions
FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::numeric[], $7::bigint[])
    AS u(indicator, period_kind, period_start, dims, part, value, contributions)
ORDER BY 1, 2, 3, 4, 5
ON CONFLICT (indicator, period_kind, period_start, dims, part)
DO UPDATE SET value = p.value + EXCLUDED.value, contributions = p.contributions + EXCLUDED.contributions
"""

_DELETE_DEAD_SUMS = """
DELETE FROM indicator_part AS p
USING unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[])
    AS u(indicator, period_kind, period_start, dims, part)
WHERE p.indicator = u.indicator AND p.period_kind = u.period_kind AND p.period_start = u.period_start
  AND p.dims = u.dims AND p.part = u.part AND p.contributions <= 0
"""

# Changed cells are only marked here; the relay reads their parts when it publishes them, so a
# batch takes no lock per cell and concurrent batches on one cell cannot publish a torn state.
_MARK_CHANGED = """
INSERT INTO indicator_outbox (indicator, period_kind, period_start, dims)
SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[])
"""


async def apply_deltas(
    connection: asyncpg.Connection,
    deltas: PartDeltas,
    *,
    publish: bool = True,
    rollups: bool = False,
    cell_values: bool = True,
) -> tuple[int, int]:
    """Apply aggregated part deltas and mark every changed cell in the outbox.

    Must run inside the caller's transaction. The statements insert in key order (``ORDER BY``), so
    concurrent batches take their row locks in the same order and cannot deadlock on each other.

    Args:
        connection: A connection inside a transaction.
        deltas: What to apply.
        publish: Mark the changed cells in the outbox (a rebuild marks every cell once at its end).
        rollups: Keep the rollups too; without, they are marked incomplete (reads leave them).
        cell_values: Note what the cell values depend on, for the relay to apply
            (`processors.cell_values`); without, they are marked incomplete (the relay merges its
            cells from the month rows until a recompute).

    Returns:
        (stored rows written, month cells changed; each stands for its quarter and year too).
    """
    months: set[tuple[str, date, str]] = set()
    written = 0
    members = deltas.distinct
    if 0 in members.values():
        members = {key: delta for key, delta in members.items() if delta}
    if members:
        columns = columns_of(members, 6)
        upsert = _NOTE_MEMBERS if cell_values else _UPSERT_MEMBERS
        await connection.execute(upsert, *columns, list(members.values()))
        negative = [key for key, delta in members.items() if delta < 0]
        if negative:
            await connection.execute(_DELETE_DEAD_MEMBERS, *columns_of(negative, 6))
        months.update(zip(columns[0], columns[2], columns[3], strict=True))
        written += len(members)
    adds = deltas.latest_add
    if adds:
        reports = list(adds.values())
        await connection.execute(
            _NOTE_STORED_REPORTS if cell_values else _INSERT_REPORTS,
            *columns_of(adds, 7),
            [key for key, _ in reports],
            [amount for _, amount in reports],
        )
        months.update((indicator, start, dims) for indicator, _, start, dims, *_ in adds)
        written += len(adds)
    if deltas.latest_remove:
        columns = columns_of(sorted(deltas.latest_remove), 7)
        await connection.execute(_NOTE_DELETED_REPORTS if cell_values else _DELETE_REPORTS, *columns)
        months.update(zip(columns[0], columns[2], columns[3], strict=True))
        written += len(deltas.latest_remove)
    sum_amount, sum_count = deltas.sum_amount, deltas.sum_count
    sums = [key for key, amount in sum_amount.items() if amount or sum_count[key]]
    sum_columns = columns_of(sums, 5)
    months.update(zip(sum_columns[0], sum_columns[2], sum_columns[3], strict=True))
    if publish and months:
        await mark_changed(connection, [(name, "month", start, dims) for name, start, dims in months])
    if rollups:
        written += await apply_rollups(connection, deltas)
    else:
        await connection.execute(_ROLLUPS_INCOMPLETE)
    if not cell_values:
        await connection.execute(_CELL_VALUES_INCOMPLETE)
    # Sums are the hottest rows (few cells, many events): written last, so that a concurrent batch
    # waits on their row locks only until this transaction commits.
    if sums:
        counts = [sum_count[key] for key in sums]
        await connection.execute(_UPSERT_SUMS, *sum_columns, [sum_amount[key] for key in sums], counts)
        if any(count < 0 for count in counts):
            await connection.execute(_DELETE_DEAD_SUMS, *sum_columns)
        written += len(sums)
    return written, len(months)


# Batches that leave the rollups or the cell values out make them incomplete until a recompute (no row
# lock once false).
_ROLLUPS_INCOMPLETE = "UPDATE indicator_rollup_state SET complete = false WHERE complete"
_CELL_VALUES_INCOMPLETE = "UPDATE indicator_cell_value_state SET complete = false WHERE complete"


async def mark_changed(connection: asyncpg.Connection, cells: Iterable[CellKey]) -> None:
    """Queue cells for publication by the relay (in the caller's transaction).

    A month cell stands for itself and its quarter and year (see `published_cells`), so a batch marks
    only the months it changed.
    """
    await connection.execute(_MARK_CHANGED, *columns_of(sorted(set(cells)), 4))


_COMMIT_OFFSETS = """
UPDATE kafka_offset AS k SET next_offset = u.next_offset, updated_at = now()
FROM unnest($3::text[], $4::int[], $5::bigint[], $6::bigint[]) AS u(topic, partition, next_offset, epoch)
WHERE k.log_identity = $1 AND k.consumer_group = $2 AND k.topic = u.topic AND k.partition = u.partition
  AND k.epoch = u.epoch
RETURNING k.topic, k.partition
"""

_CLAIM_PARTITIONS = """
INSERT INTO kafka_offset AS k (log_identity, consumer_group, topic, partition, next_offset, epoch)
SELECT $1, $2, u.topic, u.partition, 0, 1
FROM unnest($3::text[], $4::int[]) AS u(topic, partition)
ORDER BY u.topic, u.partition
ON CONFLICT (log_identity, consumer_group, topic, partition)
DO UPDATE SET epoch = k.epoch + 1, updated_at = now()
RETURNING k.topic, k.partition, k.next_offset, k.epoch
"""


class Store:
    """The processors' view of the evaluation store, over a connection pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        log_identity: str,
        consumer_group: str,
        rollups: bool = False,
        cell_values: bool = True,
    ) -> None:
        self.pool = pool
        self.rollups = rollups
        self.cell_values = cell_values
        self.log_identity = log_identity
        self.consumer_group = consumer_group

    async def claim_partitions(
        self, partitions: Iterable[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, tuple[int, int]]:
        """Take ownership of partitions: bump their epoch, creating rows at offset 0 where missing.

        Waits for the row locks of a previous owner's in-flight batch, so the offsets returned
        include everything it committed; that owner can no longer commit afterwards.

        Returns:
            Per (topic, partition): (next offset to process, our epoch).
        """
        rows = sorted(set(partitions))
        if not rows:
            return {}

        async def claim() -> list[asyncpg.Record]:
            async with self.pool.acquire() as connection:
                records: list[asyncpg.Record] = await connection.fetch(
                    _CLAIM_PARTITIONS, self.log_identity, self.consumer_group, *columns_of(rows, 2)
                )
            return records

        # Two claimants can deadlock on the offsets rows; PostgreSQL rolls one back to run again.
        records = await retrying(
            claim,
            what="claiming partitions",
            backoff=TRANSACTION_BACKOFF,
            retry_on=is_transaction_conflict,
            max_attempts=TRANSACTION_ATTEMPTS,
            log_level=logging.INFO,
        )
        return {(r[0], r[1]): (r[2], r[3]) for r in records}

    async def stored_offsets(self) -> dict[TopicPartitionKey, int]:
        """The next offsets stored for this consumer group and log identity."""
        async with self.pool.acquire() as connection:
            records = await connection.fetch(
                "SELECT topic, partition, next_offset FROM kafka_offset"
                " WHERE log_identity = $1 AND consumer_group = $2",
                self.log_identity,
                self.consumer_group,
            )
        return {(r[0], r[1]): r[2] for r in records}

    async def commit_batch(
        self,
        positions: dict[TopicPartitionKey, tuple[int, int]],
        facts: Sequence[FactIn],
        expected: PartDeltas | None = None,
    ) -> BatchOutcome:
        """Write a batch's facts, part deltas, outbox rows and next offsets in one transaction.

        Args:
            positions: Per partition in the batch: (next offset after the batch, our epoch).
            facts: The valid events of the batch, in any order.
            expected: `expected_deltas(facts)`, when computed ahead (see `record_facts`).

        Returns:
            What the batch did; ``lost`` names the partitions whose records were dropped because
            another consumer owns them now.
        """
        lost: set[TopicPartitionKey] = set()
        while True:
            try:
                outcome = await retrying(
                    functools.partial(self._commit_once, positions, facts, expected),
                    what="batch transaction",
                    backoff=TRANSACTION_BACKOFF,
                    retry_on=is_transaction_conflict,
                    max_attempts=TRANSACTION_ATTEMPTS,
                    log_level=logging.INFO,
                )
                outcome.lost = lost
                return outcome
            except PartitionsLostError as exc:
                lost |= exc.lost
                positions = {tp: p for tp, p in positions.items() if tp not in exc.lost}
                facts = [f for f in facts if (f.topic, f.partition) not in exc.lost]
                expected = None
                if not positions:
                    return BatchOutcome(lost=lost)

    async def _commit_once(
        self,
        positions: dict[TopicPartitionKey, tuple[int, int]],
        facts: Sequence[FactIn],
        expected: PartDeltas | None,
    ) -> BatchOutcome:
        async with self.pool.acquire() as connection, connection.transaction():
            return await self._commit_in(connection, positions, facts, expected)

    async def _commit_in(
        self,
        connection: asyncpg.Connection,
        positions: dict[TopicPartitionKey, tuple[int, int]],
        facts: Sequence[FactIn],
        expected: PartDeltas | None,
    ) -> BatchOutcome:
        rows = sorted(
            (topic, partition, nxt, epoch) for (topic, partition), (nxt, epoch) in positions.items()
        )
        if rows:
            kept = await connection.fetch(
                _COMMIT_OFFSETS, self.log_identity, self.consumer_group, *columns_of(rows, 4)
            )
            missing = set(positions) - {(r[0], r[1]) for r in kept}
            if missing:
                raise PartitionsLostError(missing)
        deltas, outcome = await record_facts(connection, facts, expected)
        outcome.rows_written, outcome.months_marked = await apply_deltas(
            connection, deltas, rollups=self.rollups, cell_values=self.cell_values
        )
        return outcome
