"""The processor contract: what a batch carries into the store, how parts map to cells, and its errors."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from uuid import UUID

from processors.indicators.base import Part, PartKind, PeriodKind


class ProcessorError(Exception):
    """Base of the errors the processor runtime handles itself."""


class PartitionsLostError(ProcessorError):
    """Raised inside a batch transaction when this consumer no longer owns some of its partitions.

    The epoch stored for those partitions moved on (another member was assigned them), so the
    transaction is rolled back; the runtime drops their records and retries with the rest.
    """

    def __init__(self, lost: set[tuple[str, int]]) -> None:
        super().__init__(f"partitions lost to another consumer: {sorted(lost)}")
        self.lost = lost


CellKey = tuple[str, PeriodKind, date, str]
"""(indicator, period kind, period start, canonical dimensions): one published indicator cell."""

PartKey = tuple[str, PeriodKind, date, str, str]
"""(indicator, period kind, period start, canonical dimensions, part): one stored part of a cell."""

TopicPartitionKey = tuple[str, int]
"""(topic, partition): one input partition, as the ledger and the offsets table name it."""


@lru_cache(maxsize=4096)
def _periods_of(year: int, month: int) -> tuple[tuple[PeriodKind, date], ...]:
    return (
        ("month", date(year, month, 1)),
        ("quarter", date(year, 3 * ((month - 1) // 3) + 1, 1)),
        ("year", date(year, 1, 1)),
    )


def periods(moment: datetime) -> tuple[tuple[PeriodKind, date], ...]:
    """The UTC month, quarter and year containing `moment`, as (kind, first day) pairs."""
    utc = moment.astimezone(UTC)
    return _periods_of(utc.year, utc.month)


def month_of(moment: datetime) -> date:
    """The first day of the UTC month containing `moment`: the period every part is stored under.

    Parts are stored per month only; a quarter or year cell is the merge of its months (sums add,
    distinct members unite, latest reports compete), done when the cell is read or published.
    """
    return periods(moment)[0][1]


def columns_of(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    """Transpose rows (tuples of `width` items) into the per-column lists that ``unnest`` takes."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    return columns or [[] for _ in range(width)]


def cells_of_month(indicator: str, month: date, dims: str) -> tuple[CellKey, ...]:
    """The month, quarter and year cells a stored month row belongs to."""
    return tuple((indicator, kind, start, dims) for kind, start in _periods_of(month.year, month.month))


def dims_key(dimensions: Mapping[str, str]) -> str:
    """The canonical text of a dimensions mapping: compact JSON with sorted keys (a primary-key column)."""
    return json.dumps(dimensions, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def part_from_json(data: Sequence[Any]) -> Part:
    """A part from one array of a fact's `parts` column.

    The array is [indicator, part, kind, occurred_at (ISO 8601), dimensions, amount (decimal text),
    member, order_key], as `processors.deltas.parts_json` writes it.
    """
    indicator, name, kind, occurred_at, dimensions, amount, member, order_key = data
    return Part(
        indicator=indicator,
        part=name,
        kind=kind,
        occurred_at=datetime.fromisoformat(occurred_at),
        dimensions=dimensions,
        amount=Decimal(amount),
        member=member,
        order_key=order_key,
    )


@dataclass(slots=True)
class FactIn:
    """One decoded event of a batch, as the store records it.

    Attributes:
        event_id: The event's deterministic id (the de-duplication key).
        event_type: e.g. ``"cvf.enrolment.created"``.
        occurred_at: Event time.
        subject_key: The pseudonymous or entity key the event is about.
        source: Source instance name.
        payload: The event's JSON, as received.
        parts: What the event contributes (empty for retractions).
        retracts: For a retraction, the id of the event it retracts.
        topic: Source topic of the record.
        partition: Source partition of the record.
        offset: Source offset of the record.
        parts_json: The stored form of `parts`, when computed ahead of the transaction.
    """

    event_id: UUID
    event_type: str
    occurred_at: datetime
    subject_key: str
    source: str
    payload: str
    parts: list[Part]
    retracts: UUID | None = None
    topic: str = ""
    partition: int = 0
    offset: int = -1
    parts_json: str | None = None


@dataclass(slots=True)
class BatchOutcome:
    """What one batch transaction did, for logs, metrics and tests."""

    facts_new: int = 0
    duplicates: int = 0
    retracted_on_arrival: int = 0
    retractions_applied: int = 0
    retractions_pending: int = 0
    rows_written: int = 0
    months_marked: int = 0
    lost: set[tuple[str, int]] = field(default_factory=set)


PART_KINDS: tuple[PartKind, ...] = ("sum", "distinct", "latest")
