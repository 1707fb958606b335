"""The evaluation store: facts, indicator parts and consumer offsets, written one batch per transaction.

Everything a batch changes (new facts, part deltas, outbox rows, the consumer's next offsets) commits
together or not at all, and the offsets row is guarded by an epoch per partition, so a consumer that
lost its partitions cannot commit. Writes are set-based (one statement per table via ``unnest``) and
idempotent: a duplicate event id conflicts on the facts' key and contributes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from processors.base import (
    BatchOutcome,
    CellKey,
    FactIn,
    PartitionsLostError,
    PartKey,
    dims_key,
    part_from_json,
    part_to_json,
    periods,
)
from processors.indicators.base import Part, PartKind

logger = logging.getLogger(__name__)

TopicPartitionKey = tuple[str, int]
MemberKey = tuple[PartKey, str]
ReportKey = tuple[PartKey, str, UUID]

# Errors after which the whole batch transaction can simply run again: PostgreSQL chose us as the
# victim of a lock cycle or a serialisation conflict. The batch is idempotent, so a retry is exact.
RETRYABLE_SQLSTATES = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
# Errors of an unreachable or restarting server: retry with backoff. If a COMMIT was lost in flight
# the retry finds the facts already stored (duplicates contribute nothing) and the epoch still ours.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.CannotConnectNowError,
)


@dataclass
class PartDeltas:
    """The net effect of a set of contributions and negations, aggregated in memory before any SQL.

    Attributes:
        kinds: The kind of every part touched.
        sums: Per part of kind "sum": [value delta, contributions delta].
        distinct: Per (part, member) of kind "distinct": reference-count delta.
        latest_add: Per (part, member, event id) of kind "latest": the report to add (order key, amount).
        latest_remove: Reports of kind "latest" to remove (their event was retracted).
    """

    kinds: dict[PartKey, PartKind] = field(default_factory=dict)
    sums: dict[PartKey, list[Any]] = field(default_factory=dict)
    distinct: dict[MemberKey, int] = field(default_factory=lambda: defaultdict(int))
    latest_add: dict[ReportKey, tuple[str, Decimal]] = field(default_factory=dict)
    latest_remove: set[ReportKey] = field(default_factory=set)

    def add(self, part: Part, event_id: UUID, sign: int = 1) -> None:
        """Account for one part of one event, expanded into its month, quarter and year cells.

        Args:
            part: The contribution.
            event_id: The event that contributed it (identifies "latest" reports).
            sign: +1 to apply the contribution, -1 to negate it (a retraction).
        """
        dims = dims_key(part.dimensions)
        kind = part.kind
        for period_kind, period_start in periods(part.occurred_at):
            key: PartKey = (part.indicator, period_kind, period_start, dims, part.part)
            self.kinds[key] = kind
            if kind == "sum":
                entry = self.sums.get(key)
                if entry is None:
                    self.sums[key] = [part.amount * sign, sign]
                else:
                    entry[0] += part.amount * sign
                    entry[1] += sign
            elif kind == "distinct":
                self.distinct[(key, part.member or "")] += sign
            else:
                report: ReportKey = (key, part.member or "", event_id)
                if sign > 0:
                    self.latest_add[report] = (part.order_key, part.amount)
                elif report in self.latest_add:
                    del self.latest_add[report]
                else:
                    self.latest_remove.add(report)

    def is_empty(self) -> bool:
        """Whether nothing is left to apply."""
        return not (
            any(amount or count for amount, count in self.sums.values())
            or any(self.distinct.values())
            or self.latest_add
            or self.latest_remove
        )


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Transpose rows into the per-column lists that ``unnest`` takes."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


_LOCK_CELLS = """
INSERT INTO indicator_cell AS c (indicator, period_kind, period_start, dims)
SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[]) ORDER BY 1, 2, 3, 4
ON CONFLICT (indicator, period_kind, period_start, dims) DO UPDATE SET version = c.version
"""

_UPSERT_MEMBERS = """
INSERT INTO indicator_member AS m (indicator, period_kind, period_start, dims, part, member, refcount)
SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[], $7::int[])
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (indicator, period_kind, period_start, dims, part, member)
DO UPDATE SET refcount = m.refcount + EXCLUDED.refcount
RETURNING m.indicator, m.period_kind, m.period_start, m.dims, m.part, m.member, m.refcount
"""

_DELETE_DEAD_MEMBERS = """
DELETE FROM indicator_member AS m
USING unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[])
    AS u(indicator, period_kind, period_start, dims, part, member)
WHERE m.indicator = u.indicator AND m.period_kind = u.period_kind AND m.period_start = u.period_start
  AND m.dims = u.dims AND m.part = u.part AND m.member = u.member AND m.refcount <= 0
"""

_CURRENT_REPORTS = """
SELECT DISTINCT ON (r.indicator, r.period_kind, r.period_start, r.dims, r.part, r.member)
       r.indicator, r.period_kind, r.period_start, r.dims, r.part, r.member, r.amount
FROM indicator_report AS r
JOIN unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[])
    AS u(indicator, period_kind, period_start, dims, part, member)
  ON r.indicator = u.indicator AND r.period_kind = u.period_kind AND r.period_start = u.period_start
 AND r.dims = u.dims AND r.part = u.part AND r.member = u.member
ORDER BY r.indicator, r.period_kind, r.period_start, r.dims, r.part, r.member,
         r.order_key DESC, r.event_id DESC
"""

_INSERT_REPORTS = """
INSERT INTO indicator_report (indicator, period_kind, period_start, dims, part, member, event_id,
                              order_key, amount)
SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[], $7::uuid[],
                     $8::text[], $9::numeric[])
ORDER BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT DO NOTHING
"""

_DELETE_REPORTS = """
DELETE FROM indicator_report AS r
USING unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[], $7::uuid[])
    AS u(indicator, period_kind, period_start, dims, part, member, event_id)
WHERE r.indicator = u.indicator AND r.period_kind = u.period_kind AND r.period_start = u.period_start
  AND r.dims = u.dims AND r.part = u.part AND r.member = u.member AND r.event_id = u.event_id
"""

_UPSERT_PARTS = """
INSERT INTO indicator_part AS p (indicator, period_kind, period_start, dims, part, kind, value, contributions)
SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[],
                     $7::numeric[], $8::bigint[])
ORDER BY 1, 2, 3, 4, 5
ON CONFLICT (indicator, period_kind, period_start, dims, part)
DO UPDATE SET value = p.value + EXCLUDED.value, contributions = p.contributions + EXCLUDED.contributions
"""

_DELETE_DEAD_PARTS = """
DELETE FROM indicator_part AS p
USING unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[])
    AS u(indicator, period_kind, period_start, dims, part)
WHERE p.indicator = u.indicator AND p.period_kind = u.period_kind AND p.period_start = u.period_start
  AND p.dims = u.dims AND p.part = u.part AND p.contributions <= 0
"""

# One outbox row per changed cell, carrying all of the cell's parts as they are now (this statement
# runs after the cell's row lock was taken, so no concurrent batch can interleave its parts).
_PUBLISH_CELLS = """
WITH changed AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[])
        AS u(indicator, period_kind, period_start, dims)
    ORDER BY 1, 2, 3, 4
), published AS (
    INSERT INTO indicator_outbox (indicator, period_kind, period_start, dims, parts)
    SELECT c.indicator, c.period_kind, c.period_start, c.dims,
           COALESCE((SELECT jsonb_object_agg(p.part, p.value::text)
                       FROM indicator_part AS p
                      WHERE p.indicator = c.indicator AND p.period_kind = c.period_kind
                        AND p.period_start = c.period_start AND p.dims = c.dims), '{}'::jsonb)
    FROM changed AS c
    RETURNING version, indicator, period_kind, period_start, dims
)
UPDATE indicator_cell AS cell SET version = published.version, updated_at = now()
FROM published
WHERE cell.indicator = published.indicator AND cell.period_kind = published.period_kind
  AND cell.period_start = published.period_start AND cell.dims = published.dims
"""


async def apply_deltas(
    connection: asyncpg.Connection, deltas: PartDeltas, *, publish: bool = True
) -> tuple[int, int]:
    """Apply aggregated part deltas and write one outbox row per changed cell.

    Must run inside the caller's transaction. Rows are always touched in key order so that
    concurrent batches take their locks in the same order.

    Args:
        connection: A connection inside a transaction.
        deltas: What to apply.
        publish: Write the outbox rows (a rebuild publishes every cell once at its end instead).

    Returns:
        (parts changed, cells published).
    """
    value_delta: dict[PartKey, Decimal] = defaultdict(Decimal)
    count_delta: dict[PartKey, int] = defaultdict(int)
    for key, (amount, count) in deltas.sums.items():
        if amount or count:
            value_delta[key] += amount
            count_delta[key] += count
    member_changes = {key: delta for key, delta in deltas.distinct.items() if delta}
    reports_touched = {(key, member) for key, member, _ in deltas.latest_add} | {
        (key, member) for key, member, _ in deltas.latest_remove
    }
    cells: set[CellKey] = {key[:4] for key in value_delta}
    cells.update(key[:4] for key, _ in member_changes)
    cells.update(key[:4] for key, _ in reports_touched)
    if not cells:
        return 0, 0
    await connection.execute(_LOCK_CELLS, *_columns(sorted(cells), 4))

    if member_changes:
        rows = sorted((*key, member, delta) for (key, member), delta in member_changes.items())
        returned = await connection.fetch(_UPSERT_MEMBERS, *_columns(rows, 7))
        any_dead = False
        for record in returned:
            key = (record[0], record[1], record[2], record[3], record[4])
            delta = member_changes[(key, record[5])]
            new = record[6]
            old = new - delta
            count_delta[key] += delta
            value_delta[key] += (new > 0) - (old > 0)
            any_dead = any_dead or new <= 0
        if any_dead:
            await connection.execute(_DELETE_DEAD_MEMBERS, *_columns([row[:6] for row in rows], 6))

    if reports_touched:
        touched = sorted((*key, member) for key, member in reports_touched)
        columns = _columns(touched, 6)
        before = {tuple(r[:6]): r[6] for r in await connection.fetch(_CURRENT_REPORTS, *columns)}
        if deltas.latest_add:
            adds = sorted(
                (*key, member, event_id, order_key, amount)
                for (key, member, event_id), (order_key, amount) in deltas.latest_add.items()
            )
            await connection.execute(_INSERT_REPORTS, *_columns(adds, 9))
            for key, _, _ in deltas.latest_add:
                count_delta[key] += 1
        if deltas.latest_remove:
            removes = sorted((*key, member, event_id) for key, member, event_id in deltas.latest_remove)
            await connection.execute(_DELETE_REPORTS, *_columns(removes, 7))
            for key, _, _ in deltas.latest_remove:
                count_delta[key] -= 1
        after = {tuple(r[:6]): r[6] for r in await connection.fetch(_CURRENT_REPORTS, *columns)}
        for row in touched:
            change = after.get(row, Decimal(0)) - before.get(row, Decimal(0))
            value_delta[row[:5]] += change

    keys = sorted(set(value_delta) | set(count_delta))
    part_rows = [
        (*key, deltas.kinds[key], value_delta.get(key, Decimal(0)), count_delta.get(key, 0))
        for key in keys
        if value_delta.get(key) or count_delta.get(key)
    ]
    if part_rows:
        await connection.execute(_UPSERT_PARTS, *_columns(part_rows, 8))
        if any(row[7] < 0 for row in part_rows):
            await connection.execute(_DELETE_DEAD_PARTS, *_columns([row[:5] for row in part_rows], 5))
    if publish:
        await publish_cells(connection, cells)
    return len(part_rows), len(cells)


async def publish_cells(connection: asyncpg.Connection, cells: Iterable[CellKey]) -> None:
    """Write an outbox row with the current parts of each cell and record its new version."""
    await connection.execute(_PUBLISH_CELLS, *_columns(sorted(set(cells)), 4))


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

_INSERT_FACTS = """
INSERT INTO fact AS f (event_id, event_type, occurred_at, subject_key, source, payload, parts, received,
                       retracts, topic, "partition", "offset")
SELECT u.event_id, u.event_type, u.occurred_at, u.subject_key, u.source, u.payload::jsonb, u.parts::jsonb,
       true, u.retracts, u.topic, u.part_no, u.off
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::uuid[], $9::text[], $10::int[], $11::bigint[])
    AS u(event_id, event_type, occurred_at, subject_key, source, payload, parts, retracts, topic, part_no,
         off)
ORDER BY u.event_id
ON CONFLICT (event_id) DO UPDATE
SET event_type = EXCLUDED.event_type, occurred_at = EXCLUDED.occurred_at,
    subject_key = EXCLUDED.subject_key, source = EXCLUDED.source, payload = EXCLUDED.payload,
    parts = EXCLUDED.parts, received = true, retracts = EXCLUDED.retracts, topic = EXCLUDED.topic,
    "partition" = EXCLUDED."partition", "offset" = EXCLUDED."offset", recorded_at = now()
WHERE NOT f.received
RETURNING f.event_id, f.retracted
"""

# The placeholder insert and the "retracted" update both take the row lock of the retracted event's
# fact, so a retraction and its event processed concurrently by two consumers serialise on it.
_RETRACT_FACTS = """
INSERT INTO fact AS f (event_id, received, retracted)
SELECT t, false, true FROM unnest($1::uuid[]) AS t ORDER BY t
ON CONFLICT (event_id) DO UPDATE SET retracted = true
WHERE NOT f.retracted
RETURNING f.event_id, f.received, f.parts::text
"""


async def record_facts(
    connection: asyncpg.Connection, facts: Sequence[FactIn]
) -> tuple[PartDeltas, BatchOutcome]:
    """Store the batch's facts and work out what they contribute; inside the caller's transaction.

    Duplicates of stored events contribute nothing; events already retracted are stored as
    retracted and contribute nothing; retractions negate the parts their event contributed, or leave
    a placeholder when the event has not arrived yet.
    """
    outcome = BatchOutcome()
    deltas = PartDeltas()
    unique: dict[UUID, FactIn] = {}
    for fact in facts:
        if fact.event_id in unique:
            outcome.duplicates += 1
        else:
            unique[fact.event_id] = fact
    if not unique:
        return deltas, outcome
    ordered = sorted(unique.values(), key=lambda fact: fact.event_id)
    rows = [
        (
            fact.event_id,
            fact.event_type,
            fact.occurred_at,
            fact.subject_key,
            fact.source,
            fact.payload,
            json.dumps([part_to_json(part) for part in fact.parts], separators=(",", ":")),
            fact.retracts,
            fact.topic,
            fact.partition,
            fact.offset,
        )
        for fact in ordered
    ]
    inserted = await connection.fetch(_INSERT_FACTS, *_columns(rows, 11))
    outcome.duplicates += len(unique) - len(inserted)
    targets: set[UUID] = set()
    for record in inserted:
        fact = unique[record[0]]
        if record[1]:
            outcome.retracted_on_arrival += 1
            continue
        outcome.facts_new += 1
        if fact.retracts is not None:
            targets.add(fact.retracts)
        for part in fact.parts:
            deltas.add(part, fact.event_id)
    if targets:
        for record in await connection.fetch(_RETRACT_FACTS, sorted(targets)):
            if not record[1]:
                outcome.retractions_pending += 1
                continue
            outcome.retractions_applied += 1
            for data in json.loads(record[2]):
                deltas.add(part_from_json(data), record[0], sign=-1)
    return deltas, outcome


class Store:
    """The processors' view of the evaluation store, over a connection pool."""

    def __init__(self, pool: asyncpg.Pool, *, log_identity: str, consumer_group: str) -> None:
        self.pool = pool
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
        for attempt in range(10):
            try:
                async with self.pool.acquire() as connection:
                    records = await connection.fetch(
                        _CLAIM_PARTITIONS, self.log_identity, self.consumer_group, *_columns(rows, 2)
                    )
                return {(r[0], r[1]): (r[2], r[3]) for r in records}
            except RETRYABLE_SQLSTATES:
                await asyncio.sleep(0.01 * (attempt + 1))
        raise RuntimeError("could not claim partitions after repeated deadlocks")

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
        self, positions: dict[TopicPartitionKey, tuple[int, int]], facts: Sequence[FactIn]
    ) -> BatchOutcome:
        """Write a batch's facts, part deltas, outbox rows and next offsets in one transaction.

        Args:
            positions: Per partition in the batch: (next offset after the batch, our epoch).
            facts: The valid events of the batch, in any order.

        Returns:
            What the batch did; ``lost`` names the partitions whose records were dropped because
            another consumer owns them now.
        """
        lost: set[TopicPartitionKey] = set()
        attempt = 0
        while True:
            try:
                async with self.pool.acquire() as connection, connection.transaction():
                    outcome = await self._commit_in(connection, positions, facts)
                outcome.lost = lost
                return outcome
            except PartitionsLostError as exc:
                lost |= exc.lost
                positions = {tp: p for tp, p in positions.items() if tp not in exc.lost}
                facts = [f for f in facts if (f.topic, f.partition) not in exc.lost]
                if not positions:
                    return BatchOutcome(lost=lost)
            except RETRYABLE_SQLSTATES as exc:
                attempt += 1
                if attempt > 20:
                    raise
                logger.info("batch transaction retried after %s", type(exc).__name__)
                await asyncio.sleep(0.005 * attempt)

    async def _commit_in(
        self,
        connection: asyncpg.Connection,
        positions: dict[TopicPartitionKey, tuple[int, int]],
        facts: Sequence[FactIn],
    ) -> BatchOutcome:
        rows = sorted(
            (topic, partition, nxt, epoch) for (topic, partition), (nxt, epoch) in positions.items()
        )
        if rows:
            kept = await connection.fetch(
                _COMMIT_OFFSETS, self.log_identity, self.consumer_group, *_columns(rows, 4)
            )
            missing = set(positions) - {(r[0], r[1]) for r in kept}
            if missing:
                raise PartitionsLostError(missing)
        deltas, outcome = await record_facts(connection, facts)
        outcome.parts_changed, outcome.cells_published = await apply_deltas(connection, deltas)
        return outcome


async def read_parts(
    connection: asyncpg.Connection | asyncpg.Pool,
) -> dict[PartKey, tuple[str, Decimal, int]]:
    """Every stored part: {(indicator, period kind, start, dims, part): (kind, value, contributions)}."""
    records = await connection.fetch(
        "SELECT indicator, period_kind, period_start, dims, part, kind, value, contributions"
        " FROM indicator_part"
    )
    return {(r[0], r[1], r[2], r[3], r[4]): (r[5], r[6], r[7]) for r in records}
