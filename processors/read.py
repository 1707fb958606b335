"""The read model: indicator values from the evaluation store, regrouped, derived and (externally) suppressed.

A live read loads the stored rows of the parts an indicator reads (`processors.read_inputs`), merging
the stored months into cells of the requested period kind, then aggregates and derives in Python with
the same pure code the tests check against a naive computation (`processors.indicators.aggregate`).
A read of now in a declared grouping is served from the indicator snapshots instead while they are
recent enough (`processors.read_snapshots`), unless it asks for the present (`fresh`); the snapshot
refresher computes them with this same code. For
BI tools, migrations 0150 and 0160 add documented SQL views over the same tables.
"""

from __future__ import annotations

import gc
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import asyncpg

from infra.settings import Settings
from processors import read_snapshots
from processors.indicators import catalogue
from processors.indicators.aggregate import Cell, ReadContext, aggregate
from processors.indicators.base import PeriodKind
from processors.indicators.derive import derive_value, extra_ratios
from processors.read_inputs import ReadInputs, load_inputs, load_rows, load_targets

logger = logging.getLogger(__name__)

Audience = Literal["internal", "external"]

__all__ = [
    "ReadResults",
    "derive_value",
    "load_rows",
    "load_targets",
    "read_indicators",
    "suppress",
    "to_results",
]


@dataclass
class _GcPause:
    """How many reads are pausing the cyclic collector, and whether it ran before the first."""

    readers: int = 0
    resume: bool = False


_GC_PAUSE = _GcPause()


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a read builds its rows.

    A read creates hundreds of thousands of small objects that form no reference cycles (reference
    counting frees them); each full collection triggered by that growth would walk all of them
    again, which roughly doubled the time of a read over 300k events. Concurrent reads share the
    pause: the collector resumes when the last one ends, and only if it ran before the first began.
    """
    if _GC_PAUSE.readers == 0:
        _GC_PAUSE.resume = gc.isenabled()
        gc.disable()
    _GC_PAUSE.readers += 1
    try:
        yield
    finally:
        _GC_PAUSE.readers -= 1
        if _GC_PAUSE.readers == 0 and _GC_PAUSE.resume:
            gc.enable()


class ReadResults(list[dict[str, Any]]):
    """A read's result objects, with the instant each indicator's values are exact at.

    Attributes:
        as_of: The instant of the read: the one asked for, now, or the oldest snapshot's it was served from.
        as_of_by_indicator: Per indicator read, the instant its values are exact at.
        from_snapshots: Whether the values come from the snapshots (`processors.read_snapshots`).
        changes_pending: Whether received changes may be missing from the values (served from
            snapshots within ``snapshot_max_lag_s`` while they were pending); never for a live read.
    """

    def __init__(
        self, rows: Iterable[dict[str, Any]], *, as_of_by_indicator: dict[str, datetime], fallback: datetime
    ) -> None:
        super().__init__(rows)
        self.as_of_by_indicator = as_of_by_indicator
        self.as_of = min(as_of_by_indicator.values(), default=fallback)
        self.from_snapshots = False
        self.changes_pending = False


def select_indicators(
    indicator: str | None, by: Sequence[str], among: Sequence[str] | None
) -> list[catalogue.Indicator]:
    """The catalogue entries a read asks for (see `read_indicators`).

    Raises:
        KeyError: when an indicator is unknown.
        ValueError: when a `by` dimension is not one of an indicator's.
    """
    if indicator is not None:
        found = catalogue.get(indicator)
        unknown = [name for name in by if name not in found.dimensions]
        if unknown:
            raise ValueError(f"{indicator} has no dimension {', '.join(unknown)}")
        return [found]
    if among is not None:
        indicators = [catalogue.get(name) for name in dict.fromkeys(among)]
        lacking = [entry.id for entry in indicators if not set(by) <= set(entry.dimensions)]
        if lacking:
            raise ValueError(f"{', '.join(lacking)} lack a dimension of {', '.join(by)}")
        return indicators
    return [entry for entry in catalogue.INDICATORS if set(by) <= set(entry.dimensions)]


def internal_results(
    indicators: Sequence[catalogue.Indicator],
    inputs: ReadInputs,
    ctx: ReadContext,
    *,
    margin_coefficient: Decimal,
) -> dict[str, list[dict[str, Any]]]:
    """Per indicator its result objects for the internal audience (pure: no I/O)."""
    ctx = ReadContext(ctx.period, ctx.by, ctx.as_of, ctx.cohort_grace_days, inputs.targets)
    results: dict[str, list[dict[str, Any]]] = {}
    for entry in indicators:
        found_cells = inputs.rolled_cells.get(entry.id)
        cells = found_cells if found_cells is not None else aggregate(entry.id, inputs.index, ctx)
        results[entry.id] = to_results(entry.id, cells, ctx.period, margin_coefficient=margin_coefficient)
    return results


async def read_indicators(
    pool: asyncpg.Pool,
    *,
    indicator: str | None,
    period: PeriodKind,
    by: Sequence[str],
    audience: Audience = "internal",
    settings: Settings,
    as_of: datetime | None = None,
    among: Sequence[str] | None = None,
    fresh: bool = False,
) -> ReadResults:
    """Indicator cells of one period kind, grouped by `by` (no `by`: totals).

    A read of now (no `as_of`, not `fresh`) of a declared grouping is served from the indicator
    snapshots when they are recent enough (`processors.read_snapshots`): while nothing they read
    changed, or, with changes pending, while they are within ``snapshot_max_lag_s``
    (`ReadResults.changes_pending` then says so). Otherwise the cells are computed from the store.
    Either way the values are exact as of the instant the results report (`ReadResults.as_of`).

    Args:
        pool: Pool on the evaluation store's schema.
        indicator: A catalogue id, or None for every indicator that has all the `by` dimensions.
        period: Period kind of the cells.
        by: Dimensions to group by; each must be one of the indicator's dimensions.
        audience: ``"external"`` applies small-cell suppression (primary and secondary).
        settings: Resolved settings (threshold, ROI margin coefficient, cohort grace days).
        as_of: The instant cohorts and ROI windows are judged at; now by default.
        among: With no `indicator`, read only these catalogue ids (each must have every `by`
            dimension), in one snapshot and one enrolment join.
        fresh: Compute the values of the present from the store, never from a snapshot.

    Returns:
        One object per period and combination of the `by` dimensions: ``indicator``, ``period``
        (``kind``, ``start``), ``dimensions``, ``value``, ``parts``, ``unit``, ``provisional``, and for
        external reads ``suppressed``.

    Raises:
        KeyError: when the indicator is unknown.
        ValueError: when a `by` dimension is not one of the indicator's.
    """
    indicators = select_indicators(indicator, by, among)
    instant = as_of or datetime.now(UTC)
    margin = Decimal(str(settings.processor.roi_margin_coefficient))
    with cyclic_gc_paused():
        # One snapshot for every query, so a batch committing meanwhile is seen entirely or not at all.
        async with (
            pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            snapshots = None
            if as_of is None and not fresh:
                snapshots = await read_snapshots.served(connection, indicators, period, by, settings)
            inputs = None if snapshots is not None else await load_inputs(connection, indicators, period, by)
        served = None if snapshots is None else snapshots.by_indicator
        if inputs is not None:
            ctx = ReadContext(period, tuple(by), instant, settings.processor.cohort_grace_days)
            computed = internal_results(indicators, inputs, ctx, margin_coefficient=margin)
            served = {name: (instant, rows) for name, rows in computed.items()}
        if served is None:
            raise RuntimeError("a read was neither served from the snapshots nor loaded")
        results = ReadResults(
            [],
            as_of_by_indicator={entry.id: served[entry.id][0] for entry in indicators},
            fallback=instant,
        )
        results.from_snapshots = snapshots is not None
        results.changes_pending = snapshots is not None and snapshots.pending
        for entry in indicators:
            found = served[entry.id][1]
            if audience == "external":
                found = suppress(entry.id, found, by, threshold=settings.processor.small_cell_threshold)
            results.extend(found)
    logger.debug(
        "read %d cells of %d indicators (%s, by %s, %s)",
        len(results),
        len(indicators),
        period,
        by,
        ("snapshots, changes pending" if results.changes_pending else "snapshots")
        if results.from_snapshots
        else "live",
    )
    return results


def to_results(
    indicator_id: str, cells: Sequence[Cell], period: PeriodKind, *, margin_coefficient: Decimal = Decimal(1)
) -> list[dict[str, Any]]:
    """The API objects of aggregated cells, with their derived values."""
    unit = catalogue.get(indicator_id).unit
    return [
        {
            "indicator": indicator_id,
            "period": {"kind": period, "start": cell.period_start.isoformat()},
            "dimensions": dict(cell.dimensions),
            "value": derive_value(indicator_id, cell.parts, margin_coefficient=margin_coefficient),
            "parts": {**cell.parts, **extra_ratios(indicator_id, cell.parts)},
            "unit": unit,
            "provisional": cell.provisional,
        }
        for cell in cells
    ]


def suppress(
    indicator_id: str, results: Sequence[Mapping[str, Any]], by: Sequence[str], *, threshold: int
) -> list[dict[str, Any]]:
    """Small-cell suppression for external audiences.

    Primary: a cell counting fewer than `threshold` units (but some) is withheld. Secondary: along
    every `by` dimension, cells sharing the period and the other dimensions form a line whose total
    is published at the coarser level; if exactly one cell of a line is withheld it could be
    recovered from that total, so the line's smallest published cell is withheld too, until stable.
    Dominance: a money cell summed over members (deals, meetings) where one member holds more than
    `catalogue.DOMINANCE_SHARE` is withheld too. Withheld cells keep their coordinates, with value None,
    no parts, and ``suppressed: true``; published cells lose the ``max_*`` parts (a member's value).
    Cost totals, which count no units, are not suppressed.
    """
    entry = catalogue.get(indicator_id)
    units_part = entry.units_part
    out = [
        {
            **result,
            "parts": {k: v for k, v in result["parts"].items() if not k.startswith("max_")},
            "suppressed": False,
        }
        for result in results
    ]
    if not units_part:
        return out
    if entry.dominant_part:
        for result, original in zip(out, results, strict=True):
            total = original["parts"].get(entry.dominant_part, Decimal(0))
            top = original["parts"].get(f"max_{entry.dominant_part}", Decimal(0))
            if total > 0 and top > catalogue.DOMINANCE_SHARE * total:
                result["suppressed"] = True

    def units(result: Mapping[str, Any]) -> Decimal:
        value = result["parts"].get(units_part, Decimal(0))
        return value if isinstance(value, Decimal) else Decimal(value)

    for result in out:
        if 0 < units(result) < threshold:
            result["suppressed"] = True
    changed = bool(by)
    while changed:
        changed = False
        for name in by:
            lines: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
            for result in out:
                others = tuple(result["dimensions"][other] for other in by if other != name)
                lines[(result["period"]["start"], others)].append(result)
            for line in lines.values():
                withheld = [result for result in line if result["suppressed"]]
                published = [result for result in line if not result["suppressed"] and units(result) > 0]
                if len(withheld) == 1 and published:
                    smallest = min(
                        published, key=lambda result: (units(result), sorted(result["dimensions"].items()))
                    )
                    smallest["suppressed"] = True
                    changed = True
    for result in out:
        if result["suppressed"]:
            result["value"] = None
            result["parts"] = {}
    return out
