"""The retry policy: exponential backoff with full jitter, an optional deadline, one log line per retry."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from infra.errors import is_retryable

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: uniform in [0, min(max_s, base_s * 2**attempt)] ("full jitter").

    Jitter spreads the retries of many clients cut by one outage, so they do not all reconnect at once.
    """

    base_s: float
    max_s: float

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (0 for the first failure)."""
        ceiling = min(self.max_s, self.base_s * (2 ** min(attempt, 62)))
        return random.uniform(0.0, ceiling)  # noqa: S311 - jitter, not secrecy


# A transaction PostgreSQL rolled back to break a conflict is rerun at once, a few times at most.
TRANSACTION_BACKOFF = Backoff(base_s=0.005, max_s=0.2)
TRANSACTION_ATTEMPTS = 20


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    backoff: Backoff,
    retry_on: Callable[[BaseException], bool] = is_retryable,
    give_up_after_s: float | None = None,
    max_attempts: int | None = None,
    on_retry: Callable[[BaseException], None] | None = None,
    wait_at_least_s: Callable[[BaseException], float | None] | None = None,
    log_level: int = logging.WARNING,
) -> T:
    """`await call()`, called again after a backoff while it fails with an error `retry_on` accepts.

    Args:
        call: the operation; it must be safe to run again after a failure.
        what: what the call does, for the log line ("source x: committing a page").
        backoff: the delays between attempts.
        retry_on: which errors are worth another attempt (default: `infra.errors.is_retryable`).
        give_up_after_s: stop retrying once this long has passed since the first attempt.
        max_attempts: stop retrying after this many attempts in all.
        on_retry: called once per failed attempt that is retried (counters, health).
        wait_at_least_s: the least wait an error asks for (a server's `Retry-After`), or None.
        log_level: level of the one line logged per retry.

    Raises:
        Exception: the call's error, when `retry_on` refuses it or the deadline or attempts ran out.
    """
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            if not retry_on(exc):
                raise
            attempt += 1
            if max_attempts is not None and attempt >= max_attempts:
                raise
            delay = backoff.delay(attempt - 1)
            floor_s = wait_at_least_s(exc) if wait_at_least_s is not None else None
            if floor_s is not None:
                delay = max(delay, floor_s)
            if give_up_after_s is not None and time.monotonic() + delay - started > give_up_after_s:
                raise
            if on_retry is not None:
                on_retry(exc)
            logger.log(
                log_level,
                "%s failed (%s: %s); trying again in %.2fs",
                what,
                type(exc).__name__,
                exc,
                delay,
            )
            await asyncio.sleep(delay)
