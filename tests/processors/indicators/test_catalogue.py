"""The catalogue is consistent with itself and with what the event functions write."""

from __future__ import annotations

from hypothesis import given, settings

from processors.indicators import contributions
from processors.indicators.catalogue import CATALOGUE, INDICATORS, get, stored_part
from schemas.registry import ALL_EVENT_CLASSES

from .world import World, worlds

REQUIRED = [
    "CVF-01",
    "CVF-02",
    "CVF-05",
    "CVF-07",
    "CVF-08",
    "CVF-10",
    "CVF-11",
    "CVF-16",
    "CVF-17",
    "CVF-19",
    "CVF-20",
    "CVF-23",
    "PLGN-01",
    "PLGN-02",
    "PLGN-04",
    "PLGN-06",
    "PLGN-07",
    "PLGN-09",
    "PLGN-10",
    "PLGN-11",
    "PLGN-16",
    "ACT-01",
    "ACT-02",
    "ACT-03",
    "ACT-04",
    "ACT-05",
    "ACT-06",
    "ACT-07",
    "ACT-08",
    "ACT-13",
]


def test_every_required_indicator_is_in_the_catalogue_with_three_names_and_an_article() -> None:
    assert set(REQUIRED) <= set(CATALOGUE)
    for entry in INDICATORS:
        assert all(entry.names.values()), entry.id
        assert entry.definition and entry.formula, entry.id
        assert set(entry.article.replace(",", " ").split()) <= {"1", "5", "7", "8", "9"}, entry.id


def test_every_part_an_indicator_reads_is_stored_and_covers_its_dimensions() -> None:
    for entry in INDICATORS:
        assert entry.reads, entry.id
        for ref in entry.reads:
            stored_part(ref.indicator, ref.part)  # raises if nobody stores it
        # At least one part carries every dimension the indicator can be grouped by.
        assert any(set(entry.dimensions) <= set(get(ref.indicator).dimensions) for ref in entry.reads), (
            entry.id
        )


def test_derivations_name_aggregated_parts_and_units_are_known() -> None:
    for entry in INDICATORS:
        assert entry.unit in {"count", "ratio", "usd", "days", "hours", "percent", "points", "usd_per_unit"}
        assert len(entry.derivation.args) == (1 if entry.derivation.op == "part" else 2), entry.id


def test_unknown_indicator_is_a_clear_error() -> None:
    try:
        get("CVF-99")
    except KeyError as exc:
        assert "CVF-99" in str(exc)
    else:
        raise AssertionError("no error for an unknown id")


def test_every_event_class_is_handled_without_error_by_the_dispatch() -> None:
    # Event types no indicator uses still go through contributions() and give an empty list.
    assert {cls.family for cls in ALL_EVENT_CLASSES} <= {"training", "plgn", "finance"}


@settings(max_examples=80, deadline=None)
@given(world=worlds())
def test_parts_match_their_declaration_and_are_a_pure_function_of_the_event(world: World) -> None:
    for event in world.events + world.retractions:
        parts = contributions(event)
        assert parts == contributions(event)
        for part in parts:
            declared = stored_part(part.indicator, part.part)
            assert declared.kind == part.kind, (part.indicator, part.part)
            assert set(part.dimensions) == set(get(part.indicator).dimensions), (part.indicator, part.part)
            assert all(isinstance(value, str) and value for value in part.dimensions.values())
            if part.kind != "sum":
                assert part.member
