"""The query API under `/api/v1`: one route table, from which the routes and the OpenAPI document come."""

from __future__ import annotations

from aiohttp import web

from web.api import catalogue, health, indicators, stream, views
from web.api.base import Endpoint, json_handler


def endpoints() -> list[Endpoint]:
    """Every resource of the API, in the order the document lists them."""
    return [
        *catalogue.ENDPOINTS,
        *indicators.ENDPOINTS,
        *views.ENDPOINTS,
        *health.ENDPOINTS,
        *stream.ENDPOINTS,
    ]


def add_routes(app: web.Application) -> None:
    """Register every API route."""
    for endpoint in endpoints():
        app.router.add_get(endpoint.path, json_handler(endpoint), allow_head=False)
