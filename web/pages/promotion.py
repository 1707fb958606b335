"""Promotion activities with cost, business and ROI; one activity; the annual portfolio; data health."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from web.api.health import sources_health
from web.api.models import FreshQuery
from web.api.view_models import ActivityRow, YearQuery
from web.api.views import activities, activity, portfolio
from web.pages.data import cells, rate_of, value_of, view
from web.pages.filters import chosen_year, year_filter
from web.pages.i18n import Speaker
from web.pages.tables import WITHHELD, Chart, Column, Page, Table
from web.problems import ProblemError

ACTIVITY_IDS = ("ACT-01", "ACT-02", "ACT-05", "ACT-07", "ACT-08")


def _activity_columns(say: Speaker, *, linked: bool = True) -> list[Column]:
    return [
        Column("activity", say("activity"), link="/activities/{}" if linked else ""),
        Column("year", say("year")),
        Column("cost_usd", say("cost_usd"), "money"),
        Column("firms_served", say("firms_served"), "count"),
        Column("attributable_usd", say("attributable_usd"), "money"),
        Column("roi_percent", say("roi_percent"), "number"),
        Column("benefit_cost_ratio", say("benefit_cost_ratio"), "number"),
        Column("status", say("status_final"), "status"),
        Column("last_session", say("last_session"), "month"),
    ]


async def last_sessions(request: web.Request) -> dict[str, date]:
    """The month of each activity's last meeting (PLGN-07 by month): ROI turns final 12 months after it."""
    found: dict[str, date] = {}
    for cell in await cells(request, "PLGN-07", by=["activity"], grain="month") or []:
        month = date.fromisoformat(str(cell["period"]["start"]))
        name = cell["dimensions"]["activity"]
        found[name] = max(month, found.get(name, month))
    return found


def _activity_row(row: ActivityRow, sessions: dict[str, date]) -> dict[str, Any]:
    def value(number: float | None) -> Any:
        return WITHHELD if row.suppressed else number

    return {
        "activity": row.dimensions["activity"],
        "year": row.period.start.year,
        "cost_usd": value(row.cost_usd),
        "firms_served": value(row.firms_served),
        "attributable_usd": value(row.attributable_usd),
        "roi_percent": value(row.roi_percent),
        "benefit_cost_ratio": value(row.benefit_cost_ratio),
        "status": "provisional" if row.provisional else "final",
        "last_session": sessions.get(row.dimensions["activity"]),
    }


async def activities_page(request: web.Request, say: Speaker) -> Page:
    """Every activity of a year (cumulative to the year's end) with cost, firms, business, ROI, BCR."""
    everything = await view(request, activities, YearQuery(), ACTIVITY_IDS)
    sessions = await last_sessions(request) if everything else {}
    years = sorted({a.period.start.year for a in everything.activities}, reverse=True) if everything else []
    year = chosen_year(request, years)
    page = Page("activities", say("activities"), filters=[year_filter(say, years, year)])
    rows = [
        _activity_row(a, sessions)
        for a in (everything.activities if everything else [])
        if a.period.start.year == year
    ]
    page.tables.append(
        Table(
            "activities",
            f"{say('activities')} ({year})",
            _activity_columns(say),
            sorted(rows, key=lambda r: r["activity"]),
            ACTIVITY_IDS,
            Chart("activity", "cost_usd"),
            forbidden=everything is None,
        )
    )
    return page


async def activity_page(request: web.Request, say: Speaker) -> Page:
    """One activity: its years, its cost by category and payer, meetings and business by horizon."""
    name = request.match_info["activity_id"]
    detail = await view(request, activity, FreshQuery(), ACTIVITY_IDS)
    sessions = await last_sessions(request) if detail else {}
    page = Page("activities", f"{say('activity')}: {name}")
    page.tables.append(
        Table(
            "activity-years",
            say("years"),
            _activity_columns(say, linked=False),
            [_activity_row(row, sessions) for row in detail.years] if detail else [],
            ACTIVITY_IDS,
            Chart("year", "attributable_usd"),
            forbidden=detail is None,
        )
    )
    costs = [
        {"period": c.period.start.year, "category": c.category, "payer": c.payer, "cost_usd": c.cost_usd}
        for c in (detail.costs if detail else [])
    ]
    page.tables.append(
        Table(
            "activity-costs",
            say("costs"),
            [
                Column("category", say("category"), "dimension", "category"),
                Column("payer", say("payer"), "dimension", "payer"),
                Column("period", say("year")),
                Column("cost_usd", say("cost_usd"), "money"),
            ],
            costs,
            ("ACT-01",),
            Chart("category", "cost_usd"),
            forbidden=detail is None,
        )
    )
    business: list[dict[str, Any]] = []
    for indicator, rate in (("PLGN-07", True), ("PLGN-09", False), ("PLGN-10", False), ("PLGN-11", True)):
        found = await cells(request, indicator, by=["activity"], activity=name)
        for cell in found or []:
            business.append(
                {
                    "indicator": f"{indicator} {say.indicator(indicator)}",
                    "year": int(str(cell["period"]["start"])[:4]),
                    "value": rate_of(cell) if rate else value_of(cell),
                }
            )
    page.tables.append(
        Table(
            "activity-business",
            say("participation"),
            [
                Column("indicator", say("indicator")),
                Column("year", say("year")),
                Column("value", say("value"), "number"),
            ],
            business,
            ("PLGN-07", "PLGN-09", "PLGN-10", "PLGN-11"),
            forbidden=detail is None,
        )
    )
    return page


async def portfolio_page(request: web.Request, say: Speaker) -> Page:
    """The art. 1 annual review: a year's activities ranked by benefit-cost ratio, with totals."""
    text = request.query.get("year")
    if text is not None and not text.isdigit():
        raise ProblemError(400, "Bad Request", "year: a year such as 2025")
    review = await view(
        request, portfolio, YearQuery(year=int(text) if text else None), (*ACTIVITY_IDS, "ACT-13")
    )
    sessions = await last_sessions(request) if review else {}
    years = sorted(review.years, reverse=True) if review else []
    page = Page(
        "portfolio", say("portfolio"), filters=[year_filter(say, years, review.year if review else None)]
    )
    ranked = [
        {"rank": index + 1, **_activity_row(a, sessions)}
        for index, a in enumerate(review.activities if review else [])
    ]
    columns = [Column("rank", say("rank"), "count"), *_activity_columns(say)]
    page.tables.append(
        Table(
            "portfolio",
            f"{say('portfolio')} ({review.year if review else ''})",
            columns,
            ranked,
            (*ACTIVITY_IDS, "ACT-13"),
            Chart("activity", "benefit_cost_ratio"),
            forbidden=review is None,
        )
    )
    totals = review.totals if review else {}
    page.tables.append(
        Table(
            "portfolio-totals",
            say("totals"),
            [Column("measure", say("indicator")), Column("value", say("value"), "number")],
            [
                {"measure": say("cost_usd"), "value": totals.get("cost_usd")},
                {"measure": say("attributable_usd"), "value": totals.get("attributable_usd")},
                {"measure": say("portfolio_roi"), "value": review.portfolio_roi_percent if review else None},
            ],
            ("ACT-13",),
            forbidden=review is None,
        )
    )
    return page


async def health_page(request: web.Request, say: Speaker) -> Page:
    """Per source: last update, lag, dead letters and failures; the processors' offsets."""
    health = await view(request, sources_health, None, depends=())
    page = Page("health", say("health"))
    page.tables.append(
        Table(
            "sources",
            say("freshness"),
            [
                Column("source", say("source")),
                Column("kind", say("kind")),
                Column("health", say("status"), "dimension", "health"),
                Column("updated_at", say("last_event"), "moment"),
                Column("seconds_behind", say("lag_s"), "number"),
                Column("events_published", say("events_published"), "count"),
                Column("dead_lettered", say("dead_letters"), "count"),
                Column("failing_for_s", say("failing_for_s"), "number"),
                Column("last_error", say("last_error")),
            ],
            [s.model_dump() for s in health.sources] if health else [],
            forbidden=health is None,
        )
    )
    page.tables.append(
        Table(
            "processors",
            say("processors"),
            [
                Column("consumer_group", say("consumer_group")),
                Column("topic", say("topic")),
                Column("partition", say("partition"), "count"),
                Column("next_offset", say("events_published"), "count"),
                Column("behind", say("behind"), "count"),
                Column("updated_at", say("last_event"), "moment"),
            ],
            [p.model_dump() for p in health.processors] if health else [],
            forbidden=health is None,
        )
    )
    return page
