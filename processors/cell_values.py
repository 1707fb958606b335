"""Cell values: distinct and latest parts kept per month, quarter and year cell, for the relay.

Parts are stored per month, and a quarter or year merged from its months costs a read of every member
or report of the cell. The relay publishes the cells the batches changed, so it reads their values here
instead, by index lookups (`processors.cells.relayed_parts`).

Keeping them is split in two, so that a batch pays little for it:

- each batch notes, in its own transaction and in the statements that write its month rows, what the
  values depend on, appended to two tables without indexes (migration 0424): the month member rows it
  took across zero, and the month reports it stored or deleted (`NOTE_*`);
- the relay, once it has taken a round's outbox marks, applies every noted change in its round's
  transaction (`apply_noted_changes`), before it reads the cells:

  - a distinct part's member carries, per year, the months it is live in (a bit mask); the noted
    flips, merged per member by exclusive-or, change its bits, and the bits before and after give the
    change of every month, quarter and year count that gained or lost the member;
  - a latest part keeps its winning report per quarter or year cell and member; a stored report that
    beats it replaces it, and a retracted winner is replaced by the best report left in the cell's
    months (a month's latest values are read from its own reports, a month at most).

Only the relay and a recompute apply the noted changes, one at a time (an advisory lock), so the kept
tables have one writer. Each round takes every noted report in one statement, so it sees the stored and
the deleted reports of one snapshot, and the note that stored a report is always taken no later than
its deletion's (the batch that stored it committed first). That keeps the winners exact while batches
go on:

- the noted deletions are applied after the noted stored reports: a report stored and deleted within
  one take may win as a candidate, and its deletion then replaces it by the best report left (a report
  deleted before that read is not among them), so a report never wins after its deletion was applied;
- a report chosen (as a candidate, or as the best left after a retracted winner) while a batch deletes
  it is a winner only until that deletion is applied, in the next round, and the best report left
  then replaces it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import asyncpg

from processors.base import PartKey, cells_of_month, columns_of
from processors.deltas import ReportKey

# Per cell part: (part kind, value delta, members delta).
CellValueDeltas = dict[PartKey, tuple[str, Decimal, int]]

_FLIPS = """RETURNING new.indicator, new.period_start, new.dims, new.part, new.member, new.refcount AS after,
          coalesce(old.refcount, 0) AS before
)
INSERT INTO indicator_member_flip (indicator, year_start, dims, part, member, months)
SELECT indicator, date_trunc('year', period_start::timestamp)::date, dims, part, member,
       1 << (extract(month FROM period_start)::int - 1)
  FROM changed
 WHERE (after > 0) <> (before > 0)
"""
_NOTED_REPORTS = """RETURNING r.indicator, r.period_start, r.dims, r.part, r.member, r.event_id, r.order_key,
          r.amount
)
INSERT INTO indicator_report_change (indicator, month_start, dims, part, member, event_id, order_key,
                                     amount, retracted)
SELECT indicator, period_start, dims, part, member, event_id, order_key, amount, {retracted}
  FROM noted
"""


def noting_member_flips(upsert: str) -> str:
    """`upsert`, the month member upsert (table alias ``m``, no RETURNING), noting its zero crossings.

    PostgreSQL 18's `RETURNING old/new` gives the values of the row version the upsert locked, so
    concurrent batches note each crossing once.
    """
    return "WITH changed AS (" + upsert + _FLIPS


def noting_reports(statement: str, *, retracted: bool) -> str:
    """`statement`, an insert or delete of month reports (table alias ``r``, no RETURNING), noting them.

    It notes the reports it stored or deleted (a duplicate stored before is neither).
    """
    return "WITH noted AS (" + statement + _NOTED_REPORTS.format(retracted=str(retracted).lower())


_REPORT_COLUMNS = """unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::text[],
                  $7::uuid[], $8::text[], $9::numeric[])
        AS u(indicator, period_kind, period_start, dims, part, member, event_id, order_key, amount)"""

# The relay's side. Every noted flip, merged per member year, changes its months; the bits before and
# after give the change of every month, quarter and year count the flips touched. Member years left
# without a live month are returned too (`emptied`), to be deleted.
_APPLY_FLIPS = """
WITH taken AS (
    DELETE FROM indicator_member_flip RETURNING indicator, year_start, dims, part, member, months
), flipped AS (
    SELECT indicator, year_start, dims, part, member, bit_xor(months) AS bits
      FROM taken
     GROUP BY 1, 2, 3, 4, 5
    HAVING bit_xor(months) <> 0
), years AS (
    INSERT INTO indicator_member_year AS y (indicator, year_start, dims, part, member, months)
    SELECT * FROM flipped ORDER BY member, part, dims, year_start, indicator  -- the key's order (0426)
    ON CONFLICT (indicator, year_start, dims, part, member) DO UPDATE SET months = y.months # EXCLUDED.months
    RETURNING new.indicator, new.year_start, new.dims, new.part, new.member, new.months AS after,
              coalesce(old.months, 0) AS before
), patterns AS (
    -- Members of a cell year whose months moved alike count together: far fewer rows to spread.
    SELECT indicator, year_start, dims, part, before, after, count(*) AS members
      FROM years
     GROUP BY 1, 2, 3, 4, 5, 6
), moved AS (
    SELECT p.indicator, s.period_kind,
           (p.year_start + make_interval(months => s.month_offset))::date AS start, p.dims, p.part,
           sum((((p.after & s.mask) <> 0)::int - ((p.before & s.mask) <> 0)::int) * p.members) AS live
      FROM patterns AS p
      JOIN alcance_year_spans() AS s ON (p.after # p.before) & s.mask <> 0
     GROUP BY 1, 2, 3, 4, 5
)
SELECT indicator, period_kind, start, dims, part, live, NULL::text AS emptied FROM moved WHERE live <> 0
UNION ALL
SELECT indicator, 'year', year_start, dims, part, 0, member FROM years WHERE after = 0
"""

_DELETE_EMPTY_YEARS = """
DELETE FROM indicator_member_year AS y
USING unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[])
    AS u(indicator, year_start, dims, part, member)
WHERE y.indicator = u.indicator AND y.year_start = u.year_start AND y.dims = u.dims AND y.part = u.part
  AND y.member = u.member AND y.months = 0
"""

# The best candidate per cell and member replaces the winner it beats; the amount it replaced (none for
# a member new to the cell) tells how the cell's value moved. `{candidates}` yields the candidates, from
# the common table expressions `{taken}` when they need any. Keys are sorted in the winners' key order
# (migration 0426), member first.
_WINNERS = """
WITH {taken}candidate AS (
    SELECT DISTINCT ON (member, part, dims, period_start, period_kind, indicator)
           indicator, period_kind, period_start, dims, part, member, event_id, order_key, amount
      FROM {candidates}
     ORDER BY member, part, dims, period_start, period_kind, indicator, order_key DESC, event_id DESC
), won AS (
    INSERT INTO indicator_report_winner AS w
           (indicator, period_kind, period_start, dims, part, member, event_id, order_key, amount)
    SELECT * FROM candidate ORDER BY member, part, dims, period_start, period_kind, indicator
    ON CONFLICT (indicator, period_kind, period_start, dims, part, member)
    DO UPDATE SET event_id = EXCLUDED.event_id, order_key = EXCLUDED.order_key, amount = EXCLUDED.amount
    WHERE (EXCLUDED.order_key, EXCLUDED.event_id) > (w.order_key, w.event_id)
    RETURNING new.indicator, new.period_kind, new.period_start, new.dims, new.part, new.amount,
              old.amount AS replaced
)
SELECT indicator, period_kind, period_start, dims, part, sum(amount - coalesce(replaced, 0)) AS value,
       count(*) FILTER (WHERE replaced IS NULL)::int AS members{retracted_columns}
  FROM won
 GROUP BY 1, 2, 3, 4, 5
"""
# Every noted report, taken at once: each stored one is a candidate for its quarter and year, and the
# retracted ones are returned (`member` set) for their winners to be replaced after (module docstring).
_TAKE_NOTES = """taken AS (
    DELETE FROM indicator_report_change
    RETURNING indicator, month_start, dims, part, member, event_id, order_key, amount, retracted
), """
_NOTED_CANDIDATES = """(
    SELECT s.indicator, k.period_kind, k.period_start, s.dims, s.part, s.member, s.event_id, s.order_key,
           s.amount
      FROM taken AS s CROSS JOIN LATERAL alcance_periods(s.month_start) AS k
     WHERE NOT s.retracted AND k.period_kind <> 'month'
) AS c"""
_RETRACTED = """
UNION ALL
SELECT indicator, 'month', month_start, dims, part, NULL, NULL, member, event_id FROM taken WHERE retracted
"""
_APPLY_NOTED_REPORTS = (
    _WINNERS.format(
        taken=_TAKE_NOTES,
        candidates=_NOTED_CANDIDATES,
        retracted_columns=", NULL::text AS member, NULL::uuid AS event_id",
    )
    + _RETRACTED
)
# Candidates for given quarter and year cells (the reports left after a retracted winner).
_UPSERT_WINNERS = _WINNERS.format(taken="", candidates=_REPORT_COLUMNS, retracted_columns="")

# Winners whose report was retracted leave; the best report left in the cell's months replaces each.
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


_ONE_APPLIER = "hashtext('alcance cell values')"
_ONE_APPLIER_XACT = f"SELECT pg_advisory_xact_lock({_ONE_APPLIER})"
# Complete (no batch ran without them since a recompute) and not emptied by a crash (migration 0425).
_USABLE = "SELECT complete AND EXISTS (SELECT FROM indicator_cell_value_kept) FROM indicator_cell_value_state"
_LOST = (
    "SELECT complete AND NOT EXISTS (SELECT FROM indicator_cell_value_kept) FROM indicator_cell_value_state"
)


async def kept_values_usable(connection: asyncpg.Connection | asyncpg.Pool) -> bool:
    """Whether the kept values hold every cell (else the relay merges its cells from the month rows)."""
    return bool(await connection.fetchval(_USABLE))


async def refill_lost_values(pool: asyncpg.Pool) -> bool:
    """Fill the kept values again from the month rows if a crash emptied them (their tables are UNLOGGED).

    Returns:
        Whether they had been lost and were filled.
    """
    async with pool.acquire() as connection:
        if not await connection.fetchval(_LOST):
            return False
        # Taken before the transaction, so that its snapshot follows every applier before it.
        await connection.execute(f"SELECT pg_advisory_lock({_ONE_APPLIER})")
        try:
            async with connection.transaction(isolation="repeatable_read"):
                if not await connection.fetchval(_LOST):
                    return False
                await connection.execute("SELECT alcance_fill_cell_values()")
        finally:
            await connection.execute(f"SELECT pg_advisory_unlock({_ONE_APPLIER})")
    return True


def _add(into: CellValueDeltas, key: PartKey, kind: str, value: Decimal, members: int) -> None:
    _, old_value, old_members = into.get(key, (kind, Decimal(0), 0))
    into[key] = (kind, old_value + value, old_members + members)


async def apply_noted_changes(connection: asyncpg.Connection) -> int:
    """Apply every change the committed batches noted to the kept values (in the caller's transaction).

    While the values are incomplete (batches ran without them), what was noted cannot make them whole:
    it is dropped, and a recompute rebuilds them. After a crash emptied them, it is dropped too: the
    month rows hold it, and `refill_lost_values` fills them from those.

    Returns:
        The cell values written.
    """
    # One applier at a time (the relay's rounds already are; a recompute or a test may apply too).
    await connection.execute(_ONE_APPLIER_XACT)
    if not await kept_values_usable(connection):
        await connection.execute("DELETE FROM indicator_member_flip")
        await connection.execute("DELETE FROM indicator_report_change")
        return 0
    values: CellValueDeltas = {}
    await _apply_flips(connection, values)
    deleted: list[ReportKey] = []
    for indicator, kind, start, dims, part, value, members, member, event_id in await connection.fetch(
        _APPLY_NOTED_REPORTS
    ):
        if member is None:
            _add(values, (indicator, kind, start, dims, part), "latest", value, members)
        else:
            deleted.append((indicator, kind, start, dims, part, member, event_id))
    if deleted:
        await replace_retracted_winners(connection, deleted, values)
    return await write_cell_values(connection, values)


async def _apply_flips(connection: asyncpg.Connection, into: CellValueDeltas) -> None:
    emptied = []
    for indicator, kind, start, dims, part, live, member in await connection.fetch(_APPLY_FLIPS):
        if member is None:
            _add(into, (indicator, kind, start, dims, part), "distinct", Decimal(live), live)
        else:
            emptied.append((indicator, start, dims, part, member))
    if emptied:
        await connection.execute(_DELETE_EMPTY_YEARS, *columns_of(sorted(emptied), 5))


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
