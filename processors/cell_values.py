"""Cell values: distinct and latest parts kept per month, quarter and year cell in each batch's transaction.

Parts are stored per month, and a quarter or year merged from its months costs a read of every member
or report of the cell. The relay publishes the cells a batch changed, so it reads their values here
instead, by index lookups (`processors.cells.relayed_parts`):

- a distinct part's members carry, per year, the months they are live in (a bit mask); the month rows
  that a batch takes across zero flip their bits, and each flip moves the count of the month, quarter
  and year that gained or lost the member;
- a latest part keeps its winning report per quarter or year cell and member; a report that beats it
  replaces it, and a retracted winner is replaced by the best report left in the cell's months (a
  month's latest values are read from its own reports, a month at most).

Every statement takes its row locks in key order, as the other statements of a batch do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal

import asyncpg

from processors.base import PartKey, cells_of_month, columns_of
from processors.deltas import MemberKey, ReportKey

# Per cell part: (part kind, value delta, members delta).
CellValueDeltas = dict[PartKey, tuple[str, Decimal, int]]

# The month member upsert returns each row's refcount before and after the change (PostgreSQL 18's
# `RETURNING old/new`: the values of the row version it locked, so concurrent batches stay exact); the
# rows that crossed zero flip their month's bit in the member's year row, and the bits before and after
# give the change of every month, quarter and year count the flip touched.
_UPSERT_MEMBERS = """
WITH changed AS (
    INSERT INTO indicator_member AS m (indicator, period_kind, period_start, dims, part, member, refcount)
    SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[], $7::int[])
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (indicator, period_kind, period_start, dims, part, member)
    DO UPDATE SET refcount = m.refcount + EXCLUDED.refcount
    RETURNING new.indicator, new.period_start, new.dims, new.part, new.member, new.refcount AS after,
              coalesce(old.refcount, 0) AS before
), flipped AS (
    SELECT indicator, date_trunc('year', period_start::timestamp)::date AS year_start, dims, part, member,
           bit_or(1 << (extract(month FROM period_start)::int - 1)) AS bits
      FROM changed
     WHERE (after > 0) <> (before > 0)
     GROUP BY 1, 2, 3, 4, 5
), years AS (
    INSERT INTO indicator_member_year AS y (indicator, year_start, dims, part, member, months)
    SELECT * FROM flipped ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (indicator, year_start, dims, part, member) DO UPDATE SET months = y.months # EXCLUDED.months
    RETURNING new.indicator, new.year_start, new.dims, new.part, new.months AS after,
              coalesce(old.months, 0) AS before
), moved AS (
    SELECT y.indicator, s.period_kind,
           (y.year_start + make_interval(months => s.month_offset))::date AS start, y.dims, y.part,
           sum(((y.after & s.mask) <> 0)::int - ((y.before & s.mask) <> 0)::int) AS live
      FROM years AS y
      JOIN alcance_year_spans() AS s ON (y.after # y.before) & s.mask <> 0
     GROUP BY 1, 2, 3, 4, 5
)
SELECT * FROM moved WHERE live <> 0
"""

# Member years left without a live month (after a retraction).
_DELETE_EMPTY_YEARS = """
DELETE FROM indicator_member_year AS y
USING unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[])
    AS u(indicator, year_start, dims, part, member)
WHERE y.indicator = u.indicator AND y.year_start = u.year_start AND y.dims = u.dims AND y.part = u.part
  AND y.member = u.member AND y.months = 0
"""

# The best candidate per cell and member replaces the winner it beats; the amount it replaced (none for
# a member new to the cell) tells how the cell's value moved. `{candidates}` yields the candidates.
_WINNERS = """
WITH candidate AS (
    SELECT DISTINCT ON (indicator, period_kind, period_start, dims, part, member)
           indicator, period_kind, period_start, dims, part, member, event_id, order_key, amount
      FROM {candidates}
     ORDER BY indicator, period_kind, period_start, dims, part, member, order_key DESC, event_id DESC
){stored}, won AS (
    INSERT INTO indicator_report_winner AS w
           (indicator, period_kind, period_start, dims, part, member, event_id, order_key, amount)
    SELECT * FROM candidate ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (indicator, period_kind, period_start, dims, part, member)
    DO UPDATE SET event_id = EXCLUDED.event_id, order_key = EXCLUDED.order_key, amount = EXCLUDED.amount
    WHERE (EXCLUDED.order_key, EXCLUDED.event_id) > (w.order_key, w.event_id)
    RETURNING new.indicator, new.period_kind, new.period_start, new.dims, new.part, new.amount,
              old.amount AS replaced
)
SELECT indicator, period_kind, period_start, dims, part, sum(amount - coalesce(replaced, 0)),
       count(*) FILTER (WHERE replaced IS NULL)::int
  FROM won
 GROUP BY 1, 2, 3, 4, 5
"""
_REPORT_COLUMNS = """unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[],
                  $7::uuid[], $8::text[], $9::numeric[])
        AS u(indicator, period_kind, period_start, dims, part, member, event_id, order_key, amount)"""
_MONTH_REPORT_CANDIDATES = """(
    SELECT u.*, k.period_kind AS cell_kind, k.period_start AS cell_start
      FROM {reports} CROSS JOIN LATERAL alcance_periods(u.period_start) AS k
     WHERE k.period_kind <> 'month'
) AS c(indicator, month_kind, month, dims, part, member, event_id, order_key, amount, period_kind,
       period_start)"""
_STORE_REPORTS = """, stored AS (
    INSERT INTO indicator_report (indicator, period_kind, period_start, dims, part, member, event_id,
                                  order_key, amount)
    SELECT * FROM {reports}
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT DO NOTHING
)"""
# A batch's month reports, stored, and the candidates they make for their quarter and year (a month's
# latest values are read from its own reports: `processors.cells.relayed_parts`).
INSERT_REPORTS = _WINNERS.format(
    candidates=_MONTH_REPORT_CANDIDATES.format(reports=_REPORT_COLUMNS),
    stored=_STORE_REPORTS.format(reports=_REPORT_COLUMNS),
)
# Candidates for given quarter and year cells (the reports left after a retracted winner).
_UPSERT_WINNERS = _WINNERS.format(candidates=_REPORT_COLUMNS, stored="")

# Winners whose report was retracted leave; the best report left in the cell's months replaces each.
# The reports left are read under a key-share lock: a concurrent batch retracting one of them either
# has deleted it (this read waits for its commit, then skips it) or waits for this batch to commit, and
# then finds the winner it retracts and replaces it in turn.
_DELETE_RETRACTED_WINNERS = """
DELETE FROM indicator_report_winner AS w
USING unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[], $7::uuid[])
    AS u(indicator, period_kind, period_start, dims, part, member, event_id)
WHERE w.indicator = u.indicator AND w.period_kind = u.period_kind AND w.period_start = u.period_start
  AND w.dims = u.dims AND w.part = u.part AND w.member = u.member AND w.event_id = u.event_id
RETURNING w.indicator, w.period_kind, w.period_start, w.dims, w.part, w.member, w.amount
"""
_REPORTS_LEFT = """
SELECT g.indicator, g.period_kind, g.period_start, g.dims, g.part, g.member, r.event_id, r.order_key, r.amount
  FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[])
         AS g(indicator, period_kind, period_start, dims, part, member)
 CROSS JOIN LATERAL generate_series(
         g.period_start::timestamp,
         g.period_start + CASE g.period_kind WHEN 'quarter' THEN interval '2 months'
                                             WHEN 'year' THEN interval '11 months' ELSE interval '0' END,
         interval '1 month') AS m
  JOIN indicator_report AS r
    ON r.indicator = g.indicator AND r.period_kind = 'month' AND r.period_start = m::date
   AND r.dims = g.dims AND r.part = g.part AND r.member = g.member
   FOR KEY SHARE OF r
"""

_UPSERT_VALUES = """
INSERT INTO indicator_cell_value AS v (indicator, period_kind, period_start, dims, part, kind, value, members)
SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[], $7::numeric[],
                     $8::bigint[])
ORDER BY 1, 2, 3, 4, 5
ON CONFLICT (indicator, period_kind, period_start, dims, part)
DO UPDATE SET value = v.value + EXCLUDED.value, members = v.members + EXCLUDED.members
"""

_DELETE_EMPTY_VALUES = """
DELETE FROM indicator_cell_value AS v
USING unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[])
    AS u(indicator, period_kind, period_start, dims, part)
WHERE v.indicator = u.indicator AND v.period_kind = u.period_kind AND v.period_start = u.period_start
  AND v.dims = u.dims AND v.part = u.part AND v.members <= 0
"""


def _add(into: CellValueDeltas, key: PartKey, kind: str, value: Decimal, members: int) -> None:
    _, old_value, old_members = into.get(key, (kind, Decimal(0), 0))
    into[key] = (kind, old_value + value, old_members + members)


async def upsert_members(
    connection: asyncpg.Connection, members: Mapping[MemberKey, int], into: CellValueDeltas
) -> None:
    """Apply the refcount deltas of distinct members (month rows) and count the cells they move."""
    columns = columns_of(members, 6)
    for indicator, kind, start, dims, part, live in await connection.fetch(
        _UPSERT_MEMBERS, *columns, list(members.values())
    ):
        _add(into, (indicator, kind, start, dims, part), "distinct", Decimal(live), live)
    negative = {
        (indicator, date(start.year, 1, 1), dims, part, member)
        for (indicator, _, start, dims, part, member), delta in members.items()
        if delta < 0
    }
    if negative:
        await connection.execute(_DELETE_EMPTY_YEARS, *columns_of(sorted(negative), 5))


async def insert_reports(
    connection: asyncpg.Connection, adds: Mapping[ReportKey, tuple[str, Decimal]], into: CellValueDeltas
) -> None:
    """Store the batch's month reports of latest parts, and let each compete for its quarter and year."""
    reports = list(adds.values())
    for indicator, kind, start, dims, part, value, members in await connection.fetch(
        INSERT_REPORTS,
        *columns_of(adds, 7),
        [order_key for order_key, _ in reports],
        [amount for _, amount in reports],
    ):
        _add(into, (indicator, kind, start, dims, part), "latest", value, members)


async def replace_retracted_winners(
    connection: asyncpg.Connection, removes: Iterable[ReportKey], into: CellValueDeltas
) -> None:
    """Replace retracted quarter and year winners (their month reports deleted) by the best report left."""
    retracted = [
        (indicator, cell_kind, cell_start, dims, part, member, event_id)
        for indicator, _, start, dims, part, member, event_id in removes
        for _, cell_kind, cell_start, _ in cells_of_month(indicator, start, dims)
        if cell_kind != "month"
    ]
    vacated = set()
    for indicator, kind, start, dims, part, member, amount in await connection.fetch(
        _DELETE_RETRACTED_WINNERS, *columns_of(retracted, 7)
    ):
        _add(into, (indicator, kind, start, dims, part), "latest", -amount, -1)
        vacated.add((indicator, kind, start, dims, part, member))
    if not vacated:
        return
    left = await connection.fetch(_REPORTS_LEFT, *columns_of(sorted(vacated), 6))
    if not left:
        return
    for indicator, kind, start, dims, part, value, members in await connection.fetch(
        _UPSERT_WINNERS, *columns_of(left, 9)
    ):
        _add(into, (indicator, kind, start, dims, part), "latest", value, members)


async def write_cell_values(connection: asyncpg.Connection, changes: CellValueDeltas) -> int:
    """Add the batch's changes to the cell values; a part left without members loses its value.

    Returns:
        The rows written.
    """
    keys = sorted(key for key, (_, value, members) in changes.items() if value or members)
    if not keys:
        return 0
    entries = [changes[key] for key in keys]
    await connection.execute(
        _UPSERT_VALUES,
        *columns_of(keys, 5),
        [kind for kind, _, _ in entries],
        [value for _, value, _ in entries],
        [members for _, _, members in entries],
    )
    if any(members < 0 for _, _, members in entries):
        await connection.execute(_DELETE_EMPTY_VALUES, *columns_of(keys, 5))
    return len(keys)
