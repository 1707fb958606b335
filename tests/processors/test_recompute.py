"""Recompute: the rebuild equals incremental processing (see test_runtime), and its progress line."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from processors.base import FactIn
from processors.cells import cell_parts
from processors.indicators.base import Part
from processors.recompute import Progress, rebuild
from processors.store import Store
from schemas.events.base import Event
from tests.schemas.factories import make_cost_recorded, make_finance_event_retracted


def test_the_progress_line_shows_count_share_rate_and_eta() -> None:
    stream = io.StringIO()
    progress = Progress(total=1000, stream=stream)
    progress.done = 250
    line = progress.line(now=progress._started + 5.0)
    assert "250/1000 facts (25%)" in line
    assert "50 facts/s" in line
    assert "ETA 15 s" in line
    progress.advance(750)
    progress.finish()
    assert "1000/1000" in stream.getvalue()


async def test_recompute_rebuilds_with_new_indicator_code_and_publishes_every_cell(
    pg_pool: asyncpg.Pool,
) -> None:
    kept = make_cost_recorded(record_identity="k", cost_id="k")
    gone = make_cost_recorded(record_identity="g", cost_id="g")
    retraction = make_finance_event_retracted(retracted_event_id=gone.event_id, record_identity="x")
    at = datetime(2026, 1, 5, tzinfo=UTC)

    def old_code(event: Event) -> list[Part]:
        return [Part("T-01", "old", "sum", at, {"c": "A"}, Decimal(1))]

    def new_code(event: Event) -> list[Part]:
        return [Part("T-01", "new", "sum", at, {"c": "A"}, Decimal(2))]

    store = Store(pg_pool, log_identity="log", consumer_group="g")
    claims = await store.claim_partitions([("t", 0)])
    facts = [
        FactIn(
            e.event_id,
            e.event_type,
            e.occurred_at,
            e.subject_key,
            e.source,
            e.model_dump_json(),
            old_code(e),
            topic="t",
        )
        for e in (kept, gone)
    ]
    facts.append(
        FactIn(
            retraction.event_id,
            retraction.event_type,
            retraction.occurred_at,
            retraction.subject_key,
            retraction.source,
            retraction.model_dump_json(),
            [],
            retracts=gone.event_id,
            topic="t",
        )
    )
    await store.commit_batch({("t", 0): (3, claims[("t", 0)][1])}, facts)
    assert {key[4]: value for key, (_, value, _) in (await cell_parts(pg_pool)).items()} == {"old": 1}
    await pg_pool.execute("DELETE FROM indicator_outbox")

    stream = io.StringIO()
    async with pg_pool.acquire() as connection, connection.transaction():
        summary = await rebuild(connection, contribute=new_code, stream=stream)
    assert summary.facts == 1  # the retracted event and the retraction contribute nothing
    assert {key[4]: value for key, (_, value, _) in (await cell_parts(pg_pool)).items()} == {"new": 2}
    assert "1/1 facts" in stream.getvalue()
    # The one month is marked for publication once; the relay publishes it with its quarter and year.
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_outbox") == 1
    # The stored parts of the fact follow the new code, so a later retraction negates exactly them.
    stored = await pg_pool.fetchval("SELECT parts::text FROM fact WHERE event_id = $1", kept.event_id)
    assert '"new"' in stored
