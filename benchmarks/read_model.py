"""Latency of the read model (`processors.read.read_indicators`) over a filled store, as JSON.

Usage: `.venv/bin/python -m benchmarks.read_model [--events N] [--repeat 3] [--json] [--per-indicator]`

1. N events (the scale) of the processors benchmark's mix (enrolments, completions, certificates,
   progress, costs, deal reports, meetings; retractions and duplicates) are produced to the local
   broker and processed by one in-process indicator processor into a fresh PostgreSQL schema; the
   ingest rate is the events over the time from the processor's start to its last committed offset.
   The stream is generated and produced a chunk at a time (`iter_records`): up to 2M events it is the
   exact stream of the seed, its records spilled to a temporary file for the duplicates to draw from;
   above, duplicates repeat one of the last 200k records, held in memory. With a kept `--state-dir`, the
   file `<schema>.records` there says the stream was produced (its record count): a rerun generates
   nothing, finishes processing what is not committed yet, or reads the store as it is.
2. A dashboard mix (`dashboard_mix`) is read `--repeat` times: single indicators as year totals, by
   country, by country and audience, a year of months, and every tile of an overview page (all
   indicators as year totals in one read). p50, p95 and p99 are over every query of the mix.
3. With `--per-indicator`, every catalogue indicator is also read per month grouped by its first
   dimension, per year as totals and per year externally (with suppression); the best of
   `--repeat` runs is reported.

`--json` prints only the one-line summary object (``events``, ``ingest_events_per_s``, ``p50_ms``,
``p95_ms``, ``p99_ms``, the medians per query kind, ``all_indicators_year_ms``, and outside the mix
``rolled_up_p50_ms`` and ``rolled_up_p95_ms`` over reads of the indicators served by rollups).

Unless `--no-snapshots`, the outbox marks the load left are relayed and one full refresh of the
indicator snapshots runs before the mix (``relay_s``, ``refresh_s``, ``snapshot_rows``), so the mix's
reads of now are served from the snapshots (``served_from_snapshots`` counts them).

With `--during-ingest M`, M more events are then ingested by a processor, its relay and the snapshot
refresher (processes of their own, as `alcance run` starts them) while the mix is read over and over
(`benchmarks.read_during_ingest`); ``during_ingest`` reports the reads' p50/p95/p99, how many the
snapshots served, the lag of their values (read time minus `as_of`, p50 and max) and the ingest rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.processors import FUTURE_ALLOWANCE_S
from benchmarks.processors.alcance import committed_records
from benchmarks.processors.stream import iter_records
from processors.indicators.base import PeriodKind

if TYPE_CHECKING:
    from infra.settings import Settings


async def _timed(repeat: int, call: Any) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        began = time.perf_counter()
        result = await call()
        best = min(best, time.perf_counter() - began)
    return best, result


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from infra.kafka import ensure_topics
    from infra.local import running_stack
    from infra.postgres import create_pool, migrate
    from infra.settings import load_settings
    from schemas.topics import TopicCatalogue

    with contextlib.ExitStack() as stack:
        state = args.state_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="alcance-bench-"))
        async with running_stack(load_settings(state_dir=Path(state))) as resolved:
            # One schema and topic set per scale and seed, so a kept state directory holds several.
            name = store_name(args.events, args.seed)
            settings = benchmark_settings(resolved, name)
            catalogue = TopicCatalogue.from_settings(settings)
            await ensure_topics(settings.kafka, catalogue.all())
            pool = await create_pool(settings.postgres)
            await migrate(pool)
            records = await _produced(settings, Path(state) / f"{name}.records", args, pool)
            processed_s: float | None = None
            processed = 0
            if await committed_records(pool) < records:
                processed_s, processed = await _load(settings, pool, records)
            prepared: dict[str, Any] = {"snapshots": not args.no_snapshots}
            if args.no_snapshots:
                settings = settings.model_copy(
                    update={"processor": settings.processor.model_copy(update={"snapshots": False})}
                )
            else:
                prepared.update(await _snapshots(settings, pool, relay=not args.no_relay))
            stored = {
                table: int(await pool.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608 - fixed names
                for table in (
                    "indicator_part",
                    "indicator_member",
                    "indicator_report",
                    "indicator_rollup",
                    "indicator_rollup_member",
                    "indicator_member_year",
                    "indicator_report_winner",
                    "indicator_cell_value",
                    "indicator_outbox",  # marks not relayed yet: changes pending for the reads
                )
            }
            mix, served = await _dashboard_mix(pool, settings, args.repeat)
            rolled = await _rolled_up_reads(pool, settings, args.repeat)
            reads = await _per_indicator(pool, settings, args.repeat) if args.per_indicator else []
            during: dict[str, Any] | None = None
            if args.during_ingest:
                from benchmarks.read_during_ingest import reads_during_ingest

                during = await reads_during_ingest(settings, pool, args.during_ingest, args.seed)
            await pool.close()
    latencies = sorted(ms for _, ms in mix)
    by_kind: dict[str, list[float]] = {}
    for kind, ms in mix:
        by_kind.setdefault(kind, []).append(ms)
    summary: dict[str, Any] = {
        "events": args.events,
        "records": records,
        # None when a kept state directory already held the store (nothing was loaded this time).
        "ingest_s": None if processed_s is None else round(processed_s, 1),
        "ingest_events_per_s": None if processed_s is None else round(processed / processed_s),
        # Fewer than `records` when this run finished a load an earlier run on the kept store began.
        "ingest_records": processed,
        "queries": len(latencies),
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "median_ms_by_kind": {kind: percentile(sorted(found), 0.5) for kind, found in by_kind.items()},
        "all_indicators_year_ms": by_kind["overview_all_tiles"]
        and percentile(sorted(by_kind["overview_all_tiles"]), 0.5),
        "stored_rows": stored,
        # With snapshots: the relay's drain of the load's outbox marks, one full refresh, its rows, and
        # how many queries of the mix the snapshots served (the others were computed live).
        **prepared,
        "served_from_snapshots": served,
        # The benchmark process's own peak (the broker and PostgreSQL are other processes).
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        # Outside the mix: the indicators read from rollups, each as year totals, by its first
        # dimension and as a year of months (medians and p95 over those reads).
        "rolled_up_p50_ms": percentile(sorted(rolled), 0.50) if rolled else None,
        "rolled_up_p95_ms": percentile(sorted(rolled), 0.95) if rolled else None,
        "snapshot_max_lag_s": settings.processor.snapshot_max_lag_s,
        "during_ingest": during,
    }
    if args.json:
        return summary
    return {
        "benchmark": "read_model",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "summary": summary,
        "reads": reads,
    }


def store_name(events: int, seed: int) -> str:
    """The schema (and topic prefix) of the store loaded with `events` events of `seed`."""
    return f"bench_read_{events}_{seed}"


def benchmark_settings(resolved: Settings, name: str | None = None) -> Settings:
    """`resolved` for a benchmark: under `name`, a schema and topic set of their own (so a kept state
    directory holds several scales); the stream's dates are fixed, so the plausible window admits them."""
    update: dict[str, Any] = {
        "processor": resolved.processor.model_copy(update={"future_allowance_s": FUTURE_ALLOWANCE_S})
    }
    if name is not None:
        update["kafka"] = resolved.kafka.model_copy(update={"topic_prefix": f"{name}."})
        update["postgres"] = resolved.postgres.model_copy(update={"db_schema": name})
    return resolved.model_copy(update=update)


# Above this many events the stream is generated with a bounded duplicate window (`iter_stream`), so the
# benchmark's memory does not grow with the scale; the scales published before keep their exact stream.
WHOLE_STREAM_MAX_EVENTS = 2_000_000
# Records produced per chunk: only one chunk's encoded records are held at a time.
PRODUCE_CHUNK = 20_000
# Above `WHOLE_STREAM_MAX_EVENTS`, duplicates repeat one of this many records before them.
DUPLICATE_WINDOW = 200_000


async def _produced(settings: Any, marker: Path, args: argparse.Namespace, pool: Any) -> int:
    """The number of records of the load: produced now, or by an earlier run on a kept state directory.

    A finished production writes `marker` with the count; a store loaded before markers existed
    (offsets committed, no marker) produced everything before processing, so its offsets are the count.
    """
    known = _marked_count(marker)
    if known is not None:
        return known
    already = await committed_records(pool)
    if already == 0:
        _mark_count(marker, PRODUCING)
        already = await _produce(settings, args.events, args.seed)
    _mark_count(marker, already)
    return already


# What the marker holds while the stream is being produced: a run stopped then left the topics partly
# filled, and producing again would add to them.
PRODUCING = "producing"


def _marked_count(marker: Path) -> int | None:
    if not marker.exists():
        return None
    text = marker.read_text().strip()
    if text == PRODUCING:
        raise SystemExit(
            f"{marker}: an earlier run stopped while producing the stream, so its topics hold part of it;"
            " use a new --state-dir (or remove this one)"
        )
    return int(text)


def _mark_count(marker: Path, count: int | str) -> None:
    marker.write_text(f"{count}\n")


async def _produce(settings: Any, events: int, seed: int) -> int:
    """Produce the benchmark's stream of `events` to the input topics, a chunk at a time; the record count."""
    from infra.kafka import make_producer
    from schemas.topics import TopicCatalogue

    catalogue = TopicCatalogue.from_settings(settings)
    window = None if events <= WHOLE_STREAM_MAX_EVENTS else DUPLICATE_WINDOW
    producer = make_producer(settings.kafka, linger_ms=20)
    await producer.start()
    count = 0
    began = time.perf_counter()
    try:
        stream = iter_records(events, seed, lambda e: catalogue.topic_for(e).name, duplicate_window=window)
        while chunk := list(islice(stream, PRODUCE_CHUNK)):
            sent = []
            for topic, record in chunk:
                headers = record.headers
                sent.append(await producer.send(topic, key=record.key, value=record.value, headers=headers))
            await asyncio.gather(*sent)
            count += len(chunk)
            if count % (PRODUCE_CHUNK * 50) < PRODUCE_CHUNK:
                _progress(f"produced {count:,} records in {time.perf_counter() - began:.0f} s")
    finally:
        await producer.stop()
    return count


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _load(settings: Any, pool: Any, records: int) -> tuple[float, int]:
    """Process the `records` produced with one in-process processor: the seconds it took to commit them,
    and how many it committed (fewer than `records` when an earlier run on the kept store began)."""
    from processors.runtime import IndicatorProcessor

    before = await committed_records(pool)
    processor = IndicatorProcessor(settings, pool=pool, relay=False)
    began = time.perf_counter()
    task = asyncio.create_task(processor.run())
    last_report = began
    # Progress lives only in the store's offsets table, which sends no notification: poll it.
    while (done := await committed_records(pool)) < records:
        await asyncio.sleep(0.2)
        if time.perf_counter() - last_report >= 60:
            last_report = time.perf_counter()
            _progress(f"processed {done:,} of {records:,} records in {last_report - began:.0f} s")
    processed_s = time.perf_counter() - began
    processor.request_stop()
    await task
    return processed_s, records - before


# Headline indicators of a coordinators' dashboard: training reach and results, PLGN, activities.
HEADLINES = ("CVF-01", "CVF-02", "CVF-05", "CVF-07", "CVF-10", "PLGN-01", "ACT-01", "ACT-06")


def dashboard_mix() -> list[tuple[str, str | None, PeriodKind, tuple[str, ...]]]:
    """The queries of one dashboard refresh: (kind, indicator or None for all, period kind, by)."""
    from processors.indicators.catalogue import get

    queries: list[tuple[str, str | None, PeriodKind, tuple[str, ...]]] = []
    for indicator in HEADLINES:
        dimensions = get(indicator).dimensions
        queries.append(("year_totals", indicator, "year", ()))
        if "country" in dimensions:
            queries.append(("year_by_country", indicator, "year", ("country",)))
        if {"country", "audience"} <= set(dimensions):
            queries.append(("year_by_country_audience", indicator, "year", ("country", "audience")))
        queries.append(("months", indicator, "month", ()))
    queries.append(("overview_all_tiles", None, "year", ()))
    return queries


async def _dashboard_mix(pool: Any, settings: Any, repeat: int) -> tuple[list[tuple[str, float]], int]:
    """(query kind, milliseconds) of every query of the mix, `repeat` times over; how many were served."""
    from processors.read import read_indicators

    timings: list[tuple[str, float]] = []
    served = 0
    for _ in range(repeat):
        for kind, indicator, period, by in dashboard_mix():
            began = time.perf_counter()
            found = await read_indicators(pool, indicator=indicator, period=period, by=by, settings=settings)
            timings.append((kind, round((time.perf_counter() - began) * 1000, 2)))
            served += found.from_snapshots
    return timings, served


async def _snapshots(
    settings: Any, pool: Any, *, only_due: bool = False, relay: bool = True
) -> dict[str, Any]:
    """Relay the load's outbox marks (the processor ran without its relay), then refresh every snapshot.

    With `only_due`, refresh only the snapshots not current (stale, old, or of other settings or code).
    Without `relay`, the marks stay in the outbox: the reads then find changes pending, as while the
    relay is behind.
    """
    from infra.kafka_acls import ensure_acls
    from processors.outbox import OutboxRelay
    from processors.snapshots import RefreshPacing, refresh
    from schemas.topics import TopicCatalogue

    relay_s = None
    if relay:
        # As `python -m processors.outbox` does: the relay's principal may write this prefix's topics.
        await ensure_acls(settings.kafka, TopicCatalogue.from_settings(settings))
        began = time.perf_counter()
        stop = asyncio.Event()
        stop.set()  # relay what is pending, then return
        await OutboxRelay(settings, pool).run(stop)
        relay_s = round(time.perf_counter() - began, 1)
        _progress(f"relayed the outbox marks in {relay_s:.0f} s")
    _progress("refreshing every snapshot")
    # A largest age of 0 makes every snapshot due: one full refresh, as the refresher's periodic one.
    max_age_s = settings.processor.snapshot_max_age_s if only_due else 0.0
    pacing = RefreshPacing(settings.processor.snapshot_max_busy_share, max_age_s=max_age_s)
    async with pool.acquire() as connection:
        done = await refresh(connection, settings, pacing)
    if done is None and only_due:
        return {"relay_s": relay_s, "refresh_s": 0.0, "snapshot_rows": 0}
    if done is None:
        raise RuntimeError("another refresher holds this store's refresh lock")
    return {
        "relay_s": relay_s,
        "refresh_s": round(done.seconds, 1),
        "snapshot_rows": done.rows,
    }


async def _rolled_up_reads(pool: Any, settings: Any, repeat: int) -> list[float]:
    """Milliseconds of reads of the indicators that rollups serve (`processors.read_rollups`)."""
    from processors.indicators.catalogue import INDICATORS
    from processors.read import read_indicators
    from processors.rollups import qualifies

    timings: list[float] = []
    for _ in range(repeat):
        for entry in INDICATORS:
            if not qualifies(entry):
                continue
            reads: tuple[tuple[PeriodKind, tuple[str, ...]], ...] = (
                ("year", ()),
                ("year", tuple(entry.dimensions[:1])),
                ("month", ()),
            )
            for period, by in reads:
                began = time.perf_counter()
                await read_indicators(pool, indicator=entry.id, period=period, by=by, settings=settings)
                timings.append(round((time.perf_counter() - began) * 1000, 2))
    return timings


async def _per_indicator(pool: Any, settings: Any, repeat: int) -> list[dict[str, Any]]:
    from processors.indicators.catalogue import INDICATORS
    from processors.read import read_indicators

    reads = []
    for entry in INDICATORS:
        by = entry.dimensions[:1]
        row: dict[str, Any] = {"indicator": entry.id}
        for label, period, grouping, audience in (
            ("month_by_first_dim_s", "month", by, "internal"),
            ("year_totals_s", "year", (), "internal"),
            ("year_external_s", "year", (), "external"),
        ):

            async def call(i: str = entry.id, p: Any = period, g: Any = grouping, a: Any = audience) -> Any:
                return await read_indicators(pool, indicator=i, period=p, by=g, audience=a, settings=settings)

            seconds, cells = await _timed(repeat, call)
            row[label] = round(seconds, 4)
            row[label.replace("_s", "_cells")] = len(cells)
        reads.append(row)
    return reads


def percentile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values, linear between closest ranks."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=503)
    parser.add_argument(
        "--state-dir",
        help="keep the broker and store here; a rerun at the same scale and seed reads the kept store",
    )
    parser.add_argument("--json", action="store_true", help="print only the summary, as one JSON object")
    parser.add_argument(
        "--no-snapshots", action="store_true", help="read live: no relay drain, refresh or snapshot reads"
    )
    parser.add_argument(
        "--no-relay",
        action="store_true",
        help="leave the load's outbox marks unrelayed: the reads find changes pending, as while the relay"
        " is behind",
    )
    parser.add_argument("--per-indicator", action="store_true", help="also read every indicator three ways")
    parser.add_argument(
        "--during-ingest",
        type=int,
        default=0,
        metavar="M",
        help="then ingest M more events with the pipeline's processes, reading the mix meanwhile",
    )
    args = parser.parse_args()
    result = asyncio.run(_run(args))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
