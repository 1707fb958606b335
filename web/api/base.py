"""What every query API resource is: its route table entry, query parsing and JSON answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from web.problems import ProblemError

PREFIX = "/api/v1"
JsonHandler = Callable[[web.Request, Any], Awaitable[BaseModel]]


@dataclass(frozen=True)
class Endpoint:
    """One GET resource: its path, query model, response model and handler.

    A JSON handler gets the parsed query (or None) and returns its response model; a raw handler
    (`stream`) answers itself and is described by `media_type`.
    """

    path: str
    summary: str
    tag: str
    handler: JsonHandler | None = None
    raw_handler: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    public: bool = False


def parse_query(model: type[BaseModel], request: web.Request) -> BaseModel:
    """The query string as `model`; a 400 problem naming each wrong parameter and what is valid."""
    raw: dict[str, str] = {}
    for name in request.query:
        values = request.query.getall(name)
        if len(values) > 1:
            raise ProblemError(400, "Bad Request", f"parameter {name!r} is given {len(values)} times")
        raw[name] = values[0]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # Only the place and the rule: the value itself is not echoed.
        errors = [
            {"parameter": ".".join(str(p) for p in error["loc"]) or "query", "problem": error["msg"]}
            for error in exc.errors(include_input=False, include_url=False)
        ]
        detail = "; ".join(f"{e['parameter']}: {e['problem']}" for e in errors)
        raise ProblemError(400, "Bad Request", detail, errors=errors) from None


def _wrap(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    handler = endpoint.handler
    assert handler is not None  # noqa: S101 - the route table pairs each JSON endpoint with a handler

    async def handle(request: web.Request) -> web.StreamResponse:
        query = parse_query(endpoint.query, request) if endpoint.query is not None else None
        result = await handler(request, query)
        # Answers depend on the caller's role: no shared cache may keep one for another caller.
        return web.Response(
            text=result.model_dump_json(by_alias=True),
            content_type="application/json",
            headers={"Cache-Control": "private, no-store", "Vary": "Authorization, Cookie"},
        )

    return handle


def json_handler(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler of an endpoint: the raw one, or its JSON handler wrapped."""
    if endpoint.raw_handler is not None:
        return endpoint.raw_handler
    return _wrap(endpoint)
