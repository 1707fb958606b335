"""Read-time aggregation's toolkit: stored rows, their index, and parts regrouped into cells; pure.

The input is what the store holds for one period kind: one row per sum cell, and one row per member
for distinct and latest parts. The same code runs over the in-memory reference store of the tests and
over rows read from PostgreSQL, so the rules live in one place:

* sum parts add up; distinct parts count distinct members across the cells that are merged;
* latest parts keep, per member, the row with the highest order key across every cell of the period
  kind (a deal reported in March and again in June counts once, where its latest report falls);
* a part whose indicator lacks a requested dimension is broadcast to every group (the stock of firms
  of country C is the denominator of every recipient R in PLGN-16);
* cumulative indicators read every row up to the end of each period (stocks, returns to date).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple, TypeVar, cast

from processors.indicators import catalogue
from processors.indicators.base import UNKNOWN, PeriodKind
from processors.indicators.catalogue import Indicator, PartRef
from processors.indicators.periods import period_end, period_start

WILDCARD = "*"

GroupKey = tuple[date, tuple[str, ...]]


class StoredRow(NamedTuple):
    """One row of the store for one period kind (a named tuple: reads build hundreds of thousands).

    Attributes:
        indicator, part: The stored part.
        period_start: First day of the period the row belongs to.
        dimensions: The part's full grain.
        value: For sum cells the total; for distinct members 1; for latest members the member's value.
        member: The member of a distinct or latest row; None for sum cells.
        order_key: The order key of a latest member's winning report.
    """

    indicator: str
    part: str
    period_start: date
    dimensions: Mapping[str, str]
    value: Decimal
    member: str | None = None
    order_key: str = ""


@dataclass(frozen=True)
class ReadContext:
    """What a read asks for, and the settings the aggregation depends on.

    Attributes:
        period: Period kind of the rows and of the output cells.
        by: Dimensions to group by (a subset of the indicator's dimensions); empty for totals.
        as_of: The instant the read is made at: closes cohorts and ROI windows.
        cohort_grace_days: Days after an offering ends before its cohort counts as closed.
        targets: CVF-16 annual targets by (audience, year).
    """

    period: PeriodKind
    by: tuple[str, ...] = ()
    as_of: datetime = field(default_factory=lambda: datetime.now(UTC))
    cohort_grace_days: int = 14
    targets: Mapping[tuple[str, int], Decimal] = field(default_factory=dict)


@dataclass
class Cell:
    """One output cell: the aggregated parts of one period and one combination of the `by` dimensions."""

    period_start: date
    dimensions: dict[str, str]
    parts: dict[str, Decimal]
    provisional: bool = False


Joined = TypeVar("Joined")


class RowIndex(dict[tuple[str, str], list[StoredRow]]):
    """Stored rows grouped by (indicator, part), with the joins aggregations build from them.

    Several indicators aggregate the same join (the training indicators read enrolment records
    joined from up to six parts), so a read of many indicators builds each join once per distinct
    set of parts: an indicator sees only the parts it declares (`only`), and views with the same
    parts share their joins.
    """

    def __init__(
        self,
        joins: dict[tuple[Callable[[RowIndex], Any], frozenset[tuple[str, str]]], Any] | None = None,
        declared: frozenset[tuple[str, str]] | None = None,
        preloaded: dict[Hashable, Any] | None = None,
    ):
        super().__init__()
        self._joins = {} if joins is None else joins
        self._declared = declared
        self._preloaded = {} if preloaded is None else preloaded

    def only(self, keys: Iterable[tuple[str, str]]) -> RowIndex:
        """The rows of `keys` alone, sharing this index's joins."""
        wanted = frozenset(keys)
        view = RowIndex(self._joins, wanted, self._preloaded)
        for key in wanted:
            found = self.get(key)
            if found is not None:
                view[key] = found
        return view

    def joined(self, build: Callable[[RowIndex], Joined]) -> Joined:
        """`build(self)`, computed once for this set of parts; the rows must not change afterwards.

        A join preloaded for the parts this view was made for (`preload`) is taken as it is.
        """
        preloaded = (build, self._declared)
        if self._declared is not None and preloaded in self._preloaded:
            return cast(Joined, self._preloaded[preloaded])
        memo = (build, frozenset(self))
        if memo not in self._joins:
            self._joins[memo] = build(self)
        return cast(Joined, self._joins[memo])

    def cached(self, key: Hashable, build: Callable[[], Joined]) -> Joined:
        """`build()`, computed once per `key` for this index and its views (one read, one context).

        `key` must identify everything `build` depends on besides the read's context.
        """
        memo = (_CACHED, key)
        if memo not in self._preloaded:
            self._preloaded[memo] = build()
        return cast(Joined, self._preloaded[memo])

    def preload(
        self, build: Callable[[RowIndex], Joined], parts: Iterable[tuple[str, str]], joined: Joined
    ) -> None:
        """Give `joined` as what `build` makes of the views made for exactly `parts` (`only`).

        The store joins some parts itself (`processors.read_enrolments`): then the rows of those parts
        stay in PostgreSQL, and the views of an indicator that declares `parts` find the join here.
        """
        self._preloaded[(build, frozenset(parts))] = joined


_CACHED = object()  # the memo keys of `RowIndex.cached`, apart from joins

Aggregator = Callable[[Indicator, RowIndex, ReadContext], list[Cell]]


def dims_of(ref: PartRef) -> tuple[str, ...]:
    """The dimensions rows of a stored part carry: those of the indicator that stores it."""
    return catalogue.get(ref.indicator).dimensions


def project(dimensions: Mapping[str, str], by: Sequence[str], available: Sequence[str]) -> tuple[str, ...]:
    """The group key of a row: its value of each `by` dimension, or the wildcard if it lacks one."""
    return tuple(dimensions.get(name, UNKNOWN) if name in available else WILDCARD for name in by)


def projector(by: Sequence[str], available: Sequence[str]) -> Callable[[Mapping[str, str]], tuple[str, ...]]:
    """`project` for many rows: each distinct dimensions object is projected once.

    The rows of a read share one dimensions object per distinct grain, far fewer than rows; the memo is
    keyed by identity and holds the objects, so an id stays theirs while it lives.
    """
    memo: dict[int, tuple[Mapping[str, str], tuple[str, ...]]] = {}

    def key_of(dimensions: Mapping[str, str]) -> tuple[str, ...]:
        found = memo.get(id(dimensions))
        if found is None:
            found = memo[id(dimensions)] = (dimensions, project(dimensions, by, available))
        return found[1]

    return key_of


def lookup(
    table: Mapping[tuple[str, ...], Decimal],
    key: tuple[str, ...],
    available: Sequence[str],
    by: Sequence[str],
) -> Decimal:
    """The value of `table` for a full group key, seen through a part that has only `available` dims."""
    projected = tuple(value if name in available else WILDCARD for name, value in zip(by, key, strict=True))
    return table.get(projected, Decimal(0))


def latest_per_member(rows: Iterable[StoredRow], until: date | None = None) -> dict[str, StoredRow]:
    """Per member, the row with the highest order key (ties broken deterministically), up to `until`."""
    best: dict[str, StoredRow] = {}
    for row in rows:
        if row.member is None or (until is not None and row.period_start > until):
            continue
        current = best.get(row.member)
        if current is None or beats(row, current):
            best[row.member] = row
    return best


def beats(row: StoredRow, current: StoredRow) -> bool:
    """Whether `row` outranks `current` as a member's latest row (`latest_per_member`'s rank)."""
    # The order key decides nearly always; the whole rank is built only when the keys tie.
    if row.order_key != current.order_key:
        return row.order_key > current.order_key
    return _rank(row) > _rank(current)


def _rank(row: StoredRow) -> tuple[str, date, tuple[tuple[str, str], ...], Decimal]:
    return (row.order_key, row.period_start, tuple(sorted(row.dimensions.items())), row.value)


Table = dict[date, dict[tuple[str, ...], Decimal]]


def _part_table(
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
    # Imported here: the cumulative tables build on this module's rows and rank.
    from processors.indicators.cumulative import cumulative_tables

    starts = (row.period_start for ref in indicator.reads for row in index.get(part_key(ref), ()))
    cutoffs: list[date | None] = list(period_range(starts, ctx)) if indicator.cumulative else [None]
    by = ctx.by
    kinds = [catalogue.stored_part(ref.indicator, ref.part).kind for ref in indicator.reads]

    def part_tables(ref: PartRef, kind: str) -> list[tuple[Table, Table, Table]]:
        """Per cut-off the tables of one part; cumulative ones from one pass in period order."""
        rows = index.get(part_key(ref), ())
        if indicator.cumulative:
            return cumulative_tables(rows, kind, by, dims_of(ref), cast(list[date], cutoffs))
        return [_part_table(rows, kind, by, dims_of(ref), None)]

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


def period_range(starts: Iterable[date], ctx: ReadContext) -> list[date]:
    """Every period from the earliest of `starts` to the later of the latest one and the as-of period.

    Cumulative indicators (stocks, returns to date) have a value in every period after their first
    row, whether or not anything changed in it.
    """
    found = sorted(set(starts))
    if not found:
        return []
    last = max(found[-1], period_start(ctx.as_of, ctx.period))
    periods = [found[0]]
    while periods[-1] < last:
        periods.append(period_end(periods[-1], ctx.period).date())
    return periods


def part_key(ref: PartRef) -> tuple[str, str]:
    """The (indicator, part) a row index files `ref` under."""
    return (ref.indicator, ref.part)


def index_rows(rows: Iterable[StoredRow]) -> RowIndex:
    """Group rows by (indicator, part)."""
    index = RowIndex()
    for row in rows:
        key = (row.indicator, row.part)
        found = index.get(key)
        if found is None:
            index[key] = [row]
        else:
            found.append(row)
    return index


def quantile(values: Sequence[Decimal], q: Decimal) -> Decimal:
    """The q-quantile by linear interpolation between closest ranks (q in [0, 1]; values not empty)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
