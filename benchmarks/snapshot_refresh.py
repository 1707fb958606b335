"""One full refresh of the indicator snapshots over a kept store, as JSON: its time, CPU and memory.

Usage: `.venv/bin/python -m benchmarks.snapshot_refresh --state-dir DIR --events N [--repeat 1]`

DIR is a state directory the read benchmark kept (`benchmarks.read_model --state-dir DIR --events N`),
holding the schema ``bench_read_N_SEED`` with its outbox marks relayed. The stack is started there and
every indicator is recomputed for every period kind and declared grouping at one fixed instant, as the
refresher's periodic full refresh does, without generating any events (so the process's peak memory is
the refresh's own). Reported: ``refresh_s`` (median wall time), ``cpu_s`` (median CPU time of this
process, the Python side; PostgreSQL's work is not in it), ``results``, ``peak_rss_mb`` (this process,
stack start included) and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The instant the refresh is computed at: fixed, so two runs write the same results.
AS_OF = datetime(2026, 12, 1, tzinfo=UTC)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from infra.local import running_stack
    from infra.postgres import create_pool
    from infra.settings import load_settings
    from processors.snapshots import RefreshPacing, refresh

    load_before = os.getloadavg()
    async with running_stack(load_settings(state_dir=Path(args.state_dir))) as resolved:
        schema = f"bench_read_{args.events}_{args.seed}"
        settings = resolved.model_copy(
            update={"postgres": resolved.postgres.model_copy(update={"db_schema": schema})}
        )
        pool = await create_pool(settings.postgres)
        # A largest age of 0 makes every snapshot due: one full refresh.
        pacing = RefreshPacing(settings.processor.snapshot_max_busy_share, max_age_s=0.0)
        walls: list[float] = []
        cpus: list[float] = []
        results = 0
        try:
            for _ in range(args.repeat):
                async with pool.acquire() as connection:
                    began, cpu = time.perf_counter(), time.process_time()
                    done = await refresh(connection, settings, pacing, as_of=AS_OF)
                    walls.append(time.perf_counter() - began)
                    cpus.append(time.process_time() - cpu)
                if done is None:
                    raise RuntimeError("another refresher holds this store's refresh lock")
                results = done.rows
        finally:
            await pool.close()
    return {
        "events": args.events,
        "results": results,
        "refresh_s": round(statistics.median(walls), 1),
        "cpu_s": round(statistics.median(cpus), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average_before": [round(load, 2) for load in load_before],
        "load_average_after": [round(load, 2) for load in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True, help="a state directory the read benchmark kept")
    parser.add_argument("--events", type=int, required=True, help="the scale of the kept store")
    parser.add_argument("--seed", type=int, default=503)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_run(args))))


if __name__ == "__main__":
    main()
