"""CloudEvents 1.0 in Kafka binary mode: `ce_*` headers, the event JSON as value, `subject_key` as key.

`decode` is on every consumer's hot path: it validates the value with the pydantic union adapter
built once in `schemas.registry` (no jsonschema here) and checks that headers and body agree.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from schemas.events.base import Event
from schemas.registry import (
    CE_TYPE_PREFIX,
    EVENT_ADAPTER,
    EVENT_TYPES,
    ce_type,
    schema_id,
    schema_version_of,
)

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
SOURCE_PREFIX = "urn:alcance:source:"
# Longest dead-letter reason we produce; a reason is a header, not a report.
MAX_REASON_CHARS = 300


class InvalidEvent(ValueError):
    """Raised when a Kafka record is not a valid alcance CloudEvent; `reason` becomes `dlq_reason`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."
        super().__init__(self.reason)


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """What to hand to the producer: key, value and headers of one record."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def source_uri(source: str) -> str:
    """The CloudEvents `source` of a source instance name."""
    return f"{SOURCE_PREFIX}{source}"


def _time_text(event: Event) -> str:
    return event.occurred_at.isoformat().replace("+00:00", "Z")


def encode(event: Event, extra_headers: Iterable[tuple[str, bytes]] = ()) -> KafkaRecord:
    """Encode `event` as a binary-mode CloudEvents Kafka record.

    Args:
        event: the event; its `subject_key` becomes the record key.
        extra_headers: appended after the CloudEvents headers (e.g. `traceparent`).
    """
    version = event.schema_version
    headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", str(event.event_id).encode()),
        ("ce_source", source_uri(event.source).encode()),
        ("ce_type", ce_type(event.event_type, version).encode()),
        ("ce_time", _time_text(event).encode()),
        ("ce_subject", event.subject_key.encode()),
        ("ce_dataschema", schema_id(event.event_type, version).encode()),
        ("content-type", CONTENT_TYPE.encode()),
        *extra_headers,
    ]
    return KafkaRecord(
        key=event.subject_key.encode(), value=event.model_dump_json().encode(), headers=headers
    )


def _header_map(headers: Sequence[tuple[str, bytes | None]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, raw in headers:
        if not (name.startswith("ce_") or name == "content-type"):
            continue
        if name in found:
            raise InvalidEvent(f"duplicate header {name}")
        if raw is None:
            raise InvalidEvent(f"empty header {name}")
        try:
            found[name] = raw.decode()
        except UnicodeDecodeError:
            raise InvalidEvent(f"header {name} is not UTF-8") from None
    return found


@dataclass(frozen=True, slots=True)
class _KnownType:
    """What an accepted ce_type stands for: its event type, and the `ce_dataschema` that goes with it."""

    event_type: str
    dataschema: str


# Every accepted ce_type, resolved once: the hot path is one dict lookup.
_KNOWN_CE_TYPES: dict[str, _KnownType] = {
    ce_type(name, schema_version_of(cls)): _KnownType(name, schema_id(name, schema_version_of(cls)))
    for name, cls in EVENT_TYPES.items()
}


def _known_type(value: str) -> _KnownType:
    known = _KNOWN_CE_TYPES.get(value)
    if known is not None:
        return known
    name, sep, version = value.removeprefix(CE_TYPE_PREFIX).rpartition(".v")
    if value.startswith(CE_TYPE_PREFIX) and sep and version.isdigit() and name in EVENT_TYPES:
        raise InvalidEvent(f"unsupported schema version in ce_type {value!r}")
    raise InvalidEvent(f"unknown ce_type {value!r}")


def _violation(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return "bad JSON: " + str(errors[0]["msg"])
    first = errors[0]
    # The first location item of a tagged union is the tag itself; it adds nothing for a reader.
    where = ".".join(str(part) for part in first["loc"][1:]) or "value"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"schema violation: {where}: {first['msg']}{more}"


def decode(headers: Sequence[tuple[str, bytes | None]], value: bytes | None) -> Event:
    """Decode a binary-mode CloudEvents Kafka record into its event.

    Args:
        headers: the record headers (as aiokafka gives them).
        value: the record value.

    Raises:
        InvalidEvent: with a short reason when a required header is missing, the type is unknown,
            the value is not JSON or violates the schema, or headers and body disagree.
    """
    found = _header_map(headers)
    content_type = found.get("content-type")
    if (
        content_type is not None
        and content_type != CONTENT_TYPE
        and content_type.split(";")[0].strip().lower() != CONTENT_TYPE
    ):
        raise InvalidEvent(f"unsupported content-type {content_type!r} (binary mode with JSON only)")
    for name in ("ce_specversion", "ce_id", "ce_source", "ce_type"):
        if name not in found:
            raise InvalidEvent(f"missing header {name}")
    if found["ce_specversion"] != SPEC_VERSION:
        raise InvalidEvent(f"unsupported ce_specversion {found['ce_specversion']!r}")
    known = _known_type(found["ce_type"])
    if value is None:
        raise InvalidEvent("record has no value")
    try:
        # The adapter's own validator: `TypeAdapter.validate_json` only adds argument checks around it.
        event: Event = EVENT_ADAPTER.validator.validate_json(value, strict=True)
    except ValidationError as exc:
        raise InvalidEvent(_violation(exc)) from None
    _check_agreement(found, event, known)
    return event


def _check_agreement(found: dict[str, str], event: Event, known: _KnownType) -> None:
    if event.event_type != known.event_type:
        raise InvalidEvent(f"ce_type says {known.event_type!r} but the body is {event.event_type!r}")
    # `uuid.UUID` drops hyphens wherever they stand, so the body's hex digits with hyphens anywhere
    # (our own canonical spelling among them) name the same UUID: cheaper than formatting the id.
    ce_id = found["ce_id"]
    if ce_id.replace("-", "") != event.event_id.hex and _uuid_or_none(ce_id) != event.event_id:
        raise InvalidEvent("ce_id does not match event_id")
    if found["ce_source"] != SOURCE_PREFIX + event.source:
        raise InvalidEvent("ce_source does not match source")
    if "ce_subject" in found and found["ce_subject"] != event.subject_key:
        raise InvalidEvent("ce_subject does not match subject_key")
    if "ce_time" in found:
        # Other producers may spell the same instant differently (an offset instead of Z). Our own
        # spelling, `_time_text`, parses back to `occurred_at` too, so parsing alone decides as a text
        # comparison first would, and spares formatting the time of every record.
        try:
            same = datetime.fromisoformat(found["ce_time"]) == event.occurred_at
        except ValueError:
            raise InvalidEvent("ce_time is not an RFC 3339 timestamp") from None
        if not same:
            raise InvalidEvent("ce_time does not match occurred_at")
    if "ce_dataschema" in found and found["ce_dataschema"] != known.dataschema:
        raise InvalidEvent(f"unexpected ce_dataschema {found['ce_dataschema']!r}")


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def peek_json(value: bytes) -> object:
    """Parse a record value as plain JSON (for diagnostics of dead letters).

    Raises:
        InvalidEvent: when the value is not JSON.
    """
    try:
        return json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(f"bad JSON: {exc}") from None
