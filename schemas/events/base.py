"""The event envelope every alcance event shares, and the wire-level types its fields use."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

# Fixed for ever: changing it would change every event id and break deduplication of re-pulled records.
EVENT_ID_NAMESPACE = uuid.UUID("6f1d7a52-0b7e-5c8e-9a41-3f2b8d5e0c17")


def event_id_for(source: str, record_identity: str) -> uuid.UUID:
    """Deterministic event id of one source record (UUIDv5 in `EVENT_ID_NAMESPACE`).

    The same source record always gives the same id, so re-pulling a page after a crash or a broker
    loss produces duplicates that consumers drop. A record that yields several events must pass
    distinct identities, e.g. `f"{statement_id}:completed"`.

    Args:
        source: source instance name (e.g. "cvf-lrs").
        record_identity: the record's native id, plus a suffix per derived event.
    """
    # The unit separator cannot occur in a source name, so ("a", "b:c") and ("a:b", "c") never collide.
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}\x1f{record_identity}")


def anchored(body: str) -> str:
    """A regular expression matching exactly `body`, read the same by Python's `re` and ECMA-262.

    Python's `$` also matches before a final newline; the look-ahead closes that gap for both: JSON
    Schema consumers (the `jsonschema` package uses `re`) and models with `regex_engine="python-re"`.
    Event models use `full_match`, which checks the same language natively.
    """
    return f"^(?:{body})$(?!\\n)"


def _rust_anchored(body: str) -> str:
    # In pydantic-core's Rust regex `$` is the end of the text, so no look-ahead is needed (and Rust
    # regex has none): this matches exactly the strings `anchored(body)` matches in `re`.
    return f"^(?:{body})$"


def full_match(body: str, **constraints: Any) -> Any:
    """A `Field` whose string must match `body` as a whole (plus any other `Field` constraints).

    The model checks the pattern natively in pydantic-core's Rust regex (several times cheaper than
    calling back into Python's `re` for every string); the JSON Schema carries `anchored(body)`.
    Use it inside `Annotated[str, ...]`, also for optional fields, so that the schema's pattern lands
    on the string and not on the `anyOf` around it.
    """
    return Field(pattern=_rust_anchored(body), json_schema_extra={"pattern": anchored(body)}, **constraints)


class Audience(StrEnum):
    """Audience segment of a learner or contact; the first four are the audiences of art. 7."""

    TPO_AUTHORITY = "TPO_AUTHORITY"
    BUSINESS_CHAMBER = "BUSINESS_CHAMBER"
    SECTOR_ASSOCIATION = "SECTOR_ASSOCIATION"
    MSME = "MSME"
    GOVT_OTHER = "GOVT_OTHER"
    ACADEMIA = "ACADEMIA"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


# The 13 ALADI member states (ISO 3166-1 alpha-2).
MEMBER_STATES: frozenset[str] = frozenset(
    {"AR", "BO", "BR", "CL", "CO", "CU", "EC", "MX", "PA", "PY", "PE", "UY", "VE"}
)

_COUNTRY_BODY = "[A-Z]{2}"
_CURRENCY_BODY = "[A-Z]{3}"
_PERSON_KEY_BODY = "p-[0-9a-f]{32}"
_ORG_KEY_BODY = "o-[0-9a-f]{32}"
_UUID_BODY = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_TIMESTAMP_BODY = (
    "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?"
    "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
# Non-negative decimal string with at most 15 integer and 6 fractional digits: no exponent, no sign.
_AMOUNT_BODY = "(?:0|[1-9][0-9]{0,14})(?:\\.[0-9]{1,6})?"
# Native ids are often URLs (PLGN activity ids), so URL punctuation is allowed; whitespace is not, and
# neither is "@", so that an e-mail address can never pass for an id.
IDENT_MAX_CHARS = 512
"""Longest native identifier an event carries; indicator dimension values (made of them) allow as many."""
_IDENT_BODY = f"[A-Za-z0-9][A-Za-z0-9._:/#?=&%~+-]{{0,{IDENT_MAX_CHARS - 1}}}"

COUNTRY_PATTERN = anchored(_COUNTRY_BODY)
CURRENCY_PATTERN = anchored(_CURRENCY_BODY)
PERSON_KEY_PATTERN = anchored(_PERSON_KEY_BODY)
ORG_KEY_PATTERN = anchored(_ORG_KEY_BODY)
UUID_PATTERN = anchored(_UUID_BODY)
TIMESTAMP_PATTERN = anchored(_TIMESTAMP_BODY)
AMOUNT_PATTERN = anchored(_AMOUNT_BODY)
IDENT_PATTERN = anchored(_IDENT_BODY)


def _parse_checked(pattern: str, what: str, parse: Callable[[str], Any]) -> BeforeValidator:
    """Check strings against `pattern`, then parse them ourselves.

    pydantic's own parsers accept more spellings than the JSON Schema pattern (unix times, UUIDs
    without hyphens, ...); parsing here keeps model and schema in agreement, also under strict mode.
    """
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str):
            if compiled.search(value) is None:
                raise ValueError(f"not {what}")
            return parse(value)
        return value

    return BeforeValidator(check)


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # e.g. 0001-01-01T00:30:00+01:00: valid RFC 3339, but before the first instant Python holds.
        raise ValueError("not an instant between years 1 and 9999 in UTC") from None


def _json_text(body: str, not_text: str, mismatch: str) -> core_schema.CoreSchema:
    """A JSON string matching `body` natively, failing with the errors `_parse_checked` gives.

    Args:
        body: the pattern the whole string must match.
        not_text: pydantic's error type for input that is no string (as the annotated type reports it).
        mismatch: what a string of another pattern is not (as in `_parse_checked`).
    """
    return core_schema.chain_schema(
        [
            core_schema.custom_error_schema(core_schema.str_schema(), not_text),
            core_schema.custom_error_schema(
                core_schema.str_schema(pattern=_rust_anchored(body), regex_engine="rust-regex"),
                "value_error",
                custom_error_context={"error": f"not {mismatch}"},
            ),
        ]
    )


# Compared and hashed by identity: `typing` hashes Annotated metadata, and a core schema is a dict.
@dataclass(frozen=True, slots=True, eq=False)
class _StrictJsonBy:
    """Annotation: strict-mode JSON input is validated by `schema`, other input as annotated before it.

    `schema` must accept exactly the JSON strings the general validation accepts, and give the same
    value. Decoding (strict JSON) then runs natively in pydantic-core instead of calling back into
    Python for a regular expression and a parser per field. `serialized_as` names the type the value
    serializes as (pydantic-core would otherwise serialize it by `schema`, i.e. as its input type).
    """

    schema: core_schema.CoreSchema
    serialized_as: Literal["datetime", "uuid"]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        general = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=core_schema.lax_or_strict_schema(lax_schema=general, strict_schema=self.schema),
            python_schema=general,
            serialization=core_schema.simple_ser_schema(self.serialized_as),
        )


_TIMESTAMP_IS = "an RFC 3339 timestamp with a UTC offset"
_UUID_IS = "a lower-case hyphenated UUID"


def _utc_from_rfc3339(text: str) -> datetime:
    return _to_utc(datetime.fromisoformat(text))


Timestamp = Annotated[
    AwareDatetime,
    _parse_checked(TIMESTAMP_PATTERN, _TIMESTAMP_IS, datetime.fromisoformat),
    AfterValidator(_to_utc),
    # A string of the pattern carries an offset, so the aware-datetime check cannot fail on it.
    _StrictJsonBy(
        core_schema.no_info_after_validator_function(
            _utc_from_rfc3339, _json_text(_TIMESTAMP_BODY, "datetime_type", _TIMESTAMP_IS)
        ),
        serialized_as="datetime",
    ),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
"""An aware instant, normalised to UTC; on the wire an RFC 3339 string with an offset."""

EventUUID = Annotated[
    uuid.UUID,
    _parse_checked(UUID_PATTERN, _UUID_IS, uuid.UUID),
    _StrictJsonBy(
        core_schema.chain_schema([_json_text(_UUID_BODY, "uuid_type", _UUID_IS), core_schema.uuid_schema()]),
        serialized_as="uuid",
    ),
    WithJsonSchema({"type": "string", "format": "uuid", "pattern": UUID_PATTERN}),
]
"""A UUID; on the wire its canonical lower-case hyphenated form."""

CountryCode = Annotated[str, full_match(_COUNTRY_BODY, min_length=2, max_length=2)]
"""ISO 3166-1 alpha-2 country code (upper case)."""

CurrencyCode = Annotated[str, full_match(_CURRENCY_BODY, min_length=3, max_length=3)]
"""ISO 4217 currency code (upper case)."""

PersonKey = Annotated[str, full_match(_PERSON_KEY_BODY)]
"""Keyed HMAC pseudonym of a person (`p-` + 32 hex digits); never a name, e-mail or LMS id."""

OrgKey = Annotated[str, full_match(_ORG_KEY_BODY)]
"""Keyed HMAC pseudonym of an organisation (`o-` + 32 hex digits); never a tax id or name."""

Ident = Annotated[str, full_match(_IDENT_BODY)]
"""A non-personal identifier of a source entity (course, offering, meeting, ...)."""

EventIdKey = Annotated[str, full_match(_UUID_BODY)]
"""An event id used as a Kafka key (retractions whose original key is unknown)."""

_AMOUNT = re.compile(AMOUNT_PATTERN)


def _parse_amount(value: Any, info: ValidationInfo) -> Decimal:
    if isinstance(value, bool) or (info.mode == "json" and not isinstance(value, str)):
        # JSON numbers are refused: binary floats cannot carry money exactly.
        raise ValueError("amount must be a decimal string")
    if isinstance(value, Decimal | int):
        try:
            text = format(Decimal(value), "f")
        except (InvalidOperation, ValueError) as exc:
            raise ValueError("not a decimal amount") from exc
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError("amount must be a decimal string")
    if _AMOUNT.search(text) is None:
        raise ValueError("amount must be a non-negative decimal string (at most 6 decimals, no exponent)")
    return Decimal(text)


Amount = Annotated[
    Decimal,
    PlainValidator(_parse_amount),
    PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN}),
]
"""A non-negative exact decimal amount; on the wire a decimal string such as "1250.50"."""


def _before_on_python_input(schema: CoreSchema, before: Callable[[Any], Any]) -> CoreSchema:
    """A model's core schema with `before` applied to Python input only, where a before model validator runs.

    The path down to the model's fields is copied, not changed in place: pydantic may hand out the
    schema it cached for the class. A schema that already has the split is returned as it is.
    """
    if schema["type"] != "model":
        inner = schema.get("schema")
        if not isinstance(inner, dict):
            return schema
        return cast(
            CoreSchema, {**schema, "schema": _before_on_python_input(cast(CoreSchema, inner), before)}
        )
    fields = schema["schema"]
    if fields["type"] == "json-or-python":
        return schema
    split = core_schema.json_or_python_schema(
        json_schema=fields, python_schema=core_schema.no_info_before_validator_function(before, fields)
    )
    return {**schema, "schema": split}


class Money(BaseModel):
    """A monetary value in its original currency, with its US-dollar equivalent at the event-date rate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Amount
    currency: CurrencyCode
    usd_amount: Amount


class Event(BaseModel):
    """Envelope fields shared by every event; subclasses add the payload of one event type.

    Each subclass narrows `event_type` and `schema_version` to a `Literal` with a default, sets the
    class variable `family` (which selects the Kafka topic), documents what its `subject_key` is
    (the Kafka key, hence the unit of ordering), and gives user-facing names in `names`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: ClassVar[str]
    """"training", "plgn" or "finance": selects the topic."""
    names: ClassVar[dict[str, str]] = {}
    """User-facing name of the event type by language ("es", "pt", "en")."""
    subject_field: ClassVar[str | None] = None
    """Payload field that `subject_key` must equal (and is filled from when built in Python), if any."""

    event_type: str
    schema_version: int = 1
    event_id: EventUUID
    occurred_at: Timestamp
    source: Annotated[str, full_match("[a-z0-9][a-z0-9._-]{0,62}")]
    source_ref: str = Field(min_length=1, max_length=256)
    subject_key: str = Field(min_length=1, max_length=128)
    country: CountryCode | None = None
    audience: Audience | None = None

    @field_validator("schema_version", mode="before")
    @classmethod
    def _no_bool_version(cls, value: Any) -> Any:
        # True == 1 in Python, so Literal[1] alone would accept it; JSON Schema's const does not.
        if isinstance(value, bool):
            raise ValueError("schema_version must be an integer")
        return value

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        # `_fill_subject_key` is for Python input only. Declared as a model validator it would also run
        # on JSON, and pydantic-core would first turn every decoded document into a Python dict for it.
        return _before_on_python_input(handler(source), cls._fill_subject_key)

    @classmethod
    def _fill_subject_key(cls, data: Any) -> Any:
        # Convenience for Python callers only: on the wire subject_key is always present, so the JSON
        # Schema (which cannot express "copy of another field") and the model agree on what they accept.
        field = cls.subject_field
        if (
            field is not None
            and isinstance(data, dict)
            and "subject_key" not in data
            and data.get(field) is not None
        ):
            return {**data, "subject_key": data[field]}
        return data

    @model_validator(mode="after")
    def _subject_key_matches(self) -> Self:
        field = type(self).subject_field
        if field is not None and getattr(self, field) != self.subject_key:
            raise ValueError(f"subject_key must equal {field}")
        return self

    @classmethod
    def create(cls, *, source: str, record_identity: str, **fields: Any) -> Self:
        """Build an event whose `event_id` is derived from its source record (see `event_id_for`).

        Raises:
            pydantic.ValidationError: when a field is missing or invalid.
        """
        return cls(event_id=event_id_for(source, record_identity), source=source, **fields)


class EventRetracted(Event):
    """A previously published event is withdrawn (deleted or corrected at the source).

    Published to the topic of the retracted event. `subject_key` is the key of the retracted event when
    the source still knows it (so the retraction is ordered after it), else the retracted event id
    (canonical UUID text). Concrete classes exist per family and narrow `subject_key` accordingly.
    """

    retracted_event_id: EventUUID
    reason: str = Field(min_length=1, max_length=200)
