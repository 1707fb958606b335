"""Read-time aggregation's entry point: one indicator's cells, by the aggregation its catalogue names; pure.

The rules of regrouping live in `grouping` (shared with the family aggregations `aggregate_training`,
`aggregate_plgn` and `aggregate_finance`); this module only picks the aggregation an indicator declares.
"""

from __future__ import annotations

from collections.abc import Iterable

from processors.indicators import aggregate_finance, aggregate_plgn, aggregate_training, catalogue
from processors.indicators.generic import aggregate_parts
from processors.indicators.grouping import (
    Aggregator,
    Cell,
    ReadContext,
    RowIndex,
    StoredRow,
    index_rows,
    part_key,
)

__all__ = ["Cell", "ReadContext", "RowIndex", "StoredRow", "aggregate", "index_rows"]

_AGGREGATORS: dict[str, Aggregator] = {
    "parts": aggregate_parts,
    **aggregate_training.AGGREGATIONS,
    **aggregate_plgn.AGGREGATIONS,
    **aggregate_finance.AGGREGATIONS,
}


def aggregate(indicator_id: str, rows: Iterable[StoredRow] | RowIndex, ctx: ReadContext) -> list[Cell]:
    """Cells of one indicator for `ctx.period` grouped by `ctx.by`, from the rows of that period kind.

    `rows` may be a `RowIndex` of the rows of many indicators, shared by their aggregations; each
    sees only the parts its indicator declares, as when given plain rows.

    Raises:
        KeyError: when the indicator is unknown.
        ValueError: when `ctx.by` names a dimension the indicator does not have.
    """
    indicator = catalogue.get(indicator_id)
    unknown = [name for name in ctx.by if name not in indicator.dimensions]
    if unknown:
        raise ValueError(
            f"{indicator_id} has no dimension {', '.join(unknown)}"
            f" (it has: {', '.join(indicator.dimensions) or 'none'})"
        )
    if len(set(ctx.by)) != len(ctx.by):
        raise ValueError(f"repeated dimension in {ctx.by}")
    wanted = {part_key(ref) for ref in indicator.reads}
    if isinstance(rows, RowIndex):
        index = rows.only(wanted)
    else:
        index = index_rows(row for row in rows if (row.indicator, row.part) in wanted)
    return _AGGREGATORS[indicator.aggregation](indicator, index, ctx)
