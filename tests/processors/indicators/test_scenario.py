"""Indicator values of a small hand-written history, worked out by hand from the domain formulas."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from processors.indicators.aggregate import ReadContext, aggregate
from processors.indicators.base import PeriodKind
from processors.indicators.derive import derive_value, extra_ratios

from . import scenario
from .reference import ReferenceStore

AS_OF = datetime(2026, 9, 1, tzinfo=UTC)


def values(
    indicator: str,
    period: PeriodKind,
    by: tuple[str, ...] = (),
    as_of: datetime = AS_OF,
    margin: Decimal = Decimal(1),
) -> dict[tuple[date, tuple[str, ...]], tuple[Decimal | None, bool]]:
    store = ReferenceStore()
    for event in scenario.history().stream:
        store.apply(event)
    ctx = ReadContext(period=period, by=by, as_of=as_of, cohort_grace_days=14)
    return {
        (cell.period_start, tuple(cell.dimensions.values())): (
            derive_value(indicator, cell.parts, margin_coefficient=margin),
            cell.provisional,
        )
        for cell in aggregate(indicator, store.rows(period), ctx)
    }


JAN, FEB, MAR, YEAR = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1), date(2026, 1, 1)


@pytest.mark.parametrize(
    ("indicator", "period", "key", "expected"),
    [
        ("CVF-01", "month", (JAN, ()), "3"),  # four enrolments, one withdrawn before the start
        ("CVF-02", "month", (JAN, ()), "2"),  # learner 1 twice, learner 2; learner 3 withdrew
        ("CVF-05", "month", (JAN, ()), "0.666667"),  # e1, e2 completed of e1, e2, e4 (cohorts closed)
        ("CVF-07", "month", (JAN, ()), "0.666667"),
        ("CVF-08", "month", (JAN, ()), "0.333333"),  # e4 started and never completed
        ("CVF-10", "month", (JAN, ()), "25"),  # 20 and 30 days
        ("CVF-11", "month", (JAN, ()), "29"),  # 27 and 31 days
        ("CVF-19", "month", (FEB, ()), "2"),
        ("CVF-17", "month", (FEB, ()), "2"),  # AR and BR
        ("CVF-23", "year", (YEAR, ()), "1"),  # firm 1 joined PLGN 19 days after, firm 2 met on day 28
        ("PLGN-01", "year", (date(2025, 1, 1), ()), "1"),
        ("PLGN-01", "year", (YEAR, ()), "2"),
        ("PLGN-07", "month", (MAR, ()), "1"),
        ("PLGN-10", "year", (YEAR, ()), "4000"),  # the exporter's report, not the importer's 9000
        ("ACT-01", "month", (MAR, ()), "1000"),
        ("ACT-02", "year", (YEAR, ()), "2"),
        ("ACT-03", "year", (YEAR, ()), "500"),
        ("ACT-04", "year", (YEAR, ()), "1000"),
        ("ACT-05", "year", (YEAR, ()), "1600"),  # 4000 x 50% x 80%
        ("ACT-06", "year", (YEAR, ()), "1.6"),
        ("ACT-07", "year", (YEAR, ()), "60"),  # (1600 - 1000) / 1000 x 100
        ("ACT-08", "year", (YEAR, ()), "1.6"),
    ],
)
def test_hand_computed_values(
    indicator: str, period: PeriodKind, key: tuple[date, tuple[str, ...]], expected: str
) -> None:
    assert values(indicator, period)[key][0] == Decimal(expected)


def test_rates_count_closed_cohorts_only_and_flag_open_ones() -> None:
    # On 1 May the second offering (ends 20 July) is still open: e4 is left out and the cell is provisional.
    assert values("CVF-05", "month", as_of=datetime(2026, 5, 1, tzinfo=UTC))[(JAN, ())] == (Decimal(1), True)
    assert values("CVF-05", "month")[(JAN, ())][1] is False


def test_roi_uses_the_margin_coefficient_and_is_provisional_for_twelve_months() -> None:
    assert values("ACT-07", "year", margin=Decimal("0.5"))[(YEAR, ())] == (Decimal(-20), True)
    late = datetime(2027, 6, 1, tzinfo=UTC)
    assert values("ACT-07", "year", as_of=late)[(YEAR, ())] == (Decimal(60), True)  # as of end 2026: open
    assert values("ACT-13", "year", as_of=late) == {(date(2027, 1, 1), ()): (Decimal(60), False)}
    assert values("ACT-13", "year") == {}
    assert values("ACT-05", "year")[(YEAR, ())] == (Decimal(1600), True)


def test_grouping_by_a_dimension_splits_the_cells() -> None:
    by_country = values("CVF-01", "month", ("country",))
    assert by_country == {
        (JAN, ("AR",)): (Decimal(2), False),
        (JAN, ("BR",)): (Decimal(1), False),
        (JAN, ("UY",)): (Decimal(0), False),
    }
    assert values("PLGN-10", "year", ("country",)) == {(YEAR, ("AR",)): (Decimal(4000), False)}


def test_a_dimension_the_indicator_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="no dimension"):
        values("CVF-23", "month", ("course",))


def test_secondary_rates_are_shown_beside_the_value() -> None:
    store = ReferenceStore()
    for event in scenario.history().stream:
        store.apply(event)
    (cell,) = aggregate("PLGN-07", store.rows("month"), ReadContext(period="month", as_of=AS_OF))
    assert extra_ratios("PLGN-07", cell.parts) == {"no_show_rate": Decimal(0)}
