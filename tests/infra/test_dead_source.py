"""A dead endpoint ends `alcance run --until-idle` within its deadline, naming source and host."""

from __future__ import annotations

import socket
import time

from pydantic import SecretStr

from infra.settings import Settings, SourceConfig
from tests.support.processes import python_child

CANARY = "CANARY-T0KEN-b41d"
DEADLINE_S = 3.0


def _closed_port() -> int:
    # A port nobody listens on: bound, then released, so connections are refused at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_dead_endpoint_ends_the_run_non_zero_within_deadline_with_a_summary_and_status(
    settings: Settings,
) -> None:
    port = _closed_port()
    dead = settings.model_copy(
        update={
            "sources": [
                SourceConfig(
                    name="dead-lrs",
                    kind="xapi",
                    endpoint=f"http://127.0.0.1:{port}/xapi/",
                    token=SecretStr(CANARY),
                )
            ],
            "connector": settings.connector.model_copy(
                update={"failure_deadline_s": DEADLINE_S, "backoff_max_s": 1.0}
            ),
        }
    )
    started = time.monotonic()
    async with python_child(module="alcance.cli", args=["run", "--until-idle"], settings=dead) as run:
        code = await run.wait(DEADLINE_S + 60)
        output = run.output
    assert time.monotonic() - started < DEADLINE_S + 60
    assert code == 1, output
    host = f"127.0.0.1:{port}"
    assert f"source dead-lrs ({host}): failing for " in output
    assert f"longer than its deadline of {DEADLINE_S:g} s; last error: connection error to {host}" in output
    # Every failed attempt names the source and the host.
    attempt = (
        f"GET /xapi/statements failed (RetryableError: connection error to {host}: ClientConnectorError)"
    )
    assert f"source dead-lrs ({host}): {attempt}; retry 1/" in output
    assert f"source dead-lrs ({host}): failed, 0 records pulled, 0 dead-lettered, last error: " in output
    assert "Traceback" not in output and CANARY not in output

    async with python_child(module="alcance.cli", args=["status"], settings=dead) as status:
        assert await status.wait(60) == 0, status.output
        shown = status.output
    assert f"  dead-lrs (xapi, {host}): failed; lag unknown; 0 records pulled, 0 dead-lettered;" in shown
    assert "last error: SourceFailedTooLong: no answer for " in shown
    assert f"connection error to {host}" in shown
    assert "processors (committed offsets):" in shown
    assert CANARY not in shown
