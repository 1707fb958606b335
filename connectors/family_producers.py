"""One Kafka producer per event family, each under its family's own principal (`infra.roles`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from infra.kafka import make_producer
from infra.roles import connector_principal, kafka_settings_for
from schemas.topics import FAMILIES

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from infra.settings import KafkaSettings
    from schemas.topics import TopicCatalogue


class FamilyProducers:
    """The producers of a connector process, one per family's principal.

    A family's topic and its dead letters go through the producer of that family's principal, which
    may write nothing else. A producer starts on its first record, so a process opens connections
    only for the families it publishes; families whose logins are the same share one producer.

    Args:
        kafka: the cluster's settings, with `logins` for `connector-<family>` where there are any.
        catalogue: the topic catalogue (which topic belongs to which family).
    """

    def __init__(self, kafka: KafkaSettings, catalogue: TopicCatalogue) -> None:
        self._kafka = kafka
        self._family_of: dict[str, str] = {}
        for family in FAMILIES:
            spec = catalogue.family_topic(family)
            self._family_of[spec.name] = family
            self._family_of[catalogue.dead_letter(spec).name] = family
        self._producers: dict[str | None, AIOKafkaProducer] = {}
        self._lock = asyncio.Lock()

    async def for_topic(self, topic: str) -> AIOKafkaProducer:
        """The started producer that may write `topic`.

        Raises:
            KeyError: when `topic` is neither a family's topic nor its dead letters.
        """
        family = self._family_of[topic]
        settings = kafka_settings_for(self._kafka, connector_principal(family))
        async with self._lock:
            producer = self._producers.get(settings.sasl_username)
            if producer is None:
                producer = make_producer(settings)
                await producer.start()
                self._producers[settings.sasl_username] = producer
        return producer

    async def stop(self) -> None:
        """Flush and stop every producer started."""
        producers, self._producers = list(self._producers.values()), {}
        for producer in producers:
            await producer.stop()
