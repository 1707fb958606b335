"""Value of one indicator cell on the `indicators` topic, and the key that names the cell."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema

from schemas.cloudevents import CONTENT_TYPE, SPEC_VERSION, InvalidEvent, KafkaRecord
from schemas.events.base import EVENT_ID_NAMESPACE, IDENT_MAX_CHARS, Timestamp, anchored
from schemas.registry import CE_TYPE_PREFIX

INDICATOR_SCHEMA_ID = "urn:alcance:schema:indicator.v1"
INDICATOR_SCHEMA_VERSION = 1
INDICATOR_CE_TYPE = f"{CE_TYPE_PREFIX}indicator.changed.v{INDICATOR_SCHEMA_VERSION}"
"""CloudEvents `type` of an indicator record."""
INDICATOR_CE_SOURCE = "urn:alcance:processor:indicators"
"""CloudEvents `source` of an indicator record."""


class PeriodKind(StrEnum):
    """Length of an indicator period."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


# First day of the period, per kind: month starts on day 1, quarters in Jan/Apr/Jul/Oct, years on Jan 1.
_PERIOD_START_PATTERNS: dict[str, str] = {
    PeriodKind.MONTH: anchored("[0-9]{4}-(?:0[1-9]|1[0-2])-01"),
    PeriodKind.QUARTER: anchored("[0-9]{4}-(?:01|04|07|10)-01"),
    PeriodKind.YEAR: anchored("[0-9]{4}-01-01"),
}


def _period_start(kind: PeriodKind) -> Any:
    pattern = _PERIOD_START_PATTERNS[kind]
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str):
            if compiled.search(value) is None:
                raise ValueError(f"not the first day of a {kind.value} (YYYY-MM-DD)")
            return date.fromisoformat(value)
        if isinstance(value, date) and compiled.search(value.isoformat()) is None:
            raise ValueError(f"not the first day of a {kind.value}")
        return value

    return Annotated[
        date,
        BeforeValidator(check),
        WithJsonSchema({"type": "string", "format": "date", "pattern": pattern}),
    ]


class _Period(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", regex_engine="python-re")


class MonthPeriod(_Period):
    """A calendar month, named by its first day."""

    kind: Literal[PeriodKind.MONTH]
    start: _period_start(PeriodKind.MONTH)  # type: ignore[valid-type]  # built per kind at import


class QuarterPeriod(_Period):
    """A calendar quarter, named by its first day."""

    kind: Literal[PeriodKind.QUARTER]
    start: _period_start(PeriodKind.QUARTER)  # type: ignore[valid-type]  # built per kind at import


class YearPeriod(_Period):
    """A calendar year, named by its first day."""

    kind: Literal[PeriodKind.YEAR]
    start: _period_start(PeriodKind.YEAR)  # type: ignore[valid-type]  # built per kind at import


Period = Annotated[MonthPeriod | QuarterPeriod | YearPeriod, Field(discriminator="kind")]
"""The period of an indicator cell: `{"kind": "month"|"quarter"|"year", "start": "YYYY-MM-DD"}`."""

DimensionName = Annotated[str, Field(pattern=anchored("[a-z][a-z0-9_]{0,31}"))]
# Values must not contain the separators of the topic key; they are as long as the event identifiers
# they come from may be, so that every stored cell can be published.
DimensionValue = Annotated[str, Field(pattern=anchored(f"[^\\n]{{1,{IDENT_MAX_CHARS}}}"))]
FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]


class IndicatorValue(BaseModel):
    """One indicator cell as published on the `indicators` topic (compacted by `key`).

    `value` is None when the cell is suppressed (small cells) or undefined (zero denominator);
    `parts` keeps the additive parts (e.g. numerator and denominator) so readers can re-aggregate.
    `version` increases with every change of the cell, so a reader keeps the highest it has seen.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", regex_engine="python-re")

    indicator: str = Field(pattern=anchored("[A-Z]{2,5}-[0-9]{2}"))
    period: Period
    dimensions: dict[DimensionName, DimensionValue] = Field(default_factory=dict, max_length=16)
    value: FiniteNumber | None
    parts: dict[DimensionName, FiniteNumber] = Field(default_factory=dict, max_length=16)
    version: int = Field(ge=1)
    as_of: Timestamp
    provisional: bool = False
    unit: str = Field(min_length=1, max_length=32)

    @property
    def key(self) -> str:
        """The cell's topic key (see `indicator_key`)."""
        return indicator_key(self.indicator, self.period.kind, self.period.start, self.dimensions)


def indicator_event_id(key: str, version: int) -> uuid.UUID:
    """The CloudEvents id of one version of a cell: the same cell state always gets the same id."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"indicator\x1f{key}\x1f{version}")


# The headers equal for every indicator record, built once (the relay encodes thousands per round).
_CONSTANT_HEADERS = (
    ("ce_specversion", SPEC_VERSION.encode()),
    ("ce_source", INDICATOR_CE_SOURCE.encode()),
    ("ce_type", INDICATOR_CE_TYPE.encode()),
    ("ce_dataschema", INDICATOR_SCHEMA_ID.encode()),
    ("content-type", CONTENT_TYPE.encode()),
)


def encode_indicator(value: IndicatorValue, key: str | None = None) -> KafkaRecord:
    """The `indicators` record of a cell: key `value.key`, JSON value, CloudEvents binary-mode headers.

    `key`, when given, must be `value.key` (a caller that already has it saves building it again).
    """
    if key is None:
        key = value.key
    specversion, source, ce_type, dataschema, content_type = _CONSTANT_HEADERS
    headers = [
        specversion,
        ("ce_id", str(indicator_event_id(key, value.version)).encode()),
        source,
        ce_type,
        ("ce_time", value.as_of.isoformat().replace("+00:00", "Z").encode()),
        ("ce_subject", key.encode()),
        dataschema,
        content_type,
    ]
    return KafkaRecord(key=key.encode(), value=value.model_dump_json().encode(), headers=headers)


def decode_indicator(value: bytes | None) -> IndicatorValue:
    """Parse an `indicators` topic value.

    Raises:
        InvalidEvent: when the value is missing, not JSON, or not a valid indicator value.
    """
    if value is None:
        raise InvalidEvent("record has no value")
    try:
        return IndicatorValue.model_validate_json(value, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        where = ".".join(str(part) for part in errors[0]["loc"]) or "value"
        raise InvalidEvent(f"invalid indicator value: {where}: {errors[0]['msg']}") from None


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace("|", "%7C").replace(",", "%2C").replace("=", "%3D")


def indicator_key(indicator: str, period_kind: str, period_start: date, dimensions: Mapping[str, str]) -> str:
    """The `indicators` topic key of a cell.

    `"<indicator>|<period kind>|<period start>|<sorted k=v dimensions joined by ,>"`, e.g.
    `"CVF-01|month|2026-03-01|audience=MSME,country=UY"`; the order of `dimensions` does not matter.
    A `%`, `|`, `,` or `=` inside a value is percent-encoded, so every cell has its own key.
    """
    dims = ",".join(f"{name}={_escape(value)}" for name, value in sorted(dimensions.items()))
    return f"{indicator}|{PeriodKind(period_kind).value}|{period_start.isoformat()}|{dims}"
