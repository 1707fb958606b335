"""The shortcuts behind `contributions` give exactly what the plain constructions give.

Parts are built without the dataclass constructor, event types are looked up instead of tested in a
chain, and time keys are assembled without strftime; each is checked here against the plain form.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from processors.indicators import contributions
from processors.indicators.base import Part, distinct_part, latest_part, sum_part
from processors.indicators.periods import (
    day_key,
    decode_member,
    encode_member,
    epoch_seconds,
    first_wins_key,
    last_wins_key,
    order_key,
)
from schemas.events.plgn import MeetingHeld
from schemas.events.training import EnrolmentCreated
from tests.schemas.factories import make_enrolment_created, make_meeting_held

AT = datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC)
DIMS = {"country": "AR", "audience": "MSME"}


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (
            sum_part("T-01", "cost", AT, DIMS, Decimal("2.50")),
            Part("T-01", "cost", "sum", AT, DIMS, Decimal("2.50")),
        ),
        (distinct_part("T-01", "n", AT, DIMS, "m"), Part("T-01", "n", "distinct", AT, DIMS, member="m")),
        (
            latest_part("T-01", "v", AT, DIMS, Decimal(3), "m", "k"),
            Part("T-01", "v", "latest", AT, DIMS, Decimal(3), member="m", order_key="k"),
        ),
    ],
)
def test_a_built_part_is_the_part_the_constructor_makes(built: Part, expected: Part) -> None:
    assert type(built) is Part
    assert built == expected and hash(built) == hash(expected) and repr(built) == repr(expected)
    assert copy.deepcopy(built) == expected
    assert dataclasses.replace(built) == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.member = "other"  # type: ignore[misc]  # the point: a part is frozen


@pytest.mark.parametrize(
    ("build", "constructor_args"),
    [
        (
            lambda: distinct_part("T-01", "n", AT, DIMS, ""),
            ("T-01", "n", "distinct", AT, DIMS, Decimal(1), ""),
        ),
        (
            lambda: latest_part("T-01", "v", AT, DIMS, Decimal(1), "", "k"),
            ("T-01", "v", "latest", AT, DIMS, 1, ""),
        ),
        (
            lambda: sum_part("T-01", "s", AT.replace(tzinfo=None), DIMS, Decimal(1)),
            ("T-01", "s", "sum", AT.replace(tzinfo=None), DIMS),
        ),
        (
            lambda: distinct_part("T-01", "n", AT.replace(tzinfo=None), DIMS, "m"),
            ("T-01", "n", "distinct", AT.replace(tzinfo=None), DIMS, 1, "m"),
        ),
    ],
)
def test_a_built_part_is_refused_as_the_constructor_refuses_it(
    build: Any, constructor_args: tuple[Any, ...]
) -> None:
    with pytest.raises(ValueError) as expected:
        Part(*constructor_args)
    with pytest.raises(ValueError) as got:
        build()
    assert str(got.value) == str(expected.value)


def test_a_subclass_of_an_event_type_contributes_what_its_base_contributes() -> None:
    class LateEnrolment(EnrolmentCreated):
        pass

    event = make_enrolment_created()
    assert contributions(LateEnrolment(**dict(event))) == contributions(event)


def test_only_the_exact_meeting_types_contribute() -> None:
    # As before lookups by type: a meeting event of any other type (here a subclass) contributes nothing.
    class RescheduledMeeting(MeetingHeld):
        pass

    event = make_meeting_held()
    assert contributions(event)
    assert contributions(RescheduledMeeting(**dict(event))) == []


def test_something_that_is_not_an_event_is_refused_as_before() -> None:
    with pytest.raises(AttributeError, match="family"):
        contributions(object())  # type: ignore[arg-type]  # the point: not an event


ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-3)), timezone(timedelta(hours=5, minutes=30))])
# Bounds one day inside the datetime range, so that every zone's instant has a UTC equivalent.
EARLIEST, LATEST = datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)
MOMENTS = st.datetimes(  # hypothesis takes naive bounds and adds the zones itself
    min_value=EARLIEST.replace(tzinfo=None), max_value=LATEST.replace(tzinfo=None), timezones=ZONES
)


@given(MOMENTS, st.integers(min_value=-5, max_value=120), st.text(max_size=5))
def test_order_key_is_the_strftime_text(moment: datetime, rank: int, tiebreak: str) -> None:
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert order_key(moment, rank, tiebreak) == f"{stamp}|{rank:02d}|{tiebreak}"


SEQUENCES = st.integers(min_value=0, max_value=10**9 - 1)


@given(MOMENTS, SEQUENCES, MOMENTS, SEQUENCES)
def test_first_and_last_wins_keys_rank_the_earlier_and_the_later_report_highest(
    moment: datetime, sequence: int, other: datetime, other_sequence: int
) -> None:
    # Like order_key's text, the key has a fixed width only from year 1000 on.
    assume(moment.astimezone(UTC).year >= 1000 and other.astimezone(UTC).year >= 1000)
    mine, theirs = (moment, sequence), (other, other_sequence)
    key, other_key = first_wins_key(moment, sequence, "t"), first_wins_key(other, other_sequence, "t")
    assert (key == other_key) == (mine == theirs)
    assert (key > other_key) == (mine < theirs)
    last, other_last = last_wins_key(moment, sequence, "t"), last_wins_key(other, other_sequence, "t")
    assert (last > other_last) == (mine > theirs)


@given(MOMENTS)
def test_epoch_seconds_and_day_key_are_those_of_the_utc_instant(moment: datetime) -> None:
    assert epoch_seconds(moment) == int(moment.astimezone(UTC).timestamp())
    assert day_key(moment) == moment.astimezone(UTC).date().isoformat()


@given(st.lists(st.text(alphabet="ab|%7C2", max_size=6), max_size=5))
def test_encode_member_escapes_only_what_needs_it(fields: list[str]) -> None:
    escaped = "|".join(field.replace("%", "%25").replace("|", "%7C") for field in fields)
    assert encode_member(*fields) == escaped
    if fields:
        assert decode_member(escaped) == fields
