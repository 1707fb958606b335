"""PLGN's directory endpoint, simulated: every firm's full directory record, in pages with a cursor.

`GET /directory/firms?after=<n>&limit=<m>` answers `{"items": [...], "next": <url or null>}`; each item is
a firm as PLGN holds it (names, tax id, contact person included), so the directory sync, not PLGN, decides
what alcance may keep. Firms that PLGN deleted are no longer listed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from connectors.simulators.generator import World

MAX_PAGE = 200


def _digits(text: str, count: int) -> str:
    return str(int(hashlib.sha256(text.encode()).hexdigest(), 16))[:count]


def directory_from_world(world: World, base: str = "https://plgn.example") -> list[dict[str, Any]]:
    """The directory record of every firm of `world`, in a stable order."""
    records = []
    for firm in world.firms:
        slug = firm.org_id.lower()
        records.append(
            {
                "id": f"{base}/orgs/{firm.org_id}",
                "legalName": firm.name,
                "tradeName": firm.name.split(" ")[0],
                "country": firm.country,
                "sector": firm.isic_rev4,
                "hsChapters": firm.hs_chapters,
                "sizeBand": firm.size_band,
                "exporterStatus": firm.exporter_status,
                "website": f"https://{slug}.example",
                "taxId": firm.tax_id,
                "contact": {
                    "name": f"Contacto {firm.name}",
                    "email": f"contacto@{slug}.example",
                    "telephone": f"+{_digits(firm.org_id, 11)}",
                },
            }
        )
    return records


@dataclass
class PlgnDirectoryState:
    """The records the endpoint serves; tests change them while it is served."""

    records: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0


class PlgnDirectorySimulator:
    """The aiohttp application of the simulated directory endpoint (bearer token when `token` is set)."""

    def __init__(self, state: PlgnDirectoryState, token: str | None = None) -> None:
        self.state = state
        self.token = token

    def app(self) -> web.Application:
        """The aiohttp application."""
        application = web.Application()
        application.router.add_get("/directory/firms", self._firms)
        return application

    async def _firms(self, request: web.Request) -> web.Response:
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            raise web.HTTPUnauthorized(text='{"error": "unauthorized"}', content_type="application/json")
        self.state.requests += 1
        try:
            after = int(request.query.get("after", "0"))
            limit = max(1, min(int(request.query.get("limit", "50")), MAX_PAGE))
        except ValueError:
            return web.json_response({"error": "after and limit are integers"}, status=400)
        chosen = self.state.records[after : after + limit]
        following = after + len(chosen)
        more = following < len(self.state.records)
        next_url = str(request.url.with_query(after=str(following), limit=str(limit))) if more else None
        return web.json_response({"items": chosen, "next": next_url})
