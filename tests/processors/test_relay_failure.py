"""The in-process relay retries transient errors; any other error stops the processor with that error,
rather than leaving indicator changes stored but never published."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from infra.settings import Settings
from processors.outbox import RELAY_STOP_ATTEMPTS, OutboxRelay
from processors.runtime import IndicatorProcessor
from tests.processors.support import random_stream, records_for
from tests.processors.test_faults import feed
from tests.processors.test_runtime import process_all, tuned


def fast_polling(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"processor": settings.processor.model_copy(update={"outbox_poll_interval_ms": 20})}
    )


async def test_a_relay_that_fails_stops_the_processor_with_its_error(
    settings: Settings, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: OutboxRelay) -> int:
        raise ValueError("a cell the relay cannot encode")

    monkeypatch.setattr(OutboxRelay, "publish_pending", broken)
    processor = IndicatorProcessor(fast_polling(settings), pool=pg_pool)
    with pytest.raises(RuntimeError, match="outbox relay failed") as raised:
        # Nothing to consume: only the relay's failure can end this run.
        await asyncio.wait_for(processor.run(), 60)
    assert isinstance(raised.value.__cause__, ValueError)


async def test_a_relay_retries_a_connection_left_unusable_and_goes_on(
    settings: Settings, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds = 0
    original = OutboxRelay.publish_pending

    async def flaky(self: OutboxRelay) -> int:
        nonlocal rounds
        rounds += 1
        if rounds <= 2:
            # What asyncpg raises on a connection whose server went away mid-operation.
            raise asyncpg.exceptions.InternalClientError("connection in an unexpected state")
        return await original(self)

    monkeypatch.setattr(OutboxRelay, "publish_pending", flaky)
    processor = IndicatorProcessor(fast_polling(settings), pool=pg_pool)
    task = asyncio.create_task(processor.run())
    deadline = asyncio.get_running_loop().time() + 60
    while rounds < 5:
        assert not task.done(), "the processor stopped on a transient relay error"
        assert asyncio.get_running_loop().time() < deadline, f"only {rounds} relay rounds"
        await asyncio.sleep(0.05)
    processor.request_stop()
    stats = await asyncio.wait_for(task, 60)
    assert stats.batches == 0


async def _marks_left_by_a_processor_without_relay(settings: Settings, pool: asyncpg.Pool) -> int:
    records = records_for(settings, random_stream(300, seed=311))
    await feed(settings, records, chunk=300, pause_s=0)
    await process_all(settings, pool, len(records), relay=False)
    marks = int(await pool.fetchval("SELECT count(*) FROM indicator_outbox"))
    assert marks > 0, "the processor left no outbox marks"
    return marks


async def test_a_stopping_relay_retries_failed_rounds_and_drains_the_outbox(
    settings: Settings, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tuned(fast_polling(settings), outbox_batch_size=20)
    marks = await _marks_left_by_a_processor_without_relay(settings, pg_pool)
    rounds = 0
    original = OutboxRelay.publish_pending

    async def flaky(self: OutboxRelay) -> int:
        nonlocal rounds
        rounds += 1
        if rounds in (1, 3):  # the first round, and one once draining has begun
            raise asyncpg.exceptions.InternalClientError("connection in an unexpected state")
        return await original(self)

    monkeypatch.setattr(OutboxRelay, "publish_pending", flaky)
    stop = asyncio.Event()
    stop.set()  # relay what is pending, then return: as `alcance run` stops its relay
    relay = OutboxRelay(settings, pg_pool)
    await asyncio.wait_for(relay.run(stop), 60)
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_outbox") == 0
    assert rounds >= 2 + -(-marks // 20), f"{rounds} rounds for {marks} marks"


async def test_a_stopping_relay_gives_up_after_failed_rounds_and_leaves_the_marks(
    settings: Settings, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = fast_polling(settings)
    marks = await _marks_left_by_a_processor_without_relay(settings, pg_pool)
    rounds = 0

    async def down(self: OutboxRelay) -> int:
        nonlocal rounds
        rounds += 1
        raise asyncpg.exceptions.InternalClientError("connection in an unexpected state")

    monkeypatch.setattr(OutboxRelay, "publish_pending", down)
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(OutboxRelay(settings, pg_pool).run(stop), 60)
    assert rounds == RELAY_STOP_ATTEMPTS
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_outbox") == marks


async def test_a_relay_whose_rounds_time_out_takes_smaller_rounds_and_drains_the_outbox(
    settings: Settings, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tuned(fast_polling(settings), outbox_batch_size=4096)
    await _marks_left_by_a_processor_without_relay(settings, pg_pool)
    limits: list[int] = []
    original = OutboxRelay.publish_pending

    async def slow_when_large(self: OutboxRelay) -> int:
        limits.append(self.round_limit)
        if self.round_limit > 4:  # more timeouts in a row than a stopping relay tolerates of other errors
            # What asyncpg raises when a statement outlasts the pool's command timeout.
            raise TimeoutError
        return await original(self)

    monkeypatch.setattr(OutboxRelay, "publish_pending", slow_when_large)
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(OutboxRelay(settings, pg_pool).run(stop), 60)
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_outbox") == 0
    assert limits[:6] == [4096, 1024, 256, 64, 16, 4], limits
