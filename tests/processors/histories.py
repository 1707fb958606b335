"""Random histories for the store's property tests (facts with duplicates and retractions, in batches),
and a schema of its own for each example."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from hypothesis import strategies as st

from infra.postgres import create_pool, migrate
from infra.settings import Settings
from processors.base import FactIn
from processors.indicators.base import Part


@st.composite
def histories(
    draw: Any,
    contribution: st.SearchStrategy[Part],
    *,
    topic: str,
    max_events: int = 25,
    max_retractions: int = 5,
    max_cuts: int = 4,
) -> list[list[FactIn]]:
    """Batches of facts: events of 1-3 parts drawn from `contribution`, duplicates, retractions (before
    or after their event, as the random order puts them), and a replayed batch; no batch is empty."""
    events = draw(st.lists(st.lists(contribution, min_size=1, max_size=3), min_size=1, max_size=max_events))
    ids = [uuid.uuid4() for _ in events]
    stream: list[tuple[uuid.UUID, list[Part], uuid.UUID | None]] = [
        (event_id, parts, None) for event_id, parts in zip(ids, events, strict=True)
    ]
    for index in draw(st.lists(st.integers(0, len(ids) - 1), max_size=6)):
        stream.append((ids[index], events[index], None))  # a duplicate
    for index in draw(st.lists(st.integers(0, len(ids) - 1), max_size=max_retractions, unique=True)):
        stream.append((uuid.uuid4(), [], ids[index]))  # a retraction
    order = draw(st.permutations(range(len(stream))))
    facts = [
        FactIn(
            event_id=stream[i][0],
            event_type="test.contribution",
            occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
            subject_key="s",
            source="test",
            payload="{}",
            parts=stream[i][1],
            retracts=stream[i][2],
            topic=topic,
            partition=0,
            offset=offset,
        )
        for offset, i in enumerate(order)
    ]
    cuts = sorted(draw(st.lists(st.integers(0, len(facts)), max_size=max_cuts)))
    batches = [facts[a:b] for a, b in zip([0, *cuts], [*cuts, len(facts)], strict=True)]
    if draw(st.booleans()):
        batches.append(batches[draw(st.integers(0, len(batches) - 1))])  # a replayed batch
    return [batch for batch in batches if batch]


@asynccontextmanager
async def fresh_store(base: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A migrated schema of its own for one hypothesis example (function fixtures would be shared)."""
    schema = f"h_{uuid.uuid4().hex[:8]}"
    pool = await create_pool(base.postgres.model_copy(update={"db_schema": schema}))
    try:
        await migrate(pool)
        yield pool
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
