"""A store outage mid-pull (sessions terminated by the server) is ridden out: the page is sent again."""

from __future__ import annotations

import asyncio

import asyncpg

from connectors.context import ConnectorContext
from connectors.runtime import PullLoop
from connectors.simulators.faults import Faults
from connectors.simulators.generator import generate
from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world
from connectors.xapi import XapiConnector
from infra.roles import PROCESSOR, store_settings_for
from infra.settings import Settings
from tests.connectors.support import xapi_settings


async def test_terminated_database_sessions_do_not_stop_the_connector(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    statements, _ = statements_from_world(generate(4, learners=80), seed=4)
    server = XapiLrs(statements, faults=Faults(slow_rate=1.0, slow_s=0.01))
    endpoint = await server.start()
    settings = xapi_settings(settings, endpoint, page_size=10)
    # The connector's sessions are the processor role's, which only that role (or a superuser) may end.
    processor_dsn = store_settings_for(settings.postgres, PROCESSOR).dsn
    assert processor_dsn is not None
    killer = await asyncpg.connect(processor_dsn.get_secret_value())
    try:
        async with ConnectorContext.open(settings) as context:
            connector = XapiConnector(settings.sources[0], settings)
            run = asyncio.create_task(PullLoop(connector, context).run(until_idle=True))
            # Terminate the connector's sessions (every alcance session but ours) again and again
            # until one is cut in the middle of a checkpoint transaction.
            killed = 0
            for _ in range(5_000):
                if connector.stats.retries or run.done():
                    break
                killed += await killer.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE pid <> pg_backend_pid() AND application_name = 'alcance'"
                    " AND backend_type = 'client backend' AND state = 'active'"
                )
            assert killed >= 1
            await asyncio.wait_for(run, 60)
    finally:
        await killer.close()
        await server.stop()
    assert connector.exhausted.is_set()
    assert connector.stats.retries >= 1, "the terminated sessions were noticed and ridden out"
    assert connector.stats.records_pulled >= len(statements)
    committed = await pg_pool.fetchval(
        "SELECT sum(records) FROM connector_checkpoint WHERE source = 'cvf-lrs'"
    )
    # A commit cut after the server applied it is retried, so a page may be recorded twice, never lost.
    assert committed >= connector.stats.records_pulled
