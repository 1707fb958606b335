"""What decoding checks natively in pydantic-core accepts, rejects and gives what the Python checks do."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from pydantic_core import SchemaValidator, core_schema

from schemas import jsonschema_gen
from schemas.cloudevents import InvalidEvent, decode, encode
from schemas.events.base import TIMESTAMP_PATTERN, UUID_PATTERN, EventUUID, Timestamp, anchored
from schemas.registry import ALL_EVENT_CLASSES, EVENT_ADAPTER, EVENT_TYPES
from tests.schemas.factories import FACTORIES, make_deal_reported, make_enrolment_created

# --- string patterns: Rust regex in the models, look-ahead form in the JSON Schemas ---------------------


def _str_patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") == "str" and "pattern" in node:
            yield node["pattern"]
        for value in node.values():
            yield from _str_patterns(value)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _str_patterns(item)


MODEL_PATTERNS = sorted(set(_str_patterns(EVENT_ADAPTER.core_schema)))


def _body(model_pattern: str) -> str:
    matched = re.fullmatch(r"\^\(\?:(.*)\)\$", model_pattern, flags=re.DOTALL)
    assert matched is not None, model_pattern
    return matched.group(1)


@cache
def _rust(model_pattern: str) -> SchemaValidator:
    return SchemaValidator(core_schema.str_schema(pattern=model_pattern, regex_engine="rust-regex"))


def model_pattern_accepts(model_pattern: str, text: str) -> bool:
    try:
        _rust(model_pattern).validate_python(text)
    except ValidationError:
        return False
    return True


def schema_pattern_accepts(model_pattern: str, text: str) -> bool:
    # What `jsonschema` does with a schema's pattern: `re.search`.
    return re.search(anchored(_body(model_pattern)), text) is not None


def _schema_patterns() -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for cls in ALL_EVENT_CLASSES:
        walk(jsonschema_gen.load(jsonschema_gen.file_name(cls)))
    return found


def test_event_models_check_every_pattern_with_rust_regex() -> None:
    assert len(MODEL_PATTERNS) >= 15
    for cls in ALL_EVENT_CLASSES:
        assert cls.model_config.get("regex_engine", "rust-regex") == "rust-regex", cls.__name__
    for pattern in MODEL_PATTERNS:
        assert "(?!" not in pattern and "(?=" not in pattern, pattern


def test_each_model_pattern_is_published_in_its_look_ahead_form() -> None:
    published = _schema_patterns()
    for pattern in MODEL_PATTERNS:
        assert anchored(_body(pattern)) in published, pattern


TRICKY_STRINGS = [
    "",
    "\n",
    "\r",
    " ",
    "AR",
    "AR\n",
    "\nAR",
    "AR\r",
    "AR\r\n",
    "AR ",
    "AR\x00",
    "ar",
    "ÄR",
    "\uff21\uff32",  # full-width letters
    "٣٣",
    "08",
    "08\n",
    "0806",
    "12345678",
    "123456789",
    "USD",
    "USD\n",
    "ALL_MEMBERS",
    "ALL_MEMBERS\n",
    "ARALL_MEMBERS",
    "cvf-test",
    "cvf-test\n",
    "-cvf",
    "Cvf",
    "course-1",
    "https://plgn.example/orgs/42?x=1&y=2#f",
    "a@b",
    "a b",
    "a\u2028b",
    "a" * 512,
    "a" * 513,
    "a" * 64,
    "a" * 65,
    "p-" + "a" * 32,
    "p-" + "a" * 32 + "\n",
    "p-" + "A" * 32,
    "o-" + "b" * 32,
    "o-" + "b" * 31,
    "6a745d91-98b9-5d0d-a2b2-8bbc7d2e3f52",
    "6a745d91-98b9-5d0d-a2b2-8bbc7d2e3f52\n",
    "6A745D91-98B9-5D0D-A2B2-8BBC7D2E3F52",
    "6a745d9198b95d0da2b28bbc7d2e3f52",
    "0123456789abcdef",
    "0123456789abcdeF",
    "f" * 128,
    "f" * 129,
    "REASON_1",
    "A" * 33,
]


@pytest.mark.parametrize("pattern", MODEL_PATTERNS)
def test_model_and_schema_patterns_agree_on_tricky_strings(pattern: str) -> None:
    for text in TRICKY_STRINGS:
        assert model_pattern_accepts(pattern, text) == schema_pattern_accepts(pattern, text), repr(text)


@st.composite
def near_misses(draw: st.DrawFn) -> tuple[str, str]:
    """A pattern and a string of its language, perhaps with something added, removed or changed."""
    pattern = draw(st.sampled_from(MODEL_PATTERNS))
    text = draw(st.from_regex(_body(pattern), fullmatch=True))
    edit = draw(st.sampled_from(["none", "newline", "prefix", "suffix", "drop", "replace"]))
    extra = draw(st.sampled_from(["\n", "\r", " ", "-", ".", "A", "a", "0", "é", "\x00", "Z"]))
    position = draw(st.integers(min_value=0, max_value=len(text)))
    if edit == "newline":
        text += "\n"
    elif edit == "prefix":
        text = extra + text
    elif edit == "suffix":
        text += extra
    elif edit == "drop" and text:
        text = text[: max(position - 1, 0)] + text[position:]
    elif edit == "replace":
        text = text[:position] + extra + text[position + 1 :]
    return pattern, text


@settings(max_examples=3000, deadline=None)
@given(near_misses())
def test_model_and_schema_patterns_agree_on_generated_strings(case: tuple[str, str]) -> None:
    pattern, text = case
    assert model_pattern_accepts(pattern, text) == schema_pattern_accepts(pattern, text)


# --- timestamps and UUIDs: strict JSON is checked natively, Python input as before ----------------------

TIMESTAMP = TypeAdapter(Timestamp)
EVENT_UUID = TypeAdapter(EventUUID)


def _outcome(validate: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        value = validate()
    except ValidationError as exc:
        return ("rejected", [(error["type"], error["msg"]) for error in exc.errors()])
    except Exception as exc:  # e.g. OverflowError from a time near year 1 or 9999: both paths raise it
        return ("raised", type(exc).__name__)
    return ("accepted", value, repr(getattr(value, "tzinfo", None)))


TIMESTAMP_STRINGS = [
    "2026-03-02T12:00:00Z",
    "2026-03-02T12:00:00+00:00",
    "2026-03-02T12:00:00-00:00",
    "2026-03-02T09:00:00-03:00",
    "2026-03-02T12:00:00.1Z",
    "2026-03-02T12:00:00.123456+05:30",
    "2026-03-02T12:00:00.1234567Z",
    "2026-03-02T12:00:00.Z",
    "2026-02-30T12:00:00Z",
    "2024-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-03-02T24:00:00Z",
    "2026-03-02T23:59:60Z",
    "2026-03-02t12:00:00Z",
    "2026-03-02T12:00:00z",
    "2026-03-02T12:00:00+24:00",
    "2026-03-02T12:00:00+0300",
    "2026-03-02T12:00Z",
    "2026-03-02T12:00:00Z\n",
    " 2026-03-02T12:00:00Z",
    "2026-03-02T12:00:00",
    "2026-03-02 12:00:00Z",
    "2026-03-02",
    "20260302T120000Z",
    "1772452800",
    "",
]


@pytest.mark.parametrize("text", TIMESTAMP_STRINGS)
def test_strict_json_timestamps_are_what_python_strings_give(text: str) -> None:
    native = _outcome(lambda: TIMESTAMP.validate_json(json.dumps(text), strict=True))
    assert native == _outcome(lambda: TIMESTAMP.validate_python(text, strict=True))
    if native[0] == "accepted":
        assert native[1].tzinfo is UTC


@settings(max_examples=1000, deadline=None)
@given(st.from_regex(TIMESTAMP_PATTERN.removesuffix("(?!\\n)")))
def test_strict_json_timestamps_of_the_pattern_are_what_python_strings_give(text: str) -> None:
    assert _outcome(lambda: TIMESTAMP.validate_json(json.dumps(text), strict=True)) == _outcome(
        lambda: TIMESTAMP.validate_python(text, strict=True)
    )


UUID_STRINGS = [
    "6a745d91-98b9-5d0d-a2b2-8bbc7d2e3f52",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "6A745D91-98B9-5D0D-A2B2-8BBC7D2E3F52",
    "6a745d9198b95d0da2b28bbc7d2e3f52",
    "{6a745d91-98b9-5d0d-a2b2-8bbc7d2e3f52}",
    "urn:uuid:6a745d91-98b9-5d0d-a2b2-8bbc7d2e3f52",
    "6a745d91-98b9-5d0d-a2b2-8bbc7d2e3f52\n",
    " 6a745d91-98b9-5d0d-a2b2-8bbc7d2e3f52",
    "6a745d91-98b9-5d0d-a2b2-8bbc7d2e3f5",
    "6a745d91-98b9-5d0d-a2b2-8bbc7d2e3f5g",
    "6a745d91_98b9_5d0d_a2b2_8bbc7d2e3f52",
    "",
]


@pytest.mark.parametrize("text", UUID_STRINGS)
def test_strict_json_uuids_are_what_python_strings_give(text: str) -> None:
    assert _outcome(lambda: EVENT_UUID.validate_json(json.dumps(text), strict=True)) == _outcome(
        lambda: EVENT_UUID.validate_python(text, strict=True)
    )


@pytest.mark.parametrize("value", [1772452800, 1.5, True, None, [], {}])
def test_strict_json_non_strings_are_refused_as_before(value: Any) -> None:
    json_value = json.dumps(value)
    assert _outcome(lambda: TIMESTAMP.validate_json(json_value, strict=True)) == (
        "rejected",
        [("datetime_type", "Input should be a valid datetime")],
    )
    assert _outcome(lambda: EVENT_UUID.validate_json(json_value, strict=True)) == (
        "rejected",
        [("uuid_type", "UUID input should be a string, bytes or UUID object")],
    )


def test_lax_json_still_takes_unix_times() -> None:
    assert TIMESTAMP.validate_json("1772452800") == datetime(2026, 3, 2, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("occurred_at", "2026-03-02 12:00:00Z", "Value error, not an RFC 3339 timestamp with a UTC offset"),
        ("occurred_at", "2026-02-30T12:00:00Z", "Value error, day is out of range for month"),
        ("occurred_at", 1772452800, "Input should be a valid datetime"),
        ("event_id", UUID_STRINGS[3], "Value error, not a lower-case hyphenated UUID"),
        ("event_id", 5, "UUID input should be a string, bytes or UUID object"),
    ],
)
def test_decode_names_bad_times_and_ids_as_before(field: str, value: Any, reason: str) -> None:
    record = encode(make_enrolment_created())
    document = json.loads(record.value)
    document[field] = value
    with pytest.raises(InvalidEvent) as caught:
        decode(record.headers, json.dumps(document).encode())
    assert caught.value.reason == f"schema violation: {field}: {reason}"


def test_published_time_and_id_patterns_are_unchanged() -> None:
    assert TIMESTAMP.json_schema()["pattern"] == TIMESTAMP_PATTERN
    assert EVENT_UUID.json_schema()["pattern"] == UUID_PATTERN


# --- the event union and the Python-only convenience -------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(FACTORIES))
def test_decoded_events_serialise_back_to_the_same_bytes(event_type: str) -> None:
    record = encode(FACTORIES[event_type]())
    event = decode(record.headers, record.value)
    assert event.model_dump_json().encode() == record.value
    assert EVENT_ADAPTER.validate_python(event.model_dump()) == event


def test_subject_key_is_filled_from_its_field_for_python_input_only() -> None:
    event = make_deal_reported()
    document = event.model_dump(mode="json")
    del document["subject_key"]
    assert type(event).model_validate(document) == event
    assert EVENT_ADAPTER.validate_python(document) == event
    with pytest.raises(ValidationError, match="subject_key"):
        type(event).model_validate_json(json.dumps(document), strict=True)
    with pytest.raises(ValidationError, match="subject_key"):
        EVENT_ADAPTER.validate_json(json.dumps(document), strict=True)


def test_an_unknown_event_type_lists_every_known_one_in_registry_order() -> None:
    with pytest.raises(ValidationError) as caught:
        EVENT_ADAPTER.validate_json('{"event_type": "cvf.no.such"}', strict=True)
    (error,) = caught.value.errors()
    expected = ", ".join(repr(name) for name in EVENT_TYPES)
    assert error["msg"] == (
        "Input tag 'cvf.no.such' found using 'event_type' does not match any of the expected tags: "
        + expected
    )
    with pytest.raises(ValidationError, match="Unable to extract tag using discriminator 'event_type'"):
        EVENT_ADAPTER.validate_json("{}", strict=True)


def _with_ce_id(spell: Callable[[str], str]) -> tuple[list[tuple[str, bytes]], bytes]:
    record = encode(make_enrolment_created())
    event_id = json.loads(record.value)["event_id"]
    headers = [(name, spell(event_id).encode() if name == "ce_id" else raw) for name, raw in record.headers]
    return headers, record.value


@pytest.mark.parametrize(
    "spell",
    [
        lambda text: text,
        lambda text: text.upper(),
        lambda text: text.replace("-", ""),
        lambda text: "-" + text.replace("-", "")[:5] + "--" + text.replace("-", "")[5:] + "-",
        lambda text: "{" + text + "}",
        lambda text: "urn:uuid:" + text,
    ],
)
def test_ce_id_may_spell_the_event_id_as_uuid_reads_it(spell: Callable[[str], str]) -> None:
    headers, value = _with_ce_id(spell)
    assert decode(headers, value) == decode(*_with_ce_id(lambda text: text))


@pytest.mark.parametrize(
    "spell",
    [
        lambda text: text[:-1] + ("0" if text[-1] != "0" else "1"),
        lambda text: text.replace("-", "")[:-1],
        lambda text: text + "0",
        lambda text: " " + text,
        lambda text: "",
    ],
)
def test_ce_id_of_another_or_no_uuid_is_refused(spell: Callable[[str], str]) -> None:
    with pytest.raises(InvalidEvent, match="ce_id does not match event_id"):
        decode(*_with_ce_id(spell))
