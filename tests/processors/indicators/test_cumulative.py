"""A cumulative part's tables from one pass equal the regrouping of every row up to each cut-off."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.indicators.cumulative import cumulative_tables
from processors.indicators.generic import part_table
from processors.indicators.grouping import StoredRow, Table, project, projector

MONTHS = [date(2025, month, 1) for month in range(1, 7)]
AVAILABLE = ("country", "kind")
BY_CHOICES: list[tuple[str, ...]] = [
    (),
    ("country",),
    ("kind",),
    ("country", "kind"),
    ("country", "audience"),
]
# Amounts of several scales (the text of a sum depends on them), negative ones and zeros among them.
AMOUNTS = st.sampled_from(["0", "0.00", "1", "1.5", "2.50", "-3", "10.125", "7E+1", "100"]).map(Decimal)


@st.composite
def stored_rows(draw: Any) -> list[StoredRow]:
    # Few members, countries and order keys: members move between keys, and order keys tie.
    shared = [{"country": country, "kind": kind} for country in ("AR", "BR") for kind in ("a", "b")]
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        rows.append(
            StoredRow(
                "X",
                "p",
                draw(st.sampled_from(MONTHS)),
                draw(st.sampled_from([*shared, {"country": "AR"}])),
                draw(AMOUNTS),
                draw(st.sampled_from(["m1", "m2", "m3", "m4", None])),
                draw(st.sampled_from(["", "k1", "k2"])),
            )
        )
    return rows


def texts(table: Table) -> dict[date, dict[tuple[str, ...], str]]:
    """A table with its numbers as text: equal tables have equal values and equal digits."""
    return {period: {key: str(value) for key, value in groups.items()} for period, groups in table.items()}


@settings(max_examples=300, deadline=None)
@given(
    rows=stored_rows(),
    kind=st.sampled_from(["sum", "distinct", "latest"]),
    by=st.sampled_from(BY_CHOICES),
    first=st.integers(0, 3),
)
def test_every_cut_off_equals_the_regrouping_up_to_it(
    rows: list[StoredRow], kind: str, by: tuple[str, ...], first: int
) -> None:
    cutoffs = MONTHS[first:]
    found = cumulative_tables(rows, kind, by, AVAILABLE, cutoffs)
    assert len(found) == len(cutoffs)
    for until, tables in zip(cutoffs, found, strict=True):
        expected = part_table(rows, kind, by, AVAILABLE, until)
        assert [texts(table) for table in tables] == [texts(table) for table in expected]


@given(by=st.sampled_from(BY_CHOICES))
def test_a_projector_projects_as_project(by: tuple[str, ...]) -> None:
    key_of = projector(by, AVAILABLE)
    for dimensions in ({"country": "AR", "kind": "a"}, {"country": "BR"}, {}):
        assert key_of(dimensions) == project(dimensions, by, AVAILABLE)
        assert key_of(dimensions) == project(dimensions, by, AVAILABLE)
