"""The processor on the real broker and PostgreSQL: exactly-once effects, dead letters, fencing, replay."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from infra.kafka import read_topic_to_end
from infra.postgres import create_pool, migrate
from infra.settings import Settings
from processors.cells import cell_parts
from processors.recompute import rebuild
from processors.runtime import IndicatorProcessor
from schemas.cloudevents import KafkaRecord, encode
from schemas.indicators import indicator_key
from schemas.topics import TopicCatalogue
from tests.processors.support import (
    naive_parts,
    normalise,
    produce,
    random_stream,
    read_topic,
    records_for,
    stored_parts,
)
from tests.schemas.factories import make_cost_recorded
from tests.support.processes import python_child


def tuned(settings: Settings, **processor: int) -> Settings:
    return settings.model_copy(update={"processor": settings.processor.model_copy(update=processor)})


async def committed(pool: asyncpg.Pool) -> int:
    """How many records the indicators group has committed, over all partitions."""
    value = await pool.fetchval("SELECT coalesce(sum(next_offset), 0) FROM kafka_offset")
    return int(value)


async def wait_committed(pool: asyncpg.Pool, expected: int, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (done := await committed(pool)) < expected:
        assert asyncio.get_running_loop().time() < deadline, f"committed {done} of {expected} records"
        await asyncio.sleep(0.1)


@asynccontextmanager
async def running(processor: IndicatorProcessor) -> AsyncIterator[asyncio.Task[object]]:
    task: asyncio.Task[object] = asyncio.create_task(processor.run())
    try:
        yield task
    finally:
        processor.request_stop()
        await asyncio.wait_for(task, 30)


async def process_all(
    settings: Settings, pool: asyncpg.Pool, expected: int, **kwargs: object
) -> IndicatorProcessor:
    processor = IndicatorProcessor(settings, pool=pool, **kwargs)  # type: ignore[arg-type]
    async with running(processor):
        await wait_committed(pool, expected)
    return processor


async def test_duplicates_and_retractions_give_the_naive_result_exactly(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    events = random_stream(800, seed=1)
    records = records_for(settings, events)
    await produce(settings, records)
    processor = await process_all(tuned(settings, batch_max_records=150), pg_pool, len(records))
    assert await stored_parts(pg_pool) == normalise(naive_parts(events))
    stats = processor.stats
    assert stats.duplicates > 0 and stats.retractions_applied > 0 and stats.retracted_on_arrival > 0
    assert stats.facts_new + stats.duplicates + stats.retracted_on_arrival == len(records)
    # Replaying the same records (a re-pull) changes nothing.
    before = await stored_parts(pg_pool)
    await produce(settings, records)
    await process_all(settings, pg_pool, 2 * len(records))
    assert await stored_parts(pg_pool) == before


async def test_a_malformed_record_is_dead_lettered_with_its_reason_and_the_partition_moves_on(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    catalogue = TopicCatalogue.from_settings(settings)
    good = make_cost_recorded(record_identity="good-1")
    after = make_cost_recorded(record_identity="good-2", cost_id="cost-2")
    valid = encode(good)
    broken = KafkaRecord(
        key=valid.key, value=b'{"event_type": "finance.cost.recorded", "oops', headers=valid.headers
    )
    topic = catalogue.finance.name
    # One key, so all three land in one partition, in this order.
    await produce(settings, [(topic, valid), (topic, broken), (topic, encode(after))])
    processor = await process_all(settings, pg_pool, 3)
    assert processor.stats.dead_lettered == 1
    assert await pg_pool.fetchval("SELECT count(*) FROM fact") == 2
    dead = await read_topic(settings, catalogue.dead_letter(catalogue.finance).name, 1, expected=1)
    assert len(dead) == 1
    headers = {key: value.decode() for key, value in dead[0].headers}
    assert headers["dlq_reason"].startswith("bad JSON")
    assert headers["dlq_source_topic"] == topic
    assert headers["dlq_source_offset"] == "1"
    assert dead[0].value == broken.value


async def test_a_consumer_fenced_by_a_newer_epoch_commits_nothing_then_reclaims(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    events = random_stream(300, seed=2)
    first, second = records_for(settings, events[:150]), records_for(settings, events[150:])
    await produce(settings, first)
    processor = IndicatorProcessor(settings, pool=pg_pool)
    async with running(processor):
        await wait_committed(pg_pool, len(first))
        offsets_before = await pg_pool.fetch(
            "SELECT topic, partition, next_offset FROM kafka_offset ORDER BY 1, 2"
        )
        # Another member took every partition over (as after a rebalance we have not noticed yet).
        await pg_pool.execute("UPDATE kafka_offset SET epoch = epoch + 1")
        await produce(settings, second)
        deadline = asyncio.get_running_loop().time() + 10
        while processor.stats.dropped_lost == 0:
            assert asyncio.get_running_loop().time() < deadline, "the fenced batch was not dropped"
            await asyncio.sleep(0.05)
        assert await pg_pool.fetch(
            "SELECT topic, partition, next_offset FROM kafka_offset ORDER BY 1, 2"
        ) == (offsets_before)
        # Still assigned to it by the group, the processor claims the partitions again and catches up.
        await wait_committed(pg_pool, len(first) + len(second))
    assert await stored_parts(pg_pool) == normalise(naive_parts(events))


async def test_replay_into_an_empty_store_and_recompute_equal_incremental_processing(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    events = random_stream(700, seed=3)
    records = records_for(settings, events)
    await produce(settings, records[:350])
    small = tuned(settings, batch_max_records=40)
    processor = IndicatorProcessor(small, pool=pg_pool)
    async with running(processor):
        await wait_committed(pg_pool, 350)
        await produce(settings, records[350:])
        await wait_committed(pg_pool, len(records))
    incremental = await stored_parts(pg_pool)
    assert incremental == normalise(naive_parts(events))

    replay_settings = settings.model_copy(
        update={
            "postgres": settings.postgres.model_copy(update={"db_schema": settings.postgres.db_schema + "_r"})
        }
    )
    replay_pool = await create_pool(replay_settings.postgres)
    try:
        await migrate(replay_pool)
        await process_all(tuned(replay_settings, batch_max_records=2000), replay_pool, len(records))
        assert await stored_parts(replay_pool) == incremental
    finally:
        await replay_pool.close()
        await pg_pool.execute(f'DROP SCHEMA "{replay_settings.postgres.db_schema}" CASCADE')

    async with pg_pool.acquire() as connection, connection.transaction():
        summary = await rebuild(connection, progress=False)
    assert summary.facts > 0
    assert await stored_parts(pg_pool) == incremental


async def test_two_processors_in_one_group_lose_and_double_nothing(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    events = random_stream(1200, seed=4)
    records = records_for(settings, events)
    small = tuned(settings, batch_max_records=50)
    first, second = IndicatorProcessor(small, pool=pg_pool), IndicatorProcessor(small, pool=pg_pool)
    feeding = asyncio.create_task(_feed(settings, records, chunk=100, pause_s=0.15))
    async with running(first):
        await asyncio.sleep(1.0)
        async with running(second):  # joins: the partitions are split between the two
            await asyncio.sleep(2.0)
            assert first.stats.batches > 0
        # The second left: the first gets its partitions back and finishes.
        await feeding
        await wait_committed(pg_pool, len(records))
    assert second.stats.batches > 0
    assert await stored_parts(pg_pool) == normalise(naive_parts(events))
    assert first.stats.facts_new + second.stats.facts_new + first.stats.retracted_on_arrival + (
        second.stats.retracted_on_arrival
    ) == len({event.event_id for event in events})


async def test_the_relay_publishes_the_store_state_as_the_highest_version_per_key(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    events = random_stream(300, seed=5)
    records = records_for(settings, events)
    await produce(settings, records)
    await process_all(tuned(settings, batch_max_records=60), pg_pool, len(records))
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_outbox") == 0
    await assert_topic_equals_store(settings, pg_pool)


async def test_the_relay_runs_as_its_own_process_and_stops_on_sigterm(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    events = random_stream(200, seed=8)
    records = records_for(settings, events)
    await produce(settings, records)
    await process_all(tuned(settings, batch_max_records=50), pg_pool, len(records), relay=False)
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_outbox") > 0
    async with python_child(module="processors.outbox", settings=settings) as child:
        deadline = asyncio.get_running_loop().time() + 30
        while await pg_pool.fetchval("SELECT count(*) FROM indicator_outbox") > 0:
            assert asyncio.get_running_loop().time() < deadline, child.output
            await asyncio.sleep(0.1)
        child.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(child.wait(), 30) == 0, child.output
        await child.wait_for_line(lambda line: "relay stopped" in line)
    await assert_topic_equals_store(settings, pg_pool)


async def assert_topic_equals_store(settings: Settings, pool: asyncpg.Pool) -> None:
    """The indicators topic, keeping the highest version per key, holds the store's cells."""
    truth: dict[str, dict[str, float]] = {}
    for (indicator, kind, start, dims, part), (_, value, _) in (await cell_parts(pool)).items():
        truth.setdefault(indicator_key(indicator, kind, start, json.loads(dims)), {})[part] = float(value)
    catalogue = TopicCatalogue.from_settings(settings)
    found = await read_topic_to_end(settings.kafka, catalogue.indicators.name)
    newest: dict[str, dict[str, Any]] = {}
    for record in found:
        value = json.loads(record.value)
        key = record.key.decode()
        if key not in newest or value["version"] > newest[key]["version"]:
            newest[key] = value
    # A cell whose every contribution was retracted is published once more, with no parts.
    assert {key: value["parts"] for key, value in newest.items() if value["parts"]} == truth


async def _feed(
    settings: Settings, records: list[tuple[str, KafkaRecord]], *, chunk: int, pause_s: float
) -> None:
    for start in range(0, len(records), chunk):
        await produce(settings, records[start : start + chunk])
        await asyncio.sleep(pause_s)
