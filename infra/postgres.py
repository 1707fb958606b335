"""The evaluation store's connection pool and its versioned SQL migrations."""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg

from infra.settings import PostgresSettings
from infra.store_grants import ROLES_LOCK_ID, grant_privileges

logger = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "infra.migrations"
# An arbitrary constant shared by every alcance process: only one of them migrates at a time.
_MIGRATION_LOCK_ID = ROLES_LOCK_ID


class PostgresNotConfiguredError(RuntimeError):
    """Raised when a pool is requested before the store's address is known."""


async def create_pool(pg: PostgresSettings, **overrides: object) -> asyncpg.Pool:
    """A pool whose connections all work inside the configured schema.

    The schema is created if missing, by a role that may (the owner); the other roles find it made.
    """
    if pg.dsn is None:
        raise PostgresNotConfiguredError("postgres.dsn is not set and no local PostgreSQL was started")
    dsn = pg.dsn.get_secret_value()
    connection = await asyncpg.connect(dsn)
    try:
        # Checked first: CREATE SCHEMA IF NOT EXISTS asks for the right to create even when it exists.
        if not await connection.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", pg.db_schema):
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{pg.db_schema}"')
    finally:
        await connection.close()
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=pg.pool_min_size,
        max_size=pg.pool_max_size,
        command_timeout=pg.command_timeout_s,
        server_settings={"search_path": pg.db_schema, "application_name": "alcance"},
        **overrides,
    )
    return pool


def migration_files() -> list[tuple[str, str]]:
    """The migrations shipped with alcance, as (name, SQL) in the order they apply."""
    folder = resources.files(MIGRATIONS_PACKAGE)
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return [(name, folder.joinpath(name).read_text(encoding="utf-8")) for name in names]


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the migrations not yet applied to the pool's schema, each once, in order.

    Returns:
        The names of the migrations this call applied.
    """
    applied: list[str] = []
    async with pool.acquire() as connection, connection.transaction():
        # A transaction-scoped advisory lock: concurrent starters wait, then find nothing to do.
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_ID)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migration ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in await connection.fetch("SELECT name FROM schema_migration")}
        for name, sql in migration_files():
            if name in done:
                continue
            await connection.execute(sql)
            await connection.execute("INSERT INTO schema_migration (name) VALUES ($1)", name)
            applied.append(name)
        await grant_privileges(connection)
    if applied:
        logger.info("applied %d migrations: %s", len(applied), ", ".join(applied))
    return applied
