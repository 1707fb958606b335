"""Indicator catalogue and pure computations: what each event contributes to the stored parts."""

from __future__ import annotations

from typing import Any

from processors.indicators.base import PERIOD_KINDS, ByEventType, Handler, Part, PeriodKind, no_parts
from processors.indicators.finance import FINANCE
from processors.indicators.plgn import PLGN
from processors.indicators.training import TRAINING
from schemas.events.base import Event, EventRetracted

__all__ = ["PERIOD_KINDS", "Part", "PeriodKind", "contributions"]

_BY_FAMILY: dict[str, ByEventType] = {"training": TRAINING, "plgn": PLGN, "finance": FINANCE}
# The function of each event type seen so far: a type's family and handler never change.
_BY_TYPE: dict[type[Any], Handler] = {}


def _handler_for(kind: type[Any]) -> Handler:
    if issubclass(kind, EventRetracted):
        return no_parts
    family = _BY_FAMILY.get(kind.family)
    return no_parts if family is None else family.handler_for(kind)


def contributions(event: Event) -> list[Part]:
    """The parts `event` adds to the store; a pure function of the event alone.

    Retractions contribute nothing here: the runtime negates the parts of the retracted event. An
    event type no indicator uses contributes an empty list.
    """
    kind = type(event)
    handler = _BY_TYPE.get(kind)
    if handler is None:
        handler = _BY_TYPE[kind] = _handler_for(kind)
    return handler(event)
