"""The in-process relay retries transient errors; any other error stops the processor with that error,
rather than leaving indicator changes stored but never published."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from infra.settings import Settings
from processors.outbox import OutboxRelay
from processors.runtime import IndicatorProcessor


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
