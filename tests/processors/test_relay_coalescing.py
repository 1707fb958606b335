"""A relay round publishes each cell once for all of its waiting marks, and deletes them all."""

from __future__ import annotations

import asyncpg

from infra.kafka import make_producer
from infra.roles import RELAY_PRINCIPAL, kafka_settings_for
from infra.settings import Settings
from processors.outbox import OutboxRelay
from tests.processors.support import random_stream, records_for
from tests.processors.test_faults import feed
from tests.processors.test_runtime import assert_topic_equals_store, process_all, tuned

_CELL_MARKS = """
SELECT indicator, period_kind, period_start, dims, count(*) AS marks, min(id) AS oldest
  FROM indicator_outbox GROUP BY 1, 2, 3, 4
"""


async def test_a_round_of_one_mark_takes_every_later_mark_of_its_cell(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    settings = tuned(settings, batch_max_records=40)
    records = records_for(settings, random_stream(400, seed=907))
    await feed(settings, records, chunk=400, pause_s=0)
    await process_all(settings, pg_pool, len(records), relay=False)
    cells = await pg_pool.fetch(_CELL_MARKS)
    repeated = min((cell for cell in cells if cell["marks"] > 1), key=lambda cell: cell["oldest"])
    marks = await pg_pool.fetch("SELECT id, indicator, period_kind, period_start, dims FROM indicator_outbox")
    # A round taking the oldest marks up to the repeated cell's first must take its later marks too.
    oldest = [mark for mark in marks if mark["id"] <= repeated["oldest"]]
    their_cells = {tuple(mark[1:]) for mark in oldest}
    expected = sum(1 for mark in marks if tuple(mark[1:]) in their_cells)
    assert expected > len(oldest)
    producer = make_producer(kafka_settings_for(settings.kafka, RELAY_PRINCIPAL))
    await producer.start()
    try:
        relay = OutboxRelay(settings, pg_pool, producer=producer)
        relay.round_limit = len(oldest)
        assert await relay.publish_pending() == expected
        left = {tuple(cell[:4]) for cell in await pg_pool.fetch(_CELL_MARKS)}
        assert not their_cells & left
        assert await pg_pool.fetchval("SELECT count(*) FROM indicator_outbox") == len(marks) - expected
        while await relay.publish_pending():
            pass
    finally:
        await producer.stop()
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_outbox") == 0
    await assert_topic_equals_store(settings, pg_pool)
