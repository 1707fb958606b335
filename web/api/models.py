"""The query API's request and response models; the OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Grain = Literal["month", "quarter", "year"]
Number = int | float
# A comma-separated list of names (`by=country,audience`) or of dimension values (`country=AR,BR`).
NAMES = r"^[a-z_]+(,[a-z_]+)*$"
VALUES = r"^[^,]{1,100}(,[^,]{1,100})*$"
PERIOD = r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$"


def plain_number(value: Any) -> Any:
    """Decimals as JSON numbers (integers when whole), as `alcance indicators --json` prints them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain_number(item) for key, item in value.items()}
    return value


AS_OF = (
    "the instant the values are exact at (cohorts and ROI windows judged then): the indicator snapshot's "
    "they were served from, or the request's when computed live"
)
CHANGES_PENDING = (
    "true when changes received before the request were still waiting for a snapshot refresh, so they may "
    "be missing from these values (served from a snapshot within the staleness bound, "
    "ALCANCE_PROCESSOR__SNAPSHOT_MAX_LAG_S); fresh=true reads the present"
)


class Query(BaseModel):
    """Base of query-string models: unknown parameters are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FreshQuery(Query):
    """Whether to read the present: computed from the store, never served from a snapshot."""

    fresh: bool = Field(
        default=False,
        description="true: compute the values of the present from the store (slower); false: values may be "
        "served from a snapshot, exact as of its instant (as_of)",
    )


class DimensionFilters(Query):
    """Filters on dimension values (comma-separated); a filtered dimension must be one of `by`."""

    country: str | None = Field(default=None, pattern=VALUES)
    audience: str | None = Field(default=None, pattern=VALUES)
    course: str | None = Field(default=None, pattern=VALUES)
    offering: str | None = Field(default=None, pattern=VALUES)
    gender: str | None = Field(default=None, pattern=VALUES)
    activity: str | None = Field(default=None, pattern=VALUES)

    def filters(self) -> dict[str, set[str]]:
        """The dimension filters given, as sets of accepted values."""
        found = self.model_dump(include=set(DimensionFilters.model_fields), exclude_none=True)
        return {name: set(text.split(",")) for name, text in found.items()}


class IndicatorQuery(DimensionFilters, FreshQuery):
    """`/api/v1/indicators/{id}`: period kind, grouping and range of the cells."""

    grain: Grain = "month"
    by: str | None = Field(default=None, pattern=NAMES, description="dimensions to group by, e.g. country")
    from_: str | None = Field(default=None, alias="from", pattern=PERIOD, description="first period, 2025-01")
    to: str | None = Field(default=None, pattern=PERIOD, description="last period, 2025-12")

    def dimensions(self) -> list[str]:
        """The `by` dimensions in the order given."""
        return [] if not self.by else self.by.split(",")


class SeveralIndicatorsQuery(IndicatorQuery):
    """`/api/v1/indicators?ids=`: the indicators to read, comma-separated (at most 40)."""

    ids: str = Field(
        pattern=r"^[A-Za-z]{2,5}-[0-9]{2}(,[A-Za-z]{2,5}-[0-9]{2}){0,39}$", description="CVF-01,CVF-02"
    )


class Period(BaseModel):
    """A calendar period: its kind and first day."""

    kind: Grain
    start: date


class IndicatorCell(BaseModel):
    """One cell, as `alcance indicators --json` prints it, plus `suppressed`."""

    indicator: str
    period: Period
    dimensions: dict[str, str]
    value: Number | None = Field(description="null when suppressed or undefined (zero denominator)")
    parts: dict[str, Number | None] = Field(description="numerator, denominator and the other parts")
    unit: str
    provisional: bool = Field(description="may still change (open cohort, ROI window not closed)")
    suppressed: bool = Field(description="withheld as a small cell (external audiences only)")


class IndicatorTable(BaseModel):
    """An indicator's cells of one grain and grouping, read at `as_of`."""

    indicator: str
    grain: Grain
    by: list[str]
    audience: Literal["internal", "external"]
    as_of: datetime = Field(description=AS_OF)
    changes_pending: bool = Field(default=False, description=CHANGES_PENDING)
    cells: list[IndicatorCell]


class IndicatorTables(BaseModel):
    """Several indicators' tables, in the order asked for."""

    tables: list[IndicatorTable]


class IndicatorNames(BaseModel):
    """A display name in Spanish, Portuguese and English."""

    es: str
    pt: str
    en: str


class CatalogueEntry(BaseModel):
    """One indicator of the catalogue."""

    id: str
    family: str
    article: str
    names: IndicatorNames
    definition: str
    formula: str
    unit: str
    dimensions: list[str]
    cumulative: bool


class Catalogue(BaseModel):
    """The indicator catalogue of Resolution 503."""

    indicators: list[CatalogueEntry]


class Health(BaseModel):
    """Liveness of the web app."""

    status: Literal["ok"]
