"""xAPI voiding without trusting `voidedStatementId`: retraction by lookup, LRS fallback, dead letters."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from connectors.context import ConnectorContext
from connectors.runtime import PullLoop
from connectors.simulators.faults import Faults
from connectors.simulators.generator import generate
from connectors.simulators.xapi_lrs import VERB_VOIDED, XapiLrs, statements_from_world
from connectors.xapi import DEFAULT_VERBS, XapiConnector
from infra.settings import Settings
from schemas.events.training import TrainingEventRetracted
from schemas.topics import TopicCatalogue
from tests.connectors.support import decode_all, read_topic, xapi_settings


def _void(server: XapiLrs, target_id: str, *, hide: bool) -> dict[str, Any]:
    """Store a voiding statement of `target_id`; `hide=False` keeps the target in queries (as Ralph does)."""
    if target_id in server._by_id:
        voiding = server.void(target_id)
    else:
        stamp = server.statements[-1]["stored"]
        voiding = {
            "id": str(uuid.uuid4()),
            "actor": {
                "objectType": "Agent",
                "account": {"homePage": "https://cvf.aladi.org", "name": "admin"},
            },
            "verb": {"id": VERB_VOIDED},
            "object": {"objectType": "StatementRef", "id": target_id},
            "timestamp": stamp,
            "stored": stamp,
        }
        server.add(voiding)
    if not hide:
        server._voided.discard(target_id)
    return voiding


async def _pull(settings: Settings, context: ConnectorContext) -> XapiConnector:
    connector = XapiConnector(settings.sources[0], settings)
    await PullLoop(connector, context).run(until_idle=True)
    return connector


def _reasons(records: list[Any]) -> list[str]:
    return [dict(record.headers)["dlq_reason"].decode() for record in records]


async def test_a_pulled_target_is_retracted_by_lookup_and_an_unknown_one_is_dead_lettered(
    settings: Settings,
) -> None:
    statements, _ = statements_from_world(generate(21, learners=15), seed=21)
    server = XapiLrs(statements, like_ralph=True)
    endpoint = await server.start()
    try:
        settings = xapi_settings(settings, endpoint, page_size=25)
        catalogue = TopicCatalogue.from_settings(settings)
        target = next(s for s in server.statements if s["verb"]["id"].endswith("/registered"))
        unknown = str(uuid.uuid4())
        async with ConnectorContext.open(settings) as context:
            await _pull(settings, context)
            _void(server, target["id"], hide=False)
            _void(server, unknown, hide=False)
            later = dict(target, id=str(uuid.uuid4()), timestamp="2026-02-02T10:00:00Z")
            later["stored"] = server.statements[-1]["stored"]
            server.add(later)
            second = await _pull(settings, context)
            target_events = XapiConnector(settings.sources[0], settings).mapper.events(target)
    finally:
        await server.stop()
    events = decode_all(await read_topic(settings, catalogue.training.name))
    retracted = {e.retracted_event_id for e in events if isinstance(e, TrainingEventRetracted)}
    # The pulled target's events are retracted by lookup, although the LRS ignores voidedStatementId.
    assert retracted == {event.event_id for event in target_events}
    # The unknown target was asked of the LRS (voidedStatementId, then statementId), then dead-lettered.
    assert second.stats.dead_lettered == 1
    dead = await read_topic(settings, catalogue.dead_letter(catalogue.training).name)
    assert _reasons(dead) == [
        f"voided statement {unknown} was never pulled and the LRS does not return it"
        " (voidedStatementId, statementId)"
    ]
    # The source moved on: the statement stored after both voidings was published.
    assert any(e.occurred_at.year == 2026 and e.occurred_at.month == 2 for e in events)


@pytest.mark.parametrize("like_ralph", [False, True], ids=["spec-statement", "ralph-statement-result"])
async def test_a_target_never_pulled_is_asked_of_the_lrs(settings: Settings, like_ralph: bool) -> None:
    statements, _ = statements_from_world(generate(23, learners=8), seed=23)
    server = XapiLrs(statements, like_ralph=like_ralph)
    # Voided before the first pull: hidden from queries, so only a lookup by id can return it (a bare
    # Statement by the spec's voidedStatementId, a one-statement StatementResult by Ralph's statementId).
    target = next(s for s in server.statements if s["verb"]["id"].endswith("/completed"))
    _void(server, target["id"], hide=True)
    endpoint = await server.start()
    try:
        settings = xapi_settings(settings, endpoint, page_size=30)
        catalogue = TopicCatalogue.from_settings(settings)
        async with ConnectorContext.open(settings) as context:
            connector = await _pull(settings, context)
        target_events = connector.mapper.events(target)
    finally:
        await server.stop()
    events = decode_all(await read_topic(settings, catalogue.training.name))
    retracted = {e.retracted_event_id for e in events if isinstance(e, TrainingEventRetracted)}
    assert connector.stats.dead_lettered == 0
    assert retracted == {event.event_id for event in target_events}


async def test_a_voiding_statement_the_lrs_keeps_failing_on_is_dead_lettered_and_the_page_passes(
    settings: Settings,
) -> None:
    statements, _ = statements_from_world(generate(22, learners=10), seed=22)
    server = XapiLrs(statements, faults=Faults())
    unknown = str(uuid.uuid4())
    _void(server, unknown, hide=True)
    server.faults.fail_query_containing = unknown
    endpoint = await server.start()
    try:
        settings = xapi_settings(settings, endpoint, page_size=500, max_attempts=1, record_max_attempts=2)
        catalogue = TopicCatalogue.from_settings(settings)
        async with ConnectorContext.open(settings) as context:
            connector = await _pull(settings, context)
    finally:
        await server.stop()
    # One record of a page of every statement could not be resolved: the page was split, that record
    # dead-lettered with the reason, every other statement published.
    assert connector.stats.dead_lettered == 1
    assert connector.stats.records_pulled == len(server.statements)
    dead = await read_topic(settings, catalogue.dead_letter(catalogue.training).name)
    (reason,) = _reasons(dead)
    assert reason.startswith("unresolved after 2 attempts: HTTP 500")
    assert connector.stats.events_published == sum(1 for s in statements if s["verb"]["id"] in DEFAULT_VERBS)


async def test_a_voiding_statement_that_targets_a_voiding_statement_is_dead_lettered_with_that_reason(
    settings: Settings,
) -> None:
    statements, _ = statements_from_world(generate(24, learners=6), seed=24)
    server = XapiLrs(statements)
    target = next(s for s in server.statements if s["verb"]["id"].endswith("/registered"))
    first = _void(server, target["id"], hide=True)
    second = _void(server, first["id"], hide=False)
    endpoint = await server.start()
    try:
        settings = xapi_settings(settings, endpoint, page_size=500)
        catalogue = TopicCatalogue.from_settings(settings)
        async with ConnectorContext.open(settings) as context:
            connector = await _pull(settings, context)
    finally:
        await server.stop()
    # xAPI 1.0.3 Data 2.3.2: a voiding statement cannot target another voiding statement.
    assert connector.stats.dead_lettered == 1
    dead = await read_topic(settings, catalogue.dead_letter(catalogue.training).name)
    assert _reasons(dead) == [
        f"statement {first['id']} is itself a voiding statement, which cannot be voided"
    ]
    assert dead[0].value and second["id"].encode() in dead[0].value
    events = decode_all(await read_topic(settings, catalogue.training.name))
    assert sum(isinstance(e, TrainingEventRetracted) for e in events) == 1
