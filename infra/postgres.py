"""The evaluation store's connection pool and its versioned SQL migrations."""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg

from infra.settings import PostgresSettings

logger = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "infra.migrations"
# An arbitrary constant shared by every alcance process: only one of them migrates at a time.
_MIGRATION_LOCK_ID = 503_0007
# The group role of read-only users (BI tools): SELECT on the read model's views, nothing else. On a
# managed PostgreSQL an administrator creates it and grants it to the users it is for.
READER_ROLE = "alcance_reader"
# The login the local stack creates for BI tools, a member of READER_ROLE.
READER_LOGIN = "alcance_bi"


class PostgresNotConfiguredError(RuntimeError):
    """Raised when a pool is requested before the store's address is known."""


async def create_pool(pg: PostgresSettings, **overrides: object) -> asyncpg.Pool:
    """A pool whose connections all work inside the configured schema (created if missing)."""
    if pg.dsn is None:
        raise PostgresNotConfiguredError("postgres.dsn is not set and no local PostgreSQL was started")
    dsn = pg.dsn.get_secret_value()
    connection = await asyncpg.connect(dsn)
    try:
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
        await _grant_reader(connection)
    if applied:
        logger.info("applied %d migrations: %s", len(applied), ", ".join(applied))
    return applied


async def _grant_reader(connection: asyncpg.Connection) -> None:
    """Let READER_ROLE, where it exists, read every view of the schema and no table."""
    if not await connection.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", READER_ROLE):
        return
    schema = await connection.fetchval("SELECT current_schema()")
    views = await connection.fetch(
        "SELECT table_name FROM information_schema.views WHERE table_schema = $1", schema
    )
    await connection.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {READER_ROLE}')
    for view in views:
        await connection.execute(f'GRANT SELECT ON "{schema}"."{view["table_name"]}" TO {READER_ROLE}')


async def ensure_reader_login(connection: asyncpg.Connection, login: str, password: str) -> None:
    """Create READER_ROLE and a `login` member of it with `password`, if they do not exist yet."""
    # Serialised with migrations: two starters never race to create the same role.
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_ID)
        if not await connection.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", READER_ROLE):
            await connection.execute(f"CREATE ROLE {READER_ROLE} NOLOGIN")
        if not await connection.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", login):
            literal = "'" + password.replace("'", "''") + "'"
            await connection.execute(f"CREATE ROLE {login} LOGIN PASSWORD {literal} IN ROLE {READER_ROLE}")
