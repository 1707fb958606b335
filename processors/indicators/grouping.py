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

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
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
