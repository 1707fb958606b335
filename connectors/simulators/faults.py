"""Switchable HTTP faults for simulators: 5xx bursts, 429 + Retry-After, slowness, truncation, duplicates.

`Faults` is an aiohttp middleware; add it to any simulator app with `web.Application(middlewares=[faults])`
and flip its fields at run time (tests switch faults on and off between polls). Its random choices
are seeded, so a failing run can be replayed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from aiohttp import web

logger = logging.getLogger(__name__)

# Earlier answers kept for stale replays (bounded: pages can be large).
_CACHED_ANSWERS = 16

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    """Fault probabilities per request (0 disables a fault) and what was injected so far.

    Attributes:
        error_rate: probability that a request starts a burst of 5xx answers.
        burst_length: how many consecutive requests a 5xx burst lasts.
        throttle_rate: probability of a 429 answer carrying `Retry-After: retry_after_s`.
        retry_after_s: value of the `Retry-After` header (fractions allowed, to keep tests fast).
        slow_rate: probability that a request is answered after `slow_s` seconds.
        slow_s: delay of slow answers (above the client's timeout, it is a timeout).
        truncate_rate: probability that a 200 JSON body is cut short (invalid JSON).
        duplicate_rate: probability that a request is answered with an earlier 200 answer to the same
            URL (a page served twice from a stale cache).
        paths: only requests whose path starts with one of these are affected (all if empty).
        seed: seed of the random choices.
        fail_query_containing: every request whose query string contains this text gets a 500 (a
            record the source keeps failing on, as opposed to an outage).
        injected: count of each fault injected.
    """

    # Marks instances as new-style aiohttp middlewares (what `@web.middleware` does to a function).
    __middleware_version__: ClassVar[int] = 1

    error_rate: float = 0.0
    burst_length: int = 3
    throttle_rate: float = 0.0
    retry_after_s: float = 1.0
    slow_rate: float = 0.0
    slow_s: float = 2.0
    truncate_rate: float = 0.0
    duplicate_rate: float = 0.0
    paths: tuple[str, ...] = ()
    seed: int = 0
    fail_query_containing: str | None = None
    injected: dict[str, int] = field(default_factory=dict)
    _burst_left: int = field(default=0, init=False, repr=False)
    _last_body: OrderedDict[str, tuple[bytes, dict[str, str]]] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def disable(self) -> None:
        """Turn every fault off (counts are kept)."""
        self.error_rate = self.throttle_rate = self.slow_rate = 0.0
        self.truncate_rate = self.duplicate_rate = 0.0
        self._burst_left = 0

    def outage(self, requests: int) -> None:
        """Answer the next `requests` requests with 5xx, whatever the rates."""
        self._burst_left = requests

    def _count(self, name: str) -> None:
        self.injected[name] = self.injected.get(name, 0) + 1

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer `request`, possibly with a fault instead of (or on top of) the handler's answer."""
        if self.paths and not request.path.startswith(self.paths):
            return await handler(request)
        if self.fail_query_containing and self.fail_query_containing in request.query_string:
            # One record the source keeps failing on (a corrupt row behind a lookup), not an outage.
            self._count("record 5xx")
            return web.json_response({"error": "simulated failure of one record"}, status=500)
        rng = self._rng
        if self._burst_left > 0 or rng.random() < self.error_rate:
            if self._burst_left == 0:
                self._burst_left = self.burst_length
            self._burst_left -= 1
            self._count("5xx")
            return web.json_response({"error": "simulated outage"}, status=rng.choice((500, 502, 503)))
        if rng.random() < self.throttle_rate:
            self._count("429")
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": f"{self.retry_after_s:g}"}
            )
        if rng.random() < self.slow_rate:
            self._count("slow")
            await asyncio.sleep(self.slow_s)
        if rng.random() < self.duplicate_rate and request.path_qs in self._last_body:
            self._count("duplicate")
            cached, cached_headers = self._last_body[request.path_qs]
            return web.Response(body=cached, headers=cached_headers, content_type="application/json")
        response = await handler(request)
        if not isinstance(response, web.Response) or response.status != 200 or response.body is None:
            return response
        if not isinstance(response.body, bytes):
            return response
        body: bytes = response.body
        extra = {k: v for k, v in response.headers.items() if k.lower().startswith("x-")}
        self._last_body[request.path_qs] = (body, extra)
        while len(self._last_body) > _CACHED_ANSWERS:
            self._last_body.popitem(last=False)
        if rng.random() < self.truncate_rate and len(body) > 2:
            self._count("truncated")
            return web.Response(
                body=body[: rng.randint(1, len(body) - 1)], headers=extra, content_type="application/json"
            )
        return response
