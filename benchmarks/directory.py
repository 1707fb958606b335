"""Latency of member-state reads of the PLGN directory (row-level security, field masking, audit row).

Usage: `.venv/bin/python -m benchmarks.directory [--firms 5000] [--repeat 30] [--json]`

A fresh local PostgreSQL gets a directory schema with `--firms` firms, each with a consent (60 % for all
members, the rest for three states) and half of them a contact person's consent; then a member state's
first page (`list_firms`, 50 firms), a filtered page (`hs_chapter`) and one firm (`get_firm`) are read
`--repeat` times each, every read in its own transaction with its access-log row. Medians and p95 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

STATES = ("AR", "BO", "BR", "CL", "CO", "CU", "EC", "MX", "PA", "PY", "PE", "UY", "VE")


async def _fill(connection: Any, schema: str, firms: int, seed: int) -> None:
    from directory.ledger import GIVEN, ConsentEntry, record
    from directory.store import FirmRecord, as_writer, store_firm

    rng = random.Random(seed)
    at = datetime.now(UTC) - timedelta(days=1)
    async with connection.transaction():
        await as_writer(connection)
        for n in range(firms):
            org = f"o-{n:06d}"
            recipients = ("ALL_MEMBERS",) if rng.random() < 0.6 else tuple(rng.sample(STATES, 3))
            fields = ("legalName", "country", "sector", "hsChapters", "sizeBand", "contactEmail")
            entries = [
                ConsentEntry(org, org, "ORG", org, GIVEN, recipients, fields, at, at, "plgn", f"f:{org}")
            ]
            if n % 2:
                entries.append(ConsentEntry(f"p{org}", org, "PERSON", f"p-{n}", GIVEN, recipients,
                                            ("contactEmail",), at, at, "plgn", f"p:{org}"))  # fmt: skip
            await record(connection, schema, entries)
            values = {"legalName": f"Firma {n}", "country": rng.choice(STATES),
                      "sector": f"{rng.randint(1, 99):02d}", "hsChapters": [f"{rng.randint(1, 97):02d}"],
                      "sizeBand": "SMALL", "contactEmail": f"c{n}@firma.example"}  # fmt: skip
            await store_firm(connection, schema, FirmRecord(org, values))


async def _timed(repeat: int, call: Any) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    from directory.access import FirmFilters, Identity, get_firm, list_firms
    from directory.schema import migrate
    from infra.local_postgres import LocalPostgres

    with tempfile.TemporaryDirectory(prefix="alcance-bench-") as state:
        postgres = LocalPostgres(Path(state))
        await postgres.start(120)
        try:
            connection = await asyncpg.connect(postgres.dsn)
            schema = "bench_directory"
            await migrate(connection, schema)
            started = time.perf_counter()
            await _fill(connection, schema, args.firms, args.seed)
            fill_s = time.perf_counter() - started
            brazil = Identity("bench", "state", "BR")
            page = await list_firms(connection, brazil, FirmFilters(), schema=schema)
            result = {
                "firms": args.firms,
                "fill_firms_per_s": round(args.firms / fill_s),
                "first_page": await _timed(
                    args.repeat, lambda: list_firms(connection, brazil, FirmFilters(), schema=schema)
                ),
                "filtered_page": await _timed(
                    args.repeat,
                    lambda: list_firms(connection, brazil, FirmFilters(hs_chapter="08"), schema=schema),
                ),
                "one_firm": await _timed(
                    args.repeat, lambda: get_firm(connection, brazil, page[0]["ref"], schema=schema)
                ),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}",
            }
            await connection.close()
        finally:
            await postgres.stop()
    return result


def main() -> None:
    """Run the benchmark and print its result."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.directory", description=__doc__)
    parser.add_argument("--firms", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    result = asyncio.run(_run(args))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
