"""The tables of a cumulative part at every cut-off, from one pass over its rows in period order; pure.

A cumulative indicator (stocks, returns to date) has a value at the end of every period from its first
row on. Regrouping every row up to each cut-off cost rows x periods, which at a year of months over a
long history dominated a read; here the rows are read once in period order and the running tables are
copied at each cut-off, so the cost is the rows plus the answer (keys x periods). The tables of each
cut-off equal those `grouping` regroups up to it: sums add up, distinct parts count the
members seen so far, latest parts keep per member the best row so far (`grouping.latest_per_member`'s
rank) and recompute only the keys whose members changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from processors.indicators.grouping import StoredRow, Table, beats, project

Key = tuple[str, ...]


def cumulative_tables(
    rows: Sequence[StoredRow], kind: str, by: Sequence[str], available: Sequence[str], cutoffs: Sequence[date]
) -> list[tuple[Table, Table, Table]]:
    """Per cut-off (ascending) the values, member counts and largest values up to it, under its period."""
    # A stable sort: rows of one period keep their stored order, which breaks exact ties as before.
    ordered = sorted(rows, key=lambda row: row.period_start)
    if kind == "sum":
        return _sums(ordered, by, available, cutoffs)
    if kind == "distinct":
        return _distinct(ordered, by, available, cutoffs)
    return _latest(ordered, by, available, cutoffs)


def _sums(
    ordered: list[StoredRow], by: Sequence[str], available: Sequence[str], cutoffs: Sequence[date]
) -> list[tuple[Table, Table, Table]]:
    running: dict[Key, Decimal] = {}
    tables: list[tuple[Table, Table, Table]] = []
    position = 0
    for until in cutoffs:
        while position < len(ordered) and ordered[position].period_start <= until:
            row = ordered[position]
            position += 1
            key = project(row.dimensions, by, available)
            running[key] = running.get(key, Decimal(0)) + row.value
        tables.append(({until: dict(running)} if running else {}, {}, {}))
    return tables


def _distinct(
    ordered: list[StoredRow], by: Sequence[str], available: Sequence[str], cutoffs: Sequence[date]
) -> list[tuple[Table, Table, Table]]:
    members: dict[Key, set[str]] = {}
    tables: list[tuple[Table, Table, Table]] = []
    position = 0
    for until in cutoffs:
        while position < len(ordered) and ordered[position].period_start <= until:
            row = ordered[position]
            position += 1
            if row.member is not None:
                members.setdefault(project(row.dimensions, by, available), set()).add(row.member)
        counted = {key: Decimal(len(found)) for key, found in members.items()}
        tables.append(({until: counted} if counted else {}, {}, {}))
    return tables


def _latest(
    ordered: list[StoredRow], by: Sequence[str], available: Sequence[str], cutoffs: Sequence[date]
) -> list[tuple[Table, Table, Table]]:
    best: dict[str, tuple[Key, StoredRow]] = {}
    by_key: dict[Key, dict[str, StoredRow]] = {}
    values: dict[Key, Decimal] = {}
    counts: dict[Key, Decimal] = {}
    largest: dict[Key, Decimal] = {}
    tables: list[tuple[Table, Table, Table]] = []
    position = 0
    for until in cutoffs:
        changed: set[Key] = set()
        while position < len(ordered) and ordered[position].period_start <= until:
            row = ordered[position]
            position += 1
            if row.member is None:
                continue
            current = best.get(row.member)
            if current is not None and not beats(row, current[1]):
                continue
            if current is not None:
                del by_key[current[0]][row.member]
                changed.add(current[0])
            key = project(row.dimensions, by, available)
            best[row.member] = (key, row)
            by_key.setdefault(key, {})[row.member] = row
            changed.add(key)
        for key in changed:
            found = by_key[key]
            if not found:
                del by_key[key]
                for table in (values, counts, largest):
                    table.pop(key, None)
                continue
            # As `grouping` adds them: from zero, the largest never below zero.
            values[key] = sum((row.value for row in found.values()), Decimal(0))
            counts[key] = Decimal(len(found))
            top = Decimal(0)
            for row in found.values():
                top = max(top, row.value)
            largest[key] = top
        if values:
            tables.append(({until: dict(values)}, {until: dict(counts)}, {until: dict(largest)}))
        else:
            tables.append(({}, {}, {}))
    return tables
