"""PostgreSQL restarted under the outbox relay running alone: it retries, goes on, publishes every cell."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from infra.postgres import create_pool
from infra.settings import Settings
from processors.outbox import OutboxRelay
from processors.runtime import IndicatorProcessor
from tests.processors.support import random_stream, records_for
from tests.processors.test_faults import feed
from tests.processors.test_runtime import assert_topic_equals_store, running, tuned, wait_committed
from tests.support.restartable_store import restartable_store

pytestmark = pytest.mark.slow


async def test_the_relay_rides_out_store_restarts_and_the_topic_ends_equal_to_the_store(
    settings: Settings, stack_state_dir: Path
) -> None:
    async with restartable_store(settings, stack_state_dir) as (store_settings, stack):
        settings = tuned(store_settings, batch_max_records=60, outbox_poll_interval_ms=20)
        records = records_for(settings, random_stream(1200, seed=707))
        # The relay in a process of its own, as `python -m processors.outbox` runs it beside processors
        # started with the relay off; each owns its pool, as in production.
        processor = IndicatorProcessor(settings, relay=False)
        relay_pool = await create_pool(settings.postgres)
        relay = OutboxRelay(settings, relay_pool)
        stop = asyncio.Event()
        relaying = asyncio.create_task(relay.run(stop))
        try:
            feeding = asyncio.create_task(feed(settings, records, chunk=150, pause_s=0.2))
            async with running(processor):
                while relay.published == 0:
                    assert not relaying.done(), "the relay stopped before the restarts"
                    await asyncio.sleep(0.05)
                published_before = relay.published
                for _ in range(2):
                    await stack.restart_postgres(down_s=0.5)
                    await asyncio.sleep(0.8)
                await feeding
                check = await create_pool(settings.postgres)
                try:
                    await wait_committed(check, len(records), timeout_s=60)
                    deadline = asyncio.get_running_loop().time() + 60
                    while await check.fetchval("SELECT count(*) FROM indicator_outbox"):
                        assert not relaying.done(), "the relay stopped after a restart"
                        assert asyncio.get_running_loop().time() < deadline, "the outbox was not drained"
                        await asyncio.sleep(0.1)
                    assert not relaying.done(), "the relay stopped after a restart"
                    assert relay.published > published_before
                    await assert_topic_equals_store(settings, check)
                finally:
                    await check.close()
        finally:
            stop.set()
            await asyncio.wait_for(relaying, 30)
            await relay_pool.close()
