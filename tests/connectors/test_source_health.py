"""Sources fail loudly: a deadline on failed attempts, an ERROR line at once, their health in the store."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from connectors.base import Health
from connectors.context import ConnectorContext
from connectors.exceptions import FatalSourceError
from connectors.health import FailureWatch, SourceFailedTooLong, summary_lines
from connectors.http import source_host
from connectors.pseudonym import Pseudonymiser
from connectors.runtime import pull
from connectors.simulators.generator import generate
from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world
from connectors.xapi import XapiConnector
from infra.settings import Settings, SourceConfig


def _plain(source: SourceConfig) -> XapiConnector:
    return XapiConnector(source, Settings(), pseudonymiser=Pseudonymiser(b"p" * 16, b"o" * 16))


def _connector() -> XapiConnector:
    return _plain(
        SourceConfig(name="cvf-lrs", kind="xapi", endpoint="https://user:pw@lrs.example.org:8443/x/")
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_the_host_is_shown_without_credentials_or_path() -> None:
    assert source_host(SourceConfig(name="a", kind="xapi", endpoint="https://u:secret@h.org:8443/x?t=1")) == (
        "h.org:8443"
    )
    assert source_host(SourceConfig(name="a", kind="costs", endpoint="/data/ledger.csv")) == "local file"


def test_a_source_is_overdue_only_after_failing_longer_than_its_deadline() -> None:
    clock = _Clock()
    watch = FailureWatch(_connector(), 300.0, clock=clock)
    assert not watch.overdue()
    watch.failed_attempt("connection error to lrs.example.org:8443: ClientConnectorError")
    clock.now += 300.0
    assert not watch.overdue()
    clock.now += 0.5
    assert watch.overdue() and watch.failing_for_s() == 300.5
    watch.succeeded()
    assert not watch.overdue() and watch.failing_for_s() == 0.0


async def _fail_for_ever(watch: FailureWatch) -> None:
    while True:
        watch.failed_attempt("connection error to lrs.example.org:8443: ClientConnectorError")
        await asyncio.sleep(0.05)


async def test_with_until_idle_an_overdue_source_is_stopped_with_an_error_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connector = _connector()
    watch = FailureWatch(connector, 0.5)
    started = asyncio.get_running_loop().time()
    with pytest.raises(
        SourceFailedTooLong, match=r"\(deadline 0\.5 s\): connection error to lrs\.example\.org:8443"
    ):
        await watch.guard(_fail_for_ever(watch), until_idle=True)
    assert asyncio.get_running_loop().time() - started < 3.0
    assert connector.health() == Health.FAILED
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("source cvf-lrs (lrs.example.org:8443): failing for ")
    assert "last error: connection error to lrs.example.org:8443" in errors[0]


async def test_a_continuous_run_marks_an_overdue_source_failed_and_keeps_trying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connector = _connector()
    watch = FailureWatch(connector, 0.2)

    async def recovers() -> str:
        for _ in range(40):
            watch.failed_attempt("HTTP 503 from lrs.example.org:8443/xapi/statements")
            await asyncio.sleep(0.05)
        watch.succeeded()
        return "page"

    assert await watch.guard(recovers(), until_idle=False) == "page"
    assert [r.levelno for r in caplog.records if "deadline" in r.getMessage()] == [logging.ERROR]
    assert any("answering again" in r.getMessage() for r in caplog.records)
    assert not watch.overdue()


def test_the_summary_gives_records_dead_letters_and_last_error_per_source() -> None:
    connector = _connector()
    connector.stats.records_pulled, connector.stats.dead_lettered = 12, 2
    connector.stats.last_error = "HTTP 401 from lrs.example.org:8443/xapi/statements"
    connector.set_health(Health.FAILED)
    assert summary_lines([connector]) == [
        "source cvf-lrs (lrs.example.org:8443): failed, 12 records pulled, 2 dead-lettered, "
        "last error: HTTP 401 from lrs.example.org:8443/xapi/statements"
    ]


async def test_a_rejected_source_is_logged_at_error_at_once_and_failed_in_the_store(
    settings: Settings, pg_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    world = generate(7, learners=5, firms=2)
    statements, _ = statements_from_world(world, seed=7)
    lrs = XapiLrs(statements, username="alcance", password="right-pass")  # noqa: S106 - the simulator's
    endpoint = await lrs.start()
    host = endpoint.split("//", 1)[1].split("/", 1)[0]
    source = SourceConfig(
        name="cvf-lrs", kind="xapi", endpoint=endpoint, username="alcance", password=SecretStr("wrong-pass")
    )
    connector = _plain(source)
    try:
        async with ConnectorContext.open(settings) as context:
            with pytest.raises(FatalSourceError):
                await asyncio.wait_for(pull(connector, context, until_idle=False), 30)
    finally:
        await lrs.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(m.startswith(f"source cvf-lrs ({host}) stopped: ") and "HTTP 401" in m for m in errors), errors
    row: Any = await pg_pool.fetchrow("SELECT * FROM source_health WHERE source = 'cvf-lrs'")
    assert row["health"] == "failed" and row["host"] == host
    assert "HTTP 401" in row["last_error"]
