"""`alcance status`: sources' health, lag and last error, processors' committed offsets, from the store."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import asyncpg

# The log identity whose offsets matter: the one the processors committed under most recently.
_OFFSETS = """
SELECT consumer_group, topic, partition, next_offset, updated_at
  FROM kafka_offset
 WHERE log_identity = (SELECT log_identity FROM kafka_offset ORDER BY updated_at DESC LIMIT 1)
 ORDER BY consumer_group, topic, partition
"""
# Per source, the offsets its newest checkpoint of that identity says were produced.
_PRODUCED = """
SELECT DISTINCT ON (source) source, produced_offsets::text AS produced
  FROM connector_checkpoint
 WHERE log_identity = (SELECT log_identity FROM kafka_offset ORDER BY updated_at DESC LIMIT 1)
 ORDER BY source, seq DESC
"""
_SOURCES = """
SELECT source, kind, host, health, last_error, failing_for_s, records_pulled, events_published,
       dead_lettered, seconds_behind, updated_at
  FROM source_health ORDER BY source
"""


async def read_status(pool: asyncpg.Pool) -> dict[str, Any]:
    """The sources' stored health and the processors' committed offsets, with how far each trails."""
    async with pool.acquire() as connection:
        sources = [dict(row) for row in await connection.fetch(_SOURCES)]
        offsets = await connection.fetch(_OFFSETS)
        produced_rows = await connection.fetch(_PRODUCED)
    produced: dict[tuple[str, int], int] = defaultdict(lambda: -1)
    for row in produced_rows:
        for topic, partitions in json.loads(row["produced"]).items():
            for partition, offset in partitions.items():
                key = (topic, int(partition))
                produced[key] = max(produced[key], int(offset))
    processors = []
    for row in offsets:
        highest = produced.get((row["topic"], row["partition"]))
        processors.append(
            {
                "consumer_group": row["consumer_group"],
                "topic": row["topic"],
                "partition": row["partition"],
                "next_offset": row["next_offset"],
                # Events published but not yet processed, as far as the connectors' checkpoints know.
                "behind": None if highest is None else max(0, highest + 1 - row["next_offset"]),
                "updated_at": row["updated_at"],
            }
        )
    return {"sources": sources, "processors": processors}


def format_status(status: dict[str, Any]) -> list[str]:
    """`read_status` as lines of text for a person."""
    lines = ["sources:"]
    if not status["sources"]:
        lines.append("  none has run against this store yet")
    for source in status["sources"]:
        lag = "unknown" if source["seconds_behind"] is None else f"{source['seconds_behind']:.0f} s"
        line = (
            f"  {source['source']} ({source['kind']}, {source['host']}): {source['health']}; lag {lag}; "
            f"{source['records_pulled']} records pulled, {source['dead_lettered']} dead-lettered; "
            f"updated {source['updated_at']:%Y-%m-%d %H:%M:%S %Z}"
        )
        if source["failing_for_s"] is not None:
            line += f"; failing for {source['failing_for_s']:.0f} s"
        if source["last_error"]:
            line += f"; last error: {source['last_error']}"
        lines.append(line)
    lines.append("processors (committed offsets):")
    if not status["processors"]:
        lines.append("  no offset committed yet")
    for row in status["processors"]:
        behind = "" if row["behind"] is None else f", {row['behind']} behind"
        lines.append(
            f"  {row['consumer_group']} {row['topic']}[{row['partition']}]: next offset {row['next_offset']}"
            f"{behind}; updated {row['updated_at']:%Y-%m-%d %H:%M:%S %Z}"
        )
    return lines
