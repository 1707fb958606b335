"""Reads of the dashboard mix while more events are ingested (`benchmarks.read_model --during-ingest M`).

On the store the read benchmark filled, M more events of the same mix (another seed, their record,
enrolment, certificate, meeting, deal and cost identities renamed so none repeats one already stored)
are produced to the same topics; then a processor with its relay and the snapshot refresher start as
`alcance run` starts them, each a process of its own, and once the processor has committed its first
new batch the dashboard mix is read over and over from this process until it has committed every new
record (reads before the first batch would find nothing pending). Each read is timed, and its instant
(`as_of`) compared with the wall clock when it began: the lag of the values served.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from benchmarks.processors.alcance import committed_records

# Identities the generator numbers from 0 on every run: renamed so a second stream adds new records.
_RENAMED = ("enrolment_id", "certificate_id", "meeting_id", "deal_id", "cost_id")
_STOP_TIMEOUT_S = 60.0


async def _reached(pool: Any, target: int) -> float:
    """The `time.perf_counter()` when the committed offsets reach `target` (polled every 0.1 s)."""
    # Progress lives only in the store's offsets table, which sends no notification: poll it.
    while await committed_records(pool) < target:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    return time.perf_counter()


def more_events(count: int, seed: int, tag: str) -> list[Any]:
    """`count` events of the benchmark's mix whose identities carry `tag`, new to a store of other tags."""
    from benchmarks.processors import generate
    from schemas.events.base import event_id_for

    renamed: dict[Any, Any] = {}

    def new_id(old: Any, source: str) -> Any:
        if old not in renamed:
            renamed[old] = event_id_for(source, f"{tag}:{old}")
        return renamed[old]

    stream = []
    for event in generate(count, seed):
        update: dict[str, Any] = {"event_id": new_id(event.event_id, event.source)}
        for name in _RENAMED:
            value = getattr(event, name, None)
            if isinstance(value, str):
                update[name] = f"{value}-{tag}"
        retracted = getattr(event, "retracted_event_id", None)
        if retracted is not None:
            update["retracted_event_id"] = new_id(retracted, event.source)
        stream.append(event.model_copy(update=update))
    return stream


async def reads_during_ingest(settings: Any, pool: Any, count: int, seed: int) -> dict[str, Any]:
    """Ingest `count` more events with the pipeline's processes while reading the dashboard mix."""
    from benchmarks.read_model import dashboard_mix, percentile
    from infra.child_settings import spawn_with_settings
    from infra.kafka import make_producer
    from processors.read import read_indicators
    from schemas.cloudevents import encode
    from schemas.topics import TopicCatalogue

    catalogue = TopicCatalogue.from_settings(settings)
    records = [(catalogue.topic_for(e).name, encode(e)) for e in more_events(count, seed + 1, f"i{seed}")]
    initial = await committed_records(pool)
    target = initial + len(records)
    producer = make_producer(settings.kafka, linger_ms=20)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, key=r.key, value=r.value, headers=r.headers) for topic, r in records
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()

    timings: list[float] = []
    lags: list[float] = []
    served = pending = 0
    instants: set[datetime] = set()
    children = [
        await spawn_with_settings(settings, "processors.runtime"),
        await spawn_with_settings(settings, "processors.snapshots"),
    ]
    began = time.perf_counter()
    try:
        # Progress lives only in the store's offsets table, which sends no notification: poll it.
        while await committed_records(pool) == initial:
            if any(child.returncode is not None for child in children):
                raise RuntimeError("a pipeline process stopped during the benchmark (see its log above)")
            await asyncio.sleep(0.1)
        reading_from = time.perf_counter()
        finished = asyncio.create_task(_reached(pool, target))
        # Stop after the read in hand once the last record is committed (a live read can take seconds).
        while not finished.done():
            for _kind, indicator, period, by in dashboard_mix():
                now = datetime.now(UTC)
                started = time.perf_counter()
                found = await read_indicators(
                    pool, indicator=indicator, period=period, by=by, settings=settings
                )
                timings.append((time.perf_counter() - started) * 1000)
                lags.append((now - found.as_of).total_seconds())
                served += found.from_snapshots
                pending += found.changes_pending
                instants.add(found.as_of)
                if finished.done():
                    break
            if any(child.returncode is not None for child in children):
                finished.cancel()
                raise RuntimeError("a pipeline process stopped during the benchmark (see its log above)")
        done_at = await finished
    finally:
        for child in children:
            if child.returncode is None:
                child.terminate()
        for child in children:
            try:
                await asyncio.wait_for(child.wait(), _STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
    ingest_s = done_at - began
    ordered, lagged = sorted(timings), sorted(lags)
    return {
        "events": count,
        "records": len(records),
        "ingest_s": round(ingest_s, 1),
        # From the processes' start (their start-up included) to the last record committed.
        "ingest_events_per_s": round(len(records) / ingest_s),
        # The reads below ran from the first new batch's commit to the last's.
        "reading_s": round(done_at - reading_from, 1),
        "queries": len(ordered),
        "p50_ms": percentile(ordered, 0.50),
        "p95_ms": percentile(ordered, 0.95),
        "p99_ms": percentile(ordered, 0.99),
        "served_from_snapshots": served,
        "served_share": round(served / len(ordered), 3),
        "served_with_changes_pending": pending,
        # Read's start minus the instant its values are exact at (live reads: about 0).
        "lag_p50_s": round(percentile(lagged, 0.50), 1),
        "lag_max_s": round(lagged[-1], 1),
        "distinct_instants": len(instants),
    }
