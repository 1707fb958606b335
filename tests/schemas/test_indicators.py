"""Indicator cells: a stable key per cell, and a record codec for the indicators topic."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.cloudevents import InvalidEvent
from schemas.indicators import (
    INDICATOR_SCHEMA_ID,
    IndicatorValue,
    PeriodKind,
    decode_indicator,
    encode_indicator,
    indicator_key,
)


def make_value(**changes: Any) -> IndicatorValue:
    fields: dict[str, Any] = {
        "indicator": "CVF-05",
        "period": {"kind": "quarter", "start": date(2026, 4, 1)},
        "dimensions": {"country": "UY", "audience": "MSME"},
        "value": 0.5,
        "parts": {"numerator": 10, "denominator": 20},
        "version": 1,
        "as_of": datetime(2026, 7, 1, tzinfo=UTC),
        "provisional": True,
        "unit": "ratio",
    }
    fields.update(changes)
    return IndicatorValue.model_validate(fields)


def test_key_sorts_dimensions() -> None:
    key = indicator_key("CVF-01", "month", date(2026, 3, 1), {"country": "UY", "audience": "MSME"})
    assert key == "CVF-01|month|2026-03-01|audience=MSME,country=UY"
    assert key == indicator_key(
        "CVF-01", PeriodKind.MONTH, date(2026, 3, 1), {"audience": "MSME", "country": "UY"}
    )


def test_key_without_dimensions_ends_with_the_separator() -> None:
    assert indicator_key("ACT-07", "year", date(2026, 1, 1), {}) == "ACT-07|year|2026-01-01|"


def test_key_refuses_an_unknown_period_kind() -> None:
    with pytest.raises(ValueError, match="week"):
        indicator_key("CVF-01", "week", date(2026, 3, 2), {})


def test_value_key_is_the_topic_key() -> None:
    assert make_value().key == "CVF-05|quarter|2026-04-01|audience=MSME,country=UY"


@pytest.mark.parametrize(
    "period",
    [
        {"kind": "month", "start": date(2026, 3, 2)},
        {"kind": "quarter", "start": date(2026, 5, 1)},
        {"kind": "year", "start": date(2026, 7, 1)},
        {"kind": "week", "start": date(2026, 3, 2)},
    ],
)
def test_period_start_must_be_the_first_day_of_the_period(period: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make_value(period=period)


def test_suppressed_value_is_null_but_keeps_its_parts() -> None:
    value = make_value(value=None)
    assert decode_indicator(encode_indicator(value).value) == value


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(ValidationError):
        make_value(value=float("nan"))
    with pytest.raises(ValidationError):
        make_value(parts={"numerator": float("inf")})


def test_record_round_trip() -> None:
    value = make_value()
    record = encode_indicator(value)
    assert record.key == value.key.encode()
    headers = dict(record.headers)
    assert headers["ce_type"] == b"org.aladi.alcance.indicator.changed.v1"
    assert headers["ce_dataschema"] == INDICATOR_SCHEMA_ID.encode()
    assert headers["ce_subject"] == record.key
    assert headers["ce_time"] == b"2026-07-01T00:00:00Z"
    assert headers["content-type"] == b"application/json"
    assert decode_indicator(record.value) == value


def test_same_cell_version_gets_the_same_id_and_a_new_version_a_new_one() -> None:
    first = dict(encode_indicator(make_value()).headers)["ce_id"]
    assert dict(encode_indicator(make_value(value=0.7)).headers)["ce_id"] == first
    assert dict(encode_indicator(make_value(version=2)).headers)["ce_id"] != first


def test_processors_outbox_publishes_the_same_record_headers() -> None:
    # The outbox builds its records itself; this keeps the two in step with the published contract.
    from processors.indicator_records import indicator_record

    value = make_value(indicator="CVF-01", value=20, parts={"gross": 20}, unit="count")
    theirs = indicator_record(
        indicator=value.indicator,
        period_kind=value.period.kind,
        period_start=value.period.start,
        dimensions=value.dimensions,
        parts={"gross": Decimal(20)},
        version=value.version,
        as_of=value.as_of,
    )
    ours = encode_indicator(value)
    assert theirs.key == ours.key
    assert theirs.headers == ours.headers
    assert decode_indicator(theirs.value).key == value.key


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "record has no value"),
        (b"{", "invalid indicator value: "),
        (b'{"indicator": "CVF-05"}', "invalid indicator value: period: Field required"),
    ],
)
def test_decode_names_what_is_wrong(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_indicator(raw)
    assert caught.value.reason.startswith(reason)
