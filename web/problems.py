"""Errors as `application/problem+json` (RFC 9457), and the middleware that makes every error one."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

logger = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Problem(BaseModel):
    """An error answer (RFC 9457): what went wrong, and what is valid where that helps."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


class ProblemError(Exception):
    """Raised by a handler to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(title)
        self.problem = Problem(title=title, status=status, detail=detail, **extra)
        self.headers: dict[str, str] = {}


def problem_response(status: int, title: str, detail: str | None = None, **extra: Any) -> web.Response:
    """A problem document as a response (for middlewares, which answer rather than raise)."""
    body = Problem(title=title, status=status, detail=detail, **extra).model_dump_json(exclude_none=True)
    return web.Response(status=status, text=body, content_type=PROBLEM_TYPE)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every HTTP error and unexpected exception into a problem document.

    An unexpected exception is logged once with its traceback, and answered with 500 and no detail,
    so nothing internal (SQL, settings) reaches the caller.
    """
    try:
        return await handler(request)
    except ProblemError as exc:
        body = exc.problem.model_dump_json(exclude_none=True)
        return web.Response(
            status=exc.problem.status, text=body, content_type=PROBLEM_TYPE, headers=exc.headers
        )
    except web.HTTPException as exc:
        if exc.status_code < 400:
            raise
        extra: dict[str, Any] = {}
        if isinstance(exc, web.HTTPMethodNotAllowed):
            extra["allowed"] = sorted(exc.allowed_methods)
        response = problem_response(exc.status_code, exc.reason, **extra)
        for name in ("Allow", "WWW-Authenticate"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except Exception:
        logger.exception("unexpected error answering %s %s", request.method, request.path)
        return problem_response(500, "Internal Server Error", "the error is in the server's log")
