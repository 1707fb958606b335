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

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal

from processors.indicators.grouping import StoredRow, Table, beats, projector

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


def _arrivals(ordered: list[StoredRow], cutoffs: Sequence[date]) -> Iterator[tuple[date, list[StoredRow]]]:
    """Each cut-off (ascending) with the rows, in period order, that reach it and no earlier cut-off."""
    position = 0
    for until in cutoffs:
        start = position
        while position < len(ordered) and ordered[position].period_start <= until:
            position += 1
        yield until, ordered[start:position]


def _sums(
    ordered: list[StoredRow], by: Sequence[str], available: Sequence[str], cutoffs: Sequence[date]
) -> list[tuple[Table, Table, Table]]:
    key_of = projector(by, available)
    running: dict[Key, Decimal] = {}
    tables: list[tuple[Table, Table, Table]] = []
    for until, arrived in _arrivals(ordered, cutoffs):
        for row in arrived:
            key = key_of(row.dimensions)
            running[key] = running.get(key, Decimal(0)) + row.value
        tables.append(({until: dict(running)} if running else {}, {}, {}))
    return tables


def _distinct(
    ordered: list[StoredRow], by: Sequence[str], available: Sequence[str], cutoffs: Sequence[date]
) -> list[tuple[Table, Table, Table]]:
    key_of = projector(by, available)
    members: dict[Key, set[str]] = {}
    tables: list[tuple[Table, Table, Table]] = []
    for until, arrived in _arrivals(ordered, cutoffs):
        for row in arrived:
            if row.member is not None:
                members.setdefault(key_of(row.dimensions), set()).add(row.member)
        counted = {key: Decimal(len(found)) for key, found in members.items()}
        tables.append(({until: counted} if counted else {}, {}, {}))
    return tables


class _Members:
    """One key's latest members: their sum, count and largest value, kept as members come and go.

    The sum is kept exactly (no rounding at the amounts' scale) and carries the exponent a sum from zero
    over the members would have, the smallest of theirs and zero's, so it equals that sum in value and in
    its text. The largest value is recomputed only when the member holding it leaves.
    """

    __slots__ = ("exponents", "members", "top", "total")

    def __init__(self) -> None:
        self.members: dict[str, Decimal] = {}
        self.total = Decimal(0)
        self.exponents: Counter[int | str] = Counter()
        self.top: Decimal | None = Decimal(0)

    def add(self, member: str, value: Decimal) -> None:
        self.members[member] = value
        self.total += value
        self.exponents[value.as_tuple().exponent] += 1
        if self.top is not None:
            self.top = max(self.top, value)

    def remove(self, member: str) -> None:
        value = self.members.pop(member)
        self.total -= value
        exponent = value.as_tuple().exponent
        self.exponents[exponent] -= 1
        if not self.exponents[exponent]:
            del self.exponents[exponent]
        if self.top is not None and value >= self.top:
            self.top = None

    def tables(self) -> tuple[Decimal, Decimal, Decimal]:
        """The sum, the count and the largest value (never below zero), as `grouping` computes them."""
        if self.top is None:
            top = Decimal(0)
            for value in self.members.values():
                top = max(top, value)
            self.top = top
        if any(isinstance(exponent, str) for exponent in self.exponents):
            # A special value (NaN, infinity) among them: the plain sum, in their order.
            total = sum(self.members.values(), Decimal(0))
        else:
            exponent = min(0, *(int(found) for found in self.exponents))
            total = self.total
            if total.as_tuple().exponent != exponent:
                total = total.quantize(Decimal(1).scaleb(exponent))
        return total, Decimal(len(self.members)), self.top


def _latest(
    ordered: list[StoredRow], by: Sequence[str], available: Sequence[str], cutoffs: Sequence[date]
) -> list[tuple[Table, Table, Table]]:
    key_of = projector(by, available)
    best: dict[str, tuple[Key, StoredRow]] = {}
    by_key: dict[Key, _Members] = {}
    values: dict[Key, Decimal] = {}
    counts: dict[Key, Decimal] = {}
    largest: dict[Key, Decimal] = {}
    tables: list[tuple[Table, Table, Table]] = []
    for until, arrived in _arrivals(ordered, cutoffs):
        changed: set[Key] = set()
        for row in arrived:
            if row.member is None:
                continue
            current = best.get(row.member)
            if current is not None and not beats(row, current[1]):
                continue
            if current is not None:
                by_key[current[0]].remove(row.member)
                changed.add(current[0])
            key = key_of(row.dimensions)
            best[row.member] = (key, row)
            members = by_key.get(key)
            if members is None:
                members = by_key[key] = _Members()
            members.add(row.member, row.value)
            changed.add(key)
        for key in changed:
            found = by_key[key]
            if found.members:
                values[key], counts[key], largest[key] = found.tables()
            else:
                del by_key[key]
                for table in (values, counts, largest):
                    table.pop(key, None)
        if values:
            tables.append(({until: dict(values)}, {until: dict(counts)}, {until: dict(largest)}))
        else:
            tables.append(({}, {}, {}))
    return tables
