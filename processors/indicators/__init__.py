"""Indicator catalogue and pure computations: what each event contributes to the stored parts."""

from __future__ import annotations

from processors.indicators.activities import activity_parts
from processors.indicators.base import PERIOD_KINDS, Part, PeriodKind
from processors.indicators.plgn import plgn_parts
from processors.indicators.training import training_parts
from schemas.events.base import Event, EventRetracted

__all__ = ["PERIOD_KINDS", "Part", "PeriodKind", "contributions"]

_BY_FAMILY = {"training": training_parts, "plgn": plgn_parts, "finance": activity_parts}


def contributions(event: Event) -> list[Part]:
    """The parts `event` adds to the store; a pure function of the event alone.

    Retractions contribute nothing here: the runtime negates the parts of the retracted event. An
    event type no indicator uses contributes an empty list.
    """
    if isinstance(event, EventRetracted):
        return []
    compute = _BY_FAMILY.get(type(event).family)
    return [] if compute is None else compute(event)
