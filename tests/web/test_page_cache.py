"""The pages' read cache: kept until a change of what it depends on, never older than a change."""

from __future__ import annotations

import asyncio

from web.pages.cache import ANY, ReadCache


class Counter:
    def __init__(self) -> None:
        self.loads = 0

    async def __call__(self) -> int:
        self.loads += 1
        return self.loads


async def test_a_read_is_kept_until_an_indicator_it_depends_on_changes() -> None:
    cache, load = ReadCache(), Counter()
    assert await cache.get("k", ["CVF-01"], load) == 1
    assert await cache.get("k", ["CVF-01"], load) == 1
    cache.changed("CVF-05")
    assert await cache.get("k", ["CVF-01"], load) == 1
    cache.changed("CVF-01")
    assert await cache.get("k", ["CVF-01"], load) == 2


async def test_a_read_of_every_indicator_and_a_resync_drop_on_any_change() -> None:
    cache, load = ReadCache(), Counter()
    await cache.get("all", [ANY], load)
    await cache.get("one", ["ACT-01"], load)
    cache.changed("PLGN-01")
    assert await cache.get("all", [ANY], load) == 3 and await cache.get("one", ["ACT-01"], load) == 2
    cache.changed(None)
    assert await cache.get("one", ["ACT-01"], load) == 4


async def test_a_read_that_overlapped_a_change_is_not_kept() -> None:
    cache = ReadCache()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> str:
        started.set()
        await release.wait()
        return "before the change"

    reading = asyncio.create_task(cache.get("k", ["CVF-01"], slow))
    await started.wait()
    cache.changed("CVF-01")
    release.set()
    assert await reading == "before the change"

    async def fresh() -> str:
        return "after the change"

    assert await cache.get("k", ["CVF-01"], fresh) == "after the change"


async def test_entries_expire_and_the_cache_stays_bounded() -> None:
    cache, load = ReadCache(ttl_s=0.0, max_entries=2), Counter()
    await cache.get("a", ["X"], load)
    assert await cache.get("a", ["X"], load) == 2  # expired at once
    kept = ReadCache(max_entries=2)
    for key in "abc":
        await kept.get(key, ["X"], load)
    assert len(kept._entries) == 2 and "a" not in kept._entries
