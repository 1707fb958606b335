"""Reading a page: fetched with retries (asked smaller while it keeps failing), then its records resolved.

A source that fails transiently is retried without bound (nothing can be isolated from a page that was
never read), but a page that fails `page_split_after` times in a row with the same reason is asked for
with half as many records, so that the records before the one that breaks it pass; the page size
doubles back after each page that moved on.

A page whose records cannot be resolved is tried `record_max_attempts` times, then split in halves,
down to single records; a record that still fails becomes a dead letter with the last error as its
reason, so the page and the source go on. Outages of the store or the broker are not the records'
fault: they are waited out without bound and never dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from connectors.base import Cursor, Health, Page, PollingConnector
from connectors.exceptions import FatalSourceError, LeaseLost, RetryableError, describe_error
from connectors.health import FailureWatch
from connectors.publisher import DeadLetter
from infra.errors import is_retryable
from infra.retry import Backoff
from infra.settings import ConnectorSettings

logger = logging.getLogger(__name__)


class Unresolved(Exception):
    """Raised when a page's records could not be resolved in `record_max_attempts` attempts."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class PageReader:
    """Fetches and resolves the pages of one connector under the rules of the module docstring.

    Args:
        connector: the connector whose pages are read.
        settings: `page_split_after`, `record_max_attempts` and the default page size.
        backoff: delays between attempts.
        watch: the source's failures against its deadline (health).
        on_retry: called with the reason of every failed attempt (counters).
        dead_letter: the dead letter of a record that cannot be resolved, for a reason.
    """

    def __init__(
        self,
        connector: PollingConnector[Any],
        settings: ConnectorSettings,
        *,
        backoff: Backoff,
        watch: FailureWatch,
        on_retry: Callable[[str], None],
        dead_letter: Callable[[Any, str], DeadLetter],
    ) -> None:
        self.connector = connector
        self.settings = settings
        self.backoff = backoff
        self.watch = watch
        self.on_retry = on_retry
        self.dead_letter = dead_letter

    async def read(self, cursor: Cursor | None) -> tuple[Page[Any], list[DeadLetter]]:
        """The page after `cursor`, resolved, and the dead letters of its records that could not be."""
        settings = self.settings
        connector = self.connector
        attempt = same = 0
        last_reason: str | None = None
        while True:
            try:
                page = await connector.fetch_page(cursor)
                break
            except Exception as exc:
                # A source failing transiently, or the store or broker a connector reads while fetching
                # (Moodle's snapshots) being unreachable: neither is the page's fault, so wait and retry.
                if isinstance(exc, RetryableError):
                    reason, retry_after_s = str(exc), exc.retry_after_s
                elif is_retryable(exc):
                    reason, retry_after_s = f"store or broker unavailable: {type(exc).__name__}", None
                else:
                    raise
                self.watch.failed_attempt(reason)
                connector.set_health(Health.RETRYING)
                delay = self.backoff.delay(attempt)
                if retry_after_s is not None:
                    delay = max(delay, retry_after_s)
                attempt += 1
                same = same + 1 if reason == last_reason else 1
                last_reason = reason
                self.on_retry(reason)
                if same >= settings.page_split_after and connector.page_size > 1:
                    connector.page_limit = max(1, connector.page_size // 2)
                    same = 0
                    logger.warning(
                        "source %s: page failed %d times (%s); asking for %d records at a time",
                        connector.name,
                        settings.page_split_after,
                        reason,
                        connector.page_limit,
                    )
                else:
                    logger.warning(
                        "source %s: page failed (%s); trying again in %.1fs", connector.name, reason, delay
                    )
                await asyncio.sleep(delay)
        self.watch.succeeded()
        if connector.page_limit is not None and page.next_cursor != cursor:
            # Grow back only after a page that moved on: re-reading an overlap window is no sign of health.
            doubled = connector.page_limit * 2
            full = connector.source.page_size or settings.page_size
            connector.page_limit = None if doubled >= full else doubled
        return await self.resolve(page)

    async def resolve(self, page: Page[Any]) -> tuple[Page[Any], list[DeadLetter]]:
        """`prepare_page(page)`, split in halves while it fails; single failing records are dead-lettered."""
        try:
            return await self._prepare_bounded(page), []
        except Unresolved as exc:
            records = list(page.records)
            if len(records) <= 1:
                dead = [
                    self.dead_letter(record, f"unresolved after {exc.attempts} attempts: {exc.reason}")
                    for record in records
                ]
                for letter in dead:
                    logger.warning("source %s: record dead-lettered: %s", self.connector.name, letter.reason)
                return Page([], page.next_cursor, page.exhausted, page.newest_at), dead
            middle = len(records) // 2
            logger.warning(
                "source %s: %d records could not be resolved (%s); resolving each half on its own",
                self.connector.name,
                len(records),
                exc.reason,
            )
            first, first_dead = await self.resolve(Page(records[:middle], page.next_cursor, page.exhausted))
            second, second_dead = await self.resolve(Page(records[middle:], page.next_cursor, page.exhausted))
            merged = Page([*first.records, *second.records], page.next_cursor, page.exhausted, page.newest_at)
            return merged, first_dead + second_dead

    async def _prepare_bounded(self, page: Page[Any]) -> Page[Any]:
        """`prepare_page(page)` with up to `record_max_attempts` attempts; store outages retry without bound.

        Raises:
            Unresolved: when every attempt failed (with the last reason).
        """
        failures = store_attempt = 0
        while True:
            try:
                return await self.connector.prepare_page(page)
            except (FatalSourceError, LeaseLost):
                raise
            except Exception as exc:
                if not isinstance(exc, RetryableError) and is_retryable(exc):
                    # The store (or the broker) is unreachable: not the records' fault, wait for it.
                    delay = self.backoff.delay(store_attempt)
                    store_attempt += 1
                    self.on_retry(f"resolving a page failed: {type(exc).__name__}")
                    await asyncio.sleep(delay)
                    continue
                # Any other failure is bounded, then dead-lettered.
                failures += 1
                reason = describe_error(exc) if not isinstance(exc, RetryableError) else str(exc)
                self.on_retry(reason)
                if failures >= self.settings.record_max_attempts:
                    raise Unresolved(reason, failures) from exc
                delay = self.backoff.delay(failures - 1)
                if isinstance(exc, RetryableError) and exc.retry_after_s is not None:
                    delay = max(delay, exc.retry_after_s)
                await asyncio.sleep(delay)
