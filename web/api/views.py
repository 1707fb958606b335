"""`/api/v1` views composed of several indicators: training funnel, offerings, targets, activities, portfolio.

The funnel follows the indicators' publication rules for external roles; offerings, targets,
activities and the portfolio are internal tables (course runs and single activities are too small to
publish), so external roles get 403 for them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from processors import read, read_views
from web.api.base import PREFIX, Endpoint
from web.api.indicators import check_dimensions, check_publication, select
from web.api.models import FreshQuery, IndicatorQuery, plain_number
from web.api.view_models import (
    Activities,
    ActivityDetail,
    ActivityRow,
    CostLine,
    FunnelCell,
    Offerings,
    OfferingsQuery,
    Portfolio,
    Targets,
    TrainingFunnel,
    YearQuery,
)
from web.auth import identity_of, require_internal
from web.problems import ProblemError
from web.state import POOL, SETTINGS


def _in_year(cell: dict[str, Any], year: int | None) -> bool:
    return year is None or int(cell["period"]["start"][:4]) == year


async def training_funnel(request: web.Request, query: IndicatorQuery) -> TrainingFunnel:
    """Net enrolled -> started -> completed -> certified with the rates, on closed cohorts."""
    identity = identity_of(request)
    check_publication(identity, query)
    by = check_dimensions(read_views.FUNNEL_DIMENSIONS, "the training funnel", query)
    cells = await read_views.read_training_funnel(
        request.app[POOL],
        period=query.grain,
        by=by,
        audience=identity.audience,
        settings=request.app[SETTINGS],
        fresh=query.fresh,
    )
    return TrainingFunnel(
        grain=query.grain,
        by=by,
        audience=identity.audience,
        as_of=cells.as_of,
        changes_pending=cells.changes_pending,
        cells=[FunnelCell.model_validate(plain_number(cell)) for cell in select(cells, query)],
    )


async def offerings(request: web.Request, query: OfferingsQuery) -> Offerings:
    """Offerings per year with their cohort indicators; `status` picks closed or in-progress cohorts."""
    require_internal(request)
    cells = await read_views.read_offerings(
        request.app[POOL], audience="internal", settings=request.app[SETTINGS], fresh=query.fresh
    )
    chosen = [
        plain_number(cell)
        for cell in cells
        if _in_year(cell, query.year) and (query.status is None or cell["status"] == query.status)
    ]
    return Offerings.model_validate(
        {"as_of": cells.as_of, "changes_pending": cells.changes_pending, "offerings": chosen}
    )


async def targets(request: web.Request, query: YearQuery) -> Targets:
    """CVF-16 targets of the art. 7 audiences against the certified learners so far, with the pace."""
    require_internal(request)
    rows = await read_views.read_reach_targets(
        request.app[POOL], settings=request.app[SETTINGS], fresh=query.fresh
    )
    chosen = [plain_number(row) for row in rows if query.year is None or row["year"] == query.year]
    return Targets.model_validate(
        {"as_of": rows.as_of, "changes_pending": rows.changes_pending, "targets": chosen}
    )


async def activities(request: web.Request, query: YearQuery) -> Activities:
    """Every activity per year (cumulative to the year's end): cost, firms, business, ROI, BCR."""
    require_internal(request)
    cells = await read_views.read_activities(
        request.app[POOL], settings=request.app[SETTINGS], fresh=query.fresh
    )
    chosen = [plain_number(cell) for cell in cells if _in_year(cell, query.year)]
    return Activities.model_validate(
        {"as_of": cells.as_of, "changes_pending": cells.changes_pending, "activities": chosen}
    )


async def activity(request: web.Request, query: FreshQuery) -> ActivityDetail:
    """One activity: its yearly rows and its cost by category and payer."""
    require_internal(request)
    name = request.match_info["activity_id"]
    settings = request.app[SETTINGS]
    fresh = query.fresh
    cells = await read_views.read_activities(request.app[POOL], settings=settings, fresh=fresh)
    rows = [plain_number(cell) for cell in cells if cell["dimensions"]["activity"] == name]
    if not rows:
        raise ProblemError(404, "Not Found", f"no activity {name!r}; {PREFIX}/activities lists them")
    costs = await read.read_indicators(
        request.app[POOL],
        indicator="ACT-01",
        period="year",
        by=["activity", "category", "payer"],
        settings=settings,
        fresh=fresh,
    )
    lines = [
        CostLine.model_validate(
            {"period": row["period"], **row["dimensions"], "cost_usd": plain_number(row["value"])}
        )
        for row in costs
        if row["dimensions"]["activity"] == name
    ]
    years = [ActivityRow.model_validate(row) for row in rows]
    as_of = min(cells.as_of, costs.as_of)
    pending = cells.changes_pending or costs.changes_pending
    return ActivityDetail(activity=name, as_of=as_of, changes_pending=pending, years=years, costs=lines)


async def portfolio(request: web.Request, query: YearQuery) -> Portfolio:
    """The art. 1 annual review: a year's activities ranked by benefit-cost ratio, with totals."""
    require_internal(request)
    review = await read_views.read_portfolio(
        request.app[POOL], year=query.year, settings=request.app[SETTINGS], fresh=query.fresh
    )
    return Portfolio.model_validate(plain_number(review))


_ACTIVITY = {"activity_id": "activity id, e.g. round-1"}
ENDPOINTS = [
    Endpoint(
        f"{PREFIX}/funnels/training",
        "The training funnel on closed cohorts (external roles: yearly published tables)",
        "views",
        training_funnel,
        query=IndicatorQuery,
        response=TrainingFunnel,
    ),
    Endpoint(
        f"{PREFIX}/offerings",
        "Offerings and their cohorts",
        "views",
        offerings,
        query=OfferingsQuery,
        response=Offerings,
    ),
    Endpoint(
        f"{PREFIX}/targets",
        "Reach targets and pace (CVF-16)",
        "views",
        targets,
        query=YearQuery,
        response=Targets,
    ),
    Endpoint(
        f"{PREFIX}/activities",
        "Promotion activities",
        "activities",
        activities,
        query=YearQuery,
        response=Activities,
    ),
    Endpoint(
        f"{PREFIX}/activities/{{activity_id}}",
        "One promotion activity",
        "activities",
        activity,
        query=FreshQuery,
        response=ActivityDetail,
        path_params=_ACTIVITY,
    ),
    Endpoint(
        f"{PREFIX}/portfolio",
        "The annual portfolio review ranked by benefit-cost ratio (art. 1)",
        "activities",
        portfolio,
        query=YearQuery,
        response=Portfolio,
    ),
]
