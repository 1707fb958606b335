"""What a page shows: tables of typed cells, their bar charts, their filters, and their CSV export.

A cell is a plain value, `None` (not enough data: nothing to count, or a zero denominator), `WITHHELD`
(a small cell suppressed for the caller's role) or a `Rate` carrying its numerator and denominator.
The same table gives the HTML (formatted for a language), the chart and the CSV (raw values).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from web.pages.i18n import Speaker

Kind = Literal[
    "text", "dimension", "count", "number", "money", "percent", "rate", "date", "month", "moment", "status"
]


class _Withheld:
    """The marker of a suppressed cell."""

    def __repr__(self) -> str:
        return "WITHHELD"


WITHHELD = _Withheld()


@dataclass(frozen=True)
class Rate:
    """A rate shown with its numerator and denominator; `value` is None when the denominator is 0."""

    value: float | None
    numerator: float | None
    denominator: float | None


@dataclass(frozen=True)
class Column:
    """A table column: its key in the rows and CSV, its heading, and how its cells read."""

    key: str
    label: str
    kind: Kind = "text"
    dimension: str = ""
    # A link on each cell: this text with `{}` replaced by the cell's raw value.
    link: str = ""


@dataclass(frozen=True)
class Chart:
    """Horizontal bars: one per row, labelled by `label_key`, as long as `value_key`."""

    label_key: str
    value_key: str
    # A second mark per bar (a target or a pace line), drawn as a tick.
    marker_key: str = ""


@dataclass
class Table:
    """One table of a page; `indicators` are the ids whose change refreshes it on an open page."""

    id: str
    caption: str
    columns: Sequence[Column]
    rows: list[dict[str, Any]]
    indicators: Sequence[str] = ()
    chart: Chart | None = None
    note: str = ""
    forbidden: bool = False


@dataclass(frozen=True)
class Option:
    """One choice of a filter."""

    value: str
    label: str


@dataclass(frozen=True)
class Filter:
    """A filter of the page, kept in the query string."""

    name: str
    label: str
    options: Sequence[Option]
    selected: str


@dataclass
class Page:
    """A page: its title, filters, tiles and tables."""

    key: str
    title: str
    filters: list[Filter] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    tiles: list[dict[str, Any]] = field(default_factory=list)
    lead: str = ""


def shown(value: Any, column: Column, say: Speaker) -> str:
    """A cell as text in the speaker's language; not enough data and withheld cells read differently."""
    if value is WITHHELD:
        return say("withheld")
    if isinstance(value, Rate):
        if value.value is None and value.denominator is None:
            return say("no_data")
        parts = f"{_number(value.numerator, say)} / {_number(value.denominator, say)}"
        if value.value is None:
            return f"{say('no_data')} ({parts})"
        return f"{say.percent(value.value)} ({parts})"
    if value is None:
        return say("no_data")
    kind = column.kind
    if kind == "dimension":
        return say.value_of(column.dimension, str(value))
    if kind == "count":
        return say.number(value)
    if kind == "number":
        return say.number(value, 2)
    if kind == "money":
        return say.money(value)
    if kind == "percent":
        return say.percent(value)
    if kind == "status":
        return say(str(value))
    if kind == "date" and isinstance(value, date):
        return say.day(value)
    if kind == "month" and isinstance(value, date):
        return say.month(value)
    if kind == "moment" and isinstance(value, datetime):
        return say.moment(value)
    return str(value)


def _number(value: float | None, say: Speaker) -> str:
    return say("no_data") if value is None else say.number(value, 2)


def magnitude(value: Any) -> float | None:
    """The length of a cell's bar, or None when it has none (no data, withheld)."""
    if isinstance(value, Rate):
        return value.value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return float(value)
    return None


def sort_rows(table: Table, key: str, *, descending: bool) -> None:
    """Order the table's rows by one column; cells without a value (no data, withheld) go last."""
    column = next(c for c in table.columns if c.key == key)

    def order(row: dict[str, Any]) -> tuple[bool, float, str]:
        value = row.get(key)
        number = magnitude(value)
        empty = value is None or value is WITHHELD or (isinstance(value, Rate) and value.value is None)
        if column.kind in ("text", "dimension", "status") or number is None:
            return empty, 0.0, "" if empty else str(value)
        return empty, -number if descending else number, ""

    table.rows.sort(key=order)
    if descending and column.kind in ("text", "dimension", "status"):
        filled = [row for row in table.rows if not order(row)[0]]
        table.rows[: len(filled)] = filled[::-1]


def to_csv(table: Table) -> str:
    """The table's raw values: rates as value, numerator and denominator; withheld cells as `withheld`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # A column holding rates (in any row) gets its numerator and denominator columns too.
    with_parts = {
        c.key
        for c in table.columns
        if c.kind == "rate" or any(isinstance(row.get(c.key), Rate) for row in table.rows)
    }
    head: list[str] = []
    for column in table.columns:
        head.append(column.key)
        if column.key in with_parts:
            head += [f"{column.key}_numerator", f"{column.key}_denominator"]
    writer.writerow(head)
    for row in table.rows:
        line: list[str] = []
        for column in table.columns:
            value = row.get(column.key)
            if isinstance(value, Rate):
                line += [_raw(value.value), _raw(value.numerator), _raw(value.denominator)]
            elif column.key in with_parts:
                line += [_raw(value), "", ""]
            else:
                line.append(_raw(value))
        writer.writerow(line)
    return out.getvalue()


def _raw(value: Any) -> str:
    if value is None:
        return ""
    if value is WITHHELD:
        return "withheld"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
