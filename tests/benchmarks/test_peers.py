"""The peer baselines compute CVF-01 and CVF-02 per country and month as alcance does, on the real stack.

2,000 events of the processors benchmark's stream (with its repeated records and retractions) are
processed by alcance's processor and by each peer, with one and with two processes; every cell must
agree with the naive reference computed from the generated events.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.peers.launch import committed_records, read_cells, spawn_peer, stop_processes
from benchmarks.peers.reference import Cells, reference_cells
from benchmarks.processors.stream import FUTURE_ALLOWANCE_S, generate
from infra.kafka import client_kwargs, make_producer
from infra.settings import Settings
from processors.read import read_indicators
from processors.runtime import IndicatorProcessor
from schemas.cloudevents import encode
from schemas.events.base import Event
from schemas.topics import TopicCatalogue

EVENTS = 2_000


async def _produce(settings: Settings, events: list[Event]) -> int:
    catalogue = TopicCatalogue.from_settings(settings)
    producer = make_producer(settings.kafka, linger_ms=20)
    await producer.start()
    try:
        sent = []
        for event in events:
            record = encode(event)
            sent.append(
                await producer.send(
                    catalogue.topic_for(event).name,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                )
            )
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return len(events)


async def _until_committed(
    settings: Settings, group: str, records: int, children: list[asyncio.subprocess.Process], name: str
) -> None:
    """Wait until `group` has committed `records` records (3 minutes at most), then stop `children`."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings.kafka))
    await admin.start()
    try:
        deadline = time.monotonic() + 180
        while await committed_records(admin, group) < records:
            assert all(child.returncode is None for child in children), f"{name} stopped"
            assert time.monotonic() < deadline, f"{name} did not commit the stream"
            await asyncio.sleep(0.25)
    finally:
        await admin.close()
        await stop_processes(children)


async def _alcance_cells(settings: Settings, pool: asyncpg.Pool, records: int) -> Cells:
    settings = settings.model_copy(
        update={"processor": settings.processor.model_copy(update={"future_allowance_s": FUTURE_ALLOWANCE_S})}
    )
    processor = IndicatorProcessor(settings, pool=pool, relay=False)
    task = asyncio.create_task(processor.run())
    deadline = time.monotonic() + 120
    while int(await pool.fetchval("SELECT coalesce(sum(next_offset), 0) FROM kafka_offset")) < records:
        assert time.monotonic() < deadline, "alcance's processor did not commit the stream"
        await asyncio.sleep(0.2)
    processor.request_stop()
    await task
    values: dict[str, dict[tuple[str, str], int]] = {}
    for indicator in ("CVF-01", "CVF-02"):
        cells = await read_indicators(
            pool, indicator=indicator, period="month", by=("country",), settings=settings
        )
        values[indicator] = {
            (cell["dimensions"]["country"], cell["period"]["start"][:7]): int(cell["value"])
            for cell in cells
            if cell["value"]
        }
    return {cell: (count, values["CVF-02"].get(cell, 0)) for cell, count in values["CVF-01"].items()}


async def test_the_naive_reference_equals_alcances_cvf01_and_cvf02(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    events = generate(EVENTS, 503)
    records = await _produce(settings, events)
    expected = reference_cells(events)
    assert sum(enrolments for enrolments, _ in expected.values()) > 500, "the stream has enrolments"
    assert await _alcance_cells(settings, pg_pool, records) == expected


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize("peer", ["quix", "plain"])
async def test_a_peer_computes_cvf01_and_cvf02_per_country_and_month(
    settings: Settings, peer: str, processes: int
) -> None:
    events = generate(EVENTS, 503)
    records = await _produce(settings, events)
    group = TopicCatalogue.from_settings(settings).consumer_group(f"peer-{peer}")
    schema = f"{settings.postgres.db_schema}_{peer}_{uuid.uuid4().hex[:6]}"
    children = await spawn_peer(peer, processes, settings=settings, group=group, schema=schema)
    await _until_committed(settings, group, records, children, peer)
    assert settings.postgres.dsn is not None
    dsn = settings.postgres.dsn.get_secret_value()
    try:
        assert await read_cells(dsn, schema) == reference_cells(events)
    finally:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await connection.close()


@pytest.mark.parametrize("floor", ["floor_aiokafka", "floor_confluent", "floor_decode"])
async def test_a_floor_reads_every_record_and_computes_nothing(settings: Settings, floor: str) -> None:
    events = generate(EVENTS, 503)
    records = await _produce(settings, events)
    training = TopicCatalogue.from_settings(settings).training.name
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        # One record no contract admits: the decoding floor must see it as invalid and read on.
        await producer.send_and_wait(training, key=b"k", value=b"{not json")
    finally:
        await producer.stop()
    records += 1
    group = TopicCatalogue.from_settings(settings).consumer_group(f"peer-{floor}")
    children = await spawn_peer(
        floor, 2, settings=settings, group=group, schema="unused", stderr=asyncio.subprocess.PIPE
    )
    await _until_committed(settings, group, records, children, floor)
    said = [(await child.stderr.read()).decode() for child in children if child.stderr is not None]
    reports = [line for text in said for line in text.splitlines() if line.startswith("floor: ")]
    assert len(reports) == 2, said
    if floor == "floor_decode":
        assert sorted(reports) == ["floor: 0 invalid records", "floor: 1 invalid records"]
    else:
        read = sum(int(report.split()[1]) for report in reports)
        assert read == sum(len(encode(event).value or b"") for event in events) + len(b"{not json")
