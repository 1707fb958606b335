"""The pages' reads, kept until an indicator they show changes (or `ttl_s` passes).

The read model computes a table in tens to hundreds of milliseconds, and a page shows several; most
page views repeat a read nothing has changed since. An entry is dropped when the indicators stream
announces a change of an indicator it depends on (a `resync` drops everything), and after `ttl_s` in
any case: cohorts close and ROI windows end with the clock, and targets change without a notice.
A read that started before a change is not kept, so a page re-read after a notice never gets an
older value back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from web.state import HUB

Value = TypeVar("Value")
ANY = "*"


@dataclass
class _Entry:
    stored_at: float
    depends: frozenset[str]
    value: Any


class ReadCache:
    """Read results by key, each with the indicator ids it depends on (`*`: every indicator)."""

    def __init__(self, *, ttl_s: float = 60.0, max_entries: int = 1_024) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[Hashable, _Entry] = {}
        self._generation = 0

    async def get(self, key: Hashable, depends: Iterable[str], load: Callable[[], Awaitable[Value]]) -> Value:
        """The kept value of `key`, or `load()`'s, kept unless a change was announced meanwhile."""
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry.stored_at < self.ttl_s:
            kept: Value = entry.value
            return kept
        generation = self._generation
        value = await load()
        if generation == self._generation:
            if len(self._entries) >= self.max_entries:
                oldest = min(self._entries, key=lambda k: self._entries[k].stored_at)
                del self._entries[oldest]
            self._entries[key] = _Entry(time.monotonic(), frozenset(depends), value)
        return value

    def changed(self, indicator: str | None) -> None:
        """Drop what depends on `indicator` (None: everything)."""
        self._generation += 1
        if indicator is None:
            self._entries.clear()
            return
        for key in [k for k, e in self._entries.items() if indicator in e.depends or ANY in e.depends]:
            del self._entries[key]


READS = web.AppKey("page_reads", ReadCache)


async def follow_changes(app: web.Application) -> AsyncIterator[None]:
    """Keep the app's read cache in step with the indicators stream while the app runs."""
    cache = app[READS]
    hub = app[HUB]
    queue = hub.subscribe()

    async def drain() -> None:
        while True:
            notice = await queue.get()
            cache.changed(notice.indicator if notice.event == "indicator" else None)

    task = asyncio.create_task(drain(), name="page-cache-invalidation")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    hub.unsubscribe(queue)
