"""The evaluation store: facts, indicator parts and consumer offsets, written one batch per transaction.

Everything a batch changes (new facts, part deltas, outbox rows, the consumer's next offsets) commits
together or not at all, and the offsets row is guarded by an epoch per partition, so a consumer that
lost its partitions cannot commit. Writes are set-based (one statement per table via ``unnest``) and
idempotent: a duplicate event id conflicts on the facts' key and contributes nothing.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from pydantic_core import to_json

from infra.errors import is_transaction_conflict
from infra.retry import TRANSACTION_ATTEMPTS, TRANSACTION_BACKOFF, retrying
from processors.base import (
    BatchOutcome,
    CellKey,
    FactIn,
    PartitionsLostError,
    PartKey,
    cells_of_month,
    dims_key,
    month_of,
    part_from_json,
)
from processors.indicators.base import Part, PeriodKind

logger = logging.getLogger(__name__)

TopicPartitionKey = tuple[str, int]
# A part key extended by the member (distinct parts), and by the reporting event (latest parts): flat,
# so that a batch's keys transpose straight into the columns of its statements.
MemberKey = tuple[str, PeriodKind, date, str, str, str]
ReportKey = tuple[str, PeriodKind, date, str, str, str, UUID]


@dataclass
class PartDeltas:
    """The net effect of a set of contributions and negations, aggregated in memory before any SQL.

    Values are immutable, so `copy` is a cheap shallow copy that later `add` calls do not share.
    Every key is a month cell: parts are stored per month, and quarters and years are derived from
    their months when read (see `cell_parts`), which keeps one stored row per part instead of three.

    Attributes:
        sum_amount: Per part of kind "sum": value delta.
        sum_count: Per part of kind "sum": contributions delta.
        distinct: Per (part, member) of kind "distinct": reference-count delta.
        latest_add: Per (part, member, event id) of kind "latest": the report to add (order key, amount).
        latest_remove: Reports of kind "latest" to remove (their event was retracted).
    """

    sum_amount: dict[PartKey, Decimal] = field(default_factory=dict)
    sum_count: dict[PartKey, int] = field(default_factory=dict)
    distinct: dict[MemberKey, int] = field(default_factory=dict)
    latest_add: dict[ReportKey, tuple[str, Decimal]] = field(default_factory=dict)
    latest_remove: set[ReportKey] = field(default_factory=set)

    def copy(self) -> PartDeltas:
        """An independent copy."""
        return PartDeltas(
            dict(self.sum_amount),
            dict(self.sum_count),
            dict(self.distinct),
            dict(self.latest_add),
            set(self.latest_remove),
        )

    def add(self, part: Part, event_id: UUID, sign: int = 1) -> None:
        """Account for one part of one event in the cell of its month.

        Args:
            part: The contribution.
            event_id: The event that contributed it (identifies "latest" reports).
            sign: +1 to apply the contribution, -1 to negate it (a retraction).
        """
        key: PartKey = (
            part.indicator,
            "month",
            month_of(part.occurred_at),
            cached_dims_key(part.dimensions),
            part.part,
        )
        kind = part.kind
        if kind == "distinct":
            member_key: MemberKey = (*key, part.member or "")
            self.distinct[member_key] = self.distinct.get(member_key, 0) + sign
        elif kind == "sum":
            self.sum_amount[key] = self.sum_amount.get(key, _ZERO) + part.amount * sign
            self.sum_count[key] = self.sum_count.get(key, 0) + sign
        else:
            report: ReportKey = (*key, part.member or "", event_id)
            if sign > 0:
                self.latest_add[report] = (part.order_key, part.amount)
            elif report in self.latest_add:
                del self.latest_add[report]
            else:
                self.latest_remove.add(report)


_ZERO = Decimal(0)
_DIMS_CACHE: dict[tuple[tuple[str, str], ...], str] = {}


def cached_dims_key(dimensions: Mapping[str, str]) -> str:
    """`dims_key`, memoised: the same few thousand dimension combinations recur in every batch."""
    items = tuple(dimensions.items())
    found = _DIMS_CACHE.get(items)
    if found is None:
        if len(_DIMS_CACHE) > 200_000:
            _DIMS_CACHE.clear()
        found = _DIMS_CACHE[items] = dims_key(dimensions)
    return found


def _columns(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    """Transpose rows (tuples of `width` items) into the per-column lists that ``unnest`` takes."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    return columns or [[] for _ in range(width)]


_UPSERT_MEMBERS = """
INSERT INTO indicator_member AS m (indicator, period_kind, period_start, dims, part, member, refcount)
SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[], $7::int[])
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (indicator, period_kind, period_start, dims, part, member)
DO UPDATE SET refcount = m.refcount + EXCLUDED.refcount
"""

_DELETE_DEAD_MEMBERS = """
DELETE FROM indicator_member AS m
USING unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[])
    AS u(indicator, period_kind, period_start, dims, part, member)
WHERE m.indicator = u.indicator AND m.period_kind = u.period_kind AND m.period_start = u.period_start
  AND m.dims = u.dims AND m.part = u.part AND m.member = u.member AND m.refcount <= 0
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
    connection: asyncpg.Connection, deltas: PartDeltas, *, publish: bool = True
) -> tuple[int, int]:
    """Apply aggregated part deltas and mark every changed cell in the outbox.

    Must run inside the caller's transaction. The statements insert in key order (``ORDER BY``), so
    concurrent batches take their row locks in the same order and cannot deadlock on each other.

    Args:
        connection: A connection inside a transaction.
        deltas: What to apply.
        publish: Mark the changed cells in the outbox (a rebuild marks every cell once at its end).

    Returns:
        (stored rows written, month cells changed; each stands for its quarter and year too).
    """
    months: set[tuple[str, date, str]] = set()
    written = 0
    members = deltas.distinct
    if 0 in members.values():
        members = {key: delta for key, delta in members.items() if delta}
    if members:
        columns = _columns(members, 6)
        await connection.execute(_UPSERT_MEMBERS, *columns, list(members.values()))
        negative = [key for key, delta in members.items() if delta < 0]
        if negative:
            await connection.execute(_DELETE_DEAD_MEMBERS, *_columns(negative, 6))
        months.update(zip(columns[0], columns[2], columns[3], strict=True))
        written += len(members)
    adds = deltas.latest_add
    if adds:
        columns = _columns(adds, 7)
        reports = list(adds.values())
        await connection.execute(
            _INSERT_REPORTS,
            *columns,
            [order_key for order_key, _ in reports],
            [amount for _, amount in reports],
        )
        months.update(zip(columns[0], columns[2], columns[3], strict=True))
        written += len(adds)
    if deltas.latest_remove:
        columns = _columns(sorted(deltas.latest_remove), 7)
        await connection.execute(_DELETE_REPORTS, *columns)
        months.update(zip(columns[0], columns[2], columns[3], strict=True))
        written += len(deltas.latest_remove)
    sum_amount, sum_count = deltas.sum_amount, deltas.sum_count
    sums = [key for key, amount in sum_amount.items() if amount or sum_count[key]]
    sum_columns = _columns(sums, 5)
    months.update(zip(sum_columns[0], sum_columns[2], sum_columns[3], strict=True))
    if publish and months:
        await mark_changed(connection, [(name, "month", start, dims) for name, start, dims in months])
    # Sum rows are the hottest (few cells, many events): written last, so that a concurrent batch
    # waits on their row locks only until this transaction commits.
    if sums:
        counts = [sum_count[key] for key in sums]
        await connection.execute(_UPSERT_SUMS, *sum_columns, [sum_amount[key] for key in sums], counts)
        if any(count < 0 for count in counts):
            await connection.execute(_DELETE_DEAD_SUMS, *sum_columns)
        written += len(sums)
    return written, len(months)


async def mark_changed(connection: asyncpg.Connection, cells: Iterable[CellKey]) -> None:
    """Queue cells for publication by the relay (in the caller's transaction).

    A month cell stands for itself and its quarter and year (see `published_cells`), so a batch marks
    only the months it changed.
    """
    await connection.execute(_MARK_CHANGED, *_columns(sorted(set(cells)), 4))


def published_cells(marked: CellKey) -> tuple[CellKey, ...]:
    """The cells a mark asks the relay to publish: a month with its quarter and year; any other as is."""
    indicator, kind, start, dims = marked
    return cells_of_month(indicator, start, dims) if kind == "month" else (marked,)


# The value of every part of a cell, merged from the month rows the cell covers: sums add up,
# distinct parts count the live members of any of its months, latest parts sum each member's winning
# report. `contributions` counts what backs the value (contributing events, member references,
# reports). Each source yields the stored month rows with the cell they are read into (c_kind, c_start).
_PART_VALUES = """
SELECT x.indicator, x.c_kind, x.c_start, x.dims, x.part, 'sum', sum(x.value), sum(x.contributions)::bigint
  FROM {part}
 GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT x.indicator, x.c_kind, x.c_start, x.dims, x.part, 'distinct', count(DISTINCT x.member)::numeric,
       sum(x.refcount)::bigint
  FROM {member}
 WHERE x.refcount > 0
 GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT r.indicator, r.c_kind, r.c_start, r.dims, r.part, 'latest',
       sum(r.amount) FILTER (WHERE r.rank = 1), count(*)
  FROM (SELECT x.*, row_number() OVER (
                PARTITION BY x.indicator, x.c_kind, x.c_start, x.dims, x.part, x.member
                ORDER BY x.order_key DESC, x.event_id DESC) AS rank
          FROM {report}) AS r
 GROUP BY 1, 2, 3, 4, 5
"""
# Every stored row, read into its month, quarter and year (alcance_periods, migration 0160).
_EVERY_CELL = (
    "(SELECT t.*, k.period_kind AS c_kind, k.period_start AS c_start"
    " FROM {table} AS t CROSS JOIN LATERAL alcance_periods(t.period_start) AS k) AS x"
)
# The rows of the months each requested cell covers.
_REQUESTED_CELL = (
    "(SELECT t.*, c.period_kind AS c_kind, c.period_start AS c_start FROM cell_month AS c"
    " JOIN {table} AS t ON t.indicator = c.indicator AND t.period_kind = 'month'"
    " AND t.period_start = c.month AND t.dims = c.dims) AS x"
)
_ALL_PART_VALUES = _PART_VALUES.format(
    part=_EVERY_CELL.format(table="indicator_part"),
    member=_EVERY_CELL.format(table="indicator_member"),
    report=_EVERY_CELL.format(table="indicator_report"),
)
# Built from constant fragments only; the cells arrive as bind parameters.
_CELL_CTE = """
WITH cell AS (
    SELECT DISTINCT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[])
        AS u(indicator, period_kind, period_start, dims)
), cell_month AS MATERIALIZED (
    SELECT c.*, m::date AS month
      FROM cell AS c,
           generate_series(c.period_start::timestamp,
                           c.period_start + CASE c.period_kind WHEN 'quarter' THEN interval '2 months'
                                                               WHEN 'year' THEN interval '11 months'
                                                               ELSE interval '0' END,
                           interval '1 month') AS m
)
"""
_CELL_PART_VALUES = _CELL_CTE + _PART_VALUES.format(
    part=_REQUESTED_CELL.format(table="indicator_part"),
    member=_REQUESTED_CELL.format(table="indicator_member"),
    report=_REQUESTED_CELL.format(table="indicator_report"),
)


async def cell_parts(
    connection: asyncpg.Connection | asyncpg.Pool, cells: Iterable[CellKey] | None = None
) -> dict[PartKey, tuple[str, Decimal, int]]:
    """The value of every part of `cells` (of every cell when None).

    Returns:
        {(indicator, period kind, period start, dims, part): (kind, value, contributions)}.
    """
    if cells is None:
        records = await connection.fetch(_ALL_PART_VALUES)
    else:
        records = await connection.fetch(_CELL_PART_VALUES, *_columns(list(set(cells)), 4))
    return {(r[0], r[1], r[2], r[3], r[4]): (r[5], r[6], r[7]) for r in records}


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
SELECT u.event_id, u.event_type, u.occurred_at, u.subject_key, u.source, u.payload::json, u.parts::json,
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
    connection: asyncpg.Connection, facts: Sequence[FactIn], expected: PartDeltas | None = None
) -> tuple[PartDeltas, BatchOutcome]:
    """Store the batch's facts and work out what they contribute; inside the caller's transaction.

    Duplicates of stored events contribute nothing; events already retracted are stored as
    retracted and contribute nothing; retractions negate the parts their event contributed, or leave
    a placeholder when the event has not arrived yet.

    Args:
        connection: A connection inside a transaction.
        facts: The batch's facts.
        expected: The deltas of all `facts` as if every one were new (computed ahead, outside the
            transaction); corrected here for duplicates. Left unchanged, so a retry can reuse it.
    """
    outcome = BatchOutcome()
    unique: dict[UUID, FactIn] = {}
    for fact in facts:
        if fact.event_id in unique:
            outcome.duplicates += 1
        else:
            unique[fact.event_id] = fact
    deltas = expected.copy() if expected is not None else PartDeltas()
    if not unique:
        return deltas, outcome
    # The statement inserts in event-id order (its ORDER BY), so concurrent batches lock alike.
    ordered = list(unique.values())
    columns = (
        [fact.event_id for fact in ordered],
        [fact.event_type for fact in ordered],
        [fact.occurred_at for fact in ordered],
        [fact.subject_key for fact in ordered],
        [fact.source for fact in ordered],
        [fact.payload for fact in ordered],
        [fact.parts_json if fact.parts_json is not None else parts_json(fact.parts) for fact in ordered],
        [fact.retracts for fact in ordered],
        [fact.topic for fact in ordered],
        [fact.partition for fact in ordered],
        [fact.offset for fact in ordered],
    )
    inserted = {record[0]: record[1] for record in await connection.fetch(_INSERT_FACTS, *columns)}
    targets: set[UUID] = set()
    for fact in ordered:
        retracted = inserted.get(fact.event_id)
        if retracted is None or retracted:
            if retracted is None:
                outcome.duplicates += 1
            else:
                outcome.retracted_on_arrival += 1
            if expected is not None:
                for part in fact.parts:
                    deltas.add(part, fact.event_id, sign=-1)
            continue
        outcome.facts_new += 1
        if fact.retracts is not None:
            targets.add(fact.retracts)
        if expected is None:
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


def expected_deltas(facts: Iterable[FactIn]) -> PartDeltas:
    """The deltas of `facts` (first occurrence of each event id) as if none had been seen before."""
    deltas = PartDeltas()
    seen: set[UUID] = set()
    for fact in facts:
        if fact.event_id in seen:
            continue
        seen.add(fact.event_id)
        for part in fact.parts:
            deltas.add(part, fact.event_id)
    return deltas


def parts_json(parts: Sequence[Part]) -> str:
    """The `parts` column of a fact: one array per part, read back by `part_from_json`."""
    return to_json(
        [
            (
                part.indicator,
                part.part,
                part.kind,
                part.occurred_at,
                part.dimensions if isinstance(part.dimensions, dict) else dict(part.dimensions),
                part.amount,
                part.member,
                part.order_key,
            )
            for part in parts
        ]
    ).decode()


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

        async def claim() -> list[asyncpg.Record]:
            async with self.pool.acquire() as connection:
                records: list[asyncpg.Record] = await connection.fetch(
                    _CLAIM_PARTITIONS, self.log_identity, self.consumer_group, *_columns(rows, 2)
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
                _COMMIT_OFFSETS, self.log_identity, self.consumer_group, *_columns(rows, 4)
            )
            missing = set(positions) - {(r[0], r[1]) for r in kept}
            if missing:
                raise PartitionsLostError(missing)
        deltas, outcome = await record_facts(connection, facts, expected)
        outcome.rows_written, outcome.months_marked = await apply_deltas(connection, deltas)
        return outcome
