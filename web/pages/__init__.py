"""Server-rendered pages; `add_routes` registers them.

The overview lists every catalogue indicator with its value for the latest year in the store, read
through the same read model and suppression as the API. A page finds the caller with
`web.auth.identity_of(request)` (its `audience` decides suppression), the store's pool at
`request.app[web.state.POOL]`, the settings at `request.app[web.state.SETTINGS]`; it reads through
`processors.read` and `processors.read_views` as the API does, and follows changes through the
`/api/v1/stream` notices.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from typing import Any

from aiohttp import web

from processors import read
from processors.indicators import catalogue
from web.auth import identity_of
from web.state import POOL, SETTINGS

LANGUAGES = ("es", "pt", "en")
_TITLES = {"es": "Resumen", "pt": "Resumo", "en": "Overview"}
_NO_DATA = {"es": "sin datos suficientes", "pt": "dados insuficientes", "en": "not enough data"}
_WITHHELD = {"es": "<5 (oculto)", "pt": "<5 (oculto)", "en": "<5 (withheld)"}


def language(request: web.Request) -> str:
    """`?lang=`, else the first of `Accept-Language` alcance speaks, else Spanish."""
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    for item in request.headers.get("Accept-Language", "").split(","):
        code = item.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "es"


def _shown(cell: dict[str, Any] | None, lang: str) -> str:
    if cell is None or (cell["value"] is None and not cell.get("suppressed")):
        return _NO_DATA[lang]
    if cell.get("suppressed"):
        return _WITHHELD[lang]
    value = cell["value"]
    if isinstance(value, Decimal):
        value = value.quantize(Decimal(1)) if value == value.to_integral_value() else round(value, 3)
    return f"{value} {cell['unit']}"


async def overview(request: web.Request) -> web.StreamResponse:
    """Every indicator's value in the latest year the store holds."""
    lang = language(request)
    identity = identity_of(request)
    rows = await read.read_indicators(
        request.app[POOL],
        indicator=None,
        period="year",
        by=[],
        audience=identity.audience,
        settings=request.app[SETTINGS],
        as_of=datetime.now(UTC),
    )
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = latest.get(row["indicator"])
        if held is None or row["period"]["start"] > held["period"]["start"]:
            latest[row["indicator"]] = row
    lines = []
    for entry in catalogue.INDICATORS:
        cell = latest.get(entry.id)
        year = cell["period"]["start"][:4] if cell else ""
        lines.append(
            f'<tr><th scope="row">{escape(entry.id)}</th><td>{escape(entry.names[lang])}</td>'
            f'<td data-indicator="{escape(entry.id)}">{escape(_shown(cell, lang))}</td><td>{year}</td></tr>'
        )
    heads = {
        "es": ("Id", "Indicador", "Valor", "Año"),
        "pt": ("Id", "Indicador", "Valor", "Ano"),
        "en": ("Id", "Indicator", "Value", "Year"),
    }
    head = "".join(f'<th scope="col">{escape(text)}</th>' for text in heads[lang])
    body = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>alcance: {_TITLES[lang]}</title></head><body><main><h1>{_TITLES[lang]}</h1>"
        f"<table><caption>{_TITLES[lang]}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(lines)}</tbody></table></main></body></html>"
    )
    return web.Response(text=body, content_type="text/html")


def add_routes(app: web.Application) -> None:
    """Register the pages."""
    app.router.add_get("/", overview, allow_head=False)
