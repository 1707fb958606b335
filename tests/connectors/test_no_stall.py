"""No record stalls a source: the PLGN feed and the cost ledger (xAPI and Moodle: their own test modules).

`test_xapi_voiding.py` and `test_moodle_real.py` prove that a record whose resolution keeps failing is
dead-lettered with its reason while the others pass; here a PLGN page that keeps failing is split so the
items before the one that breaks it are published, and a cost ledger's bad rows are dead-lettered while
every other row is published.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from connectors.base import Health
from connectors.costs import CostLedgerConnector
from connectors.plgn import PlgnConnector
from connectors.runtime import ConnectorContext
from connectors.simulators.generator import generate
from connectors.simulators.plgn_feed import PlgnFeedSimulator, feed_from_world
from connectors.simulators.serving import serving
from infra.settings import Settings, SourceConfig
from schemas.topics import TopicCatalogue
from tests.connectors.support import read_topic
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
            run = asyncio.ensure_future(connector.run(context, until_idle=True))
            for _ in range(600):
                if connector.stats.records_pulled >= BROKEN:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            # Every item before the one that breaks its pages passed; that one cannot be read at all.
            assert connector.stats.records_pulled == BROKEN
            assert connector.health() == Health.RETRYING and connector.page_size == 1
            feed.broken.clear()
            await asyncio.wait_for(run, 30)
    assert connector.stats.records_pulled == len(feed.items)
    assert connector.page_limit is None, "the page size grows back after good pages"
    events = await read_topic(local, TopicCatalogue.from_settings(local).plgn.name)
    # One event per valid item, each published once: split pages are committed one by one, never re-sent.
    assert len({dict(record.headers)["ce_id"] for record in events}) == len(events)
    assert len(events) + connector.stats.dead_lettered == len(feed.items)


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
        await asyncio.wait_for(connector.run(context, until_idle=True), 30)
    assert connector.stats.records_pulled == 12
    assert connector.stats.events_published == 10
    assert connector.stats.dead_lettered == 2
    catalogue = TopicCatalogue.from_settings(local)
    dead = await read_topic(local, catalogue.dead_letter(catalogue.finance).name)
    reasons = sorted(dict(record.headers)["dlq_reason"].decode() for record in dead)
    assert reasons[0] == "cost row without cost_id"
    assert reasons[1].startswith("invalid cost row")
