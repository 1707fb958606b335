"""Reading cells from the evaluation store: the value of every part of a cell.

Parts are stored per month (`processors.store`). `cell_parts` merges a quarter or a year from its month
rows, reading every member and report of the cell (recompute and the tests compare with it);
`relayed_parts` reads the values kept per cell (`processors.cell_values`) and the cell's month sums, a
few index lookups per cell, for the relay.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import asyncpg

from processors.base import CellKey, PartKey, cells_of_month, columns_of
from processors.cell_values import kept_values_usable


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
        records = await connection.fetch(_CELL_PART_VALUES, *columns_of(list(set(cells)), 4))
    return {(r[0], r[1], r[2], r[3], r[4]): (r[5], r[6], r[7]) for r in records}


# The kept values of distinct parts (every cell) and latest parts (quarters and years), a month's latest
# parts from its own reports (the winner per member), and the sums of the months each cell covers.
_RELAYED_SELECT = """
SELECT v.indicator, v.period_kind, v.period_start, v.dims, v.part, v.value
  FROM cell AS c
  JOIN indicator_cell_value AS v USING (indicator, period_kind, period_start, dims)
UNION ALL
SELECT w.indicator, 'month', w.period_start, w.dims, w.part, sum(w.amount)
  FROM (SELECT DISTINCT ON (t.indicator, t.period_start, t.dims, t.part, t.member)
               t.indicator, t.period_start, t.dims, t.part, t.amount
          FROM cell AS c
          JOIN indicator_report AS t ON t.indicator = c.indicator AND t.period_kind = 'month'
           AND t.period_start = c.period_start AND t.dims = c.dims
         WHERE c.period_kind = 'month'
         ORDER BY t.indicator, t.period_start, t.dims, t.part, t.member, t.order_key DESC, t.event_id DESC
       ) AS w
 GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT c.indicator, c.period_kind, c.period_start, c.dims, t.part, sum(t.value)
  FROM cell_month AS c
  JOIN indicator_part AS t ON t.indicator = c.indicator AND t.period_kind = 'month'
   AND t.period_start = c.month AND t.dims = c.dims
 GROUP BY 1, 2, 3, 4, 5
"""
_RELAYED_PART_VALUES = _CELL_CTE + _RELAYED_SELECT


async def relayed_parts(
    connection: asyncpg.Connection | asyncpg.Pool, cells: Iterable[CellKey]
) -> dict[PartKey, Decimal]:
    """The value of every part of `cells`, from the values kept per cell: what `cell_parts` merges.

    Returns:
        {(indicator, period kind, period start, dims, part): value}.
    """
    records = await connection.fetch(_RELAYED_PART_VALUES, *columns_of(list(set(cells)), 4))
    return {(r[0], r[1], r[2], r[3], r[4]): r[5] for r in records}


async def current_parts(connection: asyncpg.Connection, cells: Iterable[CellKey]) -> dict[PartKey, Decimal]:
    """The value of every part of `cells` for the relay.

    From the kept values while they are complete; merged from the month rows after batches that ran
    without them (`processor.cell_values` off), until a recompute rebuilds them, and after a crash
    emptied them, until the relay fills them again.
    """
    if await kept_values_usable(connection):
        return await relayed_parts(connection, cells)
    return {key: value for key, (_, value, _) in (await cell_parts(connection, cells)).items()}
