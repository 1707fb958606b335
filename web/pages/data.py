"""The pages' data: the query API's own reads, called in-process with the caller's identity.

Nothing here queries the store: indicator cells go through the API's publication check, dimension check
and filter (`web.api.indicators`) over `processors.read.read_indicators`, and the composed views are the
API's handlers themselves, so a page shows what the API answers the same person, suppression included.
Each read records on the request the instant its values are exact at and whether changes received
may be missing (`stamp_of`), kept reads included, so the page can say how current it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from processors import read
from processors.indicators import catalogue
from web.api.indicators import check_dimensions, check_publication, select
from web.api.models import IndicatorQuery, plain_number
from web.auth import identity_of
from web.pages.cache import ANY, READS
from web.pages.tables import WITHHELD, Rate
from web.problems import ProblemError
from web.state import POOL, SETTINGS

Model = TypeVar("Model", bound=BaseModel)
Query = TypeVar("Query", bound=BaseModel)


@dataclass(frozen=True)
class Stamp:
    """How current a read's values are: the instant they are exact at, and whether newer data waits."""

    as_of: datetime
    changes_pending: bool


READ_STAMPS = web.RequestKey("page_read_stamps", list[Stamp])
Rows = list[dict[str, Any]]


def record(request: web.Request, stamp: Stamp) -> None:
    """Note on the request that one of the page's reads is exact as of `stamp`."""
    if READ_STAMPS not in request:
        request[READ_STAMPS] = []
    request[READ_STAMPS].append(stamp)


def stamp_of(request: web.Request) -> Stamp | None:
    """How current the page's values are: the oldest instant of its reads, pending if any read's is.

    None when the page read no indicator.
    """
    stamps = request.get(READ_STAMPS) or []
    if not stamps:
        return None
    return Stamp(min(s.as_of for s in stamps), any(s.changes_pending for s in stamps))


def _stamped(rows: read.ReadResults) -> tuple[Rows, Stamp]:
    return [{"suppressed": False, **plain_number(row)} for row in rows], Stamp(
        rows.as_of, rows.changes_pending
    )


async def cells(
    request: web.Request,
    indicator_id: str,
    *,
    by: Sequence[str] = (),
    grain: str = "year",
    **filters: str,
) -> list[dict[str, Any]] | None:
    """An indicator's cells as `/api/v1/indicators/{id}` answers them; None when the role may not."""
    query = IndicatorQuery.model_validate(
        {"grain": grain, "by": ",".join(by) or None, **{k: v for k, v in filters.items() if v}}
    )
    identity = identity_of(request)
    try:
        check_publication(identity, query)
    except ProblemError as exc:
        if exc.problem.status == 403:
            return None
        raise
    indicator = catalogue.get(indicator_id)
    check_dimensions(indicator.dimensions, indicator.id, query)

    async def load() -> tuple[Rows, Stamp]:
        rows = await read.read_indicators(
            request.app[POOL],
            indicator=indicator.id,
            period=query.grain,
            by=list(by),
            audience=identity.audience,
            settings=request.app[SETTINGS],
        )
        return _stamped(rows)

    key = ("cells", indicator.id, query.grain, tuple(by), identity.audience)
    rows, stamp = await request.app[READS].get(key, [indicator.id], load)
    record(request, stamp)
    return select(rows, query)


async def cells_of(
    request: web.Request, ids: Sequence[str], *, by: Sequence[str] = (), grain: str = "year"
) -> dict[str, list[dict[str, Any]]] | None:
    """Several indicators' cells in one read, as `/api/v1/indicators?ids=` answers them; None as `cells`."""
    query = IndicatorQuery.model_validate({"grain": grain, "by": ",".join(by) or None})
    identity = identity_of(request)
    try:
        check_publication(identity, query)
    except ProblemError as exc:
        if exc.problem.status == 403:
            return None
        raise
    for indicator_id in ids:
        check_dimensions(catalogue.get(indicator_id).dimensions, indicator_id, query)

    async def load() -> tuple[Rows, Stamp]:
        rows = await read.read_indicators(
            request.app[POOL],
            indicator=None,
            among=list(ids),
            period=query.grain,
            by=list(by),
            audience=identity.audience,
            settings=request.app[SETTINGS],
        )
        return _stamped(rows)

    key = ("among", tuple(ids), query.grain, tuple(by), identity.audience)
    rows, stamp = await request.app[READS].get(key, ids, load)
    record(request, stamp)
    return {indicator_id: [row for row in rows if row["indicator"] == indicator_id] for indicator_id in ids}


async def every_indicator(request: web.Request) -> list[dict[str, Any]]:
    """Every indicator's yearly totals, as `/api/v1/indicators/{id}?grain=year` answers each of them."""
    identity = identity_of(request)

    async def load() -> tuple[Rows, Stamp]:
        rows = await read.read_indicators(
            request.app[POOL],
            indicator=None,
            period="year",
            by=[],
            audience=identity.audience,
            settings=request.app[SETTINGS],
        )
        return _stamped(rows)

    rows, stamp = await request.app[READS].get(("every", identity.audience), [ANY], load)
    record(request, stamp)
    return rows


async def view(
    request: web.Request,
    handler: Callable[[web.Request, Query], Awaitable[Model]],
    query: Query,
    depends: Iterable[str] = (ANY,),
) -> Model | None:
    """A composed view through the API's handler; None when the caller's role may not read it (403).

    `depends` names the indicators the view is made of, whose change drops the kept answer; a view
    that depends on none (the pipeline's health) is read every time.
    """

    async def load() -> Model | None:
        try:
            return await handler(request, query)
        except ProblemError as exc:
            if exc.problem.status == 403:
                return None
            raise

    if not depends:
        return await load()
    key = (
        handler.__qualname__,
        query.model_dump_json() if query is not None else "",
        tuple(sorted(request.match_info.items())),
        identity_of(request).audience,
    )
    found = await request.app[READS].get(key, depends, load)
    as_of = getattr(found, "as_of", None)
    if isinstance(as_of, datetime):
        record(request, Stamp(as_of, bool(getattr(found, "changes_pending", False))))
    return found


def value_of(cell: dict[str, Any] | None) -> Any:
    """A cell's value: None without data, WITHHELD when suppressed."""
    if cell is None:
        return None
    if cell.get("suppressed"):
        return WITHHELD
    return cell["value"]


def rate_of(cell: dict[str, Any] | None, numerator: str = "", denominator: str = "") -> Any:
    """A ratio cell as a Rate with the parts its value derives from (or the parts named)."""
    if cell is None:
        return None
    if cell.get("suppressed"):
        return WITHHELD
    derivation = catalogue.get(cell["indicator"]).derivation
    if not numerator and derivation.op != "ratio":
        return cell["value"]  # a benefit-cost ratio or ROI is no share of a whole
    names = (numerator, denominator) if numerator else (derivation.args[0], derivation.args[1])
    parts = cell["parts"]
    top, bottom = parts.get(names[0]), parts.get(names[1])
    value = top / bottom if top is not None and bottom else None
    if not numerator:
        value = cell["value"]
    return Rate(value, top, bottom)


def by_dimension(rows: Sequence[dict[str, Any]] | None, dimension: str) -> dict[str, dict[str, Any]]:
    """Cells keyed by one dimension's value."""
    return {row["dimensions"][dimension]: row for row in rows or ()}


def years_in(rows: Sequence[dict[str, Any]] | None) -> list[int]:
    """The years the cells cover, newest first."""
    return sorted({int(str(row["period"]["start"])[:4]) for row in rows or ()}, reverse=True)


def in_year(rows: Sequence[dict[str, Any]] | None, year: int | None) -> list[dict[str, Any]]:
    """The cells of one year."""
    return [row for row in rows or () if year is not None and int(str(row["period"]["start"])[:4]) == year]
