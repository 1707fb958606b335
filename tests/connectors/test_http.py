"""The HTTP client retries what may pass (5xx, 429 + Retry-After, timeouts, bad JSON) and stops on 4xx."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from connectors.exceptions import FatalSourceError, RetryableError
from connectors.http import HttpClient, parse_retry_after
from connectors.simulators.faults import Faults
from infra.settings import ConnectorSettings, SourceConfig

SOURCE = SourceConfig(name="s", kind="x", endpoint="http://unused", token=SecretStr("tok"))


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Faults, list[str]]]:
    faults = Faults(seed=1)
    seen_auth: list[str] = []

    async def ok(request: web.Request) -> web.Response:
        seen_auth.append(request.headers.get("Authorization", ""))
        return web.json_response({"items": list(range(50))})

    async def forbidden(request: web.Request) -> web.Response:
        return web.json_response({"error": "no"}, status=403)

    app = web.Application(middlewares=[faults])
    app.router.add_get("/ok", ok)
    app.router.add_get("/forbidden", forbidden)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", faults, seen_auth
    finally:
        await runner.cleanup()


def client(session: aiohttp.ClientSession, retries: list[str], **overrides: float) -> HttpClient:
    values = {
        "request_timeout_s": 0.3,
        "max_attempts": 6,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        **overrides,
    }
    return HttpClient(session, SOURCE, ConnectorSettings(**values), on_retry=retries.append)


@pytest.mark.parametrize(
    ("fault", "value"),
    [("error_rate", 1.0), ("truncate_rate", 1.0), ("slow_rate", 1.0), ("throttle_rate", 1.0)],
)
async def test_transient_failures_are_retried_until_attempts_run_out(
    served: tuple[str, Faults, list[str]], fault: str, value: float
) -> None:
    base, faults, _ = served
    setattr(faults, fault, value)
    faults.burst_length = 1
    faults.retry_after_s = 0.01
    faults.slow_s = 1.0
    retries: list[str] = []
    async with aiohttp.ClientSession() as session:
        with pytest.raises(RetryableError):
            await client(session, retries, max_attempts=3).get_json(base + "/ok")
    assert len(retries) == 2


async def test_a_burst_of_errors_is_ridden_out(served: tuple[str, Faults, list[str]]) -> None:
    base, faults, seen_auth = served
    faults.outage(requests=3)
    retries: list[str] = []
    async with aiohttp.ClientSession() as session:
        response = await client(session, retries).get_json(base + "/ok")
    assert response.body == {"items": list(range(50))}
    assert len(retries) == 3
    assert seen_auth and seen_auth[0] == "Bearer tok"


async def test_retry_after_is_honoured(served: tuple[str, Faults, list[str]]) -> None:
    base, faults, _ = served
    faults.throttle_rate = 1.0
    faults.retry_after_s = 0.4
    retries: list[str] = []
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        with pytest.raises(RetryableError) as caught:
            await client(session, retries, max_attempts=2).get_json(base + "/ok")
    assert time.monotonic() - started >= 0.4
    assert caught.value.retry_after_s == pytest.approx(0.4)


async def test_client_errors_stop_without_retrying(served: tuple[str, Faults, list[str]]) -> None:
    base, _, _ = served
    retries: list[str] = []
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FatalSourceError) as caught:
            await client(session, retries).get_json(base + "/forbidden")
    assert caught.value.status == 403 and not retries


def test_retry_after_parses_seconds_and_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
