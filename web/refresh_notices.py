"""Notices of snapshot refreshes, so that open pages served from the snapshots take the new values.

The `indicators` topic announces a cell as soon as the relay publishes it, but a read served from the
snapshots (`processors.read_snapshots`) shows the change only once the refresher has taken it in. The
refresher records each indicator's new instant in `indicator_snapshot_state` (a row per indicator);
each web process looks at that table every `interval_s` and announces every indicator whose instant
moved, in every grain, through the same hub as the topic's notices: the page cache drops the reads
that show it and open pages re-read those sections.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import asyncpg

from infra.errors import is_retryable
from web.stream import StreamHub

logger = logging.getLogger(__name__)

# How often a web process looks for a refresh: a small table read by primary key order.
REFRESH_POLL_S = 2.0
# The period kinds a snapshot holds (`processors.read_snapshots`): a refresh renews all of them.
GRAINS = ("month", "quarter", "year")

_STATE = "SELECT indicator, as_of FROM indicator_snapshot_state"


async def watch_refreshes(pool: asyncpg.Pool, hub: StreamHub, *, interval_s: float = REFRESH_POLL_S) -> None:
    """Announce each refreshed indicator until cancelled; the first look only learns the instants.

    An unreachable store is retried at the next look (its errors logged once per outage).
    """
    seen: dict[str, datetime] | None = None
    failing = False
    while True:
        try:
            current: dict[str, datetime] = {row[0]: row[1] for row in await pool.fetch(_STATE)}
        except Exception as exc:
            if not is_retryable(exc):
                raise
            if not failing:
                logger.warning("cannot look for snapshot refreshes (%s); retrying", type(exc).__name__)
            failing = True
        else:
            failing = False
            refreshed = [
                name
                for name, as_of in sorted(current.items())
                if seen is not None and seen.get(name) != as_of
            ]
            for indicator in refreshed:
                for grain in GRAINS:
                    hub.announce(indicator, grain)
            if refreshed:
                # Sent now: the topic's flusher runs only where the web process tails the topic.
                hub.flush()
            seen = current
        await asyncio.sleep(interval_s)
