"""One throughput run of a peer baseline over the whole stream, on a fresh consumer group and schema."""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.peers.launch import FLOORS, committed_records, read_cells, spawn_peer, stop_processes
from benchmarks.peers.reference import Cells
from benchmarks.processors.measure import measure


async def throughput(
    settings: Any, peer: str, processes: int, total: int, *, run: str, expected: Cells | None
) -> dict[str, Any]:
    """Run `processes` processes of `peer` until every record is committed; `expected` checks its cells."""
    from infra.kafka import client_kwargs
    from schemas.topics import TopicCatalogue

    group = TopicCatalogue.from_settings(settings).consumer_group(f"peer-{run}")
    schema = f"bench_{run}"
    dsn = settings.postgres.dsn.get_secret_value()
    children = await spawn_peer(peer, processes, settings=settings, group=group, schema=schema)
    admin = AIOKafkaAdminClient(**client_kwargs(settings.kafka))
    await admin.start()
    try:
        window = await measure(
            children,
            {child.pid: "processors" for child in children},
            lambda: committed_records(admin, group),
            total,
        )
    finally:
        await admin.close()
        await stop_processes(children)
    # The floors compute nothing to check: that they read every record is what `measure` waits for.
    correct = None if expected is None or peer in FLOORS else await read_cells(dsn, schema) == expected
    return {
        "system": peer,
        "processes": processes,
        "records": total,
        **window.summary(),
        "peak_rss_mib": [round(peak / 1024, 1) for peak in window.peak_rss_kib],
        "cvf01_cvf02_correct": correct,
    }
