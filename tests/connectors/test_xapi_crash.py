"""Crash safety: a connector SIGKILLed at random points and restarted loses nothing and invents nothing."""

from __future__ import annotations

import asyncio
import random
import signal

import pytest

from connectors.simulators.faults import Faults
from connectors.simulators.generator import generate
from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world
from connectors.xapi import XapiConnector, XapiRecord
from infra.settings import Settings
from schemas.topics import TopicCatalogue
from tests.connectors.support import decode_all, read_topic, xapi_settings
from tests.support.processes import python_child

pytestmark = pytest.mark.slow


async def test_killed_and_restarted_connector_publishes_every_statement_and_nothing_else(
    settings: Settings,
) -> None:
    rng = random.Random(11)
    statements, truths = statements_from_world(generate(11, learners=150), seed=11)
    faults = Faults(
        error_rate=0.06,
        burst_length=2,
        throttle_rate=0.06,
        retry_after_s=0.05,
        slow_rate=0.04,
        slow_s=1.0,
        truncate_rate=0.06,
        duplicate_rate=0.06,
        seed=11,
    )
    server = XapiLrs(statements, faults=faults)
    endpoint = await server.start()
    settings = xapi_settings(settings, endpoint, page_size=20, request_timeout_s=0.5)
    catalogue = TopicCatalogue.from_settings(settings)
    duplicated = {t.duplicate_of for t in truths if t.duplicate_of} | {
        t.statement_id for t in truths if t.duplicate_of
    }
    voidable = [t.statement_id for t in truths if t.expected and t.statement_id not in duplicated]
    # Statements voided after the fact: some early (already published when voided), some late.
    to_void = rng.sample(voidable[: len(voidable) // 3], 3) + rng.sample(voidable[-len(voidable) // 3 :], 3)

    kills = 0
    try:
        for run in range(5):
            async with python_child(module="tests.connectors.pull_worker", settings=settings) as child:
                await child.wait_for_line(lambda line: "WORKER STARTED" in line, timeout_s=30)
                if run == 1:
                    for sid in to_void:
                        server.void(sid)
                if run < 4:
                    # Kill at a random point: after a few pages, a random few milliseconds into the next.
                    pages = [0]
                    wanted = rng.randint(3, 12)

                    def nth_page(line: str, pages: list[int] = pages, wanted: int = wanted) -> bool:
                        pages[0] += "page of" in line
                        return pages[0] >= wanted

                    await child.wait_for_line(nth_page, timeout_s=30)
                    await asyncio.sleep(rng.uniform(0, 0.03))
                    if child.process.returncode is None:
                        child.send_signal(signal.SIGKILL)
                        kills += 1
                    await child.wait()
                    continue
                faults.disable()
                done = await child.wait_for_line(lambda line: "WORKER DONE" in line, timeout_s=60)
                assert await child.wait() == 0, child.output
                print(done)
    finally:
        await server.stop()

    records = await read_topic(settings, catalogue.training.name)
    events = decode_all(records)
    unique = {event.event_id: event for event in events}
    print(
        f"killed {kills} times; {len(events)} records, {len(unique)} distinct events, "
        f"{len(events) - len(unique)} duplicates before de-duplication; faults injected: {faults.injected}"
    )
    mapper = XapiConnector(settings.sources[0], settings)
    by_id = {s["id"]: s for s in server.statements}

    def event_ids(statement_id: str) -> set[object]:
        return {e.event_id for e in mapper.map_record(XapiRecord(by_id[statement_id]))}

    expected_live: set[object] = set()
    for truth in truths:
        if truth.expected and truth.statement_id not in to_void:
            expected_live |= event_ids(truth.statement_id)
    expected_voided: set[object] = set()
    for sid in to_void:
        expected_voided |= event_ids(sid)
    published = {eid for eid, e in unique.items() if e.event_type != "cvf.event.retracted"}
    retracted = {e.retracted_event_id for e in unique.values() if e.event_type == "cvf.event.retracted"}  # type: ignore[attr-defined]
    assert expected_live <= published, f"{len(expected_live - published)} statements lost"
    assert published <= expected_live | expected_voided, "events not in the source"
    assert retracted == expected_voided
    # Replays of the same statement under a new LRS id collapse into one event.
    replays = [t for t in truths if t.duplicate_of]
    assert replays and all(event_ids(t.statement_id) == event_ids(t.duplicate_of or "") for t in replays)
    assert kills >= 3
    assert len(faults.injected) >= 3, "several kinds of source faults were exercised"
