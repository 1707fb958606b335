"""What a live read loads from the store for one period kind, in the caller's transaction.

Parts are stored per month; each query reads the months into the requested period kind. Sum cells
come from ``indicator_part``, live members from ``indicator_member``, per-cell winning reports from
``indicator_report``; the training indicators' enrolment records are joined by PostgreSQL
(`processors.read_enrolments`), and indicators served by complete rollups read their cells there.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from processors.indicators import aggregate_training, catalogue, enrolments
from processors.indicators.aggregate import Cell, RowIndex, StoredRow, index_rows
from processors.indicators.base import PeriodKind
from processors.read_enrolments import JOINED_PARTS, RAW_READS, PartKey, load_enrolments
from processors.read_rollups import reads_rollups, rolled_up_cells, rollups_complete

# Parts are stored per month; each query reads the months into the requested period kind ($1).
_SUMS = """
SELECT indicator, part, date_trunc($1, period_start::timestamp)::date AS period_start, dims,
       sum(value) AS value, NULL::text AS member, '' AS order_key
  FROM indicator_part
 WHERE kind = 'sum' AND (indicator, part) IN (SELECT * FROM unnest($2::text[], $3::text[]))
 GROUP BY indicator, part, 3, dims
"""
_MEMBERS = """
SELECT DISTINCT indicator, part, date_trunc($1, period_start::timestamp)::date AS period_start, dims,
       1::numeric AS value, member, '' AS order_key
  FROM indicator_member
 WHERE refcount > 0 AND (indicator, part) IN (SELECT * FROM unnest($2::text[], $3::text[]))
"""
# Per cell and member the winning report (the store's rule); the aggregation then picks across cells.
_REPORTS = """
SELECT DISTINCT ON (indicator, part, cell_start, dims, member)
       indicator, part, cell_start AS period_start, dims, amount AS value, member, order_key
  FROM (SELECT r.*, date_trunc($1, r.period_start::timestamp)::date AS cell_start
          FROM indicator_report AS r
         WHERE (r.indicator, r.part) IN (SELECT * FROM unnest($2::text[], $3::text[]))) AS r
 ORDER BY indicator, part, cell_start, dims, member, order_key DESC, event_id DESC
"""


async def load_rows(
    connection: asyncpg.Connection, period: PeriodKind, parts: Iterable[tuple[str, str]]
) -> list[StoredRow]:
    """The stored rows of `parts` (indicator, part) for one period kind."""
    by_kind: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for indicator_id, part in sorted(set(parts)):
        by_kind[catalogue.stored_part(indicator_id, part).kind].append((indicator_id, part))
    rows: list[StoredRow] = []
    # Many rows share a cell: parse each distinct dimensions text once (the mappings are read-only).
    parsed: dict[str, Mapping[str, str]] = {}
    for kind, query in (("sum", _SUMS), ("distinct", _MEMBERS), ("latest", _REPORTS)):
        wanted = by_kind.get(kind)
        if not wanted:
            continue
        records = await connection.fetch(query, period, [w[0] for w in wanted], [w[1] for w in wanted])
        rows.extend(
            StoredRow(
                indicator=record["indicator"],
                part=record["part"],
                period_start=record["period_start"],
                dimensions=_dimensions(parsed, record["dims"]),
                value=record["value"],
                member=record["member"],
                order_key=record["order_key"],
            )
            for record in records
        )
    return rows


def _dimensions(parsed: dict[str, Mapping[str, str]], text: str) -> Mapping[str, str]:
    found = parsed.get(text)
    if found is None:
        found = parsed[text] = json.loads(text)
    return found


async def load_targets(connection: asyncpg.Connection) -> dict[tuple[str, int], Decimal]:
    """CVF-16 annual targets by (audience, year), from table ``reach_target``."""
    records = await connection.fetch(
        "SELECT audience, year, target FROM reach_target WHERE indicator = 'CVF-16'"
    )
    return {(record["audience"], record["year"]): record["target"] for record in records}


@dataclass
class ReadInputs:
    """What a read loaded from the store for one period kind: the rows indexed, targets, rolled-up cells."""

    index: RowIndex
    targets: dict[tuple[str, int], Decimal]
    rolled_cells: dict[str, list[Cell]]


async def load_inputs(
    connection: asyncpg.Connection,
    indicators: Sequence[catalogue.Indicator],
    period: PeriodKind,
    by: Sequence[str] | None,
) -> ReadInputs:
    """Load the rows `indicators` aggregate for `period`, inside the caller's transaction.

    With `by`, indicators served by complete rollups take their cells of that grouping from them; with
    None (one load grouped several ways) every indicator's rows are loaded.
    """
    # The training aggregations read enrolment records that PostgreSQL joins (`read_enrolments`):
    # their parts' rows are loaded only where an aggregation reads them itself.
    joins = {
        frozenset((ref.indicator, ref.part) for ref in entry.reads)
        for entry in indicators
        if entry.aggregation in aggregate_training.AGGREGATIONS
    }
    # Indicators that qualify for rollups are read from them (a few rows per cell) once the store's
    # rollups are complete; then their part rows are not loaded.
    rolled = {entry.id for entry in indicators if reads_rollups(entry.id)} if by is not None else set()
    wanted = _stored_reads(indicators)
    rolled_cells: dict[str, list[Cell]] = {}
    if by is not None and rolled and await rollups_complete(connection):
        wanted = _stored_reads([entry for entry in indicators if entry.id not in rolled])
        for indicator_id in sorted(rolled):
            rolled_cells[indicator_id] = await rolled_up_cells(connection, indicator_id, period, by)
    rows = await load_rows(connection, period, wanted)
    # One join over every part these indicators declare serves them all: each aggregation
    # reads only the fields of the parts it declares (the property tests compare a read of
    # every indicator at once with one read per indicator).
    records = await load_enrolments(connection, period, frozenset[PartKey]().union(*joins))
    targets = await load_targets(connection) if any(entry.id == "CVF-16" for entry in indicators) else {}
    index = index_rows(rows)
    for parts in joins:
        index.preload(enrolments.join_enrolments, parts, records)
    return ReadInputs(index, targets, rolled_cells)


def _stored_reads(indicators: Sequence[catalogue.Indicator]) -> set[tuple[str, str]]:
    """The (indicator, part) rows the aggregations of `indicators` load (joined parts stay in SQL)."""
    return {
        (ref.indicator, ref.part)
        for entry in indicators
        for ref in entry.reads
        if entry.aggregation not in aggregate_training.AGGREGATIONS
        or (ref.indicator, ref.part) not in JOINED_PARTS
    } | {key for entry in indicators for key in RAW_READS.get(entry.aggregation, ())}
