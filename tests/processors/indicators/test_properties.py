"""For any history with duplicates, reordering, late events and retractions, the indicators read from the
stored parts equal a naive computation over the distinct, non-retracted events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.indicators.aggregate import Cell, ReadContext, StoredRow, aggregate
from processors.indicators.base import PeriodKind
from processors.indicators.derive import derive_value, extra_ratios

from . import naive
from .reference import ReferenceStore
from .world import World, worlds

# Some instants fall inside a cohort's grace period (offering "off-a" ends on 2 March 2026).
AS_OF = st.sampled_from(
    [
        datetime(2026, 3, 10, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
        datetime(2026, 9, 1, tzinfo=UTC),
        datetime(2028, 1, 1, tzinfo=UTC),
    ]
)
GRACE_DAYS = 14
TOLERANCE = Decimal("0.00001")


def read(
    rows_of: dict[PeriodKind, list[StoredRow]],
    indicator: str,
    period: PeriodKind,
    by: Sequence[str],
    as_of: datetime,
    margin: Decimal = Decimal(1),
) -> dict[tuple[Any, ...], tuple[Decimal | None, Cell]]:
    ctx = ReadContext(period=period, by=tuple(by), as_of=as_of, cohort_grace_days=GRACE_DAYS)
    return {
        (cell.period_start, tuple(cell.dimensions[name] for name in by)): (
            derive_value(indicator, cell.parts, margin_coefficient=margin),
            cell,
        )
        for cell in aggregate(indicator, rows_of[period], ctx)
    }


def same(actual: Decimal | None, expected: Any) -> bool:
    if expected is None or actual is None:
        return actual is None and expected is None
    return abs(actual - Decimal(expected)) <= TOLERANCE


def check(
    indicator: str, expected: naive.Expected, got: dict[tuple[Any, ...], tuple[Decimal | None, Cell]]
) -> None:
    for key, want in expected.items():
        assert key in got, f"{indicator}: cell {key} missing; got {sorted(got)}"
        value, cell = got[key]
        assert same(value, want["value"]), f"{indicator} {key}: {value} != {want['value']} ({cell.parts})"
        shown = {**cell.parts, **extra_ratios(indicator, cell.parts)}
        for name in want.keys() - {"value", "provisional"}:
            assert same(shown.get(name), want[name]), (
                f"{indicator} {key}: {name} {shown.get(name)} != {want[name]}"
            )
        if "provisional" in want:
            assert cell.provisional == want["provisional"], (
                f"{indicator} {key}: provisional {cell.provisional}"
            )
    for key, (value, cell) in got.items():
        if key not in expected:
            assert value in (None, 0), f"{indicator}: unexpected cell {key} = {value} ({cell.parts})"


def stored_rows(world: World) -> dict[PeriodKind, list[StoredRow]]:
    store = ReferenceStore()
    for event in world.stream:
        store.apply(event)
    return {kind: store.rows(kind) for kind in ("month", "quarter", "year")}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds(), as_of=AS_OF, by=st.sampled_from([(), ("country",), ("audience",)]))
def test_training_indicators_equal_naive_computation(
    world: World, as_of: datetime, by: tuple[str, ...]
) -> None:
    rows = stored_rows(world)
    expected = naive.training(world.live, by, as_of, GRACE_DAYS)
    for indicator in naive.TRAINING_INDICATORS:
        if indicator == "CVF-23" and by == ("audience",):
            continue
        check(indicator, expected.get(indicator, {}), read(rows, indicator, "month", by, as_of))
    check("CVF-22", naive.pathway(world.live, by, as_of), read(rows, "CVF-22", "month", by, as_of))
    check("CVF-04", naive.active_learners(world.live, by), read(rows, "CVF-04", "month", by, as_of))
    if not by:
        check("CVF-17", naive.country_coverage(world.live), read(rows, "CVF-17", "month", by, as_of))
        check(
            "CVF-11",
            naive.time_to_certification(world.live, as_of, GRACE_DAYS),
            read(rows, "CVF-11", "month", by, as_of),
        )
    check(
        "CVF-20", naive.cost_per_certificate(world.live), read(rows, "CVF-20", "month", ("offering",), as_of)
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds(max_enrolments=0), as_of=AS_OF, margin=st.sampled_from([Decimal(1), Decimal("0.3")]))
def test_plgn_and_activity_indicators_equal_naive_computation(
    world: World, as_of: datetime, margin: Decimal
) -> None:
    rows = stored_rows(world)
    live = world.live
    check(
        "PLGN-01", naive.registered_stock(live, as_of), read(rows, "PLGN-01", "quarter", ("country",), as_of)
    )
    check("PLGN-07", naive.meetings(live), read(rows, "PLGN-07", "month", ("activity",), as_of))
    check("PLGN-06", naive.contact_answers(live), read(rows, "PLGN-06", "month", ("country",), as_of))
    check("PLGN-02", naive.active_firms(live, as_of), read(rows, "PLGN-02", "month", ("country",), as_of))
    check(
        "PLGN-10",
        naive.realised_by_exporter_country(live, as_of),
        read(rows, "PLGN-10", "year", ("country",), as_of),
    )
    directory = read(rows, "PLGN-16", "year", ("recipient",), as_of)
    check("PLGN-16", naive.directory(live, as_of), directory)
    check("ACT-01", naive.activity_costs(live), read(rows, "ACT-01", "month", (), as_of))
    check(
        "ACT-07", naive.roi(live, as_of, margin), read(rows, "ACT-07", "year", ("activity",), as_of, margin)
    )
    check("ACT-13", naive.portfolio(live, as_of, margin), read(rows, "ACT-13", "year", (), as_of, margin))


@settings(max_examples=60, deadline=None)
@given(world=worlds(max_enrolments=4))
def test_arrival_order_does_not_change_the_stored_rows(world: World) -> None:
    forward = ReferenceStore()
    backward = ReferenceStore()
    for event in world.stream:
        forward.apply(event)
    for event in reversed(world.stream):
        backward.apply(event)
    for kind in ("month", "quarter", "year"):
        assert sorted(map(repr, forward.rows(kind))) == sorted(map(repr, backward.rows(kind)))
