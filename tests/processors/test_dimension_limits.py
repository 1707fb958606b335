"""Dimension values as long as events allow are stored and published: events, store and topic agree."""

from __future__ import annotations

import json
import random
import string

import asyncpg
import pytest
from pydantic import ValidationError

from infra.settings import Settings
from schemas.events.base import IDENT_MAX_CHARS
from schemas.indicators import IndicatorValue
from tests.processors.support import produce, records_for
from tests.processors.test_runtime import assert_topic_equals_store, process_all
from tests.schemas.factories import make_enrolment_completed, make_enrolment_created

_IDENT_CHARS = string.ascii_letters + string.digits + "._:/#?=&%~+-"


def longest_ident(seed: int) -> str:
    """A random identifier of the longest length events accept (random: the store cannot compress it)."""
    rng = random.Random(seed)
    return "c" + "".join(rng.choice(_IDENT_CHARS) for _ in range(IDENT_MAX_CHARS - 1))


def test_the_indicator_contract_takes_the_longest_event_identifier() -> None:
    cell = {"indicator": "CVF-01", "period": {"kind": "month", "start": "2026-03-01"}, "value": 1.0}
    long = longest_ident(1)
    IndicatorValue.model_validate({**cell, "dimensions": {"course": long}, **_envelope()})
    with pytest.raises(ValidationError):
        IndicatorValue.model_validate({**cell, "dimensions": {"course": long + "x"}, **_envelope()})


def _envelope() -> dict[str, object]:
    return {"parts": {}, "version": 1, "as_of": "2026-03-02T12:00:00Z", "unit": "count"}


async def test_cells_with_the_longest_identifiers_are_stored_and_published(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    course, offering = longest_ident(2), longest_ident(3)
    enrolment = longest_ident(4)
    events = [
        make_enrolment_created(course_id=course, offering_id=offering, enrolment_id=enrolment),
        make_enrolment_completed(enrolment_id=enrolment),
    ]
    records = records_for(settings, events)
    await produce(settings, records)
    processor = await process_all(settings, pg_pool, len(records))
    assert processor.stats.dead_lettered == 0 and processor.stats.facts_new == 2
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_outbox") == 0
    stored = await pg_pool.fetch(
        "SELECT dims FROM indicator_part UNION SELECT dims FROM indicator_member"
        " UNION SELECT dims FROM indicator_report"
    )
    assert any(json.loads(row["dims"]).get("course") == course for row in stored)
    # Every stored cell, the long ones included, is on the indicators topic.
    await assert_topic_equals_store(settings, pg_pool)
