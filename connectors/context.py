"""What the connectors of one process share: settings, topics, the store's pool, the publisher, HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import asyncpg

from connectors.family_producers import FamilyProducers
from connectors.publisher import Publisher
from infra.kafka import ensure_topics, read_log_identity
from infra.kafka_acls import ensure_acls
from infra.postgres import create_pool
from infra.roles import PROCESSOR, store_settings_for
from infra.settings import Settings
from schemas.topics import TopicCatalogue


@dataclass
class ConnectorContext:
    """What a running connector shares with the others of its process.

    Attributes:
        settings: resolved settings.
        catalogue: topic catalogue.
        pool: PostgreSQL pool on the store's schema (checkpoints, leases), as the processor role.
        publisher: the Kafka publisher (one producer per family, each as that family's principal).
        session: the aiohttp session for sources.
        log_identity: identity of the broker's log at start-up.
    """

    settings: Settings
    catalogue: TopicCatalogue
    pool: asyncpg.Pool
    publisher: Publisher
    session: aiohttp.ClientSession
    log_identity: str

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: Settings, *, pool: asyncpg.Pool | None = None
    ) -> AsyncIterator[ConnectorContext]:
        """Prepare the topics, open the producers, an HTTP session and (unless given) a pool; close on exit.

        Topics, their ACLs and the log identity are prepared as the settings' own Kafka user (setup
        work); events go out under each family's principal.
        """
        catalogue = TopicCatalogue.from_settings(settings)
        # Creating missing topics here means a connector never publishes into auto-created defaults.
        await ensure_topics(settings.kafka, catalogue.all())
        await ensure_acls(settings.kafka, catalogue)
        log_identity = await read_log_identity(settings.kafka, catalogue)
        own_pool = pool is None
        if pool is None:
            pool = await create_pool(store_settings_for(settings.postgres, PROCESSOR))
        producers = FamilyProducers(settings.kafka, catalogue)
        connector_settings = settings.connector
        # No total timeout on the session: each request carries its own bounded timeout.
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=16),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connector_settings.request_timeout_s),
        )
        try:
            yield cls(
                settings=settings,
                catalogue=catalogue,
                pool=pool,
                publisher=Publisher(producers, catalogue),
                session=session,
                log_identity=log_identity,
            )
        finally:
            await session.close()
            await producers.stop()
            if own_pool:
                await pool.close()
