"""`/api/v1/indicators/{id}`: an indicator's cells through the read model, suppressed by role.

External identities (roles `external` and `state`) get fixed publication tables only: yearly cells,
as totals or by one publication dimension. The read model's secondary suppression protects one
table; free groupings and month/year pairs would let one table be subtracted from another.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from aiohttp import web

from processors import read
from processors.indicators import catalogue
from web.api.base import PREFIX, Endpoint
from web.api.catalogue import resolve
from web.api.models import (
    IndicatorCell,
    IndicatorQuery,
    IndicatorTable,
    IndicatorTables,
    SeveralIndicatorsQuery,
    plain_number,
)
from web.auth import identity_of
from web.identities import Identity
from web.problems import ProblemError
from web.state import POOL, SETTINGS

PUBLICATION_GRAIN = "year"
PUBLICATION_DIMENSIONS = ("country", "audience", "gender")


def check_publication(identity: Identity, query: IndicatorQuery) -> None:
    """Refuse an external identity anything but a fixed publication table (403)."""
    if identity.audience != "external":
        return
    by = query.dimensions()
    if query.grain != PUBLICATION_GRAIN or len(by) > 1 or not set(by) <= set(PUBLICATION_DIMENSIONS):
        raise ProblemError(
            403,
            "Forbidden",
            f"role {identity.role} reads published tables only: grain={PUBLICATION_GRAIN}, and by= empty "
            f"or one of {', '.join(PUBLICATION_DIMENSIONS)}",
        )


def period_bound(text: str | None, name: str) -> date | None:
    """`2025`, `2025-03` or `2025-03-15` as the first day it names; 400 when it is no date."""
    if text is None:
        return None
    parts = [int(part) for part in text.split("-")] + [1, 1]
    try:
        return date(parts[0], parts[1], parts[2])
    except ValueError:
        raise ProblemError(
            400, "Bad Request", f"{name}: not a calendar date (YYYY, YYYY-MM or YYYY-MM-DD)"
        ) from None


def check_dimensions(valid: Sequence[str], label: str, query: IndicatorQuery) -> list[str]:
    """The `by` dimensions, checked against the `valid` ones of `label` and the filters (400 otherwise)."""
    by = query.dimensions()
    unknown = [name for name in by if name not in valid]
    if unknown or len(set(by)) != len(by):
        wrong, listed = ", ".join(unknown) or "twice", ", ".join(valid) or "none"
        raise ProblemError(400, "Bad Request", f"by: {label} has no dimension {wrong}; valid: {listed}")
    unfiltered = [name for name in query.filters() if name not in by]
    if unfiltered:
        raise ProblemError(
            400, "Bad Request", f"a filter on {', '.join(unfiltered)} needs the dimension in by= as well"
        )
    return by


def select(rows: Sequence[dict[str, Any]], query: IndicatorQuery) -> list[dict[str, Any]]:
    """The rows within `from`..`to` whose dimensions pass the filters."""
    first, last = period_bound(query.from_, "from"), period_bound(query.to, "to")
    filters = query.filters()
    return [
        row
        for row in rows
        if _within(row, first, last) and all(row["dimensions"][n] in v for n, v in filters.items())
    ]


async def read_tables(
    request: web.Request, indicators: Sequence[catalogue.Indicator], query: IndicatorQuery
) -> list[IndicatorTable]:
    """Indicators' cells of one grain, grouped by `by`, within `from`..`to`, filtered by dimension.

    One read (one snapshot, one enrolment join) serves every indicator asked for.
    """
    identity = identity_of(request)
    check_publication(identity, query)
    by: list[str] = []
    for indicator in indicators:
        by = check_dimensions(indicator.dimensions, indicator.id, query)
    # A read of now: served from the indicator snapshots when they are recent enough (unless `fresh`),
    # and then exact as of each snapshot's instant, which each table reports.
    rows = await read.read_indicators(
        request.app[POOL],
        indicator=None,
        among=[indicator.id for indicator in indicators],
        period=query.grain,
        by=by,
        audience=identity.audience,
        settings=request.app[SETTINGS],
        fresh=query.fresh,
    )
    cells: dict[str, list[IndicatorCell]] = {indicator.id: [] for indicator in indicators}
    for row in select(rows, query):
        cells[row["indicator"]].append(
            IndicatorCell.model_validate({"suppressed": False, **plain_number(row)})
        )
    return [
        IndicatorTable(
            indicator=name,
            grain=query.grain,
            by=by,
            audience=identity.audience,
            as_of=rows.as_of_by_indicator.get(name, rows.as_of),
            changes_pending=rows.changes_pending,
            cells=found,
        )
        for name, found in cells.items()
    ]


async def indicator_table(request: web.Request, query: IndicatorQuery) -> IndicatorTable:
    """One indicator's table."""
    (table,) = await read_tables(request, [resolve(request.match_info["indicator_id"])], query)
    return table


async def indicator_tables(request: web.Request, query: SeveralIndicatorsQuery) -> IndicatorTables:
    """Several indicators' tables of the same grain and grouping (a page's tiles), in the order asked."""
    indicators = [resolve(name) for name in dict.fromkeys(name.upper() for name in query.ids.split(","))]
    return IndicatorTables(tables=await read_tables(request, indicators, query))


def _within(row: dict[str, Any], first: date | None, last: date | None) -> bool:
    start = date.fromisoformat(row["period"]["start"])
    return (first is None or start >= first) and (last is None or start <= last)


ENDPOINTS = [
    Endpoint(
        f"{PREFIX}/indicators/{{indicator_id}}",
        "An indicator's cells (external roles: yearly published tables, small cells suppressed)",
        "indicators",
        indicator_table,
        query=IndicatorQuery,
        response=IndicatorTable,
        path_params={"indicator_id": "catalogue id, any case, e.g. CVF-01"},
    ),
    Endpoint(
        f"{PREFIX}/indicators",
        "Several indicators' cells of one grain and grouping (tiles)",
        "indicators",
        indicator_tables,
        query=SeveralIndicatorsQuery,
        response=IndicatorTables,
    ),
]
