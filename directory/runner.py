"""The directory sync as `alcance run` runs it: rounds against PLGN (or the simulated PLGN), own connection.

A failed round is logged with the host and the reason and tried again after the poll interval; it never
stops the pipeline. With `until_idle`, one round is run (the simulated sources do not change).
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from connectors.pseudonym import Pseudonymiser
from directory.schema import migrate
from directory.sync import DirectoryContractError, DirectorySource, DirectorySync, SyncStats
from infra.settings import Settings

logger = logging.getLogger(__name__)


def configured_source(settings: Settings) -> DirectorySource | None:
    """The PLGN endpoints the settings name, or None when the directory is not configured."""
    directory = settings.directory
    if not directory.feed_endpoint or not directory.directory_endpoint:
        return None
    token = directory.token.get_secret_value() if directory.token else None
    return DirectorySource(directory.feed_endpoint, directory.directory_endpoint, token, directory.page_size)


async def run_directory_sync(
    settings: Settings, source: DirectorySource, *, until_idle: bool = False
) -> SyncStats | None:
    """Migrate the directory schema, then sync rounds until cancelled (one with `until_idle`).

    Returns:
        The last round's stats (None when no round succeeded).
    """
    assert settings.postgres.dsn is not None  # noqa: S101 - resolved by the launcher before this runs
    pseudonyms = Pseudonymiser.from_settings(settings)
    schema = settings.directory.db_schema
    last: SyncStats | None = None
    connection = await asyncpg.connect(settings.postgres.dsn.get_secret_value())
    try:
        await migrate(connection, schema)
        timeout = aiohttp.ClientTimeout(total=settings.connector.request_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            sync = DirectorySync(source, schema, pseudonyms, session)
            while True:
                try:
                    last = await sync.round(connection)
                except DirectoryContractError as exc:
                    host = urlsplit(source.directory_endpoint).hostname
                    logger.error("directory sync against %s stopped: %s", host, exc)
                except (aiohttp.ClientError, asyncpg.PostgresError, OSError, KeyError, TimeoutError) as exc:
                    host = urlsplit(source.directory_endpoint).hostname
                    logger.error("directory sync against %s failed: %s", host, type(exc).__name__)
                if until_idle:
                    return last
                await asyncio.sleep(settings.directory.poll_interval_s)
    finally:
        await connection.close()
