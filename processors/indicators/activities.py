"""Promotion-activity cost indicator parts (art. 1): what one finance event contributes; pure.

Business volume and meeting parts of the activity indicators come from PLGN events
(`processors.indicators.plgn`); returns (ACT-03 to ACT-08, ACT-13) are derived at read time.
"""

from __future__ import annotations

from processors.indicators.base import Part
from schemas.events.base import Event
from schemas.events.finance import ActivityType, CostRecorded


def activity_parts(event: Event) -> list[Part]:
    """The parts one finance event contributes: its USD cost, on the offering or the activity."""
    if not isinstance(event, CostRecorded):
        return []
    usd = event.money.usd_amount
    if event.activity_type == ActivityType.COURSE_OFFERING:
        return [
            Part("CVF-20", "cost_usd", "sum", event.occurred_at, {"offering": event.activity_id}, amount=usd)
        ]
    dims = {"activity": event.activity_id, "category": event.category.value, "payer": event.payer.value}
    return [Part("ACT-01", "cost_usd", "sum", event.occurred_at, dims, amount=usd)]
