"""A `Page` as HTML (one Jinja2 template for every view, SVG bar charts) or one of its tables as CSV."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from web.pages.data import stamp_of
from web.pages.i18n import LANGUAGES, Speaker, language
from web.pages.tables import WITHHELD, Column, Page, Rate, Table, magnitude, shown, sort_rows, to_csv
from web.problems import ProblemError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PageBuilder = Callable[[web.Request, Speaker], Awaitable[Page]]
# The sections of the navigation, in order, with their paths.
NAV = (
    ("overview", "/"),
    ("reach", "/reach"),
    ("funnel", "/funnel"),
    ("cohorts", "/cohorts"),
    ("courses", "/courses"),
    ("targets", "/targets"),
    ("pathways", "/pathways"),
    ("activities", "/activities"),
    ("portfolio", "/portfolio"),
    ("health", "/health"),
    ("directory", "/directory"),
)
_LANGUAGE_NAMES = {"es": "Español", "pt": "Português", "en": "English"}
_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True
)
_BAR_HEIGHT, _LABEL_WIDTH, _BAR_WIDTH = 22, 200, 360


def page_handler(build: PageBuilder) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler of a page: HTML, or `?csv=<table id>` as CSV."""

    async def handle(request: web.Request) -> web.StreamResponse:
        say = Speaker(language(request))
        page = await build(request, say)
        _apply_sort(request, page)
        wanted = request.query.get("csv")
        if wanted is not None:
            table = next((t for t in page.tables if t.id == wanted and not t.forbidden), None)
            if table is None:
                valid = ", ".join(t.id for t in page.tables if not t.forbidden) or "none"
                raise ProblemError(
                    404, "Not Found", f"csv: this page has no table {wanted!r}; valid: {valid}"
                )
            return web.Response(
                text=to_csv(table),
                content_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{table.id}.csv"'},
            )
        return web.Response(text=render(request, page, say), content_type="text/html")

    return handle


def _apply_sort(request: web.Request, page: Page) -> None:
    """`sort=<table id>.<column>` (and `order=desc`) orders one table; a 400 names what can be sorted."""
    wanted = request.query.get("sort")
    if not wanted:
        return
    table_id, _, key = wanted.partition(".")
    table = next((t for t in page.tables if t.id == table_id), None)
    if table is None or key not in {c.key for c in table.columns}:
        valid = ", ".join(f"{t.id}.<{'|'.join(c.key for c in t.columns)}>" for t in page.tables)
        raise ProblemError(400, "Bad Request", f"sort: {wanted!r} names no column here; valid: {valid}")
    sort_rows(table, key, descending=request.query.get("order") == "desc")


def render(request: web.Request, page: Page, say: Speaker) -> str:
    """The page's HTML in the speaker's language.

    Its stamp says the instant its values are exact at (the oldest of its reads', `data.stamp_of`) and
    whether data received since may be missing; a page that read no indicator says when it was made.
    """
    now = datetime.now(UTC)
    stamp = stamp_of(request)
    shown_at = now if stamp is None else stamp.as_of
    query = {k: v for k, v in request.query.items() if k not in ("lang", "csv")}

    def href(**changes: str) -> str:
        return str(request.rel_url.with_query({**query, **changes}))

    def sort_href(table_id: str, key: str, descending: bool) -> str:
        return href(lang=say.lang, sort=f"{table_id}.{key}", order="desc" if descending else "asc")

    return _ENV.get_template("page.html").render(
        page=page,
        say=say,
        lang=say.lang,
        nav=NAV,
        languages=[(code, _LANGUAGE_NAMES[code], href(lang=code)) for code in LANGUAGES],
        stamp_label=say("updated") + ":" if stamp is None else say("values_as_of"),
        stamp_iso=shown_at.isoformat(),
        stamp_text=say.moment(shown_at),
        stamp_pending=stamp is not None and stamp.changes_pending,
        tile_ids=" ".join(tile["id"] for tile in page.tiles),
        cells=lambda row, column: _cell(row, column, say),
        chart=lambda table: bar_chart(table, say),
        csv_href=lambda table_id: href(lang=say.lang, csv=table_id),
        sort_href=lambda table_id, key, desc: href(
            lang=say.lang, sort=f"{table_id}.{key}", order="desc" if desc else "asc"
        ),
        sorted_by=(request.query.get("sort", ""), request.query.get("order", "asc")),
    )


def render_notice(template: str, say: Speaker) -> str:
    """A page outside the signed-in views (no navigation, no live updates), in the speaker's language."""
    return _ENV.get_template(template).render(say=say, lang=say.lang)


def _cell(row: dict[str, Any], column: Column, say: Speaker) -> dict[str, str]:
    value = row.get(column.key)
    css: str = column.kind
    if value is WITHHELD:
        css += " withheld"
    elif value is None or (isinstance(value, Rate) and value.value is None):
        css += " nodata"
    href = column.link.replace("{}", quote(str(value))) + f"?lang={say.lang}" if column.link else ""
    return {"text": shown(value, column, say), "css": css, "href": href}


def bar_chart(table: Table, say: Speaker) -> Markup:
    """Horizontal SVG bars of the table's chart column, labelled in text; the table is its accessible twin."""
    chart = table.chart
    assert chart is not None  # noqa: S101 - called only for tables with a chart
    columns = {column.key: column for column in table.columns}
    label_column, value_column = columns[chart.label_key], columns[chart.value_key]
    lengths = [magnitude(row.get(chart.value_key)) for row in table.rows]
    markers = [magnitude(row.get(chart.marker_key)) if chart.marker_key else None for row in table.rows]
    top = max([abs(v) for v in [*lengths, *markers] if v is not None] or [1.0]) or 1.0
    height = _BAR_HEIGHT * len(table.rows) + 8
    width = _LABEL_WIDTH + _BAR_WIDTH + 170
    title = f"{say('chart_of')} {table.caption}"
    # Drawn at its own size in a region that scrolls on a narrow screen, so its labels stay legible.
    parts = [
        f'<div class="scroll" tabindex="0" role="region" aria-label="{escape(title)}">'
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}">'
    ]
    for index, row in enumerate(table.rows):
        y = index * _BAR_HEIGHT + 4
        label = shown(row.get(chart.label_key), label_column, say)
        label = label if len(label) <= 27 else label[:26] + "…"
        parts.append(f'<text x="{_LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        length = lengths[index]
        bar = 0 if length is None else max(abs(length) / top * _BAR_WIDTH, 1)
        if length is not None:
            parts.append(
                f'<rect x="{_LABEL_WIDTH}" y="{y + 3}" width="{bar:.1f}" height="{_BAR_HEIGHT - 8}" '
                f'class="bar{" negative" if length < 0 else ""}"/>'
            )
        marker = markers[index]
        if marker is not None:
            x = _LABEL_WIDTH + abs(marker) / top * _BAR_WIDTH
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + _BAR_HEIGHT}" class="marker"/>')
        text = shown(row.get(chart.value_key), value_column, say)
        parts.append(f'<text x="{_LABEL_WIDTH + bar + 6:.1f}" y="{y + 15}">{escape(text)}</text>')
    parts.append("</svg></div>")
    return Markup("".join(parts))  # noqa: S704 - every text inserted above is escaped
