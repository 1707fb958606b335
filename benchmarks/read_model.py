"""Latency of the read model (`processors.read.read_indicators`) over a filled store, as JSON.

Usage: `.venv/bin/python -m benchmarks.read_model [--events N] [--repeat 3]`

1. N events of the processors benchmark's mix (enrolments, completions, certificates, progress,
   costs, deal reports, meetings; retractions and duplicates) are produced to the local broker and
   processed by one in-process indicator processor into a fresh PostgreSQL schema.
2. Every catalogue indicator is read per month grouped by its first dimension, per year as totals,
   and per year externally (with suppression); then all indicators at once. The best of `--repeat`
   runs is reported, with the number of stored rows each read loads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.processors import generate


async def _timed(repeat: int, call: Any) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        began = time.perf_counter()
        result = await call()
        best = min(best, time.perf_counter() - began)
    return best, result


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from infra.kafka import ensure_topics, make_producer
    from infra.local import running_stack
    from infra.postgres import create_pool, migrate
    from infra.settings import load_settings
    from processors.indicators.catalogue import INDICATORS
    from processors.read import read_indicators
    from processors.runtime import IndicatorProcessor
    from schemas.cloudevents import encode
    from schemas.topics import TopicCatalogue

    events = generate(args.events, args.seed)
    with tempfile.TemporaryDirectory(prefix="alcance-bench-") as state:
        async with running_stack(load_settings(state_dir=Path(state))) as resolved:
            settings = resolved.model_copy(
                update={
                    "kafka": resolved.kafka.model_copy(update={"topic_prefix": "benchread."}),
                    "postgres": resolved.postgres.model_copy(update={"db_schema": "bench_read"}),
                }
            )
            catalogue = TopicCatalogue.from_settings(settings)
            await ensure_topics(settings.kafka, catalogue.all())
            pool = await create_pool(settings.postgres)
            await migrate(pool)
            producer = make_producer(settings.kafka, linger_ms=20)
            await producer.start()
            try:
                sent = [
                    await producer.send(
                        catalogue.topic_for(e).name, key=r.key, value=r.value, headers=r.headers
                    )
                    for e in events
                    for r in (encode(e),)
                ]
                await asyncio.gather(*sent)
            finally:
                await producer.stop()
            processor = IndicatorProcessor(settings, pool=pool, relay=False)
            began = time.perf_counter()
            task = asyncio.create_task(processor.run())
            committed = "SELECT coalesce(sum(next_offset), 0) FROM kafka_offset"
            # Progress lives only in the store's offsets table, which sends no notification: poll it.
            while int(await pool.fetchval(committed)) < len(sent):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            processed_s = time.perf_counter() - began
            processor.request_stop()
            await task
            stored = {
                table: int(await pool.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608 - fixed names
                for table in ("indicator_part", "indicator_member", "indicator_report")
            }
            reads = []
            for entry in INDICATORS:
                by = entry.dimensions[:1]
                row: dict[str, Any] = {"indicator": entry.id}
                for label, period, grouping, audience in (
                    ("month_by_first_dim_s", "month", by, "internal"),
                    ("year_totals_s", "year", (), "internal"),
                    ("year_external_s", "year", (), "external"),
                ):

                    async def call(
                        i: str = entry.id, p: Any = period, g: Any = grouping, a: Any = audience
                    ) -> Any:
                        return await read_indicators(
                            pool, indicator=i, period=p, by=g, audience=a, settings=settings
                        )

                    seconds, cells = await _timed(args.repeat, call)
                    row[label] = round(seconds, 4)
                    row[label.replace("_s", "_cells")] = len(cells)
                reads.append(row)

            async def everything() -> Any:
                return await read_indicators(pool, indicator=None, period="year", by=(), settings=settings)

            all_s, all_cells = await _timed(args.repeat, everything)
            await pool.close()
    return {
        "benchmark": "read_model",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "events": args.events,
        "records": len(sent),
        "process_s": round(processed_s, 1),
        "stored_rows": stored,
        "reads": reads,
        "all_indicators_year_totals": {"seconds": round(all_s, 3), "cells": len(all_cells)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=503)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_run(args)), indent=2))


if __name__ == "__main__":
    main()
