"""Which decoded events a processor admits as facts: the right family for the topic, a plausible date.

A schema-valid event can still be wrong where it stands: a training event on the finance topic would be
counted twice over (or by the wrong indicators), and a typo'd year (3000, 9999) opens periods that no
report asks for. Both are dead-lettered with the reason instead of becoming facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from infra.settings import Settings
from schemas.events.base import Event
from schemas.topics import FAMILIES, TopicCatalogue


@dataclass(frozen=True, slots=True)
class Admission:
    """The rules of one processor: each input topic's family and the plausible date window.

    Args:
        families: event family expected on each input topic name.
        earliest: the earliest plausible `occurred_at`.
        future_allowance: how far past now an `occurred_at` may lie (clock skew, time zones).
    """

    families: dict[str, str]
    earliest: datetime
    future_allowance: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        """The rules of `settings`: topics of its catalogue, window of `settings.processor`."""
        catalogue = TopicCatalogue.from_settings(settings)
        return cls(
            families={catalogue.family_topic(family).name: family for family in FAMILIES},
            earliest=settings.processor.earliest_event_at.astimezone(UTC),
            future_allowance=timedelta(seconds=settings.processor.future_allowance_s),
        )

    def latest(self) -> datetime:
        """The latest plausible `occurred_at` now (computed once per batch by the caller)."""
        try:
            return datetime.now(UTC) + self.future_allowance
        except OverflowError:  # an allowance past year 9999 admits every representable date
            return datetime.max.replace(tzinfo=UTC)

    def refusal(self, event: Event, topic: str, latest: datetime) -> str | None:
        """Why `event`, read from `topic`, is not admitted, or None when it is."""
        expected = self.families.get(topic)
        if expected is not None and event.family != expected:
            return f"event type {event.event_type} ({event.family}) does not belong on the {expected} topic"
        occurred = event.occurred_at
        if occurred < self.earliest:
            return (
                f"occurred_at {occurred.isoformat()} is before the plausible window "
                f"(from {self.earliest.isoformat()})"
            )
        if occurred > latest:
            return (
                f"occurred_at {occurred.isoformat()} is in the future beyond the allowance "
                f"({self.future_allowance.total_seconds():.0f} s)"
            )
        return None
