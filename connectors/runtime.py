"""The pull loop: fetch a page, map it, publish it, wait for acks, then commit its cursor in PostgreSQL.

Order of effects per page, and why it is safe:

1. `fetch_page(cursor)` (retried with backoff while the source fails transiently);
2. `map_record` for each record; rejected records become dead letters, skipped ones are counted;
3. events and dead letters are sent and every broker ack is awaited;
4. one PostgreSQL transaction checks the lease and stores the page's cursor and produced offsets.

A crash between 3 and 4 re-sends the page on restart, which is harmless because event ids are
deterministic. The producer's acks (and the commit) gate the next fetch, so memory holds one page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from connectors.base import Connector, Cursor, Health, Page, PollingConnector
from connectors.checkpoints import CheckpointStore
from connectors.context import ConnectorContext
from connectors.exceptions import DeadLetterRecord, LeaseLost, SkipRecord, describe_error
from connectors.health import FailureWatch, keep_health_written
from connectors.http import HttpClient
from connectors.metrics import instruments
from connectors.pages import PageReader
from connectors.publisher import DeadLetter
from infra.errors import STORE_ERRORS
from infra.retry import Backoff, retrying

if TYPE_CHECKING:
    from schemas.events.base import Event

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PullLoop:
    """Runs one `PollingConnector`: lease, resume, pull/publish/commit pages, retries, shutdown.

    Args:
        connector: the connector to run.
        context: the shared process resources.
    """

    def __init__(self, connector: PollingConnector[Any], context: ConnectorContext) -> None:
        self.connector = connector
        self.context = context
        settings = context.settings
        self.store = CheckpointStore(context.pool, connector.name, lease_ttl_s=settings.connector.lease_ttl_s)
        self._attrs = {"alcance.source": connector.name, "alcance.connector.kind": connector.kind}
        self._metrics = instruments()
        self._lease_error: LeaseLost | None = None
        # Event ids and dead letters of the previous page (see `_not_just_published`).
        self._last_published: tuple[set[UUID], set[tuple[str, bytes, str]]] = (set(), set())
        # Failed attempts against the source's deadline, and its health in the store (connectors.health).
        self.watch = FailureWatch(connector, settings.connector.failure_deadline_s)
        self.backoff = Backoff(settings.connector.backoff_base_s, settings.connector.backoff_max_s)
        self.pages = PageReader(
            connector,
            settings.connector,
            backoff=self.backoff,
            watch=self.watch,
            on_retry=self._on_retry,
            dead_letter=self._dead_letter,
        )

    def _on_source_retry(self, reason: str) -> None:
        self._on_retry(reason)
        self.watch.failed_attempt(reason)

    def _on_retry(self, reason: str) -> None:
        self.connector.stats.retries += 1
        self.connector.stats.last_error = reason
        self._metrics.retries.add(1, self._attrs)

    async def run(self, *, until_idle: bool = False) -> None:
        """Pull until cancelled or, with `until_idle`, until the source is exhausted.

        Raises:
            FatalSourceError: when the source rejects the connector (health becomes FAILED).
            LeaseLost: when another instance took the source over.
        """
        connector = self.connector
        await connector.open(self.context)
        connector.http = HttpClient(
            self.context.session,
            connector.source,
            self.context.settings.connector,
            on_retry=self._on_source_retry,
            default_headers=connector.default_headers(),
        )
        await self._acquire_lease()
        renewer = asyncio.create_task(self._renew_lease(), name=f"lease-{connector.name}")
        reporter = asyncio.create_task(
            keep_health_written(self.context.pool, self.watch), name=f"health-{connector.name}"
        )
        try:
            group = self.context.catalogue.indicators_group
            cursor = await self._with_store_retries(
                "reading the checkpoint", lambda: self.store.resume_cursor(self.context.log_identity, group)
            )
            await self._loop(cursor, until_idle=until_idle)
            connector.set_health(Health.STOPPED)
        except asyncio.CancelledError:
            connector.set_health(Health.STOPPED)
            raise
        except BaseException as exc:
            connector.set_health(Health.FAILED)
            connector.stats.last_error = describe_error(exc)
            self.watch.stopped(exc, connector.stats.last_error)
            raise
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, LeaseLost):
                await renewer
            if self._lease_error is None:
                with contextlib.suppress(Exception):
                    await self.store.release()
            s = connector.stats
            logger.info(
                "source %s stopped: %d pages, %d records, %d events, %d dead letters, %d skipped, %d retries",
                connector.name,
                s.pages,
                s.records_pulled,
                s.events_published,
                s.dead_lettered,
                sum(s.skipped.values()),
                s.retries,
            )

    async def _acquire_lease(self) -> None:
        ttl = self.store.lease_ttl_s
        warned = False
        while not await self._with_store_retries("acquiring the lease", self.store.try_acquire):
            if not warned:
                logger.info("source %s: lease held by another instance, waiting", self.connector.name)
                warned = True
            await asyncio.sleep(min(1.0, ttl / 3))

    async def _with_store_retries(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, retried with backoff while the store (or the broker) fails transiently."""
        return await retrying(
            call,
            what=f"source {self.connector.name}: {what}",
            backoff=self.backoff,
            on_retry=lambda exc: self._on_retry(f"{what} failed: {type(exc).__name__}"),
        )

    async def _renew_lease(self) -> None:
        interval = self.store.lease_ttl_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.store.renew()
            except LeaseLost as exc:
                self._lease_error = exc
                logger.error("source %s: %s", self.connector.name, exc)
                return
            except STORE_ERRORS as exc:
                # The next commit checks the lease anyway; a missed renewal is not fatal by itself.
                logger.warning("source %s: lease renewal failed: %s", self.connector.name, exc)

    async def _loop(self, cursor: Cursor | None, *, until_idle: bool) -> None:
        connector = self.connector
        poll_s = self.context.settings.connector.poll_interval_s
        while True:
            if self._lease_error is not None:
                raise self._lease_error
            # No prefetch: the next page is requested only once this one is acked and committed, so
            # memory holds one page and a crash re-reads at most that page.
            page, unresolved = await self.watch.guard(self.pages.read(cursor), until_idle=until_idle)
            connector.set_health(Health.PULLING)
            # Once a page is in hand it is published and committed even if a stop is requested.
            job = asyncio.ensure_future(self._publish_and_commit(page, unresolved))
            try:
                await asyncio.shield(job)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(job, self.context.settings.connector.request_timeout_s)
                raise
            cursor = page.next_cursor
            if page.exhausted:
                connector.set_health(Health.CAUGHT_UP)
                connector.exhausted.set()
                if until_idle:
                    return
                await asyncio.sleep(poll_s)
            elif page.records:
                connector.exhausted.clear()

    def _dead_letter(self, record: Any, reason: str, family: str | None = None) -> DeadLetter:
        catalogue = self.context.catalogue
        spec = getattr(catalogue, family or self.connector.family)
        return DeadLetter(
            topic=catalogue.dead_letter(spec).name,
            value=self.connector.record_json(record),
            reason=reason,
            source=self.connector.name,
        )

    def _map(self, page: Page[Any]) -> tuple[list[Event], list[DeadLetter]]:
        connector = self.connector
        events: list[Event] = []
        dead: list[DeadLetter] = []
        for record in page.records:
            family: str | None = None
            try:
                events.extend(connector.map_record(record))
                continue
            except SkipRecord as exc:
                connector.stats.skipped[exc.reason] += 1
                self._metrics.skipped.add(1, {**self._attrs, "alcance.reason": exc.reason})
                continue
            except DeadLetterRecord as exc:
                reason, family = exc.reason, exc.family
            except Exception as exc:
                # A mapping bug or a model rejecting the record: the record is dead-lettered, not lost.
                reason = describe_error(exc)
            dead.append(self._dead_letter(record, reason, family))
            logger.warning("source %s: record dead-lettered: %s", connector.name, reason)
        return events, dead

    def _not_just_published(
        self, events: list[Event], dead: list[DeadLetter]
    ) -> tuple[list[Event], list[DeadLetter]]:
        """`events` and `dead` without those the previous page already published.

        Sources are re-read from their last position on every poll (the overlap of a timestamp cursor,
        a feed page without `next`), so an unchanged source hands back its newest records each time.
        They were acknowledged and committed with the previous page; sending them again would only
        grow the topics (and the dead-letter topics) by one copy per poll.
        """
        seen_events, seen_dead = self._last_published
        self._last_published = (
            {event.event_id for event in events},
            {(letter.topic, letter.value, letter.reason) for letter in dead},
        )
        fresh_events = [event for event in events if event.event_id not in seen_events]
        fresh_dead = [
            letter for letter in dead if (letter.topic, letter.value, letter.reason) not in seen_dead
        ]
        repeated = len(events) - len(fresh_events) + len(dead) - len(fresh_dead)
        if repeated:
            logger.debug(
                "source %s: %d records already published by the previous page", self.connector.name, repeated
            )
        return fresh_events, fresh_dead

    async def _publish_and_commit(self, page: Page[Any], unresolved: Sequence[DeadLetter] = ()) -> None:
        connector = self.connector
        started = time.perf_counter()
        events, dead = self._map(page)
        dead = [*unresolved, *dead]
        pulled = len(page.records) + len(unresolved)
        events, dead = self._not_just_published(events, dead)

        async def publish_and_commit() -> None:
            offsets = await self.context.publisher.publish(events, dead)
            await self.store.commit(
                page.next_cursor, log_identity=self.context.log_identity, page_offsets=offsets, records=pulled
            )

        # The broker or the store briefly unreachable: send the whole page again (the event ids make
        # the copies harmless) rather than stop the source.
        await retrying(
            publish_and_commit,
            what=f"source {connector.name}: publishing and committing a page",
            backoff=self.backoff,
            on_retry=lambda exc: self._on_retry(f"publish/commit failed: {type(exc).__name__}"),
        )
        stats = connector.stats
        stats.pages += 1
        stats.records_pulled += pulled
        stats.events_published += len(events)
        stats.dead_lettered += len(dead)
        self._metrics.records.add(pulled, self._attrs)
        self._metrics.events.add(len(events), self._attrs)
        if dead:
            self._metrics.dead.add(len(dead), self._attrs)
        if page.exhausted:
            # Caught up: whatever the age of the newest record, nothing is waiting at the source.
            stats.seconds_behind = 0.0
        elif page.newest_at is not None:
            stats.seconds_behind = max(0.0, (datetime.now(UTC) - page.newest_at).total_seconds())
        if stats.seconds_behind is not None:
            self._metrics.behind.set(stats.seconds_behind, self._attrs)
        if pulled:
            logger.info(
                "source %s: page of %d records -> %d events, %d dead-lettered in %.0f ms",
                connector.name,
                pulled,
                len(events),
                len(dead),
                (time.perf_counter() - started) * 1000,
            )


async def pull(connector: Connector, context: ConnectorContext, *, until_idle: bool = False) -> None:
    """Pull, publish and checkpoint `connector` until cancelled or, with `until_idle`, until caught up.

    Sets `exhausted` once caught up. Cancellation finishes the page in hand, commits what was
    acknowledged, and returns.

    Raises:
        TypeError: when `connector` is not a PollingConnector (the one kind the runtime drives).
        FatalSourceError: when the source cannot be read at all (the connector has stopped).
        LeaseLost: when another instance took over this source.
    """
    if not isinstance(connector, PollingConnector):
        raise TypeError(f"{type(connector).__name__} is not a PollingConnector; the runtime cannot drive it")
    await PullLoop(connector, context).run(until_idle=until_idle)


async def run_connectors(
    context: ConnectorContext, connectors: Sequence[Connector], *, until_idle: bool = False
) -> None:
    """Run connectors side by side; a failing one is logged and does not stop the others.

    Returns when all have stopped (with `until_idle`, once each has caught up). Cancelling it stops
    them gracefully (each finishes and commits the page in hand).
    """
    tasks = [
        asyncio.create_task(pull(c, context, until_idle=until_idle), name=f"connector-{c.name}")
        for c in connectors
    ]
    try:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for connector, result in zip(connectors, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            logger.error("source %s failed: %s", connector.name, describe_error(result))


async def run_until_signalled(
    context: ConnectorContext, connectors: Sequence[Connector], *, until_idle: bool = False
) -> None:
    """`run_connectors`, stopped gracefully by SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(run_connectors(context, connectors, until_idle=until_idle))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
