"""An in-memory reference implementation of the store semantics, applied event by event.

It follows the contract of `processors.indicators.base.Part`: duplicates contribute nothing, a
retraction negates exactly the parts its event contributed (or, arriving first, makes the event
contribute nothing), sums add, distinct members are reference-counted, latest reports are kept per
member and the highest (order key, event id) wins within a cell.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from uuid import UUID

from processors.indicators import contributions
from processors.indicators.aggregate import StoredRow
from processors.indicators.base import Part, PeriodKind
from processors.indicators.periods import period_start
from schemas.events.base import Event, EventRetracted

CellKey = tuple[str, str, PeriodKind, date, tuple[tuple[str, str], ...]]


class ReferenceStore:
    def __init__(self, contribute: Callable[[Event], list[Part]] = contributions) -> None:
        self.contribute = contribute
        self.seen: set[UUID] = set()
        self.retracted: set[UUID] = set()
        self.parts_of: dict[UUID, list[Part]] = {}
        self.sums: dict[CellKey, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        self.members: dict[tuple[CellKey, str], int] = defaultdict(int)
        self.reports: dict[tuple[CellKey, str, UUID], tuple[str, Decimal]] = {}

    def apply(self, event: Event) -> None:
        if event.event_id in self.seen:
            return
        self.seen.add(event.event_id)
        if isinstance(event, EventRetracted):
            target = event.retracted_event_id
            if target in self.retracted:
                return
            self.retracted.add(target)
            for part in self.parts_of.pop(target, []):
                self._add(part, target, -1)
            return
        if event.event_id in self.retracted:
            return
        parts = self.contribute(event)
        self.parts_of[event.event_id] = parts
        for part in parts:
            self._add(part, event.event_id, 1)

    def _add(self, part: Part, event_id: UUID, sign: int) -> None:
        for kind in ("month", "quarter", "year"):
            cell: CellKey = (
                part.indicator,
                part.part,
                kind,
                period_start(part.occurred_at, kind),
                tuple(sorted(part.dimensions.items())),
            )
            if part.kind == "sum":
                self.sums[cell][0] += part.amount * sign
                self.sums[cell][1] += sign
            elif part.kind == "distinct":
                self.members[(cell, part.member or "")] += sign
            elif sign > 0:
                self.reports[(cell, part.member or "", event_id)] = (part.order_key, part.amount)
            else:
                del self.reports[(cell, part.member or "", event_id)]

    def rows(self, kind: PeriodKind) -> list[StoredRow]:
        rows = [
            StoredRow(indicator, part, start, dict(dims), value)
            for (indicator, part, k, start, dims), (value, count) in self.sums.items()
            if k == kind and count != 0
        ]
        rows.extend(
            StoredRow(indicator, part, start, dict(dims), Decimal(1), member)
            for ((indicator, part, k, start, dims), member), refcount in self.members.items()
            if k == kind and refcount > 0
        )
        best: dict[tuple[CellKey, str], tuple[str, UUID, Decimal]] = {}
        for (cell, member, event_id), (order, amount) in self.reports.items():
            if cell[2] != kind:
                continue
            current = best.get((cell, member))
            if current is None or (order, event_id) > current[:2]:
                best[(cell, member)] = (order, event_id, amount)
        rows.extend(
            StoredRow(indicator, part, start, dict(dims), amount, member, order)
            for ((indicator, part, _, start, dims), member), (order, _, amount) in best.items()
        )
        return rows
