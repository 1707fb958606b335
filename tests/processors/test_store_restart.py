"""The evaluation store's PostgreSQL server restarted mid-run: the processor rides it out, exactly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from infra.local import LocalStack
from infra.postgres import create_pool, migrate
from infra.settings import Settings
from processors.runtime import IndicatorProcessor
from tests.processors.support import naive_parts, normalise, random_stream, records_for, stored_parts
from tests.processors.test_faults import feed
from tests.processors.test_runtime import running, tuned, wait_committed

pytestmark = pytest.mark.slow


@pytest.fixture
async def own_store(settings: Settings, stack_state_dir: Path) -> AsyncIterator[tuple[Settings, LocalStack]]:
    """`settings` pointing at a PostgreSQL server of this test alone, so it can be restarted."""
    stack = LocalStack(stack_state_dir, broker=False, postgres=True)
    await stack.start()
    try:
        # Every role's DSN moves to this server (the schema name stays the test's own).
        isolated = stack.resolve(settings)
        pool = await create_pool(isolated.postgres)
        try:
            await migrate(pool)
        finally:
            await pool.close()
        yield isolated, stack
    finally:
        await stack.stop()


async def test_a_store_restart_mid_run_loses_and_doubles_nothing(
    own_store: tuple[Settings, LocalStack],
) -> None:
    settings, stack = own_store
    events = random_stream(1500, seed=505)
    records = records_for(settings, events)
    # The processor owns its pool, as in production: the restart breaks every connection of it.
    processor = IndicatorProcessor(tuned(settings, batch_max_records=60))
    feeding = asyncio.create_task(feed(settings, records, chunk=150, pause_s=0.2))
    async with running(processor) as task:
        while processor.stats.batches < 2:
            assert not task.done(), "the processor stopped before the restarts"
            await asyncio.sleep(0.05)
        processed_before_restart = processor.stats.records
        for _ in range(2):
            await stack.restart_postgres(down_s=0.5)
            await asyncio.sleep(0.8)
        await feeding
        check = await create_pool(settings.postgres)
        try:
            await wait_committed(check, len(records), timeout_s=60)
        finally:
            await check.close()
    assert processed_before_restart < len(records), "the restarts must fall in the middle of the run"
    assert processor.stats.records >= len(records)
    pool: asyncpg.Pool = await create_pool(settings.postgres)
    try:
        assert await stored_parts(pool) == normalise(naive_parts(events))
    finally:
        await pool.close()
