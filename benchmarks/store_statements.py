"""What each statement of the processors' batch transaction costs PostgreSQL, per record, as JSON.

Usage: `.venv/bin/python -m benchmarks.store_statements [--events 40000] [--seed 503]`

A fresh local stack is started in a temporary directory with `pg_stat_statements` loaded; N events of
the processors benchmark's mix (with its retractions and duplicates) are produced to the broker and
processed by one in-process processor (relay off), as `benchmarks.read_model` loads its store. Then
one JSON object is printed: per statement that wrote to the store, its calls, rows, execution time,
shared blocks dirtied and WAL bytes, each divided by the records processed; and their totals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path
from typing import Any

# The tables a batch writes, in the order a reader expects them; a statement is named after the first
# one it names after INSERT INTO, UPDATE or DELETE FROM, in a common table expression or not.
_TARGET = re.compile(r"\b(INSERT INTO|(?<!DO )UPDATE|DELETE FROM)\s+(\w+)", re.S | re.I)

_STATEMENTS = """
SELECT query, calls, rows, total_exec_time, shared_blks_dirtied, wal_bytes, wal_fpi
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


_CHECKPOINTS = "SELECT num_timed + num_requested FROM pg_stat_checkpointer"


def _label(query: str) -> str | None:
    found = _TARGET.search(query)
    if found is None:
        return None
    verb = found.group(1).split()[0].lower()
    conflict = " upsert" if verb == "insert" and "ON CONFLICT" in query and "DO UPDATE" in query else ""
    return f"{verb}{conflict} {found.group(2)}"


def _per_statement(rows: list[Any]) -> dict[str, dict[str, float]]:
    """pg_stat_statements' rows summed per statement label (`_label`); unlabelled ones left out."""
    per: dict[str, dict[str, float]] = {}
    for row in rows:
        label = _label(row["query"])
        if label is None:
            continue
        entry = per.setdefault(
            label, {"calls": 0, "rows": 0.0, "exec_us": 0.0, "dirtied": 0.0, "wal_bytes": 0.0, "wal_fpi": 0.0}
        )
        entry["calls"] += row["calls"]
        entry["rows"] += row["rows"]
        entry["exec_us"] += row["total_exec_time"] * 1000
        entry["dirtied"] += row["shared_blks_dirtied"]
        entry["wal_bytes"] += float(row["wal_bytes"])
        entry["wal_fpi"] += row["wal_fpi"]
    return per


def _statement_costs(per: dict[str, dict[str, float]], count: int) -> dict[str, dict[str, float]]:
    """Each statement's cost per record processed, the costliest first."""
    return {
        label: {
            "calls": int(entry["calls"]),
            "rows_per_record": round(entry["rows"] / count, 3),
            "exec_us_per_record": round(entry["exec_us"] / count, 2),
            "blocks_dirtied_per_1k_records": round(entry["dirtied"] * 1000 / count, 1),
            "wal_bytes_per_record": round(entry["wal_bytes"] / count),
            "full_page_images_per_1k_records": round(entry["wal_fpi"] * 1000 / count, 1),
        }
        for label, entry in sorted(per.items(), key=lambda item: -item[1]["exec_us"])
    }


async def _apply_notes(pool: Any) -> float:
    """Seconds the relay's step takes to apply every note the load left (`apply_noted_changes`)."""
    from processors.cell_values import apply_noted_changes

    started = time.perf_counter()
    async with pool.acquire() as connection, connection.transaction():
        await apply_noted_changes(connection)
    return time.perf_counter() - started


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    from benchmarks.read_model import _load, _produce, benchmark_settings
    from infra.kafka import ensure_topics
    from infra.local import stack_for
    from infra.postgres import create_pool, migrate
    from infra.settings import load_settings
    from schemas.topics import TopicCatalogue

    with tempfile.TemporaryDirectory(prefix="alcance-statements-") as state:
        base = load_settings(state_dir=Path(state))
        stack = stack_for(base)
        await stack.start()
        try:
            admin = await asyncpg.connect(stack.dsn)
            await admin.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            await admin.close()
            await stack.restart_postgres()
            resolved = stack.resolve(base)
            settings = benchmark_settings(resolved)
            catalogue = TopicCatalogue.from_settings(settings)
            await ensure_topics(settings.kafka, catalogue.all())
            pool = await create_pool(settings.postgres)
            await migrate(pool)
            count = await _produce(settings, args.events, args.seed)
            admin = await asyncpg.connect(stack.dsn)
            await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await admin.execute("SELECT pg_stat_statements_reset()")
            checkpoints_before = await admin.fetchval(_CHECKPOINTS)
            seconds, _ = await _load(settings, pool, count)
            await asyncio.sleep(2)  # the backends flush their table statistics when idle
            rows = await admin.fetch(_STATEMENTS)
            await admin.execute("SELECT pg_stat_statements_reset()")
            applying_s = await _apply_notes(pool)
            applying = await admin.fetch(_STATEMENTS)
            checkpoints = await admin.fetchval(_CHECKPOINTS) - checkpoints_before
            tuples = {
                r["relname"]: {"inserted": r[1], "updated": r[2], "hot_updated": r[3], "deleted": r[4]}
                for r in await admin.fetch(
                    "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables"
                    " WHERE schemaname = $1 AND relname IN ('fact', 'indicator_member', 'indicator_report')",
                    settings.postgres.db_schema,
                )
            }
            sizes = {
                table: int(
                    await admin.fetchval(
                        f"SELECT pg_total_relation_size('{settings.postgres.db_schema}.{table}')"
                    )
                )
                for table in ("fact", "indicator_member", "indicator_report", "indicator_part")
            }
            await admin.close()
            await pool.close()
        finally:
            await stack.stop()
    per = _per_statement(rows)
    statements = _statement_costs(per, count)
    applying_us = sum(entry["exec_us"] for entry in _per_statement(applying).values())
    return {
        "benchmark": "store_statements",
        "events": args.events,
        "records": count,
        "load_s": round(seconds, 1),
        "records_per_s": round(count / seconds),
        "exec_us_per_record": round(sum(e["exec_us"] for e in per.values()) / count, 1),
        "wal_bytes_per_record": round(sum(e["wal_bytes"] for e in per.values()) / count),
        "checkpoints": checkpoints,
        "table_bytes_per_record": {table: round(size / count) for table, size in sizes.items()},
        "statements": statements,
        # What the relay's applying of these batches' notes costs (one round, after the load; with the
        # cell values off there are none).
        "relay_applying": {
            "s": round(applying_s, 2),
            "exec_us_per_record": round(applying_us / count, 1),
            "statements": _statement_costs(_per_statement(applying), count),
        },
        "tuples": tuples,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
    }


def main() -> None:
    """Parse arguments, run, print one JSON object."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=40_000, help="distinct events to load (default 40000)")
    parser.add_argument("--seed", type=int, default=503, help="seed of the event mix (default 503)")
    print(json.dumps(asyncio.run(_run(parser.parse_args())), indent=1))


if __name__ == "__main__":
    main()
