"""The web app: query API, pages, sign-in; `create_app` builds it, `serving_web` runs it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from infra.postgres import create_pool
from infra.roles import WEB, store_settings_for
from infra.settings import Settings
from web import api, auth, directory, identities, oidc, pages
from web.api.base import PREFIX
from web.api.models import Health
from web.api.stream import STREAMS, stop_streams
from web.openapi import openapi_handler
from web.problems import Handler, problem_middleware
from web.refresh_notices import watch_refreshes
from web.state import HUB, POOL, SETTINGS
from web.stream import StreamHub, run_stream

logger = logging.getLogger(__name__)


class PathOnlyAccessLogger(AbstractAccessLogger):
    """One line per request with the path but never the query string (a login link carries a secret)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Log method, path, status and duration."""
        self.logger.info("%s %s %d %.1f ms", request.method, request.path, response.status, time * 1000)


@web.middleware
async def timing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add `Server-Timing: app;dur=<ms>`: the server's own time, which benchmarks and browsers read."""
    began = time.perf_counter()
    response = await handler(request)
    if not response.prepared:
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - began) * 1000:.2f}"
    return response


async def healthz(_request: web.Request) -> web.StreamResponse:
    """Liveness: the process answers (no identity needed, no store read)."""
    return web.Response(text=Health(status="ok").model_dump_json(), content_type="application/json")


def create_app(
    settings: Settings, *, pool: asyncpg.Pool | None = None, stream: bool = True
) -> web.Application:
    """The web application for the resolved `settings`.

    Args:
        settings: Settings whose `postgres.dsn` (and, for the stream, `kafka.bootstrap_servers`) are set.
        pool: A pool on the store to use; by default the app opens its own on start-up and closes it.
        stream: Tail the `indicators` topic for `/api/v1/stream` (needs a broker).
    """
    app = web.Application(middlewares=[timing_middleware, problem_middleware, auth.auth_middleware])
    app[SETTINGS] = settings
    app[HUB] = StreamHub()
    app[STREAMS] = set()

    async def store(app: web.Application) -> AsyncIterator[None]:
        if pool is not None:
            app[POOL] = pool
            yield
            return
        own = await create_pool(store_settings_for(settings.postgres, WEB))
        app[POOL] = own
        try:
            yield
        finally:
            await own.close()

    async def indicator_stream(app: web.Application) -> AsyncIterator[None]:
        task: asyncio.Task[None] | None = None
        if stream and settings.kafka.bootstrap_servers:
            task = asyncio.create_task(run_stream(settings, app[HUB]), name="indicator-stream")
        yield
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def refresh_notices(app: web.Application) -> AsyncIterator[None]:
        task: asyncio.Task[None] | None = None
        if settings.processor.snapshots:
            task = asyncio.create_task(watch_refreshes(app[POOL], app[HUB]), name="refresh-notices")
        yield
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.extend([store, indicator_stream, refresh_notices])
    app.on_shutdown.append(stop_streams)
    app.router.add_get("/healthz", healthz, allow_head=False)
    auth.add_routes(app)
    oidc.add_routes(app, settings.web)
    api.add_routes(app)
    app.router.add_get(f"{PREFIX}/openapi.json", openapi_handler, allow_head=False)
    pages.add_routes(app)
    directory.add_routes(app)
    return app


def base_url(settings: Settings, port: int) -> str:
    """The address people open: `web.public_url`, else http://host:port."""
    if settings.web.public_url:
        return settings.web.public_url.rstrip("/")
    return f"http://{settings.web.host}:{port}"


@asynccontextmanager
async def serving_web(settings: Settings, *, announce: bool = False, **kwargs: Any) -> AsyncIterator[str]:
    """Serve the web app on `web.host:port` (port 0: any free port) for the block; yields its address.

    With `announce`, the address and a one-time login link (a coordinator's, valid for
    `web.login_link_ttl_s`) are printed on stdout for the person who started it; never logged.
    """
    runner = web.AppRunner(
        create_app(settings, **kwargs), access_log_class=PathOnlyAccessLogger, access_log=logger
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.web.host, settings.web.port)
    await site.start()
    server: Any = site._server  # aiohttp exposes the bound port only through the server's sockets
    port = int(server.sockets[0].getsockname()[1])
    url = base_url(settings, port)
    logger.info("web app listening on %s", url)
    if announce:
        await _announce(settings, url)
    try:
        yield url
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serving_web_beside(settings: Settings) -> AsyncIterator[str | None]:
    """`serving_web` with the address announced, beside the pipeline: a port in use is logged, not fatal.

    The pipeline's work does not depend on the dashboard, so `alcance run` goes on without it.
    """
    async with AsyncExitStack() as stack:
        url: str | None = None
        try:
            url = await stack.enter_async_context(serving_web(settings, announce=True))
        except OSError as exc:
            logger.error(
                "web app not started: %s:%d cannot be bound (%s); set ALCANCE_WEB__PORT or run --no-web",
                settings.web.host,
                settings.web.port,
                exc.strerror or type(exc).__name__,
            )
        yield url


async def _announce(settings: Settings, url: str) -> None:
    web_store = store_settings_for(settings.postgres, WEB)
    pool = await create_pool(web_store.model_copy(update={"pool_min_size": 1, "pool_max_size": 1}))
    try:
        _, _, secret = await identities.create_credential(
            pool,
            role="coordinator",
            name="login-link",
            kind="login_link",
            ttl_s=settings.web.login_link_ttl_s,
        )
    finally:
        await pool.close()
    minutes = round(settings.web.login_link_ttl_s / 60)
    print(f"dashboard: {url}/", flush=True)
    print(f"one-time login link (valid {minutes} min): {url}/login?token={secret}", flush=True)
