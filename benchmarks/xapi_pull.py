"""Pull rate of the xAPI connector against its simulator (local broker and PostgreSQL), as JSON.

Usage: `.venv/bin/python -m benchmarks.xapi_pull [--learners N] [--runs R] [--page-size P]`

The LRS runs in its own process (so the connector's process is measured alone); each run pulls the
whole LRS from the beginning under a fresh source name (fresh checkpoint), publishing to the local
Apache Kafka broker with broker acks per page and committing each page's cursor in PostgreSQL. The figure is
records pulled per second from the first request until the source is exhausted; the median of the runs
is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr


def _serve_lrs(seed: int, learners: int, port_queue: Any) -> None:
    from connectors.simulators.generator import generate
    from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world

    async def serve() -> None:
        statements, _ = statements_from_world(generate(seed, learners=learners), seed=seed)
        server = XapiLrs(statements)
        endpoint = await server.start()
        port_queue.put((endpoint, len(statements)))
        await asyncio.Event().wait()

    asyncio.run(serve())


async def _run(learners: int, runs: int, page_size: int, seed: int) -> dict[str, Any]:
    from connectors.context import ConnectorContext
    from connectors.runtime import PullLoop
    from connectors.xapi import XapiConnector
    from infra.kafka import ensure_topics
    from infra.local import running_stack
    from infra.postgres import create_pool, migrate
    from infra.settings import ConnectorSettings, PseudonymSettings, SourceConfig, load_settings
    from schemas.topics import TopicCatalogue

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    lrs = ctx.Process(target=_serve_lrs, args=(seed, learners, queue), daemon=True)
    lrs.start()
    endpoint, statement_count = queue.get(timeout=120)
    results: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="alcance-bench-") as state:
        base = load_settings(
            state_dir=Path(state),
            connector=ConnectorSettings(page_size=page_size),
            pseudonym=PseudonymSettings(person_key=SecretStr("b" * 32), org_key=SecretStr("c" * 32)),
        )
        async with running_stack(base) as settings:
            pool = await create_pool(settings.postgres)
            try:
                await migrate(pool)
                await ensure_topics(settings.kafka, TopicCatalogue.from_settings(settings).all())
                async with ConnectorContext.open(settings, pool=pool) as context:
                    for run in range(runs):
                        source = SourceConfig(
                            name=f"bench-{run}",
                            kind="xapi",
                            endpoint=endpoint,
                            username="cvf",
                            password=SecretStr("secret"),
                        )
                        connector = XapiConnector(source, settings)
                        started = time.perf_counter()
                        await PullLoop(connector, context).run(until_idle=True)
                        elapsed = time.perf_counter() - started
                        stats = connector.stats
                        results.append(
                            {
                                "seconds": round(elapsed, 3),
                                "records": stats.records_pulled,
                                "events": stats.events_published,
                                "pages": stats.pages,
                                "records_per_s": round(stats.records_pulled / elapsed, 1),
                                "events_per_s": round(stats.events_published / elapsed, 1),
                            }
                        )
                        print(json.dumps({"run": run, **results[-1]}), file=sys.stderr)
            finally:
                await pool.close()
    lrs.terminate()
    lrs.join(5)
    return {
        "benchmark": "xapi_pull",
        "statements_in_lrs": statement_count,
        "page_size": page_size,
        "runs": results,
        "median_records_per_s": statistics.median(r["records_per_s"] for r in results),
        "median_events_per_s": statistics.median(r["events_per_s"] for r in results),
        "median_seconds": statistics.median(r["seconds"] for r in results),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "notes": "LRS simulator in a separate process on the same machine; local Apache Kafka broker "
        "and embedded PostgreSQL on the same cores; acks=all; one checkpoint transaction per page.",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=503)
    parser.add_argument("--verbose", action="store_true", help="log one line per page on stderr")
    args = parser.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(relativeCreated)d %(message)s")
    report = asyncio.run(_run(args.learners, args.runs, args.page_size, args.seed))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
