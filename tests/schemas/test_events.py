"""Event models: deterministic ids, UTC times, strict fields, keys that order what must be ordered."""

from __future__ import annotations

import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas.events.base import (
    EVENT_ID_NAMESPACE,
    MEMBER_STATES,
    Audience,
    Event,
    EventRetracted,
    Money,
    event_id_for,
)
from schemas.events.training import EnrolmentCreated, LearnerRegistered
from schemas.registry import ALL_EVENT_CLASSES, EVENT_TYPES, event_class, event_names
from tests.schemas.factories import (
    FACTORIES,
    make_contact_responded,
    make_cost_recorded,
    make_deal_reported,
    make_enrolment_created,
    make_meeting_held,
    make_training_event_retracted,
    money,
    org_key,
    person_key,
)


def test_event_id_is_deterministic_per_source_record() -> None:
    assert event_id_for("cvf-lrs", "stmt-1") == event_id_for("cvf-lrs", "stmt-1")
    assert event_id_for("cvf-lrs", "stmt-1") != event_id_for("cvf-lrs", "stmt-1:completed")
    assert event_id_for("cvf-lrs", "stmt-1") != event_id_for("cvf-lrs2", "stmt-1")
    assert event_id_for("a", "b:c") != event_id_for("a:b", "c")
    assert event_id_for("cvf-lrs", "stmt-1").version == 5


def test_event_id_namespace_never_changes() -> None:
    # Changing the namespace would change every id and defeat deduplication of re-pulled records.
    assert uuid.UUID("6f1d7a52-0b7e-5c8e-9a41-3f2b8d5e0c17") == EVENT_ID_NAMESPACE
    assert str(event_id_for("cvf-lrs", "stmt-1")) == str(uuid.uuid5(EVENT_ID_NAMESPACE, "cvf-lrs\x1fstmt-1"))


def test_create_derives_the_event_id_from_the_record() -> None:
    first = make_enrolment_created(record_identity="enrol-9")
    again = make_enrolment_created(record_identity="enrol-9", occurred_at=datetime(2027, 1, 1, tzinfo=UTC))
    assert first.event_id == again.event_id == event_id_for("cvf-test", "enrol-9")


def test_occurred_at_is_normalised_to_utc() -> None:
    local = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=-3)))
    event = make_enrolment_created(occurred_at=local, enrolled_at=local)
    assert event.occurred_at.tzinfo is UTC
    assert event.occurred_at == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert event.enrolled_at.tzinfo is UTC


def test_naive_datetimes_are_refused_in_python_too() -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        make_enrolment_created(occurred_at=datetime(2026, 3, 2, 12, 0))  # noqa: DTZ001  (the point)


def test_events_are_frozen_and_refuse_unknown_fields() -> None:
    event = make_enrolment_created()
    with pytest.raises(ValidationError):
        event.country = "AR"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="email"):
        make_enrolment_created(email="ana@example.org")


def test_training_events_are_keyed_by_the_learner() -> None:
    event = make_enrolment_created(subject_key=person_key("ana"))
    assert event.learner_key == person_key("ana")
    with pytest.raises(ValidationError, match="subject_key"):
        make_enrolment_created(subject_key="ana@example.org")
    with pytest.raises(ValidationError, match="subject_key"):
        make_enrolment_created(subject_key=org_key())


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (make_deal_reported, "org_key"),
        (make_meeting_held, "org_a_key"),
        (make_contact_responded, "from_org_key"),
        (make_cost_recorded, "activity_id"),
    ],
)
def test_subject_key_follows_its_field_and_must_equal_it(factory: Any, field: str) -> None:
    event = factory()
    assert event.subject_key == getattr(event, field)
    other = org_key("other") if field != "activity_id" else "round-2"
    moved = factory(**{field: other})
    assert moved.subject_key == other
    with pytest.raises(ValidationError, match=f"subject_key must equal {field}"):
        factory(**{field: other, "subject_key": event.subject_key})


def test_retraction_is_keyed_like_the_retracted_event_or_by_its_id() -> None:
    retraction = make_training_event_retracted()
    assert isinstance(retraction, EventRetracted)
    assert retraction.subject_key == make_enrolment_created().subject_key
    by_id = make_training_event_retracted(subject_key=str(retraction.retracted_event_id))
    assert by_id.subject_key == str(retraction.retracted_event_id)


@pytest.mark.parametrize("cls", ALL_EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_every_class_declares_type_version_family_names_and_key(cls: type[Event]) -> None:
    event_type = cls.model_fields["event_type"].default
    assert typing.get_args(cls.model_fields["event_type"].annotation) == (event_type,)
    assert typing.get_args(cls.model_fields["schema_version"].annotation) == (1,)
    assert cls.family in {"training", "plgn", "finance"}
    assert event_type.split(".")[0] == {"training": "cvf", "plgn": "plgn", "finance": "finance"}[cls.family]
    assert set(cls.names) == {"es", "pt", "en"} and all(cls.names.values())
    assert "Key:" in (cls.__doc__ or "")
    assert event_class(event_type) is cls
    assert event_names(event_type) == cls.names


def test_registry_lists_every_type_once() -> None:
    assert len(EVENT_TYPES) == len(ALL_EVENT_CLASSES) == 26
    assert set(EVENT_TYPES) == set(FACTORIES)


PERSONAL_FIELD_WORDS = ("name", "email", "mail", "tax", "phone", "address", "birth", "username", "user_id")


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, info in model.model_fields.items():
        names.add(name)
        for arg in [info.annotation, *typing.get_args(info.annotation)]:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _field_names(arg, seen)
    return names


def test_no_event_has_a_field_for_personal_data() -> None:
    seen: set[type[BaseModel]] = set()
    fields = set().union(*(_field_names(cls, seen) for cls in ALL_EVENT_CLASSES))
    allowed = {"changed_field_names"}  # names of profile fields, never their values
    offending = {field for field in fields - allowed if any(word in field for word in PERSONAL_FIELD_WORDS)}
    assert offending == set()


def test_member_states_and_audiences() -> None:
    assert len(MEMBER_STATES) == 13
    assert {"AR", "BR", "MX", "UY", "CU", "PA"} <= MEMBER_STATES
    assert [audience.value for audience in Audience][:4] == [
        "TPO_AUTHORITY",
        "BUSINESS_CHAMBER",
        "SECTOR_ASSOCIATION",
        "MSME",
    ]


def test_learner_attributes_are_carried_on_learner_and_enrolment_events() -> None:
    for cls in (LearnerRegistered, EnrolmentCreated):
        assert {"country", "audience", "org_key", "gender"} <= set(cls.model_fields)
    assert {"offering_starts_at", "offering_ends_at"} <= set(EnrolmentCreated.model_fields)


# --- Money ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [Decimal("12.50"), 12, "12.50", "0", Decimal("1E+3")])
def test_money_accepts_exact_amounts(amount: Any) -> None:
    value = money(amount)
    assert value.amount == Decimal(amount)


@pytest.mark.parametrize(
    "amount", ["-1", Decimal("-0.01"), 1.5, "1e3", "0.1234567", True, "NaN", Decimal("NaN")]
)
def test_money_refuses_negative_inexact_or_odd_amounts(amount: Any) -> None:
    with pytest.raises(ValidationError):
        Money(amount=amount, currency="USD", usd_amount="1")


def test_money_travels_as_decimal_strings() -> None:
    value = money(Decimal("1E+3"), "BRL", Decimal("180.5"))
    assert value.model_dump(mode="json") == {"amount": "1000", "currency": "BRL", "usd_amount": "180.5"}
    assert Money.model_validate_json(value.model_dump_json(), strict=True) == value
