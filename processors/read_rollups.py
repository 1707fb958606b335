"""Reading the cells of qualifying indicators straight from their rollups (`processors.rollups`).

A read asks for one period kind and one grouping; the rows it needs are those of that grouping and
period (distinct parts) or of its months (sums), found by the rollup table's key, so its cost grows
with the cells returned, not with the events behind them. The cells are those the generic
aggregation (`processors.indicators.generic.aggregate_parts`) makes of the part tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import asyncpg

from processors.indicators import catalogue
from processors.indicators.aggregate import Cell
from processors.indicators.base import PeriodKind
from processors.rollups import grouping_name, qualifies

_READ = """
SELECT r.part, r.period_start, r.group_dims, r.value
  FROM indicator_rollup AS r
  JOIN unnest($1::text[], $2::text[]) AS w(indicator, part) USING (indicator, part)
 WHERE r.period_kind = $3 AND r.grouping = $4 AND r.kind = 'distinct' AND r.contributions > 0
UNION ALL
SELECT r.part, date_trunc($3, r.period_start::timestamp)::date, r.group_dims, sum(r.value)
  FROM indicator_rollup AS r
  JOIN unnest($1::text[], $2::text[]) AS w(indicator, part) USING (indicator, part)
 WHERE r.period_kind = 'month' AND r.grouping = $4 AND r.kind = 'sum' AND r.contributions > 0
 GROUP BY 1, 2, 3
"""


async def rollups_complete(connection: asyncpg.Connection) -> bool:
    """Whether the rollups hold every stored part (a store upgraded with facts needs a recompute)."""
    return bool(await connection.fetchval("SELECT complete FROM indicator_rollup_state"))


def reads_rollups(indicator_id: str) -> bool:
    """Whether the indicator's cells come from the rollups."""
    return qualifies(catalogue.get(indicator_id))


async def rolled_up_cells(
    connection: asyncpg.Connection, indicator_id: str, period: PeriodKind, by: Sequence[str]
) -> list[Cell]:
    """The cells of one qualifying indicator, for `period` grouped by `by`.

    Raises:
        ValueError: when `by` repeats a dimension or names one the indicator does not have.
    """
    entry = catalogue.get(indicator_id)
    unknown = [name for name in by if name not in entry.dimensions]
    if unknown:
        raise ValueError(
            f"{indicator_id} has no dimension {', '.join(unknown)}"
            f" (it has: {', '.join(entry.dimensions) or 'none'})"
        )
    if len(set(by)) != len(by):
        raise ValueError(f"repeated dimension in {tuple(by)}")
    refs = entry.reads
    records = await connection.fetch(
        _READ, [ref.indicator for ref in refs], [ref.part for ref in refs], period, grouping_name(by)
    )
    cells: dict[tuple[date, tuple[str, ...]], dict[str, Decimal]] = {}
    parsed: dict[str, dict[str, str]] = {}
    for part, start, group_dims, value in records:
        group = parsed.get(group_dims)
        if group is None:
            group = parsed[group_dims] = json.loads(group_dims)
        key = (start, tuple(group[name] for name in by))
        found = cells.get(key)
        if found is None:
            found = cells[key] = {ref.part: Decimal(0) for ref in refs}
        found[part] += value
    return [
        Cell(start, dict(zip(by, values, strict=True)), cells[(start, values)])
        for start, values in sorted(cells)
    ]
