"""Sources that fail loudly: a failure deadline per source, its health in the store, and a summary.

Each failed attempt is counted against the source; once it has failed without a single success for
longer than `connector.failure_deadline_s`, it is logged at ERROR and marked failed (in memory and in
table `source_health`). A run with `until_idle` then stops that source, so the run ends instead of
retrying for ever; a continuous run goes on trying and the health recovers on the next success.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import asyncpg

from connectors.base import Connector, Health
from connectors.exceptions import ConnectorError
from connectors.http import source_host
from infra.errors import STORE_ERRORS

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How often a stalled fetch is checked against the deadline, and a source's health written to the store.
WATCH_INTERVAL_S = 1.0
HEALTH_WRITE_INTERVAL_S = 2.0


class SourceFailedTooLong(ConnectorError):
    """Raised when a source failed for longer than its deadline in a run that must end (`until_idle`)."""


class FailureWatch:
    """Tracks one source's streak of failed attempts against its deadline.

    Args:
        connector: the connector whose source is watched.
        deadline_s: how long the source may fail without a success before it counts as failed.
        clock: monotonic seconds (replaceable in tests).
    """

    def __init__(
        self, connector: Connector, deadline_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.connector = connector
        self.deadline_s = deadline_s
        self.host = source_host(connector.source)
        self._clock = clock
        self.failing_since: float | None = None
        self.overdue_reported = False

    def failed_attempt(self, reason: str) -> None:
        """Called on every failed attempt of the source (an HTTP retry or a failed page)."""
        if self.failing_since is None:
            self.failing_since = self._clock()
        self.connector.stats.last_error = reason

    def succeeded(self) -> None:
        """Called when a page came back: the streak ends and a failed health recovers."""
        if self.overdue_reported:
            logger.warning("source %s (%s): answering again", self.connector.name, self.host)
        self.failing_since = None
        self.overdue_reported = False

    def failing_for_s(self) -> float:
        """Seconds since the current streak of failures began (0 without one)."""
        return 0.0 if self.failing_since is None else self._clock() - self.failing_since

    def overdue(self) -> bool:
        """Whether the source has failed for longer than its deadline."""
        return self.failing_since is not None and self.failing_for_s() > self.deadline_s

    def _report_overdue(self) -> None:
        self.connector.set_health(Health.FAILED)
        if not self.overdue_reported:
            self.overdue_reported = True
            logger.error(
                "source %s (%s): failing for %.0f s, longer than its deadline of %g s; last error: %s",
                self.connector.name,
                self.host,
                self.failing_for_s(),
                self.deadline_s,
                self.connector.stats.last_error,
            )

    async def guard(self, work: Awaitable[T], *, until_idle: bool) -> T:
        """`await work`, checking the deadline meanwhile (a fetch may retry for minutes inside).

        Raises:
            SourceFailedTooLong: with `until_idle`, once the source is overdue (`work` is cancelled;
                nothing was committed, so the next run starts from the same cursor).
        """
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=WATCH_INTERVAL_S)
                if done:
                    return task.result()
                if self.overdue():
                    self._report_overdue()
                    if until_idle:
                        raise SourceFailedTooLong(
                            f"no answer for {self.failing_for_s():.0f} s "
                            f"(deadline {self.deadline_s:g} s): {self.connector.stats.last_error}"
                        )
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def stopped(self, error: BaseException, description: str) -> None:
        """Log, once and at ERROR, that the source stopped on `error` (a 401, a lost lease, the deadline)."""
        if isinstance(error, SourceFailedTooLong):
            return  # already logged at ERROR when the deadline passed
        logger.error("source %s (%s) stopped: %s", self.connector.name, self.host, description)


_UPSERT = """
INSERT INTO source_health AS h (source, kind, host, health, last_error, failing_for_s,
                                records_pulled, events_published, dead_lettered, seconds_behind, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
ON CONFLICT (source) DO UPDATE SET
    kind = EXCLUDED.kind, host = EXCLUDED.host, health = EXCLUDED.health, last_error = EXCLUDED.last_error,
    failing_for_s = EXCLUDED.failing_for_s, records_pulled = EXCLUDED.records_pulled,
    events_published = EXCLUDED.events_published, dead_lettered = EXCLUDED.dead_lettered,
    seconds_behind = EXCLUDED.seconds_behind, updated_at = now()
"""


async def write_health(pool: asyncpg.Pool, watch: FailureWatch) -> None:
    """Store the source's current health and counters (table `source_health`, read by `alcance status`)."""
    connector = watch.connector
    stats = connector.stats
    await pool.execute(
        _UPSERT,
        connector.name,
        connector.kind,
        watch.host,
        str(connector.health()),
        stats.last_error,
        watch.failing_for_s() if watch.failing_since is not None else None,
        stats.records_pulled,
        stats.events_published,
        stats.dead_lettered,
        stats.seconds_behind,
    )


async def keep_health_written(pool: asyncpg.Pool, watch: FailureWatch) -> None:
    """Write the source's health every `HEALTH_WRITE_INTERVAL_S` until cancelled, and once on the way out.

    A failing write is logged and skipped: health reporting never stops a source.
    """
    try:
        while True:
            await _write_quietly(pool, watch)
            await asyncio.sleep(HEALTH_WRITE_INTERVAL_S)
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(_write_quietly(pool, watch))


async def _write_quietly(pool: asyncpg.Pool, watch: FailureWatch) -> None:
    try:
        await write_health(pool, watch)
    except STORE_ERRORS as exc:
        logger.warning("source %s: its health could not be stored: %s", watch.connector.name, exc)


def summary_lines(connectors: Sequence[Connector]) -> list[str]:
    """One line per source for the end of a run: health, records pulled, dead letters, last error."""
    lines = []
    for connector in connectors:
        stats = connector.stats
        line = (
            f"source {connector.name} ({source_host(connector.source)}): {connector.health()}, "
            f"{stats.records_pulled} records pulled, {stats.dead_lettered} dead-lettered"
        )
        if stats.last_error:
            line += f", last error: {stats.last_error}"
        lines.append(line)
    return lines
