"""Connector errors, named for what the runtime does with them: retry, dead-letter, skip or stop."""

from __future__ import annotations

from pydantic import ValidationError


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose."""


class RetryableError(ConnectorError):
    """Raised when the source failed in a way that may pass: the runtime waits and tries again.

    Args:
        message: what failed, without secrets or personal data.
        retry_after_s: how long the source asked us to wait (HTTP `Retry-After`), or None to let
            the runtime choose an exponential backoff with full jitter.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadLetterRecord(ConnectorError):
    """Raised by `map_record` when one source record cannot become events.

    The runtime publishes the raw record to the dead-letter topic of the record's target topic,
    with `reason` in the `dlq_reason` header, and goes on with the next record.

    Args:
        reason: why the record was rejected (short, human-readable, no personal data).
        family: topic family (`training`, `plgn`, `finance`) whose dead-letter topic receives the
            record; None means the connector's default family.
    """

    def __init__(self, reason: str, *, family: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.family = family


class SkipRecord(ConnectorError):
    """Raised by `map_record` for a record that is valid but carries nothing alcance measures.

    The runtime counts it under `reason` (for example an xAPI verb outside the mapping table) and
    goes on; nothing is published.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FatalSourceError(ConnectorError):
    """Raised when retrying cannot help (bad credentials, a rejected request): the connector stops.

    Args:
        message: what failed, without secrets.
        status: the HTTP status that caused it, when there was one.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LeaseLost(ConnectorError):
    """Raised when another instance took this source's lease: this instance must stop without committing."""


def describe_error(exc: BaseException) -> str:
    """A short reason for an unexpected mapping failure, never echoing input values (they may be personal)."""
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
        return f"invalid event: {'; '.join(parts)}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]
