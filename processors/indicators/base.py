"""The contract between indicator functions and the processor runtime: what one event contributes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from schemas.events.base import Event

PeriodKind = Literal["month", "quarter", "year"]
PartKind = Literal["sum", "distinct", "latest"]

PERIOD_KINDS: tuple[PeriodKind, ...] = ("month", "quarter", "year")
# The value of a dimension an event does not give (a cell still exists for it, so nothing is lost).
UNKNOWN = "UNKNOWN"

_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Part:
    """One contribution of one event to one stored part of one indicator.

    The store keeps parts, never rates: every non-additive value (rates, ratios, ROI, medians) is
    derived at read time from the parts, so retracting an event only has to negate what it added.

    Attributes:
        indicator: Catalogue id, e.g. ``"CVF-01"``.
        part: Name of the stored part, e.g. ``"value"``, ``"numerator"``, ``"denominator"``, ``"sum_usd"``.
        kind: ``"sum"`` adds ``amount`` to an additive cell; ``"distinct"`` counts ``member`` once per
            cell; ``"latest"`` keeps, per ``member``, the ``amount`` of the highest ``order_key`` and
            the cell is the sum of the members' latest values.
        occurred_at: Event time; the runtime expands it into the month, quarter and year periods.
        dimensions: The full grain of the indicator's declared dimensions (missing values as ``"UNKNOWN"``).
        amount: For ``"sum"`` the delta, for ``"latest"`` the value; ignored for ``"distinct"``.
        member: For ``"distinct"`` the counted unit (learner key, org key); for ``"latest"`` the entity
            whose latest value is kept (deal id, enrolment id).
        order_key: For ``"latest"``: the report with the highest ``order_key`` wins. Keys start with
            the report's moment (`periods.order_key`), so reports of different months never tie; in
            a month the higher event id breaks a tie, and an event reporting one member twice in a
            month counts once, with its higher (``order_key``, ``amount``).

    """

    indicator: str
    part: str
    kind: PartKind
    occurred_at: datetime
    dimensions: Mapping[str, str] = field(hash=False)
    amount: Decimal = _ONE
    member: str | None = None
    order_key: str = ""

    def __post_init__(self) -> None:
        if self.kind in ("distinct", "latest") and not self.member:
            raise ValueError(f"{self.indicator}/{self.part}: a {self.kind!r} part needs a member")
        if self.occurred_at.tzinfo is None:
            raise ValueError(f"{self.indicator}/{self.part}: occurred_at must be timezone-aware")


class _Draft:
    """A part under construction: `Part`'s slot layout without its frozen ``__setattr__``.

    The frozen dataclass ``__init__`` stores each field through ``object.__setattr__`` and then runs
    ``__post_init__``: five times the cost of plain attribute stores, on the hottest path of the
    processors. The builders below check what ``__post_init__`` checks, fill a draft with plain stores,
    and turn it into a `Part` by assigning ``__class__``, which Python allows between classes of the
    same layout (a test keeps the two layouts equal).
    """

    __slots__ = Part.__slots__

    indicator: str
    part: str
    kind: PartKind
    occurred_at: datetime
    dimensions: Mapping[str, str]
    amount: Decimal
    member: str | None
    order_key: str


def _built(
    indicator: str,
    part: str,
    kind: PartKind,
    at: datetime,
    dims: Mapping[str, str],
    amount: Decimal,
    member: str | None,
    order_key: str,
) -> Part:
    """A `Part` of checked fields, filled as a draft and turned into a frozen `Part`."""
    if at.tzinfo is None:
        raise ValueError(f"{indicator}/{part}: occurred_at must be timezone-aware")
    made = _Draft()
    made.indicator = indicator
    made.part = part
    made.kind = kind
    made.occurred_at = at
    made.dimensions = dims
    made.amount = amount
    made.member = member
    made.order_key = order_key
    made.__class__ = Part  # type: ignore[assignment]  # same layout: the draft becomes a frozen Part
    return made  # type: ignore[return-value]  # it is a Part now


def sum_part(indicator: str, part: str, at: datetime, dims: Mapping[str, str], amount: Decimal) -> Part:
    """``Part(indicator, part, "sum", at, dims, amount=amount)``, built faster.

    Raises:
        ValueError: when `at` is naive, as ``Part`` does.
    """
    return _built(indicator, part, "sum", at, dims, amount, None, "")


def distinct_part(indicator: str, part: str, at: datetime, dims: Mapping[str, str], member: str) -> Part:
    """``Part(indicator, part, "distinct", at, dims, member=member)``, built faster.

    Raises:
        ValueError: when `member` is empty or `at` naive, as ``Part`` does.
    """
    if not member:
        raise ValueError(f"{indicator}/{part}: a 'distinct' part needs a member")
    return _built(indicator, part, "distinct", at, dims, _ONE, member, "")


def latest_part(
    indicator: str, part: str, at: datetime, dims: Mapping[str, str], amount: Decimal, member: str, order: str
) -> Part:
    """``Part(indicator, part, "latest", at, dims, amount=amount, member=member, order_key=order)``, faster.

    Raises:
        ValueError: when `member` is empty or `at` naive, as ``Part`` does.
    """
    if not member:
        raise ValueError(f"{indicator}/{part}: a 'latest' part needs a member")
    return _built(indicator, part, "latest", at, dims, amount, member, order)


Handler = Callable[[Any], list[Part]]
"""What one event of a given type contributes (each function takes the event type it is registered for)."""


def no_parts(event: object) -> list[Part]:
    """The contribution of an event no indicator uses."""
    return []


class ByEventType:
    """Calls the contribution function of an event's type: one dict look-up instead of an isinstance chain.

    An exact type is found directly. Any other type (a subclass) gets the function of the first
    `chain` entry it is a subclass of, as the equivalent chain of isinstance tests would give it, and
    that answer is remembered.

    Args:
        chain: (class, function) pairs in the order an isinstance chain would test them.
        exact: Functions for these exact types only, ahead of the chain (their subclasses follow the chain).

    Raises:
        ValueError: when a chain class is shadowed by an earlier entry for one of its base classes.
    """

    __slots__ = ("_chain", "_table")

    def __init__(
        self, chain: Iterable[tuple[type[Any], Handler]], exact: Mapping[type[Any], Handler] | None = None
    ) -> None:
        self._chain = tuple(chain)
        self._table: dict[type[Any], Handler] = {}
        for kind, compute in self._chain:
            # Looking an exact chain type up must give what testing the chain in order gives.
            if self.first_in_chain(kind) is not compute:
                raise ValueError(f"{kind.__name__} is shadowed by an earlier entry of the chain")
            self._table[kind] = compute
        self._table.update(exact or {})

    def first_in_chain(self, kind: type[Any]) -> Handler:
        """The function of the first chain entry `kind` is a subclass of, else `no_parts`."""
        return next((compute for base, compute in self._chain if issubclass(kind, base)), no_parts)

    def handler_for(self, kind: type[Any]) -> Handler:
        """The contribution function for events of type `kind`."""
        found = self._table.get(kind)
        if found is None:
            found = self._table[kind] = self.first_in_chain(kind)
        return found

    def __call__(self, event: Event) -> list[Part]:
        """The parts `event` contributes."""
        return self.handler_for(type(event))(event)
