"""The contract between indicator functions and the processor runtime: what one event contributes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

PeriodKind = Literal["month", "quarter", "year"]
PartKind = Literal["sum", "distinct", "latest"]

PERIOD_KINDS: tuple[PeriodKind, ...] = ("month", "quarter", "year")


@dataclass(frozen=True)
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
        order_key: For ``"latest"``: the report with the highest ``order_key`` wins.

    """

    indicator: str
    part: str
    kind: PartKind
    occurred_at: datetime
    dimensions: Mapping[str, str] = field(hash=False)
    amount: Decimal = Decimal(1)
    member: str | None = None
    order_key: str = ""

    def __post_init__(self) -> None:
        if self.kind in ("distinct", "latest") and not self.member:
            raise ValueError(f"{self.indicator}/{self.part}: a {self.kind!r} part needs a member")
        if self.occurred_at.tzinfo is None:
            raise ValueError(f"{self.indicator}/{self.part}: occurred_at must be timezone-aware")
