"""The in-memory arithmetic of a batch: part deltas aggregated per month cell before any SQL.

Pure: no I/O. The store applies these deltas (`processors.store.apply_deltas`); `parts_json` writes the
parts a fact contributed, read back by `processors.base.part_from_json` when a retraction negates them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from uuid import UUID

from pydantic_core import to_json

from processors.base import FactIn, PartKey, dims_key, month_of
from processors.indicators.base import Part, PeriodKind

# A part key extended by the member (distinct parts), and by the reporting event (latest parts): flat,
# so that a batch's keys transpose straight into the columns of its statements.
MemberKey = tuple[str, PeriodKind, date, str, str, str]
ReportKey = tuple[str, PeriodKind, date, str, str, str, UUID]


@dataclass
class PartDeltas:
    """The net effect of a set of contributions and negations, aggregated in memory before any SQL.

    Values are immutable, so `copy` is a cheap shallow copy that later `add` calls do not share.
    Every key is a month cell: parts are stored per month, and quarters and years are derived from
    their months when read (see `cell_parts`), which keeps one stored row per part instead of three.

    Attributes:
        sum_amount: Per part of kind "sum": value delta.
        sum_count: Per part of kind "sum": contributions delta.
        distinct: Per (part, member) of kind "distinct": reference-count delta.
        latest_add: Per (part, member, event id) of kind "latest": the report to add (order key, amount).
        latest_remove: Reports of kind "latest" to remove (their event was retracted).
    """

    sum_amount: dict[PartKey, Decimal] = field(default_factory=dict)
    sum_count: dict[PartKey, int] = field(default_factory=dict)
    distinct: dict[MemberKey, int] = field(default_factory=dict)
    latest_add: dict[ReportKey, tuple[str, Decimal]] = field(default_factory=dict)
    latest_remove: set[ReportKey] = field(default_factory=set)

    def copy(self) -> PartDeltas:
        """An independent copy."""
        return PartDeltas(
            dict(self.sum_amount),
            dict(self.sum_count),
            dict(self.distinct),
            dict(self.latest_add),
            set(self.latest_remove),
        )

    def add(self, part: Part, event_id: UUID, sign: int = 1) -> None:
        """Account for one part of one event in the cell of its month.

        Args:
            part: The contribution.
            event_id: The event that contributed it (identifies "latest" reports).
            sign: +1 to apply the contribution, -1 to negate it (a retraction).
        """
        key: PartKey = (
            part.indicator,
            "month",
            month_of(part.occurred_at),
            cached_dims_key(part.dimensions),
            part.part,
        )
        kind = part.kind
        if kind == "distinct":
            member_key: MemberKey = (*key, part.member or "")
            self.distinct[member_key] = self.distinct.get(member_key, 0) + sign
        elif kind == "sum":
            self.sum_amount[key] = self.sum_amount.get(key, _ZERO) + part.amount * sign
            self.sum_count[key] = self.sum_count.get(key, 0) + sign
        else:
            report: ReportKey = (*key, part.member or "", event_id)
            if sign > 0:
                # One event reporting a member twice in a cell stores one report, whatever the order
                # of its parts: the higher (order key, amount).
                value = (part.order_key, part.amount)
                stored = self.latest_add.get(report)
                if stored is None or value > stored:
                    self.latest_add[report] = value
            elif report in self.latest_add:
                del self.latest_add[report]
            else:
                self.latest_remove.add(report)

    def discount(self, part: Part, event_id: UUID) -> None:
        """Take back `part`, added ahead for an event that proved a duplicate or retracted on arrival.

        Unlike a retraction (`add` with sign -1), it never removes a stored report: the report of a
        duplicate is the stored one of its first copy, and an event may report one member twice.
        """
        if part.kind != "latest":
            self.add(part, event_id, sign=-1)
            return
        dims = cached_dims_key(part.dimensions)
        report: ReportKey = (
            part.indicator,
            "month",
            month_of(part.occurred_at),
            dims,
            part.part,
            part.member or "",
            event_id,
        )
        self.latest_add.pop(report, None)


_ZERO = Decimal(0)
_DIMS_CACHE: dict[tuple[tuple[str, str], ...], str] = {}


def cached_dims_key(dimensions: Mapping[str, str]) -> str:
    """`dims_key`, memoised: the same few thousand dimension combinations recur in every batch."""
    items = tuple(dimensions.items())
    found = _DIMS_CACHE.get(items)
    if found is None:
        if len(_DIMS_CACHE) > 200_000:
            _DIMS_CACHE.clear()
        found = _DIMS_CACHE[items] = dims_key(dimensions)
    return found


def expected_deltas(facts: Iterable[FactIn]) -> PartDeltas:
    """The deltas of `facts` (first occurrence of each event id) as if none had been seen before."""
    deltas = PartDeltas()
    seen: set[UUID] = set()
    for fact in facts:
        if fact.event_id in seen:
            continue
        seen.add(fact.event_id)
        for part in fact.parts:
            deltas.add(part, fact.event_id)
    return deltas


def parts_json(parts: Sequence[Part]) -> str:
    """The `parts` column of a fact: one array per part, read back by `part_from_json`."""
    return to_json(
        [
            (
                part.indicator,
                part.part,
                part.kind,
                part.occurred_at,
                part.dimensions if isinstance(part.dimensions, dict) else dict(part.dimensions),
                part.amount,
                part.member,
                part.order_key,
            )
            for part in parts
        ]
    ).decode()
