"""How fast the outbox relay publishes every cell of a loaded store, as JSON.

Usage: `.venv/bin/python -m benchmarks.relay_drain --events N --state-dir DIR [--seconds 600]`

Reads the store that `benchmarks.read_model --events N --state-dir DIR` loaded (same seed), marks every
stored month cell in the outbox (as a recompute does; each month stands for its quarter and year), adds
the marks the store already holds, and runs one relay alone, allowed all the time (busy share 1), until
the outbox is empty or `--seconds` have passed. Prints the marks taken, the records published, the
wall and CPU seconds of the relay and the marks left.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.read_model import benchmark_settings, store_name
from infra.settings import Settings

_MARK_EVERY_MONTH = """
INSERT INTO indicator_outbox (indicator, period_kind, period_start, dims)
SELECT DISTINCT indicator, 'month', period_start, dims FROM indicator_part
UNION SELECT DISTINCT indicator, 'month', period_start, dims FROM indicator_member
UNION SELECT DISTINCT indicator, 'month', period_start, dims FROM indicator_report
"""


async def drain(
    settings: Settings, pool: asyncpg.Pool, *, seconds: float, mark_all: bool = True
) -> dict[str, Any]:
    """Mark every stored month cell (unless `mark_all` is false) and relay until the outbox is empty.

    The relay runs alone and is allowed all the time; it gives up after `seconds`.
    """
    from processors.outbox import OutboxRelay

    processor = settings.processor.model_copy(update={"relay_max_busy_share": 1.0})
    settings = settings.model_copy(update={"processor": processor})
    if mark_all:
        await pool.execute(_MARK_EVERY_MONTH)
    marks = int(await pool.fetchval("SELECT count(*) FROM indicator_outbox"))
    relay = OutboxRelay(settings, pool)
    stop = asyncio.Event()
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(relay.run(stop))
    left = marks
    while left and time.perf_counter() - started < seconds and not task.done():
        await asyncio.sleep(0.2)
        left = int(await pool.fetchval("SELECT count(*) FROM indicator_outbox"))
    wall_s = time.perf_counter() - started
    stop.set()
    await task
    return {
        "marks": marks,
        "marks_left": int(await pool.fetchval("SELECT count(*) FROM indicator_outbox")),
        "records_published": relay.published,
        "wall_s": round(wall_s, 1),
        "relay_cpu_s": round(time.process_time() - cpu, 1),
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from infra.kafka_acls import ensure_acls
    from infra.local import running_stack
    from infra.postgres import create_pool, migrate
    from infra.settings import load_settings
    from schemas.topics import TopicCatalogue

    async with running_stack(load_settings(state_dir=Path(args.state_dir))) as resolved:
        settings = benchmark_settings(resolved, store_name(args.events, args.seed))
        pool = await create_pool(settings.postgres)
        try:
            await migrate(pool)
            await ensure_acls(settings.kafka, TopicCatalogue.from_settings(settings))
            drained = await drain(settings, pool, seconds=args.seconds, mark_all=not args.keep_outbox)
        finally:
            await pool.close()
    return {"benchmark": "relay_drain", "events": args.events, **drained}


def main() -> None:
    """Entry point of ``python -m benchmarks.relay_drain``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, required=True, help="the scale benchmarks.read_model loaded")
    parser.add_argument("--seed", type=int, default=503)
    parser.add_argument("--state-dir", required=True, help="the kept state directory of that load")
    parser.add_argument("--seconds", type=float, default=600.0, help="give up after this long")
    parser.add_argument(
        "--keep-outbox", action="store_true", help="relay only the marks already waiting (mark nothing)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(_run(args))))


if __name__ == "__main__":
    main()
