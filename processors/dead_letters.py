"""Dead letters of the indicator processor: rejected records, with their reason, on their family's DLQ."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaProducer, ConsumerRecord

from infra.dead_letters import bound_dead_letter
from schemas import deadletter

logger = logging.getLogger(__name__)


async def send_dead_letters(
    producer: AIOKafkaProducer, topics: Mapping[str, str], dead: Sequence[tuple[ConsumerRecord, str]]
) -> None:
    """Produce rejected records to their dead-letter topics and wait for the broker's acks.

    Args:
        producer: A started producer.
        topics: Per input topic, its dead-letter topic.
        dead: The rejected records with the reason of each.
    """
    deliveries = []
    for record, reason in dead:
        letter = bound_dead_letter(
            record.value,
            record.key,
            [(k, v) for k, v in (record.headers or ()) if v is not None],
            deadletter.for_consumer_record(reason, record.topic, record.partition, record.offset),
        )
        deliveries.append(
            await producer.send(
                topics[record.topic], value=letter.value, key=letter.key, headers=letter.headers
            )
        )
        logger.warning("dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
    await asyncio.gather(*deliveries)
