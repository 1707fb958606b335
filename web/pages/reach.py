"""Overview tiles, reach (member states, art. 7 audiences against targets, gender, firms) and the funnel."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from processors.indicators import catalogue
from web.api.health import sources_health
from web.api.models import IndicatorQuery
from web.api.view_models import FunnelCell, YearQuery
from web.api.views import targets, training_funnel
from web.pages.data import by_dimension, cells, every_indicator, in_year, rate_of, value_of, view, years_in
from web.pages.filters import by_filter, chosen, chosen_year, dimension_filter, year_filter
from web.pages.i18n import Speaker
from web.pages.tables import WITHHELD, Chart, Column, Kind, Page, Rate, Table, shown

TILES = ("CVF-01", "CVF-02", "CVF-07", "CVF-17", "CVF-19", "CVF-20")
ART7_AUDIENCES = ("TPO_AUTHORITY", "BUSINESS_CHAMBER", "SECTOR_ASSOCIATION", "MSME")
FUNNEL_STAGES = ("enrolled_net", "net_closed", "started_closed", "completed_closed", "certified_closed")
FUNNEL_DIMENSIONS = ("country", "audience", "course")
FUNNEL_IDS = ("CVF-01", "CVF-05", "CVF-07", "CVF-08", "CVF-09")


async def training_years(request: web.Request) -> list[int]:
    """The years holding enrolments, newest first."""
    return years_in(await cells(request, "CVF-01"))


def _tile_value(cell: dict[str, Any] | None, say: Speaker) -> str:
    value = _display(cell)
    kind: Kind = "money" if cell and cell["unit"].startswith("usd") else "number"
    return shown(value, Column("value", "", kind), say)


async def overview(request: web.Request, say: Speaker) -> Page:
    """Tiles of the headline indicators for a year beside the year before; every indicator's total.

    One read of every indicator's year totals feeds the tiles and both tables.
    """
    everything = await every_indicator(request)
    years = years_in([cell for cell in everything if cell["indicator"] == "CVF-01"])
    year = chosen_year(request, years)
    page = Page("overview", say("overview"), filters=[year_filter(say, years, year)])
    this_year = {cell["indicator"]: cell for cell in in_year(everything, year)}
    last_year = {cell["indicator"]: cell for cell in in_year(everything, (year or 0) - 1)}
    rows = []
    for indicator in TILES:
        now, before = this_year.get(indicator), last_year.get(indicator)
        page.tiles.append(
            {
                "id": indicator,
                "name": say.indicator(indicator),
                "value": _tile_value(now, say),
                "before": _tile_value(before, say),
                "before_year": (year or 0) - 1,
            }
        )
        rows.append(
            {
                "indicator": f"{indicator} {say.indicator(indicator)}",
                "value": _display(now),
                "last_year": _display(before),
            }
        )
    columns = [
        Column("indicator", say("indicator")),
        Column("value", f"{say('value')} {year}", "number"),
        Column("last_year", say("last_year"), "number"),
    ]
    page.tables.append(Table("headline", say("overview"), columns, rows, TILES))
    every = [
        {
            "id": entry.id,
            "indicator": entry.names[say.lang],
            "value": _display(this_year.get(entry.id)),
            "unit": entry.unit,
        }
        for entry in catalogue.INDICATORS
    ]
    columns = [
        Column("id", "Id"),
        Column("indicator", say("indicator")),
        Column("value", f"{say('value')} {year}", "number"),
        Column("unit", say("unit"), "dimension", "unit"),
    ]
    page.tables.append(Table("all-indicators", f"{say('all_indicators')} ({year})", columns, every, ("*",)))
    health = await view(request, sources_health, None, depends=())
    if health is not None:  # the pipeline's health is for internal roles
        fresh = [
            {"source": s.source, "updated_at": s.updated_at, "seconds_behind": s.seconds_behind}
            for s in health.sources
        ]
        columns = [
            Column("source", say("source")),
            Column("updated_at", say("last_event"), "moment"),
            Column("seconds_behind", say("lag_s"), "number"),
        ]
        page.tables.append(Table("freshness", say("freshness"), columns, fresh, ("*",)))
    return page


def _display(cell: dict[str, Any] | None) -> Any:
    """A cell's value to show: a share with its parts, or the plain value."""
    if cell is not None and catalogue.get(cell["indicator"]).unit == "ratio":
        return rate_of(cell)
    return value_of(cell)


async def reach(request: web.Request, say: Speaker) -> Page:
    """Learners per member state, the art. 7 audiences against their targets, gender, firms, coverage."""
    years = await training_years(request)
    year = chosen_year(request, years)
    audience = chosen(request, "audience", ART7_AUDIENCES)
    page = Page(
        "reach",
        say("reach"),
        filters=[year_filter(say, years, year), dimension_filter(say, "audience", ART7_AUDIENCES, audience)],
    )
    by = ["country", "audience"] if audience else ["country"]
    learners = await cells(request, "CVF-02", by=by, audience=audience)
    country = Column("country", say.dimension("country"), "dimension", "country")
    page.tables.append(
        Table(
            "learners-by-country",
            f"{say.indicator('CVF-02')}, {say('by_country')} ({year})",
            [country, Column("learners", say("learners"), "count")],
            [
                {"country": c["dimensions"]["country"], "learners": value_of(c)}
                for c in sorted(in_year(learners, year), key=lambda c: c["dimensions"]["country"])
            ]
            if learners is not None
            else [],
            ("CVF-02",),
            Chart("country", "learners"),
            forbidden=learners is None,
        )
    )
    goals = await view(request, targets, YearQuery(year=year), ("CVF-16",))
    page.tables.append(
        Table(
            "audience-targets",
            f"{say.indicator('CVF-16')} ({year})",
            [
                Column("audience", say.dimension("audience"), "dimension", "audience"),
                Column("certified_learners", say("achieved"), "count"),
                Column("target", say("target"), "count"),
                Column("share_of_target", say("share_of_target"), "rate"),
                Column("pace", say("pace"), "percent"),
            ],
            [
                {
                    "audience": t.audience,
                    "certified_learners": t.certified_learners,
                    "target": t.target,
                    "share_of_target": Rate(t.share_of_target, t.certified_learners, t.target),
                    "pace": t.share_of_year_elapsed,
                }
                for t in (goals.targets if goals else [])
            ],
            ("CVF-16", "CVF-07"),
            Chart("audience", "certified_learners", marker_key="target"),
            forbidden=goals is None,
        )
    )
    page.tables.append(await _gender(request, say, year, country))
    page.tables.append(await _firms(request, say, year))
    return page


async def _gender(request: web.Request, say: Speaker, year: int | None, country: Column) -> Table:
    gender = await cells(request, "CVF-18", by=["country"])
    rows = [
        {
            "country": c["dimensions"]["country"],
            "female_share": rate_of(c),
            "parity": value_of(c) if c.get("suppressed") else c["parts"].get("gender_parity_index"),
            "female_certified_share": rate_of(c, "certified_female_learners", "certified_female_and_male"),
        }
        for c in in_year(gender, year)
    ]
    return Table(
        "gender",
        f"{say.indicator('CVF-18')} ({year})",
        [
            country,
            Column("female_share", say("female_share"), "rate"),
            Column("parity", say("parity"), "number"),
            Column("female_certified_share", say("female_certified_share"), "rate"),
        ],
        rows,
        ("CVF-18",),
        Chart("country", "female_share"),
        forbidden=gender is None,
    )


async def _firms(request: web.Request, say: Speaker, year: int | None) -> Table:
    firms = by_dimension(in_year(await cells(request, "CVF-19", by=["audience"]), year), "audience")
    total = next(iter(in_year(await cells(request, "CVF-19"), year)), None)
    coverage = next(iter(in_year(await cells(request, "CVF-17"), year)), None)
    rows: list[dict[str, Any]] = [
        {"measure": say.indicator("CVF-19"), "value": value_of(total)},
        {
            "measure": f"{say.indicator('CVF-19')}: {say.value_of('audience', 'MSME')}",
            "value": value_of(firms.get("MSME")),
        },
        {"measure": say("coverage"), "value": value_of(coverage)},
        {
            "measure": say("hhi"),
            "value": coverage["parts"].get("hhi")
            if coverage and not coverage.get("suppressed")
            else value_of(coverage),
        },
    ]
    return Table(
        "firms-coverage",
        f"{say.indicator('CVF-19')} · {say.indicator('CVF-17')} ({year})",
        [Column("measure", say("indicator")), Column("value", say("value"), "number")],
        rows,
        ("CVF-19", "CVF-17"),
    )


async def funnel(request: web.Request, say: Speaker) -> Page:
    """Net enrolled -> started -> completed -> certified on closed cohorts, in total or by one dimension."""
    years = await training_years(request)
    year = chosen_year(request, years)
    group = chosen(request, "by", FUNNEL_DIMENSIONS)
    page = Page(
        "funnel",
        say("funnel"),
        filters=[year_filter(say, years, year), by_filter(say, FUNNEL_DIMENSIONS, group)],
    )
    query = IndicatorQuery.model_validate(
        {"grain": "year", "by": group or None, "from": str(year), "to": str(year)}
    )
    found = await view(request, training_funnel, query, FUNNEL_IDS)
    if not group:
        cell = found.cells[0] if found and found.cells else None
        in_progress = cell.stages.get("in_progress") if cell else None
        rows = [
            {
                "stage": say(stage),
                "learners": None if cell is None or cell.suppressed else cell.stages.get(stage),
            }
            for stage in FUNNEL_STAGES
        ]
        page.tables.append(
            Table(
                "funnel-stages",
                f"{say('funnel')} ({year})",
                [Column("stage", say("stage")), Column("learners", say("learners"), "count")],
                rows if cell else [],
                FUNNEL_IDS,
                Chart("stage", "learners"),
                note=f"{say('in_progress')}: {shown(in_progress, Column('n', '', 'count'), say)}",
                forbidden=found is None,
            )
        )
    key = group or "total"
    rows = []
    for cell in found.cells if found else []:
        stages = cell.stages

        rows.append(
            {
                key: cell.dimensions.get(group, say("total")) if group else say("total"),
                "enrolled_net": stages.get("enrolled_net"),
                "completion_rate": _rate(cell, "completed_closed", "net_closed", "completion_rate"),
                "certification_rate": _rate(cell, "certified_closed", "net_closed", "certification_rate"),
                "dropout_rate": _rate(cell, "dropped_closed", "started_closed", "dropout_rate"),
                "in_progress": stages.get("in_progress"),
            }
        )
    first = Column(
        key, say.dimension(group) if group else say("total"), "dimension" if group else "text", group
    )
    page.tables.append(
        Table(
            "funnel-rates",
            f"{say('completion_rate')} · {say('certification_rate')} · {say('dropout_rate')} ({year})",
            [
                first,
                Column("enrolled_net", say("enrolled_net"), "count"),
                Column("completion_rate", say("completion_rate"), "rate"),
                Column("certification_rate", say("certification_rate"), "rate"),
                Column("dropout_rate", say("dropout_rate"), "rate"),
                Column("in_progress", say("in_progress"), "count"),
            ],
            rows,
            FUNNEL_IDS,
            Chart(key, "certification_rate") if group else None,
            forbidden=found is None,
        )
    )
    return page


def _rate(cell: FunnelCell, top: str, bottom: str, name: str) -> Any:
    """A funnel rate with the stage counts it divides."""
    if cell.suppressed:
        return WITHHELD
    return Rate(cell.rates.get(name), cell.stages.get(top), cell.stages.get(bottom))
