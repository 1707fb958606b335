"""Event models by family; `schemas.registry` maps every `event_type` to its class."""

from schemas.events.base import (
    EVENT_ID_NAMESPACE,
    MEMBER_STATES,
    Audience,
    CountryCode,
    Event,
    EventRetracted,
    Money,
    event_id_for,
)

__all__ = [
    "EVENT_ID_NAMESPACE",
    "MEMBER_STATES",
    "Audience",
    "CountryCode",
    "Event",
    "EventRetracted",
    "Money",
    "event_id_for",
]
