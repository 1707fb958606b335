"""Session fixtures: one real local stack per test run, and a fresh topic prefix and schema per test."""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from infra.kafka import client_kwargs, ensure_topics
from infra.local import running_stack
from infra.postgres import create_pool, migrate
from infra.settings import Settings, WebSettings, load_settings
from schemas.topics import TopicCatalogue

logger = logging.getLogger(__name__)


def make_state_dir() -> Path:
    """A fresh state directory for a local stack, outside pytest's own temporary tree.

    Run as root, PostgreSQL runs as another user that must traverse every parent of its data directory,
    and every pytest session (ours or a concurrent one) resets its `pytest-of-<user>` root to 0700.
    """
    return Path(tempfile.mkdtemp(prefix="alcance-test-"))


@pytest.fixture
def stack_state_dir() -> Iterator[Path]:
    """A state directory for a test that starts its own local stack; removed afterwards."""
    path = make_state_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
async def local_stack() -> AsyncIterator[Settings]:
    """Settings resolved against the broker and PostgreSQL started once for the whole test run.

    `ALCANCE_KAFKA__BOOTSTRAP_SERVERS` / `ALCANCE_POSTGRES__DSN` in the environment point the suite at
    external services instead; then nothing is started for them.
    """
    state_dir = make_state_dir()
    try:
        # The web app, where a test serves it, takes any free port.
        configured = load_settings(state_dir=state_dir, web=WebSettings(port=0))
        async with running_stack(configured) as resolved:
            yield resolved
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
async def settings(local_stack: Settings) -> AsyncIterator[Settings]:
    """Settings isolated for one test: its own topic prefix (topics created) and schema (migrated).

    Consumer-group timings are short so that a test's crashed consumer is noticed quickly (the local
    broker allows sessions down to one second). The topics and the schema are deleted after the test.
    """
    token = uuid.uuid4().hex[:8]
    isolated = local_stack.model_copy(
        update={
            "kafka": local_stack.kafka.model_copy(
                update={
                    "topic_prefix": f"t{token}.",
                    "partitions": 2,
                    "session_timeout_ms": 2_000,
                    "heartbeat_interval_ms": 300,
                }
            ),
            "postgres": local_stack.postgres.model_copy(update={"db_schema": f"t_{token}"}),
        }
    )
    pool = await create_pool(isolated.postgres)
    try:
        await migrate(pool)
    finally:
        await pool.close()
    catalogue = TopicCatalogue.from_settings(isolated)
    await ensure_topics(isolated.kafka, catalogue.all())
    yield isolated
    await _drop_schema(isolated)
    await _delete_topics(isolated)


@pytest.fixture
async def pg_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's own schema, with every migration applied."""
    pool = await create_pool(settings.postgres)
    try:
        yield pool
    finally:
        await pool.close()


async def _drop_schema(settings: Settings) -> None:
    assert settings.postgres.dsn is not None
    connection = await asyncpg.connect(settings.postgres.dsn.get_secret_value())
    try:
        # A test that leaked a connection inside a transaction would block the drop: fail loudly instead.
        await connection.execute("SET lock_timeout = '10s'")
        await connection.execute(f'DROP SCHEMA IF EXISTS "{settings.postgres.db_schema}" CASCADE')
    finally:
        await connection.close()


async def _delete_topics(settings: Settings) -> None:
    # The session's broker keeps every topic until the suite ends: a long suite would otherwise pile them up.
    admin = AIOKafkaAdminClient(**client_kwargs(settings.kafka))
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(settings.kafka.topic_prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
