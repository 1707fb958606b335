"""Live updates: a change on the `indicators` topic reaches an open stream as a notice, never a value."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import aiohttp

from infra.kafka import make_producer
from infra.settings import Settings
from processors.indicator_records import indicator_record
from schemas.topics import TopicCatalogue
from tests.web.conftest import MakeToken
from web.stream import StreamHub

NOTICE_WITHIN_S = 2.0


async def publish(settings: Settings, version: int, indicator: str = "CVF-01") -> None:
    record = indicator_record(
        indicator=indicator,
        period_kind="month",
        period_start=date(2026, 3, 1),
        dimensions={"country": "AR"},
        parts={"gross": Decimal(3), "net": Decimal(3)},
        version=version,
        as_of=datetime.now(UTC),
    )
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        topic = TopicCatalogue.from_settings(settings).indicators.name
        await producer.send_and_wait(topic, key=record.key, value=record.value, headers=record.headers)
    finally:
        await producer.stop()


async def next_event(response: aiohttp.ClientResponse, timeout_s: float) -> dict[str, str]:
    """The next server-sent event (pings, which are comments, skipped)."""
    event: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        raw = await asyncio.wait_for(response.content.readline(), max(0.01, deadline - time.monotonic()))
        line = raw.decode().rstrip("\r\n")
        if not line:
            if event:
                return event
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        event[name] = value.strip()


async def test_a_published_change_reaches_an_open_stream_as_a_notice_without_values(
    filled: Settings, base_url: str, make_token: MakeToken
) -> None:
    token = await make_token("external")
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{base_url}/api/v1/stream", headers=headers) as r,
    ):
        assert r.status == 200 and r.content_type == "text/event-stream"
        # Published twice with the same version and once older: one notice.
        began = time.monotonic()
        await publish(filled, version=10**12)
        await publish(filled, version=10**12)
        event = await next_event(r, NOTICE_WITHIN_S + 1.5)
        assert time.monotonic() - began < NOTICE_WITHIN_S + 0.5
        assert event == {
            "event": "indicator",
            "id": str(10**12),
            "data": json.dumps({"indicator": "CVF-01", "grain": "month"}),
        }
        await publish(filled, version=10**12 - 1)
        await publish(filled, version=10**12 + 1, indicator="CVF-02")
        following = await next_event(r, NOTICE_WITHIN_S + 1.5)
        assert json.loads(following["data"]) == {"indicator": "CVF-02", "grain": "month"}


async def test_a_reconnecting_client_is_told_to_resync(base_url: str, make_token: MakeToken) -> None:
    headers = {"Authorization": f"Bearer {await make_token('coordinator')}", "Last-Event-ID": "41"}
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{base_url}/api/v1/stream", headers=headers) as r,
    ):
        assert await next_event(r, 2.0) == {"event": "resync", "data": "{}"}


async def test_a_client_that_falls_behind_gets_one_resync_instead_of_a_backlog() -> None:
    hub = StreamHub(queue_size=3)
    queue = hub.subscribe()
    for number in range(10):
        hub.note(f"key-{number}", f"CVF-{number:02d}", "month", version=number + 1)
    hub.flush()
    notices = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [notice.event for notice in notices] == ["resync"]
    hub.note("key-0", "CVF-00", "month", version=1)
    hub.flush()
    assert queue.empty(), "a version seen already announces nothing"
