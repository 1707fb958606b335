"""Read-time aggregation of the finance indicators (ACT): returns over the 12-month window; pure."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from datetime import date
from decimal import Decimal

from processors.indicators.catalogue import (
    ROI_WINDOW_DAYS,
    Indicator,
)
from processors.indicators.generic import aggregate_parts
from processors.indicators.grouping import (
    Aggregator,
    Cell,
    ReadContext,
    RowIndex,
    latest_per_member,
    project,
)
from processors.indicators.periods import epoch_seconds, from_epoch, period_end, period_start


def _last_sessions(index: RowIndex) -> dict[str, int]:
    return index.joined(_join_last_sessions)


def _join_last_sessions(index: RowIndex) -> dict[str, int]:
    return {
        member: int(row.value)
        for member, row in latest_per_member(index.get(("ACT-07", "last_session"), ())).items()
    }


def aggregate_roi(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """ACT-05 to ACT-08: cumulative cost and business per activity; provisional until the 12-month window.

    A cell is provisional while one of its activities has no known last session, or its last session
    plus 365 days is after the period end or after the as-of instant.
    """
    last = _last_sessions(index)
    activities: dict[tuple[date, tuple[str, ...]], set[str]] = defaultdict(set)
    for part in (("ACT-01", "cost_usd"), ("ACT-05", "attributable_usd")):
        for row in index.get(part, ()):
            activities[(row.period_start, project(row.dimensions, ctx.by, indicator.dimensions))].add(
                row.dimensions["activity"]
            )
    # A cell is provisional when the latest window to close among the activities of its key up to its
    # period closes after its horizon: per key, that latest closing over the periods so far.
    closing: dict[tuple[str, ...], tuple[list[date], list[float]]] = {}
    for (start, group), found in sorted(activities.items()):
        latest = max(_window_closes(last.get(activity)) for activity in found)
        starts, closes = closing.setdefault(group, ([], []))
        starts.append(start)
        closes.append(max(latest, closes[-1]) if closes else latest)
    as_of_s = epoch_seconds(ctx.as_of)
    cells = []
    for cell in aggregate_parts(indicator, index, ctx):
        for name in ("last_session", "n_last_session", "max_last_session"):
            cell.parts.pop(name, None)
        horizon = min(epoch_seconds(period_end(cell.period_start, ctx.period)), as_of_s)
        starts, closes = closing.get(tuple(cell.dimensions[name] for name in ctx.by), ([], []))
        seen = bisect_right(starts, cell.period_start)
        cell.provisional = seen > 0 and closes[seen - 1] > horizon
        cells.append(cell)
    return cells


def _window_closes(last_session_s: int | None) -> float:
    """When an activity's 12-month window closes (epoch seconds); never while its last session is unknown."""
    return math.inf if last_session_s is None else last_session_s + ROI_WINDOW_DAYS * 86_400


def aggregate_portfolio(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """ACT-13: whole cost and attributable business of the activities whose 12-month window closed in P."""
    cost: dict[str, Decimal] = defaultdict(Decimal)
    for row in index.get(("ACT-01", "cost_usd"), ()):
        cost[row.dimensions["activity"]] += row.value
    business: dict[str, Decimal] = defaultdict(Decimal)
    for row in latest_per_member(index.get(("ACT-05", "attributable_usd"), ())).values():
        business[row.dimensions["activity"]] += row.value
    closed: dict[date, list[str]] = defaultdict(list)
    for activity, last_s in _last_sessions(index).items():
        closes = from_epoch(last_s + ROI_WINDOW_DAYS * 86_400)
        if closes <= ctx.as_of:
            closed[period_start(closes, ctx.period)].append(activity)
    cells = []
    for start, names in sorted(closed.items()):
        parts = {
            "attributable_usd": sum((business[name] for name in names), Decimal(0)),
            "cost_usd": sum((cost[name] for name in names), Decimal(0)),
            "activities": Decimal(len(names)),
        }
        cells.append(Cell(start, {}, parts))
    return cells


AGGREGATIONS: dict[str, Aggregator] = {
    "roi": aggregate_roi,
    "portfolio": aggregate_portfolio,
}
