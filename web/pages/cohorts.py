"""Cohorts (offerings and their status), course comparison, targets and pace, pathways."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from web.api.view_models import YearQuery
from web.api.views import targets
from web.pages.data import by_dimension, cells, cells_of, in_year, rate_of, value_of, view
from web.pages.filters import chosen, chosen_year, year_filter
from web.pages.i18n import Speaker
from web.pages.reach import training_years
from web.pages.tables import Chart, Column, Filter, Option, Page, Rate, Table

COHORT_IDS = ("CVF-01", "CVF-05", "CVF-06", "CVF-07", "CVF-10", "CVF-11", "CVF-12")
STATUSES = ("closed", "in_progress")


def _cohort_columns(say: Speaker, first: Column) -> list[Column]:
    return [
        first,
        Column("enrolled_net", say("enrolled_net"), "count"),
        Column("completion_rate", say("completion_rate"), "rate"),
        Column("pass_rate", say("pass_rate"), "rate"),
        Column("certification_rate", say("certification_rate"), "rate"),
        Column("median_days", say("median_days"), "number"),
        Column("median_hours", say("median_hours"), "number"),
        Column("score_gain", say("score_gain"), "number"),
    ]


async def _cohort_rows(
    request: web.Request, dimension: str, year: int | None
) -> dict[str, dict[str, Any]] | None:
    """Per value of `dimension`: the cohort indicators of `year`, rates with their parts."""
    read = await cells_of(request, COHORT_IDS, by=[dimension])  # one snapshot, one enrolment join
    if read is None:
        return None
    tables = {indicator: by_dimension(in_year(found, year), dimension) for indicator, found in read.items()}
    names = sorted({name for table in tables.values() for name in table})
    return {
        name: {
            dimension: name,
            "status": _status(tables["CVF-05"].get(name)),
            "enrolled_net": value_of(tables["CVF-01"].get(name)),
            "completion_rate": rate_of(tables["CVF-05"].get(name)),
            "pass_rate": rate_of(tables["CVF-06"].get(name)),
            "certification_rate": rate_of(tables["CVF-07"].get(name)),
            "median_days": value_of(tables["CVF-10"].get(name)),
            "median_hours": value_of(tables["CVF-11"].get(name)),
            "score_gain": value_of(tables["CVF-12"].get(name)),
        }
        for name in names
    }


def _status(completion: dict[str, Any] | None) -> str:
    """Closed once the offering's completion cell exists and none of it is in progress (as `/offerings`)."""
    if completion is None or completion.get("suppressed") or completion["parts"].get("in_progress", 0):
        return "in_progress"
    return "closed"


async def cohorts(request: web.Request, say: Speaker) -> Page:
    """Offerings of a year: status (closed or in progress) and the cohort indicators."""
    years = await training_years(request)
    year = chosen_year(request, years)
    status = chosen(request, "status", STATUSES)
    statuses = [Option("", say("all"))] + [Option(s, say(s)) for s in STATUSES]
    page = Page(
        "cohorts",
        say("cohorts"),
        filters=[year_filter(say, years, year), Filter("status", say("status"), statuses, status)],
    )
    # The offerings' own reads, shared with the course comparison (`/api/v1/offerings` lines the same up).
    rows = await _cohort_rows(request, "offering", year)
    chosen_rows = [row for row in (rows or {}).values() if not status or row["status"] == status]
    columns = _cohort_columns(say, Column("offering", say.dimension("offering")))
    columns.insert(1, Column("status", say("status"), "status"))
    page.tables.append(
        Table(
            "offerings",
            f"{say('cohorts')} ({year})",
            columns,
            chosen_rows,
            COHORT_IDS,
            Chart("offering", "completion_rate"),
            forbidden=rows is None,
        )
    )
    return page


async def courses(request: web.Request, say: Speaker) -> Page:
    """Courses side by side (all runs), and each run with its cost per certified learner."""
    years = await training_years(request)
    year = chosen_year(request, years)
    page = Page("courses", say("courses"), filters=[year_filter(say, years, year)])
    by_course = await _cohort_rows(request, "course", year)
    page.tables.append(
        Table(
            "courses-all-runs",
            f"{say('courses')}: {say('all_runs')} ({year})",
            _cohort_columns(say, Column("course", say.dimension("course"))),
            list((by_course or {}).values()),
            COHORT_IDS,
            Chart("course", "certification_rate"),
            forbidden=by_course is None,
        )
    )
    by_run = await _cohort_rows(request, "offering", year)
    cost = by_dimension(in_year(await cells(request, "CVF-20", by=["offering"]), year), "offering")
    runs = [{**row, "cost_per_certified": value_of(cost.get(name))} for name, row in (by_run or {}).items()]
    columns = _cohort_columns(say, Column("offering", say.dimension("offering")))
    columns.append(Column("cost_per_certified", say("cost_per_certified"), "money"))
    page.tables.append(
        Table(
            "courses-per-run",
            f"{say('courses')}: {say('per_run')} ({year})",
            columns,
            runs,
            (*COHORT_IDS, "CVF-20"),
            forbidden=by_run is None,
        )
    )
    return page


async def targets_page(request: web.Request, say: Speaker) -> Page:
    """CVF-16 targets of the art. 7 audiences per year, against the certified learners and the pace."""
    everything = await view(request, targets, YearQuery(), ("CVF-16",))
    years = sorted({t.year for t in everything.targets}, reverse=True) if everything else []
    year = chosen_year(request, years)
    page = Page("targets", say("targets"), filters=[year_filter(say, years, year)])
    rows = [
        {
            "audience": t.audience,
            "target": t.target,
            "certified_learners": t.certified_learners,
            "share_of_target": Rate(t.share_of_target, t.certified_learners, t.target),
            "pace": t.share_of_year_elapsed,
        }
        for t in (everything.targets if everything else [])
        if t.year == year
    ]
    page.tables.append(
        Table(
            "targets-pace",
            f"{say.indicator('CVF-16')} ({year})",
            [
                Column("audience", say.dimension("audience"), "dimension", "audience"),
                Column("target", say("target"), "count"),
                Column("certified_learners", say("achieved"), "count"),
                Column("share_of_target", say("share_of_target"), "rate"),
                Column("pace", say("pace"), "percent"),
            ],
            rows,
            ("CVF-16", "CVF-07"),
            Chart("audience", "share_of_target", marker_key="pace"),
            forbidden=everything is None,
        )
    )
    return page


async def pathways(request: web.Request, say: Speaker) -> Page:
    """CVF-22 (continuing to another course) by course and CVF-23 (acting on PLGN) by member state."""
    years = await training_years(request)
    year = chosen_year(request, years)
    page = Page("pathways", say("pathways"), filters=[year_filter(say, years, year)])
    for table_id, indicator, dimension in (
        ("continuation", "CVF-22", "course"),
        ("plgn-conversion", "CVF-23", "country"),
    ):
        found = await cells(request, indicator, by=[dimension])
        rows = [
            {dimension: c["dimensions"][dimension], "rate": rate_of(c)}
            for c in sorted(in_year(found, year), key=lambda c: c["dimensions"][dimension])
        ]
        page.tables.append(
            Table(
                table_id,
                f"{say.indicator(indicator)} ({year})",
                [
                    Column(dimension, say.dimension(dimension), "dimension", dimension),
                    Column("rate", say.indicator(indicator), "rate"),
                ],
                rows,
                (indicator,),
                Chart(dimension, "rate"),
                forbidden=found is None,
            )
        )
    return page
