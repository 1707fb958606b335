"""Fault injection: processors SIGKILLed at random points, store connections cut, while events flow."""

from __future__ import annotations

import asyncio
import random
import signal

import asyncpg
import pytest

from infra.settings import Settings
from processors.runtime import IndicatorProcessor
from schemas.cloudevents import KafkaRecord
from tests.processors.support import naive_parts, normalise, produce, random_stream, records_for, stored_parts
from tests.processors.test_runtime import running, tuned, wait_committed
from tests.support.processes import python_child

pytestmark = pytest.mark.slow


async def feed(
    settings: Settings, records: list[tuple[str, KafkaRecord]], *, chunk: int, pause_s: float
) -> None:
    for start in range(0, len(records), chunk):
        await produce(settings, records[start : start + chunk])
        await asyncio.sleep(pause_s)


async def test_processors_killed_at_random_points_end_with_the_naive_parts(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    rng = random.Random(503)
    events = random_stream(2500, seed=503)
    records = records_for(settings, events)
    child_settings = tuned(settings, batch_max_records=80)
    feeding = asyncio.create_task(feed(settings, records, chunk=150, pause_s=0.4))
    kills = busy = 0
    for _ in range(5):
        async with python_child(module="processors.runtime", settings=child_settings) as child:
            await child.wait_for_line(lambda line: "partitions claimed" in line, timeout_s=30)
            # Somewhere inside the following batches: decoding, the transaction, or the relay.
            await asyncio.sleep(rng.uniform(0.1, 1.0))
            child.kill()
            assert await child.wait() == -signal.SIGKILL
            kills += 1
            busy += any(" batch " in line for line in child.lines)
    await feeding
    async with python_child(module="processors.runtime", settings=child_settings) as child:
        await child.wait_for_line(lambda line: "partitions claimed" in line, timeout_s=30)
        await wait_committed(pg_pool, len(records), timeout_s=60)
        child.send_signal(signal.SIGTERM)
        assert await child.wait() == 0, child.output
    assert kills == 5
    assert busy >= 2, "most children should have been killed while processing batches"
    assert await stored_parts(pg_pool) == normalise(naive_parts(events))
    # The relay of the last run drained the outbox before it stopped.
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_outbox") == 0


async def test_store_connections_cut_mid_run_lose_and_double_nothing(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    events = random_stream(1500, seed=504)
    records = records_for(settings, events)
    processor = IndicatorProcessor(tuned(settings, batch_max_records=60), pool=pg_pool)
    feeding = asyncio.create_task(feed(settings, records, chunk=150, pause_s=0.2))
    async with running(processor):
        for _ in range(3):
            await asyncio.sleep(0.7)
            # As a PostgreSQL restart does to every client: its sessions end mid-transaction.
            await pg_pool.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND application_name = 'alcance'"
                " AND backend_type = 'client backend'"
            )
        await feeding
        await wait_committed(pg_pool, len(records), timeout_s=40)
    assert await stored_parts(pg_pool) == normalise(naive_parts(events))
