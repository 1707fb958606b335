"""Events on the wrong topic or with implausible dates are dead-lettered; reads survive any stored period."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from infra.settings import Settings
from processors.read import read_indicators
from schemas.cloudevents import encode
from schemas.events.base import Event
from schemas.topics import TopicCatalogue
from tests.processors.support import produce, random_stream, read_topic, records_for
from tests.processors.test_runtime import process_all, tuned
from tests.schemas.factories import make_cost_recorded, make_enrolment_created


def reasons(records: list[Any]) -> list[str]:
    return [dict(record.headers)["dlq_reason"].decode() for record in records]


async def test_training_events_on_the_finance_or_plgn_topic_are_dead_lettered_not_facts(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    catalogue = TopicCatalogue.from_settings(settings)
    training = [e for e in random_stream(400, seed=3) if e.family == "training"][:150]
    misplaced = [(catalogue.finance.name, encode(e)) for e in training[:75]]
    misplaced += [(catalogue.plgn.name, encode(e)) for e in training[75:]]
    # A cost on its own topic still counts.
    await produce(settings, [*misplaced, (catalogue.finance.name, encode(make_cost_recorded()))])
    processor = await process_all(settings, pg_pool, len(misplaced) + 1)
    assert processor.stats.dead_lettered == 150
    assert await pg_pool.fetchval("SELECT count(*) FROM fact") == 1
    for family, count in (("finance", 75), ("plgn", 75)):
        dlq = catalogue.dead_letter(catalogue.family_topic(family)).name
        dead = await read_topic(settings, dlq, 1, expected=count)
        assert len(dead) == count
        assert all(f"does not belong on the {family} topic" in reason for reason in reasons(dead))


async def test_events_outside_the_plausible_window_are_dead_lettered_with_the_reason(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    now = datetime.now(UTC)
    dated = {
        "1999": datetime(1999, 12, 31, 23, 0, tzinfo=UTC),
        "3000": datetime(3000, 1, 1, tzinfo=UTC),
        "9999": datetime(9999, 12, 31, 12, 0, tzinfo=UTC),
        "in two days": now + timedelta(days=2),
        "in an hour": now + timedelta(hours=1),
        "2000": datetime(2000, 1, 1, tzinfo=UTC),
    }
    events = [
        make_enrolment_created(record_identity=name, occurred_at=at, enrolled_at=at, enrolment_id=f"e-{i}")
        for i, (name, at) in enumerate(dated.items())
    ]
    await produce(settings, records_for(settings, events))
    processor = await process_all(settings, pg_pool, len(events))
    assert processor.stats.dead_lettered == 4
    catalogue = TopicCatalogue.from_settings(settings)
    dead = await read_topic(settings, catalogue.dead_letter(catalogue.training).name, 1, expected=4)
    found = sorted(reasons(dead))
    assert sum("before the plausible window" in reason for reason in found) == 1
    assert sum("in the future beyond the allowance (86400 s)" in reason for reason in found) == 3
    stored = await pg_pool.fetch("SELECT occurred_at FROM fact ORDER BY occurred_at")
    assert [row["occurred_at"].year for row in stored] == [2000, (now + timedelta(hours=1)).year]


def _far_future(event: Event) -> Event:
    """`event` with every date moved to December 9999, the last month a period can start in."""
    data = event.model_dump(mode="json")

    def shift(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: shift(value) for key, value in node.items()}
        if isinstance(node, list):
            return [shift(value) for value in node]
        if isinstance(node, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}(T.*)?", node):
            return "9999-12-" + node[8:]
        return node

    return type(event).model_validate(shift(data))


@pytest.mark.parametrize("period", ["month", "quarter", "year"])
async def test_every_indicator_reads_with_events_stored_in_december_9999(
    settings: Settings, pg_pool: asyncpg.Pool, period: str
) -> None:
    # A store that admitted such events (an older version, or a window opened by configuration).
    wide = tuned(settings)
    wide = wide.model_copy(
        update={
            "processor": wide.processor.model_copy(
                update={
                    "earliest_event_at": datetime(1, 1, 1, tzinfo=UTC),
                    "future_allowance_s": 10_000 * 365 * 86_400.0,
                }
            )
        }
    )
    events = [_far_future(e) for e in random_stream(300, seed=5, retract_share=0, duplicate_share=0)]
    records = records_for(wide, events)
    await produce(wide, records)
    processor = await process_all(wide, pg_pool, len(records))
    assert processor.stats.dead_lettered == 0
    assert await pg_pool.fetchval("SELECT count(*) FROM fact WHERE occurred_at >= '9999-12-01'") > 0
    for audience, by in (("internal", []), ("external", []), ("internal", ["country"])):
        results = await read_indicators(
            pg_pool,
            indicator=None,
            period=period,  # type: ignore[arg-type]
            by=by,
            audience=audience,  # type: ignore[arg-type]
            settings=wide,
        )
        starts = {str(result["period"]["start"]) for result in results}
        assert any(start.startswith("9999-") for start in starts), starts
