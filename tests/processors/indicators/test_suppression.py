"""Small-cell suppression for external audiences: primary below the threshold, secondary where a single
withheld cell could be recovered from a published total."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.read import suppress

Row = dict[str, Any]


def cell(country: str, units: int, audience: str = "MSME", start: str = "2026-01-01") -> Row:
    return {
        "indicator": "CVF-01",
        "period": {"kind": "month", "start": start},
        "dimensions": {"country": country, "audience": audience},
        "value": Decimal(units),
        "parts": {"gross": Decimal(units), "net": Decimal(units)},
        "unit": "count",
        "provisional": False,
    }


def withheld(rows: list[Row]) -> set[tuple[str, ...]]:
    return {tuple(row["dimensions"].values()) for row in rows if row["suppressed"]}


def test_a_cell_below_the_threshold_is_withheld_without_its_parts() -> None:
    rows = suppress("CVF-01", [cell("AR", 3), cell("BR", 9), cell("UY", 12)], ("country",), threshold=5)
    by_country = {row["dimensions"]["country"]: row for row in rows}
    assert (
        by_country["AR"]["suppressed"]
        and by_country["AR"]["value"] is None
        and by_country["AR"]["parts"] == {}
    )
    # AR alone could be recovered from the published total, so the next smallest cell goes too.
    assert withheld(rows) == {("AR", "MSME"), ("BR", "MSME")}
    assert by_country["UY"]["value"] == Decimal(12)


def test_two_small_cells_protect_each_other() -> None:
    rows = suppress("CVF-01", [cell("AR", 3), cell("BR", 4), cell("UY", 12)], ("country",), threshold=5)
    assert withheld(rows) == {("AR", "MSME"), ("BR", "MSME")}


@pytest.mark.parametrize("units", [0, 5, 6])
def test_cells_at_or_above_the_threshold_and_empty_cells_are_published(units: int) -> None:
    rows = suppress("CVF-01", [cell("AR", units), cell("BR", 9)], ("country",), threshold=5)
    assert withheld(rows) == set()


def test_secondary_suppression_runs_along_every_dimension_until_stable() -> None:
    rows = [
        cell("AR", 2, "MSME"),
        cell("AR", 20, "TPO_AUTHORITY"),
        cell("BR", 30, "MSME"),
        cell("BR", 40, "TPO_AUTHORITY"),
    ]
    out = suppress("CVF-01", rows, ("country", "audience"), threshold=5)
    # AR/MSME is small; its row (AR) and column (MSME) each need a second withheld cell, which in turn
    # leaves BR/TPO_AUTHORITY alone in its row and column: all four go.
    assert len(withheld(out)) == 4


def test_totals_have_no_secondary_suppression_and_periods_are_separate_lines() -> None:
    out = suppress(
        "CVF-01",
        [cell("AR", 2, start="2026-01-01"), cell("AR", 9, start="2026-02-01")],
        ("country",),
        threshold=5,
    )
    assert withheld(out) == {("AR", "MSME")}
    assert len([row for row in out if row["suppressed"]]) == 1


def test_money_totals_without_a_unit_count_are_not_suppressed() -> None:
    row = {**cell("AR", 1), "indicator": "ACT-01", "parts": {"cost_usd": Decimal(10)}}
    assert withheld(suppress("ACT-01", [row], (), threshold=5)) == set()


@pytest.mark.parametrize(("largest", "withheld_expected"), [(Decimal(900), True), (Decimal(500), False)])
def test_a_money_cell_dominated_by_one_deal_is_withheld(largest: Decimal, withheld_expected: bool) -> None:
    row = {
        **cell("AR", 1),
        "indicator": "PLGN-10",
        "value": Decimal(1000),
        "parts": {"realised_usd": Decimal(1000), "n_realised_usd": Decimal(8), "max_realised_usd": largest},
    }
    (out,) = suppress("PLGN-10", [row], (), threshold=5)
    assert out["suppressed"] is withheld_expected
    # A member's own value never leaves in an external read.
    assert "max_realised_usd" not in out["parts"]


@given(
    units=st.lists(st.integers(0, 12), min_size=1, max_size=12),
    threshold=st.integers(1, 6),
)
def test_no_published_cell_is_small_and_no_line_has_a_lone_withheld_cell(
    units: list[int], threshold: int
) -> None:
    countries = ["AR", "BR", "UY"]
    audiences = ["MSME", "TPO_AUTHORITY", "OTHER", "ACADEMIA"]
    rows = [cell(countries[i % 3], n, audiences[i // 3]) for i, n in enumerate(units)]
    out = suppress("CVF-01", rows, ("country", "audience"), threshold=threshold)
    for row in out:
        if not row["suppressed"]:
            assert not 0 < row["value"] < threshold
    for name, other in (("country", "audience"), ("audience", "country")):
        lines: dict[str, list[Row]] = {}
        for row in out:
            lines.setdefault(row["dimensions"][other], []).append(row)
        for line in lines.values():
            withheld_cells = [row for row in line if row["suppressed"]]
            published = [row for row in line if not row["suppressed"] and row["value"] > 0]
            assert not (len(withheld_cells) == 1 and published), (name, line)
