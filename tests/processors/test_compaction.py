"""The indicators topic on Apache Kafka: the broker compacts it; its newest versions still equal the store."""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from infra.kafka import client_kwargs, make_consumer, read_topic_to_end, topic_partitions
from infra.settings import Settings
from schemas.topics import TopicCatalogue
from tests.processors.support import produce, random_stream, records_for
from tests.processors.test_runtime import assert_topic_equals_store, process_all

# Segments roll after 100 ms and the cleaner takes any log with a dirty share above 1 %: compaction
# happens within seconds instead of after the default week-long segment. AlterConfigs replaces every
# dynamic setting of the topic, so the policy the catalogue gave it is repeated.
QUICK_COMPACTION = {
    "cleanup.policy": "compact",
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "100",
}


async def _compact_quickly(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(**client_kwargs(settings.kafka))
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, QUICK_COMPACTION)])
    finally:
        await admin.close()


async def _end_offsets(settings: Settings, topic: str) -> int:
    """Records ever appended to `topic` (retention deletes nothing on a compacted topic)."""
    partitions = await topic_partitions(settings.kafka, topic)
    consumer = make_consumer(settings.kafka, None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(ends.values())


async def test_the_broker_compacts_the_indicators_topic_and_the_newest_versions_equal_the_store(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    topic = TopicCatalogue.from_settings(settings).indicators.name
    await _compact_quickly(settings, topic)
    records = records_for(settings, random_stream(600, seed=11))
    # Three rounds, each published by the relay after the segment of the previous one could roll: the
    # later rounds republish many of the same cells with higher versions, which the cleaner removes.
    processed = 0
    for start in range(0, len(records), 200):
        chunk = records[start : start + 200]
        await produce(settings, chunk)
        processed += len(chunk)
        await process_all(settings, pg_pool, processed)
        await asyncio.sleep(0.3)

    appended = await _end_offsets(settings, topic)
    deadline = asyncio.get_running_loop().time() + 60
    while len(kept := await read_topic_to_end(settings.kafka, topic)) == appended:
        assert asyncio.get_running_loop().time() < deadline, f"no compaction of {appended} records"
        await asyncio.sleep(1.0)
    assert 0 < len(kept) < appended
    await assert_topic_equals_store(settings, pg_pool)
