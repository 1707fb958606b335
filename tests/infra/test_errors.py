"""One classification of infrastructure errors, by asyncpg class (SQLSTATE class) and aiokafka's flag."""

from __future__ import annotations

import asyncio
import inspect
import logging

import asyncpg
import pytest
from aiokafka import errors as kafka_errors

from infra.errors import Failure, classify, is_retryable
from infra.retry import Backoff, retrying


def postgres_error_classes() -> list[type[asyncpg.PostgresError]]:
    """Every asyncpg exception class bound to a SQLSTATE."""
    return [
        cls
        for _, cls in inspect.getmembers(asyncpg.exceptions, inspect.isclass)
        if issubclass(cls, asyncpg.PostgresError) and getattr(cls, "sqlstate", None)
    ]


@pytest.mark.parametrize("cls", postgres_error_classes(), ids=lambda cls: f"{cls.sqlstate}-{cls.__name__}")
def test_a_postgres_error_is_classified_by_its_sqlstate_class(cls: type[asyncpg.PostgresError]) -> None:
    state = cls.sqlstate
    expected = (
        Failure.RETRY_TRANSACTION
        if state in {"40001", "40P01"}
        else Failure.TRANSIENT
        if state[:2] in {"08", "57"}
        else Failure.FATAL
    )
    assert classify(cls("")) is expected


def test_the_errors_of_a_server_shutting_down_or_starting_are_transient() -> None:
    for error in (
        asyncpg.exceptions.AdminShutdownError(""),
        asyncpg.exceptions.CrashShutdownError(""),
        asyncpg.exceptions.CannotConnectNowError(""),
        asyncpg.exceptions.ConnectionDoesNotExistError(""),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
        asyncpg.InternalClientError("unexpected state"),
        ConnectionRefusedError(),
        TimeoutError(),
    ):
        assert classify(error) is Failure.TRANSIENT, error


def test_kafka_errors_follow_aiokafkas_retriable_flag_and_a_send_timeout_is_transient() -> None:
    assert classify(kafka_errors.KafkaConnectionError()) is Failure.TRANSIENT
    assert classify(kafka_errors.NotLeaderForPartitionError()) is Failure.TRANSIENT
    assert classify(kafka_errors.KafkaTimeoutError()) is Failure.TRANSIENT
    assert classify(kafka_errors.MessageSizeTooLargeError()) is Failure.FATAL
    assert classify(kafka_errors.TopicAuthorizationFailedError()) is Failure.FATAL


def test_everything_else_is_fatal() -> None:
    assert classify(ValueError("a bug")) is Failure.FATAL
    assert classify(asyncpg.exceptions.UndefinedTableError("")) is Failure.FATAL
    assert not is_retryable(KeyError("x"))


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    backoff = Backoff(base_s=0.1, max_s=1.0)
    for attempt, ceiling in [(0, 0.1), (1, 0.2), (3, 0.8), (4, 1.0), (100, 1.0)]:
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2, "the delays span the interval"


async def test_retrying_retries_transient_errors_and_stops_on_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = [ConnectionRefusedError(), asyncpg.exceptions.AdminShutdownError("")]
    seen: list[BaseException] = []

    async def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    with caplog.at_level(logging.WARNING, logger="infra.retry"):
        result = await retrying(flaky, what="reading", backoff=Backoff(0.001, 0.01), on_retry=seen.append)
    assert result == "done"
    assert [type(e) for e in seen] == [ConnectionRefusedError, asyncpg.exceptions.AdminShutdownError]
    assert sum("reading failed" in r.getMessage() for r in caplog.records) == 2, "one line per retry"

    async def broken() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await retrying(broken, what="x", backoff=Backoff(0.001, 0.01))


async def test_retrying_gives_up_at_its_deadline_or_after_its_attempts() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError()

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectionRefusedError):
        await retrying(down, what="x", backoff=Backoff(0.01, 0.02), give_up_after_s=0.3)
    assert loop.time() - started < 1.0 and calls > 3
    calls = 0
    with pytest.raises(ConnectionRefusedError):
        await retrying(down, what="x", backoff=Backoff(0.001, 0.001), max_attempts=4)
    assert calls == 4
