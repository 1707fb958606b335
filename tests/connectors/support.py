"""Helpers of the connector tests: read a topic back, build xAPI source settings."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from pydantic import SecretStr

from infra.kafka import read_topic_to_end
from infra.settings import ConnectorSettings, PseudonymSettings, Settings, SourceConfig
from schemas.cloudevents import decode
from schemas.events.base import Event
from tests.support.processes import python_child


async def read_topic(settings: Settings, topic: str, *, timeout_s: float = 30.0) -> list[Any]:
    """Every record of `topic` from offset 0 up to its end offsets."""
    return await read_topic_to_end(settings.kafka, topic, timeout_s=timeout_s)


def decode_all(records: list[Any]) -> list[Event]:
    return [decode(list(record.headers), record.value) for record in records]


def xapi_settings(
    settings: Settings,
    endpoint: str,
    *,
    name: str = "cvf-lrs",
    page_size: int = 50,
    **connector: Any,
) -> Settings:
    """`settings` with one xAPI source at `endpoint`, fixed pseudonym keys and fast retry timings."""
    timings = {
        "request_timeout_s": 2.0,
        "max_attempts": 4,
        "backoff_base_s": 0.02,
        "backoff_max_s": 0.2,
        "poll_interval_s": 0.2,
        "lease_ttl_s": 1.5,
        **connector,
    }
    return settings.model_copy(
        update={
            "sources": [
                SourceConfig(
                    name=name,
                    kind="xapi",
                    endpoint=endpoint,
                    username="cvf",
                    password=SecretStr("secret"),
                    page_size=page_size,
                )
            ],
            "connector": ConnectorSettings(**timings),
            "pseudonym": PseudonymSettings(
                person_key=SecretStr("test-person-key-0123456789"),
                org_key=SecretStr("test-org-key-0123456789"),
            ),
        }
    )


async def kill_pull_worker_at_random(settings: Settings, rng: random.Random, runs: int) -> int:
    """Start `tests.connectors.pull_worker` `runs` times and SIGKILL it at a random moment of its pull.

    Returns:
        How many runs were killed before they finished on their own.
    """
    interrupted = 0
    for _ in range(runs):
        async with python_child(module="tests.connectors.pull_worker", settings=settings) as child:
            await child.wait_for_line(lambda line: "WORKER STARTED" in line, timeout_s=30)
            await asyncio.sleep(rng.uniform(0.05, 0.4))
            if child.process.returncode is None and not any("WORKER DONE" in line for line in child.lines):
                child.kill()
                interrupted += 1
            await child.wait()
    return interrupted


async def run_pull_worker_to_end(settings: Settings) -> None:
    """Run `tests.connectors.pull_worker` until its source is exhausted; it must exit cleanly."""
    async with python_child(module="tests.connectors.pull_worker", settings=settings) as child:
        await child.wait_for_line(lambda line: "WORKER DONE" in line, timeout_s=60)
        assert await child.wait() == 0, child.output
