"""Rollups: the parts of simple indicators kept grouped per period and grouping, in each batch's transaction.

An indicator qualifies when the generic aggregation reads it (not cumulative) from sum and distinct
parts that all carry its dimensions: its cells are then exactly the rollup rows of the requested
period and grouping. Every subset of the dimensions is a grouping. Sums are kept per month (a quarter
or a year adds its months when read: few rows). Distinct parts keep their members per month, quarter
and year, with reference counts, and a count of the live members that the same statement keeps in
step, so a distinct count across months stays exact and costs one row to read.

The arithmetic (`rollup_deltas`) is pure; `apply_rollups` writes inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from itertools import combinations

import asyncpg

from processors.base import dims_key
from processors.deltas import PartDeltas
from processors.indicators import catalogue
from processors.indicators.catalogue import Indicator

UNKNOWN = "UNKNOWN"  # a dimension the part does not carry (as `processors.indicators.grouping`)

# (indicator, part, period kind, period start, grouping, group dims, member)
RollupMemberKey = tuple[str, str, str, date, str, str, str]
# (indicator, part, period kind, period start, grouping, group dims)
RollupKey = tuple[str, str, str, date, str, str]


def qualifies(entry: Indicator) -> bool:
    """Whether the indicator's cells are read from the rollups."""
    if entry.aggregation != "parts" or entry.cumulative:
        return False
    for ref in entry.reads:
        if catalogue.stored_part(ref.indicator, ref.part).kind not in ("sum", "distinct"):
            return False
        if catalogue.get(ref.indicator).dimensions != entry.dimensions:
            return False
    return True


@cache
def rolled_up_parts() -> Mapping[tuple[str, str], tuple[str, ...]]:
    """Per rolled-up stored part (indicator, part): the dimensions its groupings are made of."""
    return {
        (ref.indicator, ref.part): catalogue.get(ref.indicator).dimensions
        for entry in catalogue.INDICATORS
        if qualifies(entry)
        for ref in entry.reads
    }


@cache
def groupings(dimensions: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Every subset of `dimensions`, each sorted: the groupings a read can ask for."""
    ordered = sorted(dimensions)
    return tuple(combo for size in range(len(ordered) + 1) for combo in combinations(ordered, size))


def grouping_name(by: Iterable[str]) -> str:
    """The stored name of a grouping: its dimensions sorted and comma-separated ('' for totals)."""
    return ",".join(sorted(by))


def _periods_of_month(month: date) -> tuple[tuple[str, date], ...]:
    return (
        ("month", month),
        ("quarter", date(month.year, 3 * ((month.month - 1) // 3) + 1, 1)),
        ("year", date(month.year, 1, 1)),
    )


@dataclass
class RollupDeltas:
    """What a batch changes in the rollups (keys unique, zero deltas left out)."""

    members: dict[RollupMemberKey, int] = field(default_factory=dict)
    sums: dict[RollupKey, tuple[Decimal, int]] = field(default_factory=dict)


_GROUPS_CACHE: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, str], ...]] = {}


def _groups(dims: str, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(grouping, group dims) of a stored dims text for every grouping of `names`; memoised."""
    found = _GROUPS_CACHE.get((dims, names))
    if found is None:
        if len(_GROUPS_CACHE) > 100_000:
            _GROUPS_CACHE.clear()
        values = json.loads(dims)
        found = _GROUPS_CACHE[(dims, names)] = tuple(
            (",".join(grouping), dims_key({name: values.get(name, UNKNOWN) for name in grouping}))
            for grouping in groupings(names)
        )
    return found


def rollup_deltas(deltas: PartDeltas) -> RollupDeltas:
    """The rollup changes of a batch's part deltas (which are per month cell and full dimensions)."""
    parts = rolled_up_parts()
    out = RollupDeltas()
    members = out.members
    for (indicator, _, month, dims, part, member), delta in deltas.distinct.items():
        names = parts.get((indicator, part))
        if names is None or not delta:
            continue
        for grouping, group in _groups(dims, names):
            for kind, start in _periods_of_month(month):
                key = (indicator, part, kind, start, grouping, group, member)
                members[key] = members.get(key, 0) + delta
    sums: dict[RollupKey, tuple[Decimal, int]] = {}
    for (indicator, _, month, dims, part), amount in deltas.sum_amount.items():
        names = parts.get((indicator, part))
        count = deltas.sum_count.get((indicator, "month", month, dims, part), 0)
        if names is None or not (amount or count):
            continue
        for grouping, group in _groups(dims, names):
            sum_key = (indicator, part, "month", month, grouping, group)
            total, contributions = sums.get(sum_key, (Decimal(0), 0))
            sums[sum_key] = (total + amount, contributions + count)
    out.members = {key: delta for key, delta in members.items() if delta}
    out.sums = {key: value for key, value in sums.items() if value[0] or value[1]}
    return out


def _columns(rows: Iterable[Sequence[object]], width: int) -> list[list[object]]:
    columns = [list(column) for column in zip(*rows, strict=True)]
    return columns or [[] for _ in range(width)]


# The member upsert returns each row's refcount after the change; with the delta it gives the count
# before, so the live-member count of each group moves by the members that crossed zero. Row locks
# are taken in key order (ORDER BY), as in every other statement of a batch.
_UPSERT_MEMBERS = """
WITH d AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[], $6::text[],
                         $7::text[], $8::int[])
        AS u(indicator, part, period_kind, period_start, grouping, group_dims, member, delta)
), changed AS (
    INSERT INTO indicator_rollup_member AS m
           (indicator, part, period_kind, period_start, grouping, group_dims, member, refcount)
    SELECT * FROM d ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (indicator, part, period_kind, period_start, grouping, group_dims, member)
    DO UPDATE SET refcount = m.refcount + EXCLUDED.refcount
    RETURNING m.indicator, m.part, m.period_kind, m.period_start, m.grouping, m.group_dims, m.member,
              m.refcount
), per_group AS (
    SELECT c.indicator, c.part, c.period_kind, c.period_start, c.grouping, c.group_dims,
           sum((c.refcount > 0)::int - (c.refcount - d.delta > 0)::int) AS live, sum(d.delta) AS refs
      FROM changed AS c
      JOIN d USING (indicator, part, period_kind, period_start, grouping, group_dims, member)
     GROUP BY 1, 2, 3, 4, 5, 6
)
INSERT INTO indicator_rollup AS r
       (indicator, part, period_kind, period_start, grouping, group_dims, kind, value, contributions)
SELECT indicator, part, period_kind, period_start, grouping, group_dims, 'distinct', live, refs
  FROM per_group ORDER BY indicator, part, period_kind, grouping, period_start, group_dims
ON CONFLICT (indicator, part, period_kind, grouping, period_start, group_dims)
DO UPDATE SET value = r.value + EXCLUDED.value, contributions = r.contributions + EXCLUDED.contributions
"""

_DELETE_DEAD_MEMBERS = """
DELETE FROM indicator_rollup_member AS m
USING unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[], $6::text[], $7::text[])
    AS u(indicator, part, period_kind, period_start, grouping, group_dims, member)
WHERE m.indicator = u.indicator AND m.part = u.part AND m.period_kind = u.period_kind
  AND m.period_start = u.period_start AND m.grouping = u.grouping AND m.group_dims = u.group_dims
  AND m.member = u.member AND m.refcount <= 0
"""

_UPSERT_SUMS = """
INSERT INTO indicator_rollup AS r
       (indicator, part, period_kind, period_start, grouping, group_dims, kind, value, contributions)
SELECT u.indicator, u.part, u.period_kind, u.period_start, u.grouping, u.group_dims, 'sum', u.value,
       u.contributions
  FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[], $6::text[], $7::numeric[],
              $8::bigint[])
    AS u(indicator, part, period_kind, period_start, grouping, group_dims, value, contributions)
 ORDER BY u.indicator, u.part, u.period_kind, u.grouping, u.period_start, u.group_dims
ON CONFLICT (indicator, part, period_kind, grouping, period_start, group_dims)
DO UPDATE SET value = r.value + EXCLUDED.value, contributions = r.contributions + EXCLUDED.contributions
"""

_DELETE_DEAD_ROLLUPS = """
DELETE FROM indicator_rollup AS r
USING unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[], $6::text[])
    AS u(indicator, part, period_kind, period_start, grouping, group_dims)
WHERE r.indicator = u.indicator AND r.part = u.part AND r.period_kind = u.period_kind
  AND r.grouping = u.grouping AND r.period_start = u.period_start AND r.group_dims = u.group_dims
  AND r.contributions <= 0
"""


async def apply_rollups(connection: asyncpg.Connection, deltas: PartDeltas) -> int:
    """Apply a batch's part deltas to the rollups; inside the caller's transaction.

    Returns:
        The rollup rows written.
    """
    change = rollup_deltas(deltas)
    written = 0
    if change.members:
        members = sorted(change.members)
        await connection.execute(
            _UPSERT_MEMBERS, *_columns(members, 7), [change.members[key] for key in members]
        )
        negative = [key for key in members if change.members[key] < 0]
        if negative:
            await connection.execute(_DELETE_DEAD_MEMBERS, *_columns(negative, 7))
            groups = sorted({key[:6] for key in negative})
            await connection.execute(_DELETE_DEAD_ROLLUPS, *_columns(groups, 6))
        written += len(members)
    if change.sums:
        sums = sorted(change.sums)
        values = [change.sums[key] for key in sums]
        await connection.execute(
            _UPSERT_SUMS, *_columns(sums, 6), [v[0] for v in values], [v[1] for v in values]
        )
        if any(count < 0 for _, count in values):
            await connection.execute(_DELETE_DEAD_ROLLUPS, *_columns(sums, 6))
        written += len(sums)
    return written
