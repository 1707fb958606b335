"""Invalidation notices for open pages, fed by the `indicators` topic.

One tail per web process reads every partition of the topic from its end, without a consumer group.
Only "indicator X of grain G changed" reaches a browser, never a value: the topic holds unsuppressed
cells, so a page re-reads the panel through the API, which applies the caller's role. Notices are
coalesced per (indicator, grain) over `coalesce_s`; a client whose queue overflows gets one
`resync` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

from infra.kafka import make_consumer, topic_partitions
from infra.roles import READER_PRINCIPAL, kafka_settings_for
from infra.settings import Settings
from schemas.topics import TopicCatalogue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """One server-sent event: `indicator` (this indicator and grain changed) or `resync` (re-read all)."""

    event: str
    indicator: str = ""
    grain: str = ""
    version: int = 0

    def data(self) -> str:
        """The event's JSON data: names only, never values."""
        if self.event == "resync":
            return "{}"
        return json.dumps({"indicator": self.indicator, "grain": self.grain})


class StreamHub:
    """Fans coalesced notices out to bounded per-client queues."""

    def __init__(self, *, coalesce_s: float = 1.0, queue_size: int = 256) -> None:
        self.coalesce_s = coalesce_s
        self.queue_size = queue_size
        self._clients: set[asyncio.Queue[Notice]] = set()
        self._pending: dict[tuple[str, str], int] = {}
        # Per cell key, the highest version seen: an older record replayed by the broker is dropped.
        self._versions: dict[str, int] = {}

    def subscribe(self) -> asyncio.Queue[Notice]:
        """A new client's queue."""
        queue: asyncio.Queue[Notice] = asyncio.Queue(self.queue_size)
        self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Notice]) -> None:
        """Forget a client (its stream ended)."""
        self._clients.discard(queue)

    def note(self, key: str, indicator: str, grain: str, version: int) -> None:
        """Record that a cell changed; it is announced at the next flush."""
        if version <= self._versions.get(key, 0):
            return
        self._versions[key] = version
        pending = self._pending.get((indicator, grain), 0)
        self._pending[(indicator, grain)] = max(pending, version)

    def announce(self, indicator: str, grain: str) -> None:
        """Record that an indicator changed without a cell record (a snapshot refresh, for instance)."""
        self._pending.setdefault((indicator, grain), 0)

    def flush(self) -> None:
        """Send the pending notices to every client; an overflowing client gets one `resync`."""
        notices = [Notice("indicator", i, g, v) for (i, g), v in sorted(self._pending.items())]
        self._pending.clear()
        for queue in self._clients:
            for notice in notices:
                try:
                    queue.put_nowait(notice)
                except asyncio.QueueFull:
                    while not queue.empty():
                        queue.get_nowait()
                    queue.put_nowait(Notice("resync"))
                    break

    def resync_all(self) -> None:
        """Tell every client to re-read everything (changes may have been missed)."""
        self._pending.clear()
        for queue in self._clients:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(Notice("resync"))

    async def run_flusher(self) -> None:
        """Flush every `coalesce_s` until cancelled."""
        while True:
            await asyncio.sleep(self.coalesce_s)
            self.flush()


async def tail_indicators(settings: Settings, hub: StreamHub) -> None:
    """Feed `hub` from the end of the `indicators` topic until cancelled (no consumer group)."""
    topic = TopicCatalogue.from_settings(settings).indicators.name
    kafka = kafka_settings_for(settings.kafka, READER_PRINCIPAL)
    partitions = await topic_partitions(kafka, topic)
    consumer = make_consumer(kafka, None)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        while True:
            batches = await consumer.getmany(timeout_ms=1_000, max_records=1_000)
            for records in batches.values():
                for record in records:
                    _note_record(hub, record.key, record.value)
    finally:
        await consumer.stop()


def _note_record(hub: StreamHub, key: bytes | None, value: bytes | None) -> None:
    try:
        payload = json.loads(value or b"")
        hub.note(
            (key or b"").decode(), payload["indicator"], payload["period"]["kind"], int(payload["version"])
        )
    except (ValueError, KeyError, TypeError):
        # The relay publishes only validated IndicatorValue records; anything else is not a change.
        logger.warning("skipped an indicators-topic record that is not an indicator value")


async def run_stream(settings: Settings, hub: StreamHub) -> None:
    """The tail and the flusher together; the tail restarts after a broker error."""
    flusher = asyncio.create_task(hub.run_flusher(), name="stream-flusher")
    try:
        while True:
            try:
                await tail_indicators(settings, hub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("indicator stream interrupted (%s); retrying in 5 s", type(exc).__name__)
                hub.resync_all()
                await asyncio.sleep(5)
    finally:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
