"""The committed JSON Schemas are what the models generate, and they accept exactly what the models accept."""

from __future__ import annotations

import json
import uuid
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from schemas import jsonschema_gen
from schemas.events.base import Event
from schemas.indicators import IndicatorValue
from schemas.registry import ALL_EVENT_CLASSES, EVENT_TYPES, schema_id, schema_version_of
from tests.schemas.factories import FACTORIES, org_key, person_key

EVENT_TYPE_NAMES = sorted(EVENT_TYPES)


@cache
def validator(event_type: str) -> Draft202012Validator:
    """One validator per schema, built once and reused (as a real consumer would)."""
    if event_type == "indicator":
        name = jsonschema_gen.INDICATOR_FILE
    else:
        name = jsonschema_gen.file_name(EVENT_TYPES[event_type])
    document = jsonschema_gen.load(name)
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


def model_accepts(model: type[BaseModel], document: Any) -> bool:
    try:
        model.model_validate_json(json.dumps(document), strict=True)
    except ValidationError:
        return False
    return True


def schema_accepts(event_type: str, document: Any) -> bool:
    return bool(validator(event_type).is_valid(document))


def cross_field_rules_hold(cls: type[Event], document: Any) -> bool:
    """The one rule JSON Schema cannot express: `subject_key` equals the class's subject field."""
    field = cls.subject_field
    if field is None or not isinstance(document, dict):
        return True
    return document.get("subject_key") == document.get(field)


def valid_document(event_type: str) -> dict[str, Any]:
    document: dict[str, Any] = FACTORIES[event_type]().model_dump(mode="json")
    return document


# --- generated files --------------------------------------------------------------------------------


def test_committed_schema_files_are_what_the_generator_produces() -> None:
    assert jsonschema_gen.stale() == [], "run `python -m schemas.jsonschema_gen` and commit the result"


def test_stale_check_notices_a_hand_edit(tmp_path: Any) -> None:
    jsonschema_gen.write(tmp_path)
    assert jsonschema_gen.stale(tmp_path) == []
    target = tmp_path / jsonschema_gen.file_name(EVENT_TYPES["cvf.enrolment.created"])
    target.write_text(target.read_text().replace('"maxLength": 256', '"maxLength": 999'))
    (tmp_path / "orphan.v1.schema.json").write_text("{}")
    assert jsonschema_gen.stale(tmp_path) == [target.name, "orphan.v1.schema.json"]


@pytest.mark.parametrize("cls", ALL_EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_each_schema_names_its_model_and_has_the_dataschema_id(cls: type[Event]) -> None:
    document = jsonschema_gen.load(jsonschema_gen.file_name(cls))
    event_type = cls.model_fields["event_type"].default
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == schema_id(event_type, schema_version_of(cls))
    assert f"{cls.__module__}.{cls.__qualname__}" in document["$comment"]
    assert "do not edit by hand" in document["$comment"]
    assert document["additionalProperties"] is False
    assert set(document["x-names"]) == {"es", "pt", "en"}


def test_there_is_one_schema_file_per_event_type_plus_the_indicator() -> None:
    names = {path.name for path in jsonschema_gen.SCHEMA_DIR.glob("*.schema.json")}
    assert names == {jsonschema_gen.file_name(cls) for cls in ALL_EVENT_CLASSES} | {
        jsonschema_gen.INDICATOR_FILE
    }


# --- valid examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPE_NAMES)
def test_factory_events_validate_against_their_schema(event_type: str) -> None:
    document = valid_document(event_type)
    errors = [error.message for error in validator(event_type).iter_errors(document)]
    assert errors == []
    assert model_accepts(EVENT_TYPES[event_type], document)


@pytest.mark.parametrize("event_type", EVENT_TYPE_NAMES)
def test_optional_fields_may_be_null_or_absent_in_both(event_type: str) -> None:
    cls = EVENT_TYPES[event_type]
    document = valid_document(event_type)
    optional = [name for name, info in cls.model_fields.items() if not info.is_required()]
    for name in optional:
        without = {key: value for key, value in document.items() if key != name}
        assert model_accepts(cls, without), name
        assert schema_accepts(event_type, without), name


# --- invalid documents: both must reject --------------------------------------------------------------

UPPER_UUID = "6F1D7A52-0B7E-5C8E-9A41-3F2B8D5E0C17"


def _invalid_variants(event_type: str) -> list[tuple[str, dict[str, Any]]]:
    cls = EVENT_TYPES[event_type]
    base = valid_document(event_type)
    variants: list[tuple[str, dict[str, Any]]] = []

    def variant(label: str, **changes: Any) -> None:
        document = dict(base)
        for key, value in changes.items():
            if value is _DROP:
                document.pop(key, None)
            else:
                document[key] = value
        variants.append((label, document))

    variant("missing event_id", event_id=_DROP)
    variant("missing occurred_at", occurred_at=_DROP)
    variant("missing subject_key", subject_key=_DROP)
    required_payload = [
        name
        for name, info in cls.model_fields.items()
        if info.is_required() and name not in Event.model_fields
    ]
    for name in required_payload:
        variant(f"missing {name}", **{name: _DROP})
    variant("event_id of wrong type", event_id=123)
    variant("event_id upper case", event_id=UPPER_UUID)
    variant("event_id without hyphens", event_id=UPPER_UUID.replace("-", "").lower())
    variant("source_ref of wrong type", source_ref=5)
    variant("empty source_ref", source_ref="")
    variant("unknown field", email="ana@example.org")
    variant("unknown field (name)", learner_name="Ana")
    variant("lower-case country", country="uy")
    variant("alpha-3 country", country="URY")
    variant("country with trailing newline", country="UY\n")
    variant("naive datetime", occurred_at="2026-03-02T12:00:00")
    variant("date without time", occurred_at="2026-03-02")
    variant("space instead of T", occurred_at="2026-03-02 12:00:00Z")
    variant("unix time", occurred_at=1_772_452_800)
    variant("unix time as string", occurred_at="1772452800")
    variant("month 13", occurred_at="2026-13-02T12:00:00Z")
    variant("unknown audience", audience="msme")
    variant("other event type", event_type="cvf.not.a.type")
    variant("future schema version", schema_version=2)
    variant("schema version as string", schema_version="1")
    variant("schema version as bool", schema_version=True)
    variant("e-mail as subject key", subject_key="ana@example.org")
    if cls.family != "finance":
        variant("subject key with upper-case hex", subject_key="p-" + "A" * 32)
        variant(
            "subject key of the other kind",
            subject_key=org_key() if cls.family == "training" else person_key(),
        )
    variant("source with spaces", source="my source")
    for name, value in base.items():
        if isinstance(value, dict) and set(value) == {"amount", "currency", "usd_amount"}:
            variant(f"negative {name}", **{name: {**value, "amount": "-5.00"}})
            variant(f"{name} amount as JSON number", **{name: {**value, "amount": 5}})
            variant(f"{name} amount with exponent", **{name: {**value, "amount": "1e3"}})
            variant(f"{name} with 7 decimals", **{name: {**value, "usd_amount": "0.1234567"}})
            variant(f"{name} lower-case currency", **{name: {**value, "currency": "usd"}})
            variant(f"{name} without usd_amount", **{name: {"amount": "1", "currency": "USD"}})
            variant(f"{name} with extra key", **{name: {**value, "fx_rate": "1"}})
        if name.endswith("_pct") or name in {"score_scaled", "final_score_scaled"}:
            variant(f"{name} above range", **{name: 101})
            variant(f"{name} below range", **{name: -0.5})
            variant(f"{name} as string", **{name: "50"})
        if name in {"attempt_no", "interest_level", "time_spent_s"}:
            variant(f"{name} as float", **{name: 2.5})
            variant(f"{name} as bool", **{name: True})
            variant(f"{name} zero or negative", **{name: -1})
        if name.endswith("_key") and name != "subject_key" and isinstance(value, str):
            variant(f"{name} not a pseudonym", **{name: "Empresa SA"})
        if isinstance(value, bool):
            variant(f"{name} as string", **{name: "true"})
            variant(f"{name} as int", **{name: 1})
        if isinstance(value, list):
            variant(f"{name} as string", **{name: "08"})
            variant(f"{name} with a bad item", **{name: ["not valid!"]})
    return variants


_DROP = object()

INVALID_CASES = [
    pytest.param(event_type, document, id=f"{event_type}: {label}")
    for event_type in EVENT_TYPE_NAMES
    for label, document in _invalid_variants(event_type)
]


@pytest.mark.parametrize(("event_type", "document"), INVALID_CASES)
def test_invalid_document_is_rejected_by_model_and_schema(event_type: str, document: dict[str, Any]) -> None:
    assert not model_accepts(EVENT_TYPES[event_type], document)
    assert not schema_accepts(event_type, document)


def test_model_only_rule_subject_key_must_equal_its_field() -> None:
    document = valid_document("plgn.deal.reported")
    document["subject_key"] = org_key("someone else")
    # The schema cannot compare two fields (it says so in x-subject-key-equals); the model does.
    assert schema_accepts("plgn.deal.reported", document)
    assert not model_accepts(EVENT_TYPES["plgn.deal.reported"], document)
    assert jsonschema_gen.load("plgn.deal.reported.v1.schema.json")["x-subject-key-equals"] == "org_key"


def test_model_only_rule_calendar_dates_must_exist() -> None:
    # The timestamp pattern checks ranges, not month lengths; the model rejects 30 February.
    document = valid_document("cvf.enrolment.created")
    document["occurred_at"] = "2026-02-30T12:00:00Z"
    assert schema_accepts("cvf.enrolment.created", document)
    assert not model_accepts(EVENT_TYPES["cvf.enrolment.created"], document)


# --- hypothesis: model accepts <=> schema accepts -------------------------------------------------------

INTERESTING_STRINGS = [
    "",
    "x",
    "a b",
    "AR",
    "BR",
    "ar",
    "ARG",
    "A1",
    "AR\n",
    "USD",
    "usd",
    "MSME",
    "FIRM",
    "SMALL",
    "M6",
    "M12",
    "FULL",
    "NONE",
    "OFFER",
    "SELLER",
    "IN_PERSON",
    "FINAL",
    "F",
    "self",
    "ALL_MEMBERS",
    "DIRECTORY_SHARING",
    "cvf-test",
    "offering-1",
    "https://plgn.example/orgs/42",
    "08",
    "0806",
    "123",
    "01",
    "1000.00",
    "0",
    "-5",
    "1e3",
    "0.1234567",
    person_key("a"),
    person_key("a").upper(),
    org_key("b"),
    org_key("b") + "\n",
    "p-123",
    "ana@example.org",
    str(uuid.UUID(int=42)),
    UPPER_UUID,
    uuid.UUID(int=42).hex,
    "2026-03-02T12:00:00Z",
    "2026-03-02T12:00:00.123456+03:00",
    "2026-03-02T12:00:00",
    "2026-03-02 12:00:00Z",
    "2026-03-02",
    "1772452800",
    "2026-13-01T00:00:00Z",
    "cvf.enrolment.created",
    "plgn.deal.reported",
]

MONEY_VALUES: list[Any] = [
    {"amount": "1", "currency": "USD", "usd_amount": "1"},
    {"amount": "0.5", "currency": "BRL", "usd_amount": "0.1"},
    {"amount": "-1", "currency": "USD", "usd_amount": "1"},
    {"amount": 1, "currency": "USD", "usd_amount": "1"},
    {"amount": "1", "currency": "USD"},
    {"amount": "1", "currency": "USD", "usd_amount": "1", "x": 1},
    {},
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=130),
    # Integral floats are left out: JSON Schema's "integer" admits 2.0, the models do not (known gap).
    st.floats(min_value=-10, max_value=200, allow_nan=False).filter(lambda number: not number.is_integer()),
    st.sampled_from(INTERESTING_STRINGS),
    st.text(max_size=6),
)
values = st.one_of(
    scalars,
    st.lists(st.sampled_from(INTERESTING_STRINGS[:40]), max_size=3),
    st.lists(scalars, max_size=2),
    st.sampled_from(MONEY_VALUES),
)


@st.composite
def mutated_documents(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid document of some event type with up to three fields replaced or removed."""
    event_type = draw(st.sampled_from(EVENT_TYPE_NAMES))
    document = valid_document(event_type)
    names = [*EVENT_TYPES[event_type].model_fields, "email", "name"]
    for name in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
        if draw(st.booleans()) and name in document:
            del document[name]
        else:
            document[name] = draw(values)
    return event_type, document


def _agree(event_type: str, document: dict[str, Any]) -> tuple[bool, bool]:
    cls = EVENT_TYPES[event_type]
    schema_ok = schema_accepts(event_type, document) and cross_field_rules_hold(cls, document)
    return model_accepts(cls, document), schema_ok


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_model_accepts_exactly_what_the_schema_accepts(case: tuple[str, dict[str, Any]]) -> None:
    event_type, document = case
    model_ok, schema_ok = _agree(event_type, document)
    assert model_ok == schema_ok, (event_type, document)


def test_the_mutation_strategy_produces_accepted_and_rejected_documents() -> None:
    # Guards the property above against a strategy that only ever yields one outcome.
    quick = settings(max_examples=2000, database=None, deadline=None)
    accepted = find(
        mutated_documents(),
        lambda case: _agree(*case)[0] and case[1] != valid_document(case[0]),
        settings=quick,
    )
    rejected = find(mutated_documents(), lambda case: not _agree(*case)[0], settings=quick)
    assert _agree(*accepted) == (True, True)
    assert _agree(*rejected) == (False, False)


# --- the indicator value ----------------------------------------------------------------------------


def indicator_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "indicator": "CVF-01",
        "period": {"kind": "month", "start": "2026-03-01"},
        "dimensions": {"country": "UY", "audience": "MSME"},
        "value": 12,
        "parts": {"gross": 14, "withdrawn_before_start": 2},
        "version": 3,
        "as_of": "2026-03-31T23:00:00Z",
        "provisional": True,
        "unit": "count",
    }
    document.update(changes)
    return document


@pytest.mark.parametrize(
    "document",
    [
        indicator_document(),
        indicator_document(value=None),
        indicator_document(value=0.125, unit="ratio"),
        indicator_document(period={"kind": "quarter", "start": "2026-04-01"}),
        indicator_document(period={"kind": "year", "start": "2026-01-01"}, dimensions={}),
    ],
)
def test_valid_indicator_values_pass_model_and_schema(document: dict[str, Any]) -> None:
    assert model_accepts(IndicatorValue, document)
    assert schema_accepts("indicator", document)


@pytest.mark.parametrize(
    "document",
    [
        indicator_document(indicator="cvf-01"),
        indicator_document(period={"kind": "month", "start": "2026-03-02"}),
        indicator_document(period={"kind": "quarter", "start": "2026-03-01"}),
        indicator_document(period={"kind": "year", "start": "2026-02-01"}),
        indicator_document(period={"kind": "week", "start": "2026-03-02"}),
        indicator_document(dimensions={"Country": "UY"}),
        indicator_document(dimensions={"country": "U\nY"}),
        indicator_document(dimensions={"country": 1}),
        indicator_document(parts={"gross": "14"}),
        indicator_document(value="12"),
        indicator_document(version=0),
        indicator_document(as_of="2026-03-31T23:00:00"),
        indicator_document(unit=""),
        indicator_document(extra=1),
        {key: value for key, value in indicator_document().items() if key != "value"},
    ],
)
def test_invalid_indicator_values_fail_model_and_schema(document: dict[str, Any]) -> None:
    assert not model_accepts(IndicatorValue, document)
    assert not schema_accepts("indicator", document)


PERIOD_VALUES: list[Any] = [
    {"kind": "month", "start": "2026-03-01"},
    {"kind": "quarter", "start": "2026-03-01"},
    {"kind": "quarter", "start": "2026-07-01"},
    {"kind": "year", "start": "2026-01-01"},
    {"kind": "week", "start": "2026-03-02"},
    {"kind": "month"},
    {"kind": "month", "start": "2026-03-01", "end": "2026-03-31"},
    {"kind": "month", "start": "2026-3-01"},
]
dimension_maps = st.dictionaries(
    st.sampled_from(["country", "audience", "Country", "a b", "k" * 40, ""]),
    st.one_of(st.sampled_from(["UY", "MSME", "U|Y", "a=b", "", "v" * 200]), st.integers(0, 3), st.none()),
    max_size=3,
)
part_maps = st.dictionaries(
    st.sampled_from(["gross", "numerator", "Bad", "n"]),
    st.one_of(
        st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["1", None])
    ),
    max_size=3,
)
indicator_field_values = st.one_of(values, st.sampled_from(PERIOD_VALUES), dimension_maps, part_maps)


@st.composite
def mutated_indicator_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid indicator document with up to three fields replaced or removed."""
    document = indicator_document()
    names = [*IndicatorValue.model_fields, "extra"]
    for name in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
        if draw(st.booleans()) and name in document:
            del document[name]
        else:
            document[name] = draw(indicator_field_values)
    return document


@settings(max_examples=500, deadline=None)
@given(mutated_indicator_documents())
def test_indicator_model_accepts_exactly_what_its_schema_accepts(document: dict[str, Any]) -> None:
    assert model_accepts(IndicatorValue, document) == schema_accepts("indicator", document), document
