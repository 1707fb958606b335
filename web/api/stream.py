"""`/api/v1/stream`: server-sent invalidation notices (`event: indicator`, `id: <version>`)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp_sse import sse_response

from web.api.base import PREFIX, Endpoint
from web.state import HUB

STREAMS: web.AppKey[set[web.StreamResponse]] = web.AppKey("streams")


async def stream(request: web.Request) -> web.StreamResponse:
    """Notices until the client leaves or the server stops; `resync` after a reconnection.

    A reconnecting client (`Last-Event-ID`) may have missed notices while away, so it is told to
    re-read everything once.
    """
    hub = request.app[HUB]
    streams = request.app[STREAMS]
    queue = hub.subscribe()
    response: web.StreamResponse | None = None
    try:
        async with sse_response(request, ping_interval=15) as sse:
            response = sse
            streams.add(sse)
            if sse.last_event_id is not None:
                await sse.send("{}", event="resync")
            while sse.is_connected():
                # Woken every second to see whether the server stops streaming (shutdown).
                try:
                    notice = await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                await sse.send(
                    notice.data(), event=notice.event, id=str(notice.version) if notice.version else None
                )
        return sse
    except ConnectionResetError:
        # The client left (a closed tab) while a notice was being sent.
        return response or web.Response(status=499)
    finally:
        hub.unsubscribe(queue)
        if response is not None:
            streams.discard(response)


async def stop_streams(app: web.Application) -> None:
    """On shutdown, end every open stream so the server does not wait for clients to leave."""
    streams: set[web.StreamResponse] = app[STREAMS]
    for response in [*streams]:
        stop = getattr(response, "stop_streaming", None)
        if stop is not None:
            stop()


ENDPOINTS = [
    Endpoint(
        f"{PREFIX}/stream",
        "Server-sent events: which indicator and grain changed (never values); resync to re-read all",
        "stream",
        raw_handler=stream,
        media_type="text/event-stream",
    ),
]
