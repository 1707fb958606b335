"""Keys of the `indicators` topic: one per cell, whatever the dimension values hold."""

from datetime import date

from schemas.indicators import indicator_key


def test_dimension_order_does_not_change_the_key() -> None:
    first = indicator_key("CVF-01", "month", date(2026, 3, 1), {"country": "UY", "audience": "MSME"})
    second = indicator_key("CVF-01", "month", date(2026, 3, 1), {"audience": "MSME", "country": "UY"})
    assert first == second == "CVF-01|month|2026-03-01|audience=MSME,country=UY"


def test_separators_inside_values_cannot_merge_two_cells() -> None:
    tricky = indicator_key("CVF-01", "year", date(2026, 1, 1), {"course": "a=b,country=UY"})
    plain = indicator_key("CVF-01", "year", date(2026, 1, 1), {"course": "a", "country": "UY"})
    assert tricky != plain
    assert tricky == "CVF-01|year|2026-01-01|course=a%3Db%2Ccountry%3DUY"
