"""Fixtures of the web tests: one store filled through the real pipeline per module, the app served live."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import asyncpg
import pytest

from benchmarks.processors import FUTURE_ALLOWANCE_S
from benchmarks.read_model import _load, _produce
from infra.kafka import ensure_topics
from infra.postgres import create_pool, migrate
from infra.settings import Settings
from schemas.topics import TopicCatalogue
from tests.conftest import _delete_topics, _drop_schema
from web import identities
from web.app import serving_web

# Enough events for every family of indicators to hold cells, few enough to load in seconds.
EVENTS = 1_500

MakeToken = Callable[..., Awaitable[str]]


@pytest.fixture(scope="module")
async def filled(local_stack: Settings) -> AsyncIterator[Settings]:
    """Settings on a schema of its own holding EVENTS processed events (the benchmark's mix)."""
    token = uuid.uuid4().hex[:8]
    settings = local_stack.model_copy(
        update={
            "kafka": local_stack.kafka.model_copy(update={"topic_prefix": f"w{token}.", "partitions": 2}),
            "postgres": local_stack.postgres.model_copy(update={"db_schema": f"w_{token}"}),
            "processor": local_stack.processor.model_copy(update={"future_allowance_s": FUTURE_ALLOWANCE_S}),
            "web": local_stack.web.model_copy(update={"port": 0}),
            "directory": local_stack.directory.model_copy(update={"db_schema": f"wd_{token}"}),
        }
    )
    catalogue = TopicCatalogue.from_settings(settings)
    await ensure_topics(settings.kafka, catalogue.all())
    pool = await create_pool(settings.postgres)
    try:
        await migrate(pool)
        records = await _produce(settings, EVENTS, 7)
        await _load(settings, pool, records)
    finally:
        await pool.close()
    yield settings
    await _drop_schema(settings)
    # The directory's own schema, made by the served app.
    directory = settings.postgres.model_copy(update={"db_schema": settings.directory.db_schema})
    await _drop_schema(settings.model_copy(update={"postgres": directory}))
    await _delete_topics(settings)


@pytest.fixture(scope="module")
async def web_pool(filled: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the filled store, for issuing credentials in tests."""
    pool = await create_pool(filled.postgres)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def base_url(filled: Settings) -> AsyncIterator[str]:
    """The web app served on a free port over the filled store."""
    async with serving_web(filled) as url:
        yield url


@pytest.fixture
async def make_token(web_pool: asyncpg.Pool) -> MakeToken:
    """Issue a bearer token of a role (and member state)."""

    async def make(role: str, member_state: str | None = None) -> str:
        _, _, secret = await identities.create_credential(web_pool, role=role, member_state=member_state)
        return secret

    return make


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session without cookies carried between tests."""
    async with aiohttp.ClientSession() as session:
        yield session
