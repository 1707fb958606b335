"""A snapshot refresh reaches open pages as notices of the indicators it renewed, and only those."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from infra.settings import Settings
from processors.snapshots import RefreshPacing, refresh
from web.refresh_notices import GRAINS, watch_refreshes
from web.stream import Notice, StreamHub

PACING = RefreshPacing(max_busy_share=0.1, max_age_s=3600.0)
LOOK_S = 0.05


async def refreshed(pool: asyncpg.Pool, settings: Settings) -> tuple[str, ...]:
    async with pool.acquire() as connection:
        done = await refresh(connection, settings, PACING)
    assert done is not None
    return done.indicators


async def notices(queue: asyncio.Queue[Notice], within_s: float = 2.0) -> set[tuple[str, str]]:
    """The indicator notices that arrive until none has for a few looks."""
    found: set[tuple[str, str]] = set()
    with contextlib.suppress(TimeoutError):
        while True:
            notice = await asyncio.wait_for(queue.get(), within_s if not found else 10 * LOOK_S)
            assert notice.event == "indicator"
            found.add((notice.indicator, notice.grain))
    return found


async def test_each_refresh_announces_the_indicators_it_renewed_in_every_grain(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    hub = StreamHub()
    queue = hub.subscribe()
    watcher = asyncio.create_task(watch_refreshes(pg_pool, hub, interval_s=LOOK_S))
    try:
        await asyncio.sleep(3 * LOOK_S)  # the first look learns the (empty) state, announcing nothing
        assert queue.empty()
        everything = await refreshed(pg_pool, settings)
        assert await notices(queue) == {(name, grain) for name in everything for grain in GRAINS}
        # A change to one stored indicator: the next refresh renews it and those reading it, no other.
        await pg_pool.execute("INSERT INTO indicator_stale (indicator) VALUES ('PLGN-07')")
        some = await refreshed(pg_pool, settings)
        assert "PLGN-07" in some
        assert len(some) < len(everything)
        assert await notices(queue) == {(name, grain) for name in some for grain in GRAINS}
        # Nothing refreshed: nothing announced.
        assert await notices(queue, within_s=10 * LOOK_S) == set()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
