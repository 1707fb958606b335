"""The generic aggregation: each part an indicator reads, regrouped into the read's cells and broadcast; pure.

Rows and their rules come from `processors.indicators.grouping`; a cumulative indicator's tables at
every cut-off come from one pass in period order (`processors.indicators.cumulative`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from functools import partial
from typing import cast

from processors.indicators import catalogue
from processors.indicators.catalogue import Indicator, PartRef
from processors.indicators.cumulative import cumulative_tables
from processors.indicators.grouping import (
    Cell,
    GroupKey,
    ReadContext,
    RowIndex,
    StoredRow,
    Table,
    dims_of,
    latest_per_member,
    lookup,
    part_key,
    period_range,
    projector,
)


def part_table(
    rows: Sequence[StoredRow], kind: str, by: Sequence[str], available: Sequence[str], until: date | None
) -> tuple[Table, Table, Table]:
    """Aggregate one part per period and key; with `until`, everything up to it under period `until`.

    Returns:
        The values, and for latest parts the number of members behind each value and the largest
        member value (for the dominance rule of small-cell suppression).
    """
    values: Table = defaultdict(lambda: defaultdict(Decimal))
    counts: Table = defaultdict(lambda: defaultdict(Decimal))
    largest: Table = defaultdict(lambda: defaultdict(Decimal))

    def period(row: StoredRow) -> date:
        return row.period_start if until is None else until

    key_of = projector(by, available)

    if kind == "sum":
        for row in rows:
            if until is None or row.period_start <= until:
                values[period(row)][key_of(row.dimensions)] += row.value
    elif kind == "distinct":
        members: dict[date, dict[tuple[str, ...], set[str]]] = defaultdict(lambda: defaultdict(set))
        for row in rows:
            if row.member is not None and (until is None or row.period_start <= until):
                members[period(row)][key_of(row.dimensions)].add(row.member)
        for period_start, groups in members.items():
            for key, found in groups.items():
                values[period_start][key] = Decimal(len(found))
    else:
        for row in latest_per_member(rows, until).values():
            key = key_of(row.dimensions)
            values[period(row)][key] += row.value
            counts[period(row)][key] += 1
            largest[period(row)][key] = max(largest[period(row)][key], row.value)
    return values, counts, largest


def aggregate_parts(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """The generic aggregation: each part read by the indicator, regrouped and broadcast."""
    starts = (row.period_start for ref in indicator.reads for row in index.get(part_key(ref), ()))
    cutoffs: list[date | None] = list(period_range(starts, ctx)) if indicator.cumulative else [None]
    by = ctx.by
    kinds = [catalogue.stored_part(ref.indicator, ref.part).kind for ref in indicator.reads]

    def part_tables(ref: PartRef, kind: str) -> list[tuple[Table, Table, Table]]:
        """Per cut-off the tables of one part; cumulative ones from one pass in period order."""
        rows = index.get(part_key(ref), ())
        if indicator.cumulative:
            return cumulative_tables(rows, kind, by, dims_of(ref), cast(list[date], cutoffs))
        return [part_table(rows, kind, by, dims_of(ref), None)]

    # Indicators of one read that read the same part at the same cut-offs share its tables (read-only).
    per_part = [
        index.cached(
            (aggregate_parts, id(index.get(part_key(ref), ())), kind, by, dims_of(ref), tuple(cutoffs)),
            partial(part_tables, ref, kind),
        )
        for ref, kind in zip(indicator.reads, kinds, strict=True)
    ]
    cells: dict[GroupKey, Cell] = {}
    for position in range(len(cutoffs)):
        tables = []
        for number, (ref, kind) in enumerate(zip(indicator.reads, kinds, strict=True)):
            available = dims_of(ref)
            values, counts, largest = per_part[number][position]
            tables.append((ref, kind, available, values, counts, largest))
        full_keys = {
            (start, key)
            for _, _, available, values, _, _ in tables
            if set(by) <= set(available)
            for start, groups in values.items()
            for key in groups
        }
        for start, key in full_keys:
            parts: dict[str, Decimal] = {}
            for ref, kind, available, values, counts, largest in tables:
                parts[ref.part] = lookup(values.get(start, {}), key, available, by)
                if kind == "latest":
                    parts[f"n_{ref.part}"] = lookup(counts.get(start, {}), key, available, by)
                    parts[f"max_{ref.part}"] = lookup(largest.get(start, {}), key, available, by)
            cells[(start, key)] = Cell(start, dict(zip(by, key, strict=True)), parts)
    return [cells[key] for key in sorted(cells)]
