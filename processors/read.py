"""The read model: indicator values from the evaluation store, regrouped, derived and (externally) suppressed.

Reads load the stored rows of the parts an indicator reads (sum cells from ``indicator_part``, live
members from ``indicator_member``, per-cell winning reports from ``indicator_report``), merging the
stored months into cells of the requested period kind, then aggregate and derive in Python with the
same pure code the tests check against a naive computation (`processors.indicators.aggregate`). The
training indicators' enrolment records are joined by PostgreSQL instead, one row per enrolment
(`processors.read_enrolments`). For BI tools, migrations 0150 and 0160 add documented SQL views over
the same tables.
"""

from __future__ import annotations

import gc
import json
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
from processors.indicators import aggregate_training, catalogue, enrolments
from processors.indicators.aggregate import Cell, ReadContext, StoredRow, aggregate, index_rows
from processors.indicators.base import PeriodKind
from processors.indicators.derive import derive_value, extra_ratios
from processors.read_enrolments import JOINED_PARTS, RAW_READS, PartKey, load_enrolments

logger = logging.getLogger(__name__)

Audience = Literal["internal", "external"]

__all__ = ["derive_value", "read_indicators", "suppress", "to_results"]

# Parts are stored per month; each query reads the months into the requested period kind ($1).
_SUMS = """
SELECT indicator, part, date_trunc($1, period_start::timestamp)::date AS period_start, dims,
       sum(value) AS value, NULL::text AS member, '' AS order_key
  FROM indicator_part
 WHERE kind = 'sum' AND (indicator, part) IN (SELECT * FROM unnest($2::text[], $3::text[]))
 GROUP BY indicator, part, 3, dims
"""
_MEMBERS = """
SELECT DISTINCT indicator, part, date_trunc($1, period_start::timestamp)::date AS period_start, dims,
       1::numeric AS value, member, '' AS order_key
  FROM indicator_member
 WHERE refcount > 0 AND (indicator, part) IN (SELECT * FROM unnest($2::text[], $3::text[]))
"""
# Per cell and member the winning report (the store's rule); the aggregation then picks across cells.
_REPORTS = """
SELECT DISTINCT ON (indicator, part, cell_start, dims, member)
       indicator, part, cell_start AS period_start, dims, amount AS value, member, order_key
  FROM (SELECT r.*, date_trunc($1, r.period_start::timestamp)::date AS cell_start
          FROM indicator_report AS r
         WHERE (r.indicator, r.part) IN (SELECT * FROM unnest($2::text[], $3::text[]))) AS r
 ORDER BY indicator, part, cell_start, dims, member, order_key DESC, event_id DESC
"""


async def load_rows(
    connection: asyncpg.Connection, period: PeriodKind, parts: Iterable[tuple[str, str]]
) -> list[StoredRow]:
    """The stored rows of `parts` (indicator, part) for one period kind."""
    by_kind: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for indicator_id, part in sorted(set(parts)):
        by_kind[catalogue.stored_part(indicator_id, part).kind].append((indicator_id, part))
    rows: list[StoredRow] = []
    # Many rows share a cell: parse each distinct dimensions text once (the mappings are read-only).
    parsed: dict[str, Mapping[str, str]] = {}
    for kind, query in (("sum", _SUMS), ("distinct", _MEMBERS), ("latest", _REPORTS)):
        wanted = by_kind.get(kind)
        if not wanted:
            continue
        records = await connection.fetch(query, period, [w[0] for w in wanted], [w[1] for w in wanted])
        rows.extend(
            StoredRow(
                indicator=record["indicator"],
                part=record["part"],
                period_start=record["period_start"],
                dimensions=_dimensions(parsed, record["dims"]),
                value=record["value"],
                member=record["member"],
                order_key=record["order_key"],
            )
            for record in records
        )
    return rows


def _dimensions(parsed: dict[str, Mapping[str, str]], text: str) -> Mapping[str, str]:
    found = parsed.get(text)
    if found is None:
        found = parsed[text] = json.loads(text)
    return found


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


async def load_targets(connection: asyncpg.Connection) -> dict[tuple[str, int], Decimal]:
    """CVF-16 annual targets by (audience, year), from table ``reach_target``."""
    records = await connection.fetch(
        "SELECT audience, year, target FROM reach_target WHERE indicator = 'CVF-16'"
    )
    return {(record["audience"], record["year"]): record["target"] for record in records}


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
) -> list[dict[str, Any]]:
    """Indicator cells of one period kind, grouped by `by` (no `by`: totals).

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

    Returns:
        One object per period and combination of the `by` dimensions: ``indicator``, ``period``
        (``kind``, ``start``), ``dimensions``, ``value``, ``parts``, ``unit``, ``provisional``, and for
        external reads ``suppressed``.

    Raises:
        KeyError: when the indicator is unknown.
        ValueError: when a `by` dimension is not one of the indicator's.
    """
    if indicator is not None:
        indicators = [catalogue.get(indicator)]
        unknown = [name for name in by if name not in indicators[0].dimensions]
        if unknown:
            raise ValueError(f"{indicator} has no dimension {', '.join(unknown)}")
    elif among is not None:
        indicators = [catalogue.get(name) for name in dict.fromkeys(among)]
        lacking = [entry.id for entry in indicators if not set(by) <= set(entry.dimensions)]
        if lacking:
            raise ValueError(f"{', '.join(lacking)} lack a dimension of {', '.join(by)}")
    else:
        indicators = [entry for entry in catalogue.INDICATORS if set(by) <= set(entry.dimensions)]
    ctx = ReadContext(
        period=period,
        by=tuple(by),
        as_of=as_of or datetime.now(UTC),
        cohort_grace_days=settings.processor.cohort_grace_days,
    )
    # The training aggregations read enrolment records that PostgreSQL joins (`read_enrolments`):
    # their parts' rows are loaded only where an aggregation reads them itself.
    joins = {
        frozenset((ref.indicator, ref.part) for ref in entry.reads)
        for entry in indicators
        if entry.aggregation in aggregate_training.AGGREGATIONS
    }
    wanted = {
        (ref.indicator, ref.part)
        for entry in indicators
        for ref in entry.reads
        if entry.aggregation not in aggregate_training.AGGREGATIONS
        or (ref.indicator, ref.part) not in JOINED_PARTS
    } | {key for entry in indicators for key in RAW_READS.get(entry.aggregation, ())}
    # One snapshot for every query, so a batch committing meanwhile is seen entirely or not at all.
    margin = Decimal(str(settings.processor.roi_margin_coefficient))
    results: list[dict[str, Any]] = []
    with cyclic_gc_paused():
        async with (
            pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            rows = await load_rows(connection, period, wanted)
            # One join over every part these indicators declare serves them all: each aggregation
            # reads only the fields of the parts it declares (the property tests compare a read of
            # every indicator at once with one read per indicator).
            records = await load_enrolments(connection, period, frozenset[PartKey]().union(*joins))
            if any(entry.id == "CVF-16" for entry in indicators):
                ctx = ReadContext(
                    ctx.period, ctx.by, ctx.as_of, ctx.cohort_grace_days, await load_targets(connection)
                )
        index = index_rows(rows)
        for parts in joins:
            index.preload(enrolments.join_enrolments, parts, records)
        for entry in indicators:
            cells = aggregate(entry.id, index, ctx)
            found = to_results(entry.id, cells, period, margin_coefficient=margin)
            if audience == "external":
                found = suppress(entry.id, found, by, threshold=settings.processor.small_cell_threshold)
            results.extend(found)
    logger.debug("read %d cells of %d indicators (%s, by %s)", len(results), len(indicators), period, by)
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
