"""SIGTERM stops a connector gracefully: the page in hand is published and committed, the lease is freed."""

from __future__ import annotations

import json
import signal

import asyncpg

from connectors.simulators.faults import Faults
from connectors.simulators.generator import generate
from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world
from infra.settings import Settings
from schemas.topics import TopicCatalogue
from tests.connectors.support import read_topic, xapi_settings
from tests.support.processes import python_child


async def test_sigterm_commits_every_published_page_and_releases_the_lease(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    statements, _ = statements_from_world(generate(5, learners=120), seed=5)
    # Slow answers make it likely that the signal arrives while a page is in flight.
    server = XapiLrs(statements, faults=Faults(slow_rate=0.5, slow_s=0.05, seed=5))
    endpoint = await server.start()
    # A long lease: a successor that had to wait for it to expire would time out below.
    settings = xapi_settings(settings, endpoint, page_size=10, lease_ttl_s=60)
    try:
        async with python_child(
            module="tests.connectors.pull_worker", args=["--follow"], settings=settings
        ) as child:
            await child.wait_for_line(lambda line: "page of" in line and "records" in line, timeout_s=30)
            child.send_signal(signal.SIGTERM)
            assert await child.wait(timeout_s=15) == 0, child.output
            done = next(line for line in child.lines if line.startswith("WORKER DONE"))
        summary = json.loads(done.removeprefix("WORKER DONE "))["cvf-lrs"]
        assert 0 < summary["records"] < len(statements)
        committed = await pg_pool.fetchval(
            "SELECT sum(records) FROM connector_checkpoint WHERE source = 'cvf-lrs'"
        )
        assert committed == summary["records"], "every page the connector counted was committed"
        # Nothing was published beyond the committed pages (stats count a page only once committed).
        catalogue = TopicCatalogue.from_settings(settings)
        assert len(await read_topic(settings, catalogue.training.name)) == summary["events"]

        async with python_child(module="tests.connectors.pull_worker", settings=settings) as successor:
            await successor.wait_for_line(lambda line: "lease acquired" in line, timeout_s=20)
            successor.send_signal(signal.SIGTERM)
            await successor.wait(timeout_s=15)
        assert not any("lease held by another instance" in line for line in successor.lines)
    finally:
        await server.stop()
