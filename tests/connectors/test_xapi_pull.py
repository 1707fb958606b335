"""The xAPI connector against its simulator, in-process: statements arrive, voids retract, bad ones DLQ."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.base import Health
from connectors.context import ConnectorContext
from connectors.exceptions import SkipRecord
from connectors.runtime import PullLoop
from connectors.simulators.generator import generate
from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world
from connectors.xapi import XapiConnector, XapiRecord
from infra.settings import Settings
from schemas.events.base import Event
from schemas.topics import TopicCatalogue
from tests.connectors.support import decode_all, read_topic, xapi_settings


@pytest.fixture
async def lrs() -> AsyncIterator[tuple[XapiLrs, str]]:
    statements, _ = statements_from_world(generate(7, learners=25), seed=7)
    server = XapiLrs(statements)
    endpoint = await server.start()
    try:
        yield server, endpoint
    finally:
        await server.stop()


def _tuple(event: Event) -> tuple[Any, ...]:
    return (event.event_type, getattr(event, "enrolment_id", None), event.occurred_at)


async def test_pull_publishes_each_statement_once_retracts_voided_and_dead_letters_bad_ones(
    settings: Settings, lrs: tuple[XapiLrs, str]
) -> None:
    server, endpoint = lrs
    settings = xapi_settings(settings, endpoint, page_size=40)
    catalogue = TopicCatalogue.from_settings(settings)
    # An already pulled statement will be voided later; a bad one (actor without identifier) is added now.
    early = next(s for s in server.statements if s["verb"]["id"].endswith("/registered"))
    bad = dict(early, id="00000000-0000-4000-8000-00000000bad1", actor={"objectType": "Agent", "name": "x"})
    bad["stored"] = server.statements[-1]["stored"]
    server.add(bad)

    async with ConnectorContext.open(settings) as context:
        connector = XapiConnector(settings.sources[0], settings)
        await PullLoop(connector, context).run(until_idle=True)
        assert connector.exhausted.is_set()
        assert connector.health() == Health.STOPPED
        first_events = connector.stats.events_published
        voiding = server.void(early["id"])
        second = XapiConnector(settings.sources[0], settings)
        await PullLoop(second, context).run(until_idle=True)

    events = decode_all(await read_topic(settings, catalogue.training.name))
    unique = {event.event_id: event for event in events}
    retractions = [e for e in unique.values() if e.event_type == "cvf.event.retracted"]
    early_events = connector.map_record(XapiRecord(early))
    assert [r.retracted_event_id for r in retractions] == [e.event_id for e in early_events]  # type: ignore[attr-defined]
    assert retractions[0].source_ref == voiding["id"]
    # Every measured statement of the source appears once (by content), nothing else does.
    expected: set[tuple[Any, ...]] = set()
    for statement in server.statements:
        if statement["id"] in (bad["id"], voiding["id"]):
            continue
        try:
            expected.update(_tuple(e) for e in connector.map_record(XapiRecord(statement)))
        except SkipRecord:
            continue
    published = [_tuple(e) for e in unique.values() if e.event_type != "cvf.event.retracted"]
    assert len(published) == len(set(published)), "one event per statement content"
    assert set(published) == expected
    assert first_events >= len(expected)
    assert connector.stats.skipped, "the unmeasured verbs are counted"

    dead = await read_topic(settings, catalogue.dead_letter(catalogue.training).name)
    # The second run re-reads the overlap window, so the bad statement may be dead-lettered twice.
    assert 1 <= len(dead) <= 2
    for record in dead:
        headers = dict(record.headers)
        assert b"inverse functional identifier" in headers["dlq_reason"]
        assert headers["dlq_source"] == b"cvf-lrs"
        assert json.loads(record.value)["id"] == bad["id"]


async def test_transient_source_failures_are_retried_until_the_page_is_read(
    settings: Settings, lrs: tuple[XapiLrs, str]
) -> None:
    server, endpoint = lrs
    server.faults.error_rate = 0.2
    server.faults.throttle_rate = 0.2
    server.faults.retry_after_s = 0.05
    server.faults.truncate_rate = 0.2
    settings = xapi_settings(settings, endpoint, page_size=15)
    async with ConnectorContext.open(settings) as context:
        connector = XapiConnector(settings.sources[0], settings)
        await asyncio.wait_for(PullLoop(connector, context).run(until_idle=True), 60)
    assert connector.stats.retries > 0
    assert sum(server.faults.injected.values()) > 0
    measured = [s for s in server.statements if not s["verb"]["id"].endswith("/launched")]
    assert connector.stats.records_pulled >= len(server.statements)
    assert connector.stats.events_published >= len(measured)
