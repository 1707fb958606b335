"""Serving a simulator's aiohttp application on a free local port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web


@asynccontextmanager
async def serving(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve `app` on a free local port for the duration of the block; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    # aiohttp exposes the bound port only through the server's sockets.
    server: Any = site._server
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
