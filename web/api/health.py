"""`/api/v1/health/sources`: each source's health and the processors' offsets, as `alcance status`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from infra.status import read_status
from web.api.base import PREFIX, Endpoint
from web.auth import require_internal
from web.state import POOL


class SourceHealth(BaseModel):
    """One pulled source as its connector last reported it."""

    source: str
    kind: str
    host: str
    health: str
    last_error: str | None
    failing_for_s: float | None
    records_pulled: int
    events_published: int
    dead_lettered: int
    seconds_behind: float | None
    updated_at: datetime


class ProcessorOffset(BaseModel):
    """A processor group's committed offset on one partition, and how far it trails the sources."""

    consumer_group: str
    topic: str
    partition: int
    next_offset: int
    behind: int | None
    updated_at: datetime


class SourcesHealth(BaseModel):
    """The store's view of the pipeline's health."""

    sources: list[SourceHealth]
    processors: list[ProcessorOffset]


async def sources_health(request: web.Request, _query: Any) -> SourcesHealth:
    """Each source's health, lag and last error; processors' committed offsets (internal roles)."""
    require_internal(request)
    return SourcesHealth.model_validate(await read_status(request.app[POOL]))


ENDPOINTS = [
    Endpoint(
        f"{PREFIX}/health/sources",
        "Each source's health, lag and last error; processors' committed offsets",
        "health",
        sources_health,
        response=SourcesHealth,
    ),
]
