"""Latency at a fixed rate: each record's publish time against the moment its offset is committed.

Records are produced at `rate` events/s on fresh topics to running processors; the benchmark polls
`kafka_offset` every 5 ms, so figures are up to ~5 ms late. p50/p99 are reported.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from benchmarks.peers.launch import stop_processes
from benchmarks.processors.alcance import committed_records, fresh_schema, spawn


async def latency(
    settings: Any, processes: int, events: list[Any], rate: int, seconds: float
) -> dict[str, Any]:
    from infra.kafka import ensure_topics, make_producer
    from schemas.cloudevents import encode
    from schemas.topics import TopicCatalogue

    prefix = f"lat{processes}."
    lat_settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"topic_prefix": prefix})}
    )
    catalogue = TopicCatalogue.from_settings(lat_settings)
    await ensure_topics(lat_settings.kafka, catalogue.all())
    fresh, pool = await fresh_schema(lat_settings, f"bench_lat{processes}")
    count = int(rate * seconds)
    records = [(catalogue.topic_for(e).name, encode(e)) for e in events[:count]]
    children = await spawn(fresh, processes)
    producer = make_producer(fresh.kafka, linger_ms=2)
    await producer.start()
    sent: list[tuple[float, Any]] = []
    seen: dict[tuple[str, int], list[tuple[float, int]]] = {}
    stop_polling = asyncio.Event()

    async def poll() -> None:
        while not stop_polling.is_set():
            rows = await pool.fetch("SELECT topic, partition, next_offset FROM kafka_offset")
            now = time.monotonic()
            for topic, partition, next_offset in rows:
                history = seen.setdefault((topic, partition), [])
                if not history or history[-1][1] != next_offset:
                    history.append((now, next_offset))
            await asyncio.sleep(0.005)

    try:
        # Wait until every partition is claimed, so the group's join is not measured as latency.
        expected = len(catalogue.input_topics()) * fresh.kafka.partitions
        claimed = 0
        while claimed < expected:
            await asyncio.sleep(0.1)
            claimed = await pool.fetchval("SELECT count(*) FROM kafka_offset")
        await asyncio.sleep(2 * fresh.kafka.session_timeout_ms / 1000)
        poller = asyncio.create_task(poll())
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        begin = time.monotonic()
        for start in range(0, len(records), per_tick):
            target = begin + (start // per_tick) * tick
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for topic, record in records[start : start + per_tick]:
                future = await producer.send(
                    topic, key=record.key, value=record.value, headers=record.headers
                )
                sent.append((time.monotonic(), future))
        achieved = len(records) / (time.monotonic() - begin)
        metadata = [(t, await future) for t, future in sent]
        deadline = time.monotonic() + 120
        while True:
            done = await committed_records(pool)
            if done >= len(records) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)
        stop_polling.set()
        await poller
    finally:
        await producer.stop()
        await stop_processes(children)
        await pool.close()
    latencies = []
    for published, meta in metadata:
        history = seen.get((meta.topic, meta.partition), [])
        committed = next((t for t, next_offset in history if next_offset > meta.offset), None)
        if committed is not None:
            latencies.append((committed - published) * 1000)
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

    return {
        "processes": processes,
        "target_rate": rate,
        "achieved_rate": round(achieved),
        "records": len(records),
        "measured": len(latencies),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1], 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
    }
