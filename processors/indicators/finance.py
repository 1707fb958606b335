"""Promotion-activity cost indicator parts (art. 1): what one finance event contributes; pure.

Business volume and meeting parts of the activity indicators come from PLGN events
(`processors.indicators.plgn`); returns (ACT-03 to ACT-08, ACT-13) are derived at read time.
"""

from __future__ import annotations

from processors.indicators.base import ByEventType, Part, sum_part
from schemas.events.base import Event
from schemas.events.finance import ActivityType, CostRecorded

_ON_OFFERING = ActivityType.COURSE_OFFERING


def _cost(event: CostRecorded) -> list[Part]:
    usd = event.money.usd_amount
    if event.activity_type == _ON_OFFERING:
        return [sum_part("CVF-20", "cost_usd", event.occurred_at, {"offering": event.activity_id}, usd)]
    # `_value_` is what `.value` returns, without the descriptor call.
    dims = {"activity": event.activity_id, "category": event.category._value_, "payer": event.payer._value_}
    return [sum_part("ACT-01", "cost_usd", event.occurred_at, dims, usd)]


FINANCE = ByEventType([(CostRecorded, _cost)])
"""The finance contribution function of each event type."""


def finance_parts(event: Event) -> list[Part]:
    """The parts one finance event contributes: its USD cost, on the offering or the activity."""
    return FINANCE(event)
