"""No record stalls a source: pages that keep failing are split (PLGN, xAPI); bad ledger rows dead-letter.

`test_xapi_voiding.py` and `test_moodle_real.py` prove that a record whose resolution keeps failing is
dead-lettered with its reason while the others pass; here a PLGN page that keeps failing is split so the
items before the one that breaks it are published, and a cost ledger's bad rows are dead-lettered while
every other row is published.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

from connectors.base import Health
from connectors.context import ConnectorContext
from connectors.costs import CostLedgerConnector
from connectors.plgn import PlgnConnector
from connectors.runtime import pull
from connectors.simulators.generator import generate
from connectors.simulators.plgn_feed import PlgnFeedSimulator, feed_from_world
from connectors.simulators.serving import serving
from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world
from connectors.xapi import DEFAULT_VERBS, XapiConnector
from infra.settings import Settings, SourceConfig
from schemas.topics import TopicCatalogue
from tests.connectors.support import read_topic, xapi_settings
from tests.connectors.test_plgn_pull import TOKEN, plgn_settings

BROKEN = 13


async def test_a_plgn_page_that_keeps_failing_is_split_so_the_items_before_the_bad_one_pass(
    settings: Settings,
) -> None:
    feed = feed_from_world(generate(12, learners=5, firms=12))
    feed.broken.add(BROKEN)
    async with serving(PlgnFeedSimulator(feed, token=TOKEN).app()) as url:
        local = plgn_settings(settings, f"{url}/activities", page_size=8)
        async with ConnectorContext.open(local) as context:
            connector = PlgnConnector(local.sources[0], local)
            run = asyncio.ensure_future(pull(connector, context, until_idle=True))
            for _ in range(600):
                if connector.stats.records_pulled >= BROKEN:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            # Every item before the one that breaks its pages passed; that one cannot be read at all.
            assert connector.stats.records_pulled == BROKEN
            # (Its overlap window keeps the smallest page above one statement: it re-reads the second before.)
            assert connector.health() == Health.RETRYING and connector.page_size < 8
            feed.broken.clear()
            await asyncio.wait_for(run, 30)
    assert connector.stats.records_pulled == len(feed.items)
    assert connector.page_limit is None, "the page size grows back after good pages"
    events = await read_topic(local, TopicCatalogue.from_settings(local).plgn.name)
    # One event per valid item, each published once: split pages are committed one by one, never re-sent.
    assert len({dict(record.headers)["ce_id"] for record in events}) == len(events)
    skipped = sum(connector.stats.skipped.values())  # consents only the directory's ledger keeps
    assert len(events) + connector.stats.dead_lettered + skipped == len(feed.items)


async def test_bad_ledger_rows_are_dead_lettered_and_every_other_row_is_published(
    settings: Settings, tmp_path: Path
) -> None:
    header = "cost_id,activity_id,activity_type,category,payer,amount,currency,usd_amount,recorded_at,voids"
    rows = [
        f"C{n},ACT-{n % 3},BUSINESS_ROUND,VENUE,ALADI,{100 + n}.00,USD,{100 + n}.00,"
        f"2026-01-{n + 1:02d}T10:00:00Z,"
        for n in range(12)
    ]
    rows[4] = ",ACT-1,BUSINESS_ROUND,VENUE,ALADI,10.00,USD,10.00,2026-01-05T10:00:00Z,"
    rows[9] = "C9,ACT-0,BUSINESS_ROUND,VENUE,ALADI,ten,USD,10.00,2026-01-10T10:00:00Z,"
    ledger = tmp_path / "costs.csv"
    ledger.write_text("\n".join([header, *rows]) + "\n")
    local = settings.model_copy(
        update={"sources": [SourceConfig(name="ledger", kind="costs", endpoint=str(ledger), page_size=5)]}
    )
    async with ConnectorContext.open(local) as context:
        connector = CostLedgerConnector(local.sources[0], local)
        await asyncio.wait_for(pull(connector, context, until_idle=True), 30)
    assert connector.stats.records_pulled == 12
    assert connector.stats.events_published == 10
    assert connector.stats.dead_lettered == 2
    catalogue = TopicCatalogue.from_settings(local)
    dead = await read_topic(local, catalogue.dead_letter(catalogue.finance).name)
    reasons = sorted(dict(record.headers)["dlq_reason"].decode() for record in dead)
    assert reasons[0] == "cost row without cost_id"
    assert reasons[1].startswith("invalid cost row")


async def test_an_xapi_page_that_keeps_failing_is_split_so_the_statements_before_the_bad_one_pass(
    settings: Settings,
) -> None:
    statements, _ = statements_from_world(generate(53, learners=8), seed=53)
    server = XapiLrs(statements)
    bad = server.statements[BROKEN]
    server.broken.add(bad["id"])
    endpoint = await server.start()
    try:
        local = xapi_settings(settings, endpoint, page_size=8)
        async with ConnectorContext.open(local) as context:
            connector = XapiConnector(local.sources[0], local)

            def ids_of(chosen: list[dict[str, Any]]) -> set[UUID]:
                mapped = [connector.mapper.events(s) for s in chosen if s["verb"]["id"] in DEFAULT_VERBS]
                return {event.event_id for events in mapped for event in events}

            before = ids_of([s for s in server.statements if s["stored"] < bad["stored"]])
            published: set[UUID] = set()
            real_publish = context.publisher.publish

            async def publish(events: Any, dead: Any = ()) -> Any:
                published.update(event.event_id for event in events)
                return await real_publish(events, dead)

            setattr(context.publisher, "publish", publish)  # noqa: B010 - recording one instance
            run = asyncio.ensure_future(pull(connector, context, until_idle=True))
            for _ in range(600):
                if before <= published and connector.page_size < 8:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            # Everything stored before the statement that breaks its pages passed (the pass going on from
            # `since` with smaller pages); that one cannot be read at all, so the source retries it.
            assert before <= published
            # (Its overlap window keeps the smallest page above one statement: it re-reads the second before.)
            assert connector.health() == Health.RETRYING and connector.page_size < 8
            assert not run.done()
            server.broken.clear()
            await asyncio.wait_for(run, 30)
            every = ids_of(server.statements)
    finally:
        await server.stop()
    assert published == every
    assert connector.page_limit is None and connector.stats.dead_lettered == 0
