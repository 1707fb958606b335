"""PostgreSQL restarted under each source kind and the push intake: all retry and go on, losing nothing."""

# ruff: noqa: S106 - simulators' well-known test credentials

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from pydantic import SecretStr

from connectors.base import Connector, Health
from connectors.context import ConnectorContext
from connectors.intake import serving_intake
from connectors.moodle import MoodleConnector
from connectors.registry import load_connector_class
from connectors.runtime import pull
from connectors.simulators.generator import generate
from connectors.simulators.moodle_ws import MoodleSimulator, state_from_world
from connectors.simulators.plgn_feed import PlgnFeedSimulator, feed_from_world
from connectors.simulators.serving import serving
from connectors.simulators.sources import write_cost_ledger
from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world
from infra.roles import PROCESSOR, store_settings_for
from infra.settings import ConnectorSettings, IntakeSettings, PseudonymSettings, Settings, SourceConfig
from schemas.topics import TopicCatalogue
from tests.connectors.support import decode_all, read_topic
from tests.connectors.test_intake import AUTH, TOKEN, statement
from tests.support.restartable_store import migrated, restartable_store, with_schema

pytestmark = pytest.mark.slow

# The restart begins before this fetch, so that pages were committed before it and follow it.
RESTART_BEFORE_FETCH = 3


@asynccontextmanager
async def xapi_source(tmp_path: Path) -> AsyncIterator[SourceConfig]:
    statements, _ = statements_from_world(generate(4, learners=40), seed=4)
    server = XapiLrs(statements)
    endpoint = await server.start()
    try:
        yield SourceConfig(
            name="cvf-lrs",
            kind="xapi",
            endpoint=endpoint,
            username="cvf",
            password=SecretStr("secret"),
            page_size=15,
        )
    finally:
        await server.stop()


@asynccontextmanager
async def moodle_source(tmp_path: Path) -> AsyncIterator[SourceConfig]:
    state = state_from_world(generate(11, learners=24, firms=4, courses=2))
    async with serving(MoodleSimulator(state, token="moodle-token").app()) as url:
        yield SourceConfig(
            name="cvf-moodle", kind="moodle", endpoint=f"{url}/", token=SecretStr("moodle-token"), page_size=6
        )


@asynccontextmanager
async def plgn_source(tmp_path: Path) -> AsyncIterator[SourceConfig]:
    feed = feed_from_world(generate(12, learners=5, firms=12))
    async with serving(PlgnFeedSimulator(feed, token="plgn-token").app()) as url:
        yield SourceConfig(
            name="plgn",
            kind="plgn",
            endpoint=f"{url}/activities",
            token=SecretStr("plgn-token"),
            page_size=10,
        )


@asynccontextmanager
async def costs_source(tmp_path: Path) -> AsyncIterator[SourceConfig]:
    ledger = tmp_path / "costs.csv"
    write_cost_ledger(generate(14), ledger)
    yield SourceConfig(name="ledger", kind="costs", endpoint=str(ledger), page_size=5)


SOURCES: dict[str, Callable[[Path], AbstractAsyncContextManager[SourceConfig]]] = {
    "xapi": xapi_source,
    "moodle": moodle_source,
    "plgn": plgn_source,
    "costs": costs_source,
}


def for_source(settings: Settings, source: SourceConfig) -> Settings:
    """`settings` with `source`, fixed pseudonym keys and retry timings short enough for a test."""
    return settings.model_copy(
        update={
            "sources": [source],
            "connector": ConnectorSettings(
                request_timeout_s=5.0, backoff_base_s=0.01, backoff_max_s=0.2, poll_interval_s=0.05
            ),
            "pseudonym": PseudonymSettings(
                person_key=SecretStr("test-person-key-0123456789"),
                org_key=SecretStr("test-org-key-0123456789"),
            ),
        }
    )


async def pull_recording(
    settings: Settings, connector: Connector, before_fetch: Callable[[int], Awaitable[None]] | None = None
) -> set[uuid.UUID]:
    """Pull `connector` to the end of its source; the ids of the events the broker acknowledged."""
    acknowledged: set[uuid.UUID] = set()
    async with ConnectorContext.open(settings) as context:
        publisher = context.publisher
        real_publish = publisher.publish

        async def publish(events: Any, dead_letters: Any = ()) -> Any:
            offsets = await real_publish(events, dead_letters)
            acknowledged.update(event.event_id for event in events)
            return offsets

        setattr(publisher, "publish", publish)  # noqa: B010 - instrumenting one instance on purpose
        real_fetch = getattr(connector, "fetch_page")  # noqa: B009 - the attribute is replaced below
        fetches = 0

        async def fetch_page(cursor: Any) -> Any:
            nonlocal fetches
            fetches += 1
            if before_fetch is not None:
                await before_fetch(fetches)
            return await real_fetch(cursor)

        setattr(connector, "fetch_page", fetch_page)  # noqa: B010 - same
        await asyncio.wait_for(pull(connector, context, until_idle=True), 120)
    return acknowledged


@pytest.mark.parametrize("kind", sorted(SOURCES))
async def test_a_source_rides_out_a_store_restart_and_publishes_every_event(
    kind: str, settings: Settings, stack_state_dir: Path, tmp_path: Path
) -> None:
    async with (
        restartable_store(settings, stack_state_dir) as (store_settings, stack),
        SOURCES[kind](tmp_path) as source,
    ):
        settings = for_source(store_settings, source)
        # What the source yields with the store up all along, pulled into a schema of its own.
        reference_settings = with_schema(settings, settings.postgres.db_schema + "_ref")
        await migrated(reference_settings)
        connector_class = load_connector_class(kind)
        reference = await pull_recording(reference_settings, connector_class(source, reference_settings))
        assert reference, f"the {kind} simulator served no mappable record"

        restarts: list[asyncio.Task[None]] = []

        async def restart_before(fetch: int) -> None:
            if fetch == RESTART_BEFORE_FETCH:
                restarts.append(asyncio.create_task(stack.restart_postgres(down_s=1.0)))
                # The fast shutdown ends the connector's sessions; the fetch then meets a store going down.
                await asyncio.sleep(0.3)

        connector = connector_class(source, settings)
        published = await pull_recording(settings, connector, restart_before)
        assert restarts, "the source was read in fewer pages than the restart needs"
        await restarts[0]
    assert connector.health() != Health.FAILED
    assert connector.exhausted.is_set()
    assert connector.stats.retries >= 1, "the restart was not noticed"
    assert published == reference


async def test_the_push_intake_answers_503_during_a_store_restart_and_loses_nothing_retried(
    settings: Settings, stack_state_dir: Path
) -> None:
    async with restartable_store(settings, stack_state_dir) as (store_settings, stack):
        settings = store_settings.model_copy(
            update={
                "intake": IntakeSettings(enabled=True, port=0, token=SecretStr(TOKEN)),
                "pseudonym": PseudonymSettings(
                    person_key=SecretStr("test-person-key-0123456789"),
                    org_key=SecretStr("test-org-key-0123456789"),
                ),
            }
        )
        statuses: list[int] = []
        async with (
            ConnectorContext.open(settings) as context,
            serving_intake(context) as url,
            aiohttp.ClientSession() as session,
        ):

            async def post_until_accepted(batch: list[dict[str, Any]]) -> None:
                for _ in range(200):
                    async with session.post(f"{url}/xapi/statements", json=batch, headers=AUTH) as response:
                        statuses.append(response.status)
                        if response.status == 200:
                            return
                        assert response.status == 503, await response.text()
                        assert response.headers["Retry-After"]
                    await asyncio.sleep(0.1)
                pytest.fail("the intake never accepted the batch again after the restart")

            await post_until_accepted([statement(1), statement(2)])
            restart = asyncio.create_task(stack.restart_postgres(down_s=1.0))
            await asyncio.sleep(0.3)
            await post_until_accepted([statement(3), statement(4)])
            await restart
            await post_until_accepted([statement(5), statement(6)])
    assert 503 in statuses, "no request met the store while it was down"
    catalogue = TopicCatalogue.from_settings(settings)
    events = decode_all(await read_topic(settings, catalogue.training.name, timeout_s=10))
    # A request cut after the broker acknowledged its events is sent again: copies, never a loss.
    assert {e.source_ref for e in events} >= {str(uuid.UUID(int=n, version=4)) for n in range(1, 7)}


async def test_a_moodle_snapshot_query_cut_by_the_server_is_retried(
    settings: Settings, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A session ended by the server (SQLSTATE 57P01) in the middle of the Moodle fetch is not the source's
    fault: the page is fetched again and the source goes on."""
    async with moodle_source(tmp_path) as source:
        settings = for_source(settings, source)
        reference_settings = with_schema(settings, settings.postgres.db_schema + "_ref")
        await migrated(reference_settings)
        try:
            reference = await pull_recording(reference_settings, MoodleConnector(source, reference_settings))
        finally:
            await pg_pool.execute(f'DROP SCHEMA "{reference_settings.postgres.db_schema}" CASCADE')
        cuts: list[asyncio.Task[int]] = []

        async def cut_the_snapshot_query(fetch: int) -> None:
            if fetch != RESTART_BEFORE_FETCH:
                return
            # The table is locked, so the fetch's snapshot query waits; then its session is terminated.
            holder = await pg_pool.acquire()
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute("LOCK TABLE moodle_enrolment_snapshot IN ACCESS EXCLUSIVE MODE")

            # Only a session's own role (or a superuser) may end it: the connector's is the processor's.
            dsn = store_settings_for(settings.postgres, PROCESSOR).dsn
            assert dsn is not None
            killer = await asyncpg.connect(dsn.get_secret_value())

            async def terminate_the_waiter() -> int:
                try:
                    for _ in range(1_000):
                        ended = await killer.fetchval(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                            " AND query LIKE '%moodle_enrolment_snapshot%'"
                        )
                        if ended:
                            return int(ended)
                        await asyncio.sleep(0.01)
                    return 0
                finally:
                    await transaction.rollback()
                    await pg_pool.release(holder)
                    await killer.close()

            cuts.append(asyncio.create_task(terminate_the_waiter()))

        connector = MoodleConnector(source, settings)
        published = await pull_recording(settings, connector, cut_the_snapshot_query)
        assert cuts and await cuts[0] == 1, "no snapshot query was cut"
    assert connector.health() != Health.FAILED
    assert connector.stats.retries >= 1
    assert published == reference
