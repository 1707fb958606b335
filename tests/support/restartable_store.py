"""A PostgreSQL server of one test alone, so that the test can restart it under a running pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from infra.local import LocalStack
from infra.postgres import create_pool, migrate
from infra.settings import Settings


async def migrated(settings: Settings) -> None:
    """Create and migrate the schema `settings` name."""
    pool = await create_pool(settings.postgres)
    try:
        await migrate(pool)
    finally:
        await pool.close()


def with_schema(settings: Settings, schema: str) -> Settings:
    """`settings` on another schema of the same server."""
    return settings.model_copy(
        update={"postgres": settings.postgres.model_copy(update={"db_schema": schema})}
    )


@asynccontextmanager
async def restartable_store(
    settings: Settings, state_dir: Path
) -> AsyncIterator[tuple[Settings, LocalStack]]:
    """`settings` pointing at a new local PostgreSQL (the broker stays the shared one), and its stack.

    `stack.restart_postgres(down_s=...)` then ends every session of the store and refuses connections
    for a while, as a restart or a failover of a production server does.
    """
    stack = LocalStack(state_dir, broker=False, postgres=True)
    await stack.start()
    try:
        # Every role's login on the new server, not just the owner's.
        isolated = stack.resolve(settings)
        await migrated(isolated)
        yield isolated, stack
    finally:
        await stack.stop()
