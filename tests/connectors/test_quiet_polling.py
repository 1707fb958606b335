"""Polling without re-publishing: a source whose newest record has not changed publishes nothing."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from connectors.context import ConnectorContext
from connectors.runtime import PullLoop
from connectors.simulators.generator import generate
from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world
from connectors.xapi import XapiConnector
from infra.settings import Settings
from schemas.topics import TopicCatalogue
from tests.connectors.support import read_topic, xapi_settings


async def test_polling_an_unchanged_lrs_publishes_no_event_and_no_dead_letter_again(
    settings: Settings,
) -> None:
    statements, _ = statements_from_world(generate(51, learners=6), seed=51)
    # The newest statement cannot be mapped: without care each poll re-reads (the cursor's overlap
    # window) and re-publishes it, growing the dead-letter topic by one copy per poll.
    bad: dict[str, Any] = dict(statements[-1], id="00000000-0000-4000-8000-00000000bad2")
    bad["actor"] = {"objectType": "Agent", "name": "no identifier"}
    statements.append(bad)
    server = XapiLrs(statements)
    endpoint = await server.start()
    try:
        local = xapi_settings(settings, endpoint, page_size=500, poll_interval_s=0.05)
        async with ConnectorContext.open(local) as context:
            connector = XapiConnector(local.sources[0], local)
            task = asyncio.ensure_future(PullLoop(connector, context).run(until_idle=False))
            await asyncio.wait_for(connector.exhausted.wait(), 30)
            caught_up = (
                connector.stats.pages,
                connector.stats.events_published,
                connector.stats.dead_lettered,
            )
            for _ in range(400):
                if connector.stats.pages >= caught_up[0] + 5:
                    break
                await asyncio.sleep(0.05)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await server.stop()
    assert connector.stats.pages >= caught_up[0] + 5, "the source was polled again and again"
    assert (connector.stats.events_published, connector.stats.dead_lettered) == caught_up[1:]
    catalogue = TopicCatalogue.from_settings(local)
    events = await read_topic(local, catalogue.training.name)
    dead = await read_topic(local, catalogue.dead_letter(catalogue.training).name)
    assert len(events) == caught_up[1] and len(dead) == caught_up[2] == 1
