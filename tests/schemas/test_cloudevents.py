"""CloudEvents binary-mode encoding round-trips every event, and decoding names what is wrong."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from schemas.cloudevents import MAX_REASON_CHARS, InvalidEvent, KafkaRecord, decode, encode
from schemas.events.base import Event
from schemas.jsonschema_gen import event_schema
from schemas.registry import EVENT_TYPES
from tests.schemas.factories import FACTORIES, make_enrolment_created, make_learner_registered, person_key

Headers = Sequence[tuple[str, bytes | None]]


@pytest.mark.parametrize("event_type", sorted(FACTORIES))
def test_every_event_type_round_trips(event_type: str) -> None:
    event = FACTORIES[event_type]()
    record = encode(event)
    assert decode(record.headers, record.value) == event
    assert record.key == event.subject_key.encode()


def test_encode_writes_binary_mode_headers() -> None:
    event = make_enrolment_created()
    headers = dict(encode(event).headers)
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": str(event.event_id).encode(),
        "ce_source": b"urn:alcance:source:cvf-test",
        "ce_type": b"org.aladi.alcance.cvf.enrolment.created.v1",
        "ce_time": b"2026-03-02T12:00:00Z",
        "ce_subject": event.subject_key.encode(),
        "ce_dataschema": b"urn:alcance:schema:cvf.enrolment.created.v1",
        "content-type": b"application/json",
    }


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_dataschema_header_is_the_schema_id(event_type: str) -> None:
    event = FACTORIES[event_type]()
    headers = dict(encode(event).headers)
    assert headers["ce_dataschema"].decode() == event_schema(EVENT_TYPES[event_type])["$id"]


def test_value_is_the_event_json_and_nothing_else() -> None:
    event = make_enrolment_created()
    body = json.loads(encode(event).value)
    assert body["event_id"] == str(event.event_id)
    assert type(event).model_validate(body) == event


def test_extra_headers_are_appended_and_ignored_by_decode() -> None:
    event = make_enrolment_created()
    record = encode(event, extra_headers=[("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")])
    assert record.headers[-1][0] == "traceparent"
    assert decode(record.headers, record.value) == event


def test_decode_accepts_headers_as_aiokafka_gives_them_and_a_charset() -> None:
    event = make_enrolment_created()
    record = encode(event)
    headers = tuple(
        (name, b"application/json; charset=utf-8" if name == "content-type" else value)
        for name, value in record.headers
    )
    assert decode(headers, record.value) == event


def test_decode_works_without_the_optional_headers() -> None:
    event = make_enrolment_created()
    record = encode(event)
    required = [
        (name, value)
        for name, value in record.headers
        if name in {"ce_specversion", "ce_id", "ce_source", "ce_type"}
    ]
    assert decode(required, record.value) == event


def test_utc_normalised_time_survives_the_trip() -> None:
    local = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=-3)))
    event = make_enrolment_created(occurred_at=local)
    record = encode(event)
    assert dict(record.headers)["ce_time"] == b"2026-03-02T12:00:00Z"
    assert decode(record.headers, record.value).occurred_at == local


# --- every failure names its reason -----------------------------------------------------------------


def _record() -> KafkaRecord:
    return encode(make_enrolment_created())


def _replace(headers: Headers, name: str, value: bytes | None) -> Headers:
    return [(key, value if key == name else raw) for key, raw in headers]


def _without(headers: list[tuple[str, bytes]], name: str) -> Headers:
    return [(key, raw) for key, raw in headers if key != name]


def _body(**changes: Any) -> bytes:
    document = json.loads(_record().value)
    document.update(changes)
    return json.dumps(document).encode()


def _reason(headers: Headers, value: bytes | None) -> str:
    with pytest.raises(InvalidEvent) as caught:
        decode(headers, value)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


@pytest.mark.parametrize("name", ["ce_specversion", "ce_id", "ce_source", "ce_type"])
def test_missing_required_header(name: str) -> None:
    record = _record()
    assert _reason(_without(record.headers, name), record.value) == f"missing header {name}"


@pytest.mark.parametrize(
    ("ce_type", "reason"),
    [
        (b"com.example.enrolment", "unknown ce_type 'com.example.enrolment'"),
        (b"org.aladi.alcance.cvf.no.such.v1", "unknown ce_type 'org.aladi.alcance.cvf.no.such.v1'"),
        (
            b"org.aladi.alcance.cvf.enrolment.created",
            "unknown ce_type 'org.aladi.alcance.cvf.enrolment.created'",
        ),
        (
            b"org.aladi.alcance.cvf.enrolment.created.v2",
            "unsupported schema version in ce_type 'org.aladi.alcance.cvf.enrolment.created.v2'",
        ),
    ],
)
def test_unknown_or_unsupported_type(ce_type: bytes, reason: str) -> None:
    record = _record()
    assert _reason(_replace(record.headers, "ce_type", ce_type), record.value) == reason


def test_other_spec_version() -> None:
    record = _record()
    assert _reason(_replace(record.headers, "ce_specversion", b"0.3"), record.value) == (
        "unsupported ce_specversion '0.3'"
    )


def test_structured_mode_is_refused_by_name() -> None:
    record = _record()
    headers = _replace(record.headers, "content-type", b"application/cloudevents+json; charset=UTF-8")
    assert _reason(headers, record.value).startswith("unsupported content-type 'application/cloudevents+json")


def test_record_without_value() -> None:
    assert _reason(_record().headers, None) == "record has no value"


@pytest.mark.parametrize("value", [b"{not json", b"", b"\xff\xfe{}"])
def test_bad_json(value: bytes) -> None:
    assert _reason(_record().headers, value).startswith("bad JSON: ")


def test_schema_violation_names_the_field() -> None:
    record = _record()
    reason = _reason(record.headers, _body(country="uy"))
    assert reason.startswith("schema violation: country: ")


@pytest.mark.parametrize("instant", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_instant_outside_the_utc_calendar_is_a_schema_violation(instant: str) -> None:
    # Valid RFC 3339, but its UTC equivalent falls before year 1 or after year 9999.
    reason = _reason(_record().headers, _body(occurred_at=instant))
    assert reason.startswith("schema violation: occurred_at: "), reason
    assert "years 1 and 9999" in reason


def test_unknown_field_is_a_schema_violation() -> None:
    reason = _reason(_record().headers, _body(email="ana@example.org"))
    assert reason.startswith("schema violation: email: Extra inputs are not permitted")


def test_many_violations_are_counted_not_listed() -> None:
    reason = _reason(_record().headers, _body(country="uy", audience="nope", channel=3))
    assert reason.startswith("schema violation: ")
    assert reason.endswith("(+2 more)")


def test_body_without_event_type() -> None:
    document = json.loads(_record().value)
    del document["event_type"]
    reason = _reason(_record().headers, json.dumps(document).encode())
    assert reason.startswith("schema violation: ")
    assert "event_type" in reason


def test_json_that_is_not_an_object() -> None:
    assert _reason(_record().headers, b"[1, 2]").startswith("schema violation: ")


def test_type_header_and_body_disagree() -> None:
    other = make_learner_registered()
    record = _record()
    headers = _replace(record.headers, "ce_id", str(other.event_id).encode())
    reason = _reason(headers, encode(other).value)
    assert reason == "ce_type says 'cvf.enrolment.created' but the body is 'cvf.learner.registered'"


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("ce_id", b"00000000-0000-0000-0000-000000000000", "ce_id does not match event_id"),
        ("ce_source", b"urn:alcance:source:other", "ce_source does not match source"),
        ("ce_subject", person_key("other").encode(), "ce_subject does not match subject_key"),
        ("ce_time", b"2026-03-02T12:00:01Z", "ce_time does not match occurred_at"),
        (
            "ce_dataschema",
            b"urn:alcance:schema:other.v1",
            "unexpected ce_dataschema 'urn:alcance:schema:other.v1'",
        ),
    ],
)
def test_header_and_body_mismatch(header: str, value: bytes, reason: str) -> None:
    record = _record()
    assert _reason(_replace(record.headers, header, value), record.value) == reason


def test_equivalent_spellings_of_id_and_time_are_accepted() -> None:
    record = _record()
    event = decode(record.headers, record.value)
    headers = _replace(record.headers, "ce_time", b"2026-03-02T09:00:00-03:00")
    headers = _replace(headers, "ce_id", str(event.event_id).upper().encode())
    assert decode(headers, record.value) == event


def test_time_header_that_is_not_a_timestamp() -> None:
    record = _record()
    headers = _replace(record.headers, "ce_time", b"yesterday")
    assert _reason(headers, record.value) == "ce_time is not an RFC 3339 timestamp"


def test_duplicate_header() -> None:
    record = _record()
    assert _reason([*record.headers, ("ce_type", b"x")], record.value) == "duplicate header ce_type"


def test_header_without_value() -> None:
    record = _record()
    assert _reason(_replace(record.headers, "ce_id", None), record.value) == "empty header ce_id"


def test_header_that_is_not_utf8() -> None:
    record = _record()
    assert (
        _reason(_replace(record.headers, "ce_source", b"\xff"), record.value)
        == "header ce_source is not UTF-8"
    )


def test_reasons_are_bounded() -> None:
    record = _record()
    long_type = b"org.aladi.alcance." + b"x" * 2000
    reason = _reason(_replace(record.headers, "ce_type", long_type), record.value)
    assert len(reason) == MAX_REASON_CHARS
    assert reason.endswith("...")


def test_invalid_event_is_a_value_error() -> None:
    assert issubclass(InvalidEvent, ValueError)
    assert isinstance(decode(_record().headers, _record().value), Event)
