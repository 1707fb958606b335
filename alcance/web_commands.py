"""`alcance serve` (the web app alone, beside or without a running pipeline) and `alcance token`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

from infra.postgres import create_pool
from infra.settings import Settings
from infra.stack_file import STACK_FILE, store_settings


def _stack_file_values(state_dir: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in (state_dir / STACK_FILE).read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition("=")
            values[name] = value
    return values


async def serve(settings: Settings) -> int:
    """Serve the web app until SIGTERM or SIGINT, printing its address and a one-time login link.

    The store is the configured one, a running `alcance run`'s, or the local PostgreSQL started for
    the duration; live updates follow a configured broker or a running `alcance run`'s.
    """
    from web.app import serving_web

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with store_settings(settings) as resolved:
            running = _stack_file_values(settings.state_dir)
            broker = running.get("ALCANCE_KAFKA__BOOTSTRAP_SERVERS")
            if resolved.kafka.bootstrap_servers is None and broker:
                resolved = resolved.model_copy(
                    update={"kafka": resolved.kafka.model_copy(update={"bootstrap_servers": broker})}
                )
            wrote = _note_store(settings, resolved, running)
            try:
                async with serving_web(resolved, announce=True):
                    await stop.wait()
            finally:
                if wrote:
                    (settings.state_dir / STACK_FILE).unlink(missing_ok=True)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return 0


def _note_store(configured: Settings, resolved: Settings, running: dict[str, str]) -> bool:
    """Name the local store serve started in the stack file, so `alcance token` finds it meanwhile."""
    if configured.postgres.dsn is not None or running or resolved.postgres.dsn is None:
        return False
    path = configured.state_dir / STACK_FILE
    path.touch(mode=0o600)
    path.write_text(f"ALCANCE_POSTGRES__DSN={resolved.postgres.dsn.get_secret_value()}\n", encoding="utf-8")
    return True


async def token(settings: Settings, action: str, **options: Any) -> list[str]:
    """`alcance token create|revoke|list`: the lines to print.

    Raises:
        web.identities.IdentityError: when the token cannot be created or nothing matches a revoke.
    """
    from web import identities

    async with store_settings(settings) as resolved:
        pool = await create_pool(
            resolved.postgres.model_copy(update={"pool_min_size": 1, "pool_max_size": 1})
        )
        try:
            if action == "create":
                _, _, secret = await identities.create_credential(
                    pool,
                    role=options["role"],
                    name=options.get("name"),
                    member_state=options.get("state"),
                    ttl_s=options.get("ttl_s"),
                )
                return [secret]
            if action == "revoke":
                count = await identities.revoke_credential(pool, options["target"])
                if count == 0:
                    raise identities.IdentityError(
                        f"no live token has id or name {options['target']!r} (alcance token list shows them)"
                    )
                return [f"revoked {count} token(s) and their sessions"]
            rows = await identities.list_credentials(pool)
            return [
                "\t".join(
                    str(value if value is not None else "-")
                    for value in (
                        row["id"],
                        row["name"],
                        row["role"],
                        row["member_state"],
                        f"{row['created_at']:%Y-%m-%d %H:%M}",
                        "never" if row["expires_at"] is None else f"expires {row['expires_at']:%Y-%m-%d}",
                        "revoked" if row["revoked_at"] else "live",
                    )
                )
                for row in rows
            ]
        finally:
            await pool.close()
