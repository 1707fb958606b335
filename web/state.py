"""What the web app's handlers share, as typed application keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from infra.settings import Settings

if TYPE_CHECKING:
    from web.stream import StreamHub

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
HUB: web.AppKey[StreamHub] = web.AppKey("hub")
