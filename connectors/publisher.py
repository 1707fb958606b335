"""Publishes events (CloudEvents binary mode) and dead letters to Kafka, waiting for the broker's acks."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind

from infra.dead_letters import bound_dead_letter
from infra.telemetry import inject_headers, tracer
from schemas import deadletter
from schemas.cloudevents import encode

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from schemas.events.base import Event
    from schemas.topics import TopicCatalogue

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A raw source record that could not become events.

    Attributes:
        topic: the dead-letter topic (`catalogue.dead_letter(...)` of the record's target topic).
        value: the raw record, unchanged (JSON bytes).
        reason: why it was rejected (header `dlq_reason`).
        source: the source instance name (header `dlq_source`, also the record key).
        redacted: the value is a redacted copy (personal data removed), not the raw record.
    """

    topic: str
    value: bytes
    reason: str
    source: str
    redacted: bool = False

    def headers(self) -> list[tuple[str, bytes]]:
        """Headers of the dead letter: reason, source, and whether the value is the raw record."""
        return deadletter.for_source_record(self.reason, self.source, redacted=self.redacted)


class Publisher:
    """Sends pages of events and waits until the broker acknowledged every one of them.

    One producer can be shared by all connectors of a process. Dead letters are not counted in
    `produced_offsets()`: no consumer group is expected to consume them, so they must not hold up idle
    detection.

    Args:
        producer: a started aiokafka producer (acks="all").
        catalogue: the topic catalogue (routing of events to topics).
    """

    def __init__(self, producer: AIOKafkaProducer, catalogue: TopicCatalogue) -> None:
        self._producer = producer
        self._catalogue = catalogue
        self._produced: dict[tuple[str, int], int] = {}

    def produced_offsets(self) -> dict[tuple[str, int], int]:
        """Highest offset acknowledged per (topic, partition) for events (not dead letters)."""
        return dict(self._produced)

    async def publish(
        self, events: Sequence[Event], dead_letters: Sequence[DeadLetter] = ()
    ) -> dict[tuple[str, int], int]:
        """Send `events` (each to its family topic, keyed by `subject_key`) and `dead_letters`, await acks.

        Returns:
            The highest acknowledged event offset per (topic, partition) of this call.

        Raises:
            aiokafka.errors.KafkaError: when the broker did not acknowledge a record (nothing is
                committed by the caller; the whole page is sent again on retry).
        """
        by_topic: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_topic[self._catalogue.topic_for(event).name].append(event)
        futures: list[asyncio.Future[Any]] = []
        for topic, batch in by_topic.items():
            futures.extend(await self._send_events(topic, batch))
        dead_futures: list[asyncio.Future[Any]] = []
        for letter in dead_letters:
            bounded = bound_dead_letter(letter.value, letter.source.encode(), [], letter.headers())
            dead_futures.append(
                await self._producer.send(
                    letter.topic, bounded.value, key=bounded.key, headers=bounded.headers
                )
            )
        metadata = await asyncio.gather(*futures)
        await asyncio.gather(*dead_futures)
        page: dict[tuple[str, int], int] = {}
        for meta in metadata:
            tp = (meta.topic, meta.partition)
            if meta.offset > page.get(tp, -1):
                page[tp] = meta.offset
        for tp, offset in page.items():
            if offset > self._produced.get(tp, -1):
                self._produced[tp] = offset
        return page

    async def _send_events(self, topic: str, batch: Iterable[Event]) -> list[asyncio.Future[Any]]:
        futures: list[asyncio.Future[Any]] = []
        with tracer().start_as_current_span(
            f"send {topic}",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": topic},
        ) as span:
            count = 0
            for event in batch:
                record = encode(event)
                headers = inject_headers(list(record.headers))
                futures.append(
                    await self._producer.send(topic, record.value, key=record.key, headers=headers)
                )
                count += 1
            span.set_attribute("messaging.batch.message_count", count)
        return futures
