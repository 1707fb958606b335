"""Server-rendered pages in Spanish, Portuguese and English; `add_routes` registers them.

Every page reads through the query API's own functions (`web.pages.data`), so it shows what the API
answers the same person; each table exports to CSV at the page's address plus `csv=<table id>`.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from web.pages import cohorts, promotion, reach
from web.pages.cache import READS, ReadCache, follow_changes
from web.pages.render import page_handler

STATIC = Path(__file__).resolve().parent.parent / "static"
PAGES = {
    "/": reach.overview,
    "/reach": reach.reach,
    "/funnel": reach.funnel,
    "/cohorts": cohorts.cohorts,
    "/courses": cohorts.courses,
    "/targets": cohorts.targets_page,
    "/pathways": cohorts.pathways,
    "/activities": promotion.activities_page,
    "/activities/{activity_id}": promotion.activity_page,
    "/portfolio": promotion.portfolio_page,
    "/health": promotion.health_page,
}


def add_routes(app: web.Application) -> None:
    """Register the pages and their static assets (styles and the live-update script)."""
    app[READS] = ReadCache()
    app.cleanup_ctx.append(follow_changes)
    for path, build in PAGES.items():
        app.router.add_get(path, page_handler(build), allow_head=False)
    app.router.add_static("/static/", STATIC, append_version=False)
