"""The topic catalogue: the only place topic and consumer-group names are built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from schemas.events.base import Event

if TYPE_CHECKING:
    from infra.settings import Settings

DAY_MS = 24 * 3600 * 1000

CleanupPolicy = Literal["delete", "compact"]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One Kafka topic as data: what it holds, how it is keyed, and how the broker keeps it.

    Attributes:
        name: full topic name, prefix included.
        key: what the record key is (it decides ordering).
        schema: the schema reference of record values (`$id` or `$id` pattern).
        partitions: partition count at creation.
        cleanup_policy: "delete" or "compact".
        retention_ms: `retention.ms`, or None for the broker default (and for compacted topics).
        description: what the topic is for (English).
    """

    name: str
    key: str
    schema: str
    partitions: int
    cleanup_policy: CleanupPolicy
    retention_ms: int | None
    description: str


# Family -> (topic suffix, key description, schema pattern, description).
_FAMILY_TOPICS: dict[str, tuple[str, str, str, str]] = {
    "training": (
        "cvf.events.v1",
        "learner pseudonym (p-...): all events of one learner stay in order",
        "urn:alcance:schema:cvf.*",
        "CVF (Virtual Training Centre) events: learners, enrolments, progress, assessments, certificates.",
    ),
    "plgn": (
        "plgn.events.v1",
        "organisation pseudonym (o-...): all events of one firm stay in order",
        "urn:alcance:schema:plgn.*",
        "PLGN (business platform) events: firms, directory authorisations, opportunities, contacts, "
        "business rounds, meetings, expected and realised business.",
    ),
    "finance": (
        "finance.costs.v1",
        "activity or offering id: all cost entries of one activity stay in order",
        "urn:alcance:schema:finance.*",
        "Cost entries of promotion activities and course offerings (fully loaded cost, ROI denominators).",
    ),
}

FAMILIES: tuple[str, ...] = tuple(_FAMILY_TOPICS)
"""Every event family, in topic order ("training", "plgn", "finance")."""

INPUT_RETENTION_MS = 90 * DAY_MS
DEAD_LETTER_RETENTION_MS = 30 * DAY_MS


@dataclass(frozen=True, slots=True)
class TopicCatalogue:
    """Names and settings of every alcance topic and consumer group under one prefix.

    Args:
        prefix: prepended to every topic and group name (tests use a fresh one each).
        partitions: partition count of the partitioned topics.
    """

    prefix: str = "alcance."
    partitions: int = 4

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicCatalogue:
        """The catalogue of `settings.kafka` (prefix and partition count)."""
        return cls(prefix=settings.kafka.topic_prefix, partitions=settings.kafka.partitions)

    def family_topic(self, family: str) -> TopicSpec:
        """The topic of an event family.

        Raises:
            KeyError: when the family has no topic.
        """
        if family not in _FAMILY_TOPICS:
            raise KeyError(f"no topic for event family {family!r}")
        suffix, key, schema, description = _FAMILY_TOPICS[family]
        return TopicSpec(
            name=f"{self.prefix}{suffix}",
            key=key,
            schema=schema,
            partitions=self.partitions,
            cleanup_policy="delete",
            retention_ms=INPUT_RETENTION_MS,
            description=description,
        )

    @property
    def training(self) -> TopicSpec:
        """CVF events, keyed by learner pseudonym."""
        return self.family_topic("training")

    @property
    def plgn(self) -> TopicSpec:
        """PLGN events, keyed by organisation pseudonym."""
        return self.family_topic("plgn")

    @property
    def finance(self) -> TopicSpec:
        """Cost entries, keyed by activity id."""
        return self.family_topic("finance")

    @property
    def indicators(self) -> TopicSpec:
        """Latest value of every indicator cell (compacted: the newest version per key wins)."""
        return TopicSpec(
            name=f"{self.prefix}indicators.v1",
            key="<indicator>|<period kind>|<period start>|<sorted k=v dimensions joined by ,>",
            schema="urn:alcance:schema:indicator.v1",
            partitions=self.partitions,
            cleanup_policy="compact",
            retention_ms=None,
            description="Indicator values as computed by the processors; each record carries a version "
            "that increases per key, so readers keep the highest.",
        )

    @property
    def log_identity(self) -> TopicSpec:
        """One record at offset 0: a UUID naming this incarnation of the broker's log."""
        return TopicSpec(
            name=f"{self.prefix}log-identity.v1",
            key="none",
            schema="text/plain UUID",
            partitions=1,
            cleanup_policy="delete",
            # Kept for ever: losing the record would make every stored offset look foreign.
            retention_ms=-1,
            description="Identity of the broker's log; stored Kafka offsets are only trusted for the "
            "identity they were recorded under.",
        )

    def dead_letter(self, spec: TopicSpec) -> TopicSpec:
        """The dead-letter topic of `spec`: the raw records that could not be processed, with reasons."""
        return TopicSpec(
            name=f"{spec.name}.dlq",
            key=f"as the source record ({spec.key}); for connectors, the source name",
            schema="raw bytes of the rejected record; dlq_* headers say why and where from",
            partitions=1,
            cleanup_policy="delete",
            retention_ms=DEAD_LETTER_RETENTION_MS,
            description=f"Records rejected from {spec.name} (or, for connectors, raw source records that "
            "could not be mapped), unchanged, with headers dlq_reason and dlq_source*.",
        )

    def input_topics(self) -> list[TopicSpec]:
        """The topics processors consume: one per event family."""
        return [self.family_topic(family) for family in FAMILIES]

    def all(self) -> list[TopicSpec]:
        """Every topic alcance uses, dead-letter topics included (what `ensure_topics` creates)."""
        inputs = self.input_topics()
        return [
            *inputs,
            *(self.dead_letter(spec) for spec in inputs),
            self.indicators,
            self.log_identity,
        ]

    def topic_for(self, event: Event | type[Event]) -> TopicSpec:
        """The topic of an event (or event class), chosen by its family.

        Raises:
            KeyError: when the event's family has no topic.
        """
        return self.family_topic(event.family)

    def consumer_group(self, name: str) -> str:
        """The consumer group id for `name` (e.g. "indicators")."""
        return f"{self.prefix}{name}"

    @property
    def indicators_group(self) -> str:
        """The processors' consumer group: its committed offsets say which events were processed."""
        return self.consumer_group("indicators")
