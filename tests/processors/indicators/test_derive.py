"""Values derived at read time from aggregated parts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from processors.indicators.derive import derive_value, extra_ratios

D = Decimal


@pytest.mark.parametrize(
    ("indicator", "parts", "margin", "expected"),
    [
        ("CVF-01", {"net": D(7), "gross": D(9)}, D(1), D(7)),
        ("CVF-05", {"completed_closed": D(1), "net_closed": D(3)}, D(1), D("0.333333")),
        ("CVF-05", {"completed_closed": D(0), "net_closed": D(0)}, D(1), None),  # no closed cohort yet
        ("CVF-10", {"n": D(0)}, D(1), None),  # no completion: no median
        ("ACT-07", {"attributable_usd": D(1500), "cost_usd": D(1000)}, D(1), D(50)),
        ("ACT-07", {"attributable_usd": D(1500), "cost_usd": D(1000)}, D("0.2"), D(-70)),
        ("ACT-07", {"attributable_usd": D(1500), "cost_usd": D(0)}, D(1), None),
        ("ACT-08", {"attributable_usd": D(1500), "cost_usd": D(1000)}, D("0.2"), D("0.3")),
        ("ACT-13", {"attributable_usd": D(0), "cost_usd": D(10)}, D(1), D(-100)),
        ("CVF-16", {"certified_learners": D(3)}, D(1), None),  # no target for the cell
    ],
)
def test_derive_value(
    indicator: str, parts: dict[str, Decimal], margin: Decimal, expected: Decimal | None
) -> None:
    assert derive_value(indicator, parts, margin_coefficient=margin) == expected


def test_secondary_rates_skip_empty_denominators() -> None:
    assert extra_ratios("PLGN-07", {"no_show": D(1), "scheduled": D(4)}) == {"no_show_rate": D("0.25")}
    assert extra_ratios("PLGN-07", {"no_show": D(0), "scheduled": D(0)}) == {}
    assert extra_ratios("CVF-01", {"net": D(1)}) == {}


def test_an_unknown_indicator_is_refused() -> None:
    with pytest.raises(KeyError):
        derive_value("XYZ-1", {})
