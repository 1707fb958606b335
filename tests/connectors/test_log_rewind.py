"""After the broker's log is replaced, the connector re-pulls exactly what the processors had not consumed."""

from __future__ import annotations

import dataclasses
import json

import asyncpg

from connectors.context import ConnectorContext
from connectors.runtime import PullLoop
from connectors.simulators.generator import generate
from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world
from connectors.xapi import XapiConnector
from infra.settings import Settings
from schemas.topics import TopicCatalogue
from tests.connectors.support import xapi_settings


async def test_new_log_identity_rewinds_to_the_consumed_checkpoint(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    statements, _ = statements_from_world(generate(8, learners=30), seed=8)
    server = XapiLrs(statements)
    endpoint = await server.start()
    settings = xapi_settings(settings, endpoint, page_size=20)
    group = TopicCatalogue.from_settings(settings).indicators_group
    try:
        async with ConnectorContext.open(settings) as context:
            first = XapiConnector(settings.sources[0], settings)
            await PullLoop(first, context).run(until_idle=True)
            rows = await pg_pool.fetch(
                "SELECT seq, records, produced_offsets::text AS produced FROM connector_checkpoint"
                " WHERE source = 'cvf-lrs' ORDER BY seq"
            )
            assert len(rows) >= 6
            # The processors had consumed everything up to the third checkpoint when the log was lost.
            consumed = json.loads(rows[2]["produced"])
            await pg_pool.executemany(
                "INSERT INTO kafka_offset (log_identity, consumer_group, topic, partition, next_offset)"
                " VALUES ($1, $2, $3, $4, $5)",
                [
                    (context.log_identity, group, topic, int(part), offset + 1)
                    for topic, parts in consumed.items()
                    for part, offset in parts.items()
                ],
            )
            replaced = dataclasses.replace(context, log_identity="a-new-broker-log")
            second = XapiConnector(settings.sources[0], settings)
            await PullLoop(second, replaced).run(until_idle=True)
    finally:
        await server.stop()
    not_consumed = sum(row["records"] for row in rows[3:])
    # What followed the consumed checkpoint is pulled again (plus the small overlap), nothing before it.
    assert not_consumed <= second.stats.records_pulled < not_consumed + 20
    latest = await pg_pool.fetchrow(
        "SELECT log_identity FROM connector_checkpoint WHERE source = 'cvf-lrs' ORDER BY seq DESC LIMIT 1"
    )
    assert latest["log_identity"] == "a-new-broker-log"
