"""Views of several indicators' cells: the training funnel, offerings, targets, activities, portfolio.

Every number comes from `processors.read.read_indicators` (so suppression and provisional flags apply
as for one indicator); these functions only line the cells of several indicators up by period and
dimensions, and add nothing read from the store but the CVF-16 targets. A view read now is served
from the snapshots as its reads are, unless `fresh` asks for the present; it reports the oldest
instant of its reads (`as_of`) and whether changes received since are not in it yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from infra.settings import Settings
from processors.indicators.base import PeriodKind
from processors.read import Audience, ReadResults, load_targets, read_indicators

CellKey = tuple[str, tuple[tuple[str, str], ...]]
# Training funnel: (stage name, indicator, part) in funnel order.
FUNNEL_STAGES = (
    ("enrolled_net", "CVF-01", "net"),
    ("net_closed", "CVF-05", "net_closed"),
    ("started_closed", "CVF-08", "started_closed"),
    ("never_started_closed", "CVF-09", "never_started_closed"),
    ("completed_closed", "CVF-05", "completed_closed"),
    ("certified_closed", "CVF-07", "certified_closed"),
    ("dropped_closed", "CVF-08", "dropped_closed"),
    ("in_progress", "CVF-05", "in_progress"),
)
FUNNEL_RATES = (("completion_rate", "CVF-05"), ("certification_rate", "CVF-07"), ("dropout_rate", "CVF-08"))
FUNNEL_DIMENSIONS = ("country", "audience", "course", "offering")
OFFERING_INDICATORS = (("net_enrolled", "CVF-01"), ("completion_rate", "CVF-05"), ("pass_rate", "CVF-06"))
OFFERING_MORE = (
    ("certification_rate", "CVF-07"),
    ("median_days_to_complete", "CVF-10"),
    ("median_hours_of_study", "CVF-11"),
    ("score_gain", "CVF-12"),
)
ACTIVITY_INDICATORS = (
    ("cost_usd", "ACT-01"),
    ("firms_served", "ACT-02"),
    ("attributable_usd", "ACT-05"),
    ("roi_percent", "ACT-07"),
    ("benefit_cost_ratio", "ACT-08"),
)


class ViewRows(list[dict[str, Any]]):
    """A view's rows, with the instant their values are exact at (the oldest of the reads behind them).

    Attributes:
        as_of: The instant the values are exact at.
        changes_pending: Whether received changes were still waiting for a refresh (they may be missing).
    """

    def __init__(self, rows: Iterable[dict[str, Any]], *, of: ReadResults) -> None:
        super().__init__(rows)
        self.as_of = of.as_of
        self.changes_pending = of.changes_pending


def cell_key(row: dict[str, Any]) -> CellKey:
    """A cell's coordinates: period start and sorted dimensions."""
    return row["period"]["start"], tuple(sorted(row["dimensions"].items()))


async def read_tables(
    pool: asyncpg.Pool,
    ids: Sequence[str],
    *,
    period: PeriodKind,
    by: Sequence[str],
    audience: Audience,
    settings: Settings,
    as_of: datetime | None = None,
    fresh: bool = False,
) -> tuple[dict[str, dict[CellKey, dict[str, Any]]], ReadResults]:
    """Several indicators' cells of one grain and grouping, indexed by coordinates (one snapshot).

    Also the read itself, whose `as_of` is the instant the cells are exact at: `as_of`, or for a
    read of now (None) the snapshots' when it was served from them, else now.
    """
    rows = await read_indicators(
        pool,
        indicator=None,
        among=ids,
        period=period,
        by=by,
        audience=audience,
        settings=settings,
        as_of=as_of,
        fresh=fresh,
    )
    tables: dict[str, dict[CellKey, dict[str, Any]]] = {indicator: {} for indicator in ids}
    for row in rows:
        tables[row["indicator"]][cell_key(row)] = row
    return tables, rows


def _lined_up(
    tables: dict[str, dict[CellKey, dict[str, Any]]], named: Sequence[tuple[str, str]]
) -> list[tuple[CellKey, dict[str, Any], bool, bool]]:
    """Per cell of any table: the named indicators' values, and whether any is provisional or suppressed."""
    keys = sorted({key for table in tables.values() for key in table})
    lined = []
    for key in keys:
        values: dict[str, Any] = {}
        provisional = suppressed = False
        for name, indicator in named:
            row = tables[indicator].get(key)
            values[name] = None if row is None else row["value"]
            provisional = provisional or bool(row and row["provisional"])
            suppressed = suppressed or bool(row and row.get("suppressed"))
        lined.append((key, values, provisional, suppressed))
    return lined


async def read_training_funnel(
    pool: asyncpg.Pool,
    *,
    period: PeriodKind,
    by: Sequence[str],
    audience: Audience,
    settings: Settings,
    as_of: datetime | None = None,
    fresh: bool = False,
) -> ViewRows:
    """Per period and `by` cell: net enrolled -> started -> completed -> certified, and the rates.

    Completion-type counts are over closed cohorts; `in_progress` counts enrolments of open ones.
    """
    ids = [indicator for _, indicator, _ in FUNNEL_STAGES]
    tables, read = await read_tables(
        pool, ids, period=period, by=by, audience=audience, settings=settings, as_of=as_of, fresh=fresh
    )
    cells = []
    for key, rates, provisional, suppressed in _lined_up(tables, FUNNEL_RATES):
        stages: dict[str, Decimal | None] = {}
        for stage, indicator, part in FUNNEL_STAGES:
            row = tables[indicator].get(key)
            stages[stage] = None if row is None else row["parts"].get(part)
            suppressed = suppressed or bool(row and row.get("suppressed"))
        cells.append(_cell(key, period, {"stages": stages, "rates": rates}, provisional, suppressed))
    return ViewRows(cells, of=read)


async def read_offerings(
    pool: asyncpg.Pool,
    *,
    audience: Audience,
    settings: Settings,
    as_of: datetime | None = None,
    fresh: bool = False,
) -> ViewRows:
    """Per year and offering: net enrolments and the cohort indicators, `closed` once none is in progress."""
    named = (*OFFERING_INDICATORS, *OFFERING_MORE)
    tables, read = await read_tables(
        pool,
        [indicator for _, indicator in named],
        period="year",
        by=["offering"],
        audience=audience,
        settings=settings,
        as_of=as_of,
        fresh=fresh,
    )
    cells = []
    for key, values, provisional, suppressed in _lined_up(tables, named):
        completion = tables["CVF-05"].get(key)
        in_progress = completion["parts"].get("in_progress", 0) if completion else 0
        status = "closed" if completion is not None and not in_progress else "in_progress"
        cells.append(_cell(key, "year", {**values, "status": status}, provisional, suppressed))
    return ViewRows(cells, of=read)


async def read_reach_targets(
    pool: asyncpg.Pool, *, settings: Settings, as_of: datetime | None = None, fresh: bool = False
) -> ViewRows:
    """CVF-16 against its targets, per art. 7 audience and year with a target.

    Each row holds the certified learners so far, the share of the target, and the share of the year
    elapsed (the pace line), both at the instant the certified learners are exact at.
    """
    rows = await read_indicators(
        pool, indicator="CVF-16", period="year", by=["audience"], settings=settings, as_of=as_of, fresh=fresh
    )
    reached = {(row["dimensions"]["audience"], int(row["period"]["start"][:4])): row for row in rows}
    async with pool.acquire() as connection:
        targets = await load_targets(connection)
    found = []
    for (audience_name, year), target in sorted(targets.items()):
        row = reached.get((audience_name, year))
        certified = row["parts"].get("certified_learners", Decimal(0)) if row else Decimal(0)
        found.append(
            {
                "audience": audience_name,
                "year": year,
                "target": target,
                "certified_learners": certified,
                "share_of_target": certified / target if target else None,
                "share_of_year_elapsed": _year_elapsed(year, rows.as_of),
            }
        )
    return ViewRows(found, of=rows)


def _year_elapsed(year: int, now: datetime) -> Decimal:
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    share = (now - start) / (end - start)
    return Decimal(str(round(min(1.0, max(0.0, share)), 4)))


async def read_activities(
    pool: asyncpg.Pool, *, settings: Settings, as_of: datetime | None = None, fresh: bool = False
) -> ViewRows:
    """Per year and activity, as of the year's end: cost, firms served, attributable business, ROI, BCR."""
    tables, read = await read_tables(
        pool,
        [indicator for _, indicator in ACTIVITY_INDICATORS],
        period="year",
        by=["activity"],
        audience="internal",
        settings=settings,
        as_of=as_of,
        fresh=fresh,
    )
    return ViewRows(
        (
            _cell(key, "year", values, provisional, suppressed)
            for key, values, provisional, suppressed in _lined_up(tables, ACTIVITY_INDICATORS)
        ),
        of=read,
    )


async def read_portfolio(
    pool: asyncpg.Pool,
    *,
    year: int | None,
    settings: Settings,
    as_of: datetime | None = None,
    fresh: bool = False,
) -> dict[str, Any]:
    """The art. 1 annual review of `year` (default: the latest with activity cells).

    Every activity with cells in the year, ranked by benefit-cost ratio (undefined last), with the
    totals, the year's portfolio ROI (ACT-13), `as_of`, the instant the values are exact at (the
    older of the two reads'), and `changes_pending`, whether received changes may be missing.
    """
    activities = await read_activities(pool, settings=settings, as_of=as_of, fresh=fresh)
    years = sorted({int(cell["period"]["start"][:4]) for cell in activities})
    chosen = year if year is not None else (years[-1] if years else activities.as_of.year)
    ranked = sorted(
        (cell for cell in activities if int(cell["period"]["start"][:4]) == chosen),
        key=lambda cell: (cell["benefit_cost_ratio"] is None, -(cell["benefit_cost_ratio"] or 0)),
    )
    totals = {
        name: sum((cell[name] or Decimal(0) for cell in ranked), Decimal(0))
        for name in ("cost_usd", "attributable_usd")
    }
    annual = await read_indicators(
        pool, indicator="ACT-13", period="year", by=[], settings=settings, as_of=as_of, fresh=fresh
    )
    roi = next((row for row in annual if int(row["period"]["start"][:4]) == chosen), None)
    return {
        "year": chosen,
        "years": years,
        "activities": ranked,
        "totals": totals,
        "portfolio_roi_percent": None if roi is None else roi["value"],
        "portfolio_activities_closed": None if roi is None else roi["parts"].get("activities"),
        "as_of": min(activities.as_of, annual.as_of),
        "changes_pending": activities.changes_pending or annual.changes_pending,
    }


def _cell(
    key: CellKey, period: PeriodKind, values: dict[str, Any], provisional: bool, suppressed: bool
) -> dict[str, Any]:
    start, dimensions = key
    if suppressed and "stages" in values:
        values = {"stages": {}, "rates": {}}
    elif suppressed:
        values = {name: value if isinstance(value, str) else None for name, value in values.items()}
    return {
        "period": {"kind": period, "start": start},
        "dimensions": dict(dimensions),
        **values,
        "provisional": provisional,
        "suppressed": suppressed,
    }
