"""The relay benchmark marks every stored cell and publishes each month with its quarter and year."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from benchmarks.relay_drain import drain
from infra.settings import Settings
from processors.base import FactIn
from processors.indicators.base import Part
from processors.store import Store

TOPIC = "relay-drain-test"


async def test_every_stored_cell_is_published_and_the_outbox_left_empty(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    months = [datetime(2026, month, 9, tzinfo=UTC) for month in (1, 2, 7)]
    facts = [
        FactIn(
            event_id=uuid.uuid4(),
            event_type="test.contribution",
            occurred_at=at,
            subject_key="s",
            source="test",
            payload="{}",
            parts=[
                Part("CVF-01", "enrolled", "distinct", at, {"country": "AR"}, member="m"),
                Part("FIN-01", "cost_usd", "sum", at, {"country": "AR"}, amount=Decimal(5)),
            ],
            topic=TOPIC,
            offset=offset,
        )
        for offset, at in enumerate(months)
    ]
    store = Store(pg_pool, log_identity="test", consumer_group="test")
    epoch = (await store.claim_partitions([(TOPIC, 0)]))[(TOPIC, 0)][1]
    await store.commit_batch({(TOPIC, 0): (len(facts), epoch)}, facts)
    await pg_pool.execute("DELETE FROM indicator_outbox")

    drained = await drain(settings, pg_pool, seconds=60)

    # Two indicators x (3 months, 2 quarters: Q1 and Q3, 1 year) = 12 cells; 6 month marks.
    assert drained["marks"] == 6
    assert drained["marks_left"] == 0
    assert drained["records_published"] == 12
