"""The evaluation store for commands run beside the pipeline, and the file that names a running stack.

`alcance run` writes `stack.env` into the state directory while it runs (owner-only, like the password
files), so that `alcance indicators`, `status` or `serve` started beside it use its services instead of
starting their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from pydantic import SecretStr

from infra.local import LocalStack, LocalStackError
from infra.postgres import create_pool, migrate
from infra.settings import Settings

STACK_FILE = "stack.env"
"""File in the state directory naming the running local services, for commands run beside `run`."""


def write_stack_file(configured: Settings, resolved: Settings) -> None:
    """Name the services `run` started (not those configured) in the state directory's `stack.env`."""
    lines = []
    if configured.kafka.bootstrap_servers is None and resolved.kafka.bootstrap_servers:
        lines.append(f"ALCANCE_KAFKA__BOOTSTRAP_SERVERS={resolved.kafka.bootstrap_servers}")
    if configured.postgres.dsn is None and resolved.postgres.dsn is not None:
        # The local server's password: the file is readable by its owner only, like the password files.
        lines.append(f"ALCANCE_POSTGRES__DSN={resolved.postgres.dsn.get_secret_value()}")
    if lines:
        path = resolved.state_dir / STACK_FILE
        path.touch(mode=0o600)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def remove_stack_file(settings: Settings) -> None:
    """Remove `stack.env` when `run` stops its services."""
    with contextlib.suppress(FileNotFoundError):
        (settings.state_dir / STACK_FILE).unlink()


def running_stack_dsn(state_dir: Path) -> str | None:
    """The store DSN a running `alcance run` wrote into `state_dir`, if any."""
    with contextlib.suppress(FileNotFoundError):
        for line in (state_dir / STACK_FILE).read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition("=")
            if name == "ALCANCE_POSTGRES__DSN":
                return value
    return None


@asynccontextmanager
async def store_settings(settings: Settings) -> AsyncIterator[Settings]:
    """`settings` pointing at the evaluation store, for commands that only read or rebuild it.

    The store is the configured one, the one a running `alcance run` started, or the local PostgreSQL
    started (and migrated) for the duration of the block.
    """
    async with AsyncExitStack() as stack:
        if settings.postgres.dsn is None:
            local = LocalStack(settings.state_dir, broker=False, postgres=True)
            try:
                await local.start()
                stack.push_async_callback(local.stop)
                dsn = local.dsn
            except LocalStackError:
                running = running_stack_dsn(settings.state_dir)
                if running is None:
                    raise
                dsn = running
            settings = settings.model_copy(
                update={"postgres": settings.postgres.model_copy(update={"dsn": SecretStr(dsn)})}
            )
        pool = await create_pool(settings.postgres)
        try:
            await migrate(pool)
        finally:
            await pool.close()
        yield settings
