"""Running alcance's roles for the benchmark: processors and the outbox relay, on a fresh schema."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from benchmarks.peers.launch import stop_processes
from benchmarks.peers.reference import Cells
from benchmarks.processors.measure import measure


async def spawn(settings: Any, count: int) -> list[asyncio.subprocess.Process]:
    """Start `count` processors, then the outbox relay as its own process, then (with snapshots on) the
    snapshot refresher as its own process.

    Their logs go to this benchmark's stderr (level: --log-level).
    """
    from infra.settings_export import settings_as_environment

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALCANCE_")}
    # The processors leave publication to the relay process.
    env.update(
        settings_as_environment(
            settings.model_copy(update={"processor": settings.processor.model_copy(update={"relay": False})})
        )
    )
    return [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, env=env, stdin=asyncio.subprocess.DEVNULL
        )
        for module in ["processors.runtime"] * count
        + ["processors.outbox"]
        + (["processors.snapshots"] if settings.processor.snapshots else [])
    ]


async def committed_records(pool: Any) -> int:
    """How many records the store has committed: its next offsets summed over every input partition."""
    return int(await pool.fetchval("SELECT coalesce(sum(next_offset), 0) FROM kafka_offset"))


_PENDING = """
SELECT (SELECT count(*) FROM indicator_outbox), (SELECT count(*) FROM indicator_member_flip),
       (SELECT count(*) FROM indicator_report_change)
"""


async def relay_pending(pool: Any) -> dict[str, int]:
    """What the relay has yet to take: outbox marks, and the changes the batches noted for the cell
    values (`processors.cell_values`)."""
    marks, flips, reports = await pool.fetchrow(_PENDING)
    return {"outbox_marks": marks, "noted_member_flips": flips, "noted_report_changes": reports}


async def relay_catch_up(pool: Any, most_s: float = 900.0) -> float | None:
    """Seconds from the end of ingest until the relay has taken everything (None: not within `most_s`).

    Ingest is timed until the batches have committed every record; the relay's share of the work that
    is still pending then is not in the events/s, so it is timed here.
    """
    started = time.monotonic()
    while any((await relay_pending(pool)).values()):
        if time.monotonic() - started > most_s:
            return None
        await asyncio.sleep(0.25)
    return round(time.monotonic() - started, 2)


async def fresh_schema(settings: Any, name: str) -> Any:
    """Settings on a new, migrated schema `name`, and a pool on it."""
    from infra.postgres import create_pool, migrate

    fresh = settings.model_copy(update={"postgres": settings.postgres.model_copy(update={"db_schema": name})})
    pool = await create_pool(fresh.postgres)
    await migrate(pool)
    return fresh, pool


async def drop_schema(pool: Any, name: str) -> None:
    """Drop a run's schema once read, so that repeated runs at 1M events keep the disk flat."""
    await pool.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


async def produce(settings: Any, records: list[tuple[str, Any]]) -> list[Any]:
    """Produce encoded records; the metadata of each, once every one is acknowledged."""
    from infra.kafka import make_producer

    producer = make_producer(settings.kafka, linger_ms=20)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=r.key, value=r.value, headers=r.headers) for topic, r in records
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def cvf_cells(pool: Any, settings: Any) -> Cells:
    """alcance's CVF-01 and CVF-02 per country and month, read from the store."""
    from processors.read import read_indicators

    values = {}
    for indicator in ("CVF-01", "CVF-02"):
        # The present, never a snapshot the refresher took mid-run.
        cells = await read_indicators(
            pool, indicator=indicator, period="month", by=("country",), settings=settings, fresh=True
        )
        values[indicator] = {
            (cell["dimensions"]["country"], cell["period"]["start"][:7]): int(cell["value"])
            for cell in cells
            if cell["value"]
        }
    return {cell: (count, values["CVF-02"].get(cell, 0)) for cell, count in values["CVF-01"].items()}


async def throughput(
    settings: Any, processes: int, total: int, *, run: str, expected: Cells | None
) -> dict[str, Any]:
    """One run of alcance over the whole stream on a fresh schema; `expected` checks CVF-01/CVF-02."""
    name = f"bench_{run}"
    fresh, pool = await fresh_schema(settings, name)
    children = await spawn(fresh, processes)
    roles = {child.pid: "processors" for child in children[:processes]} | {children[processes].pid: "relay"}
    roles |= {child.pid: "snapshots" for child in children[processes + 1 :]}

    try:
        window = await measure(children, roles, lambda: committed_records(pool), total)
        pending_at_end = await relay_pending(pool)
        caught_up_s = await relay_catch_up(pool)
        published = await pool.fetchval("SELECT last_value FROM indicator_version_seq")
        instants = await pool.fetchval("SELECT count(DISTINCT as_of) FROM indicator_snapshot_state")
        facts = await pool.fetchval("SELECT count(*) FROM fact")
        rows = {
            table: await pool.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608  # fixed names
            for table in (
                "indicator_part",
                "indicator_member",
                "indicator_report",
                "indicator_rollup",
                "indicator_rollup_member",
                "indicator_member_year",
                "indicator_report_winner",
                "indicator_cell_value",
            )
        }
    finally:
        await stop_processes(children)
    try:
        correct = None if expected is None else await cvf_cells(pool, fresh) == expected
        await drop_schema(pool, name)
    finally:
        await pool.close()
    peaks = window.peak_rss_kib
    return {
        "system": "alcance",
        "processes": processes,
        "records": total,
        "facts": facts,
        "stored_rows": rows,
        **window.summary(),
        "peak_rss_mib": [round(peak / 1024, 1) for peak in peaks[:processes]],
        "relay_peak_rss_mib": round(peaks[processes] / 1024, 1),
        "snapshots": fresh.processor.snapshots,
        "snapshots_peak_rss_mib": [round(peak / 1024, 1) for peak in peaks[processes + 1 :]],
        "snapshot_instants": instants,
        "relay_versions_drawn": published,
        "relay_pending_at_end": pending_at_end,
        "relay_catch_up_s": caught_up_s,
        "cvf01_cvf02_correct": correct,
    }
