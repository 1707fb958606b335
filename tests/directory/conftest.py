"""A fresh, migrated directory schema per test, on the session's real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from directory.schema import migrate
from infra.settings import Settings


@pytest.fixture
async def directory_dsn(local_stack: Settings) -> str:
    assert local_stack.postgres.dsn is not None
    return local_stack.postgres.dsn.get_secret_value()


@pytest.fixture
async def directory_schema(directory_dsn: str) -> AsyncIterator[str]:
    schema = f"d_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(directory_dsn)
    try:
        await migrate(connection, schema)
        yield schema
    finally:
        await connection.execute("SET lock_timeout = '10s'")
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.close()


@pytest.fixture
async def admin(directory_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the store's owner login, which the sync and the CLI use too."""
    connection = await asyncpg.connect(directory_dsn)
    try:
        yield connection
    finally:
        await connection.close()
