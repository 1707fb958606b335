"""`alcance directory verify-log | indicators`: the access log's chain check and the directory indicators."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from directory.audit import verify_log
from directory.indicators import read_directory_indicators
from directory.schema import migrate
from infra.settings import Settings


async def directory_command(action: str, settings: Settings) -> tuple[bool, str]:
    """Run `action` on the store the settings name; returns (success, what to print)."""
    from infra.stack_file import store_settings

    async with store_settings(settings) as resolved:
        assert resolved.postgres.dsn is not None  # noqa: S101 - store_settings resolves it
        connection = await asyncpg.connect(resolved.postgres.dsn.get_secret_value())
        try:
            schema = resolved.directory.db_schema
            await migrate(connection, schema)
            if action == "verify-log":
                report = await verify_log(connection, schema)
                if report.ok:
                    return True, f"access log of {schema}: {report.rows} rows, chain intact"
                return False, f"access log of {schema}: chain broken at {report.reason}"
            found: list[dict[str, Any]] = await read_directory_indicators(connection, schema)
            return True, json.dumps(found, ensure_ascii=False, indent=2, default=str)
        finally:
            await connection.close()
