"""A read's row index: each indicator sees only its declared parts, and joins are built once per part set."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from processors.indicators.aggregate import RowIndex, StoredRow, index_rows


def row(indicator: str, part: str, member: str) -> StoredRow:
    return StoredRow(indicator, part, date(2026, 1, 1), {}, Decimal(1), member)


ROWS = [row("A", "x", "m1"), row("A", "x", "m2"), row("B", "y", "m3"), row("C", "z", "m4")]


def test_a_view_holds_only_the_requested_parts_that_have_rows() -> None:
    index = index_rows(ROWS)
    view = index.only([("A", "x"), ("C", "z"), ("D", "w")])
    assert set(view) == {("A", "x"), ("C", "z")}
    assert [r.member for r in view[("A", "x")]] == ["m1", "m2"]


def test_views_with_the_same_parts_share_a_join_and_other_views_build_their_own() -> None:
    built: list[frozenset[tuple[str, str]]] = []

    def members(index: RowIndex) -> set[str]:
        built.append(frozenset(index))
        return {r.member or "" for rows in index.values() for r in rows}

    index = index_rows(ROWS)
    first = index.only([("A", "x"), ("B", "y")])
    same = index.only([("B", "y"), ("A", "x"), ("D", "w")])
    other = index.only([("A", "x")])
    assert first.joined(members) == {"m1", "m2", "m3"}
    assert same.joined(members) == {"m1", "m2", "m3"}
    assert other.joined(members) == {"m1", "m2"}
    assert built == [frozenset({("A", "x"), ("B", "y")}), frozenset({("A", "x")})]


def test_a_preloaded_join_serves_the_views_made_for_exactly_its_parts() -> None:
    def members(index: RowIndex) -> set[str]:
        return {r.member or "" for rows in index.values() for r in rows}

    index = index_rows(ROWS)
    # The rows of B/y were never loaded: the store joined them (as read_enrolments does).
    index.preload(members, [("A", "x"), ("B", "y")], {"joined-by-the-store"})
    assert index.only([("B", "y"), ("A", "x")]).joined(members) == {"joined-by-the-store"}
    assert index.only([("A", "x")]).joined(members) == {"m1", "m2"}
    assert index.only([("A", "x"), ("B", "y"), ("C", "z")]).joined(members) == {"m1", "m2", "m3", "m4"}


def test_a_cached_value_is_built_once_per_key_for_an_index_and_its_views() -> None:
    built: list[str] = []

    def build(label: str) -> str:
        built.append(label)
        return label

    index = index_rows(ROWS)
    assert index.cached(("k", 1), lambda: build("first")) == "first"
    assert index.only([("A", "x")]).cached(("k", 1), lambda: build("again")) == "first"
    assert index.cached(("k", 2), lambda: build("second")) == "second"
    assert index_rows(ROWS).cached(("k", 1), lambda: build("another read")) == "another read"
    assert built == ["first", "second", "another read"]
