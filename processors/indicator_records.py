"""The indicators topic's records: a cell state as a versioned `IndicatorValue`, as the relay publishes it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType

from processors.base import CellKey
from processors.indicators import catalogue
from processors.indicators.derive import derive_value
from schemas.cloudevents import KafkaRecord
from schemas.indicators import IndicatorValue, encode_indicator, indicator_key


def indicator_record(
    *,
    indicator: str,
    period_kind: str,
    period_start: date,
    dimensions: Mapping[str, str],
    parts: Mapping[str, Decimal],
    version: int,
    as_of: datetime,
    margin_coefficient: Decimal = Decimal(1),
    key: str | None = None,
) -> KafkaRecord:
    """The indicators-topic record of one cell state: key, `IndicatorValue` JSON, CloudEvents headers.

    The value is derived from the cell's own parts; it is None when the derivation needs parts the
    cell does not hold (rates across indicators are derived by the read model) or is undefined.
    `key`, when given, must be the cell's `indicator_key` (callers that publish a cell often keep it).

    Raises:
        pydantic.ValidationError: when the cell does not fit the published contract.
    """
    try:
        value = derive_value(indicator, parts, margin_coefficient=margin_coefficient)
        unit: str = catalogue.get(indicator).unit
    except KeyError:
        value, unit = None, "count"
    payload = IndicatorValue.model_validate(
        {
            "indicator": indicator,
            "period": {"kind": period_kind, "start": period_start},
            "dimensions": dict(dimensions),
            "value": None if value is None else float(value),
            "parts": {name: float(amount) for name, amount in parts.items()},
            "version": version,
            "as_of": as_of.astimezone(UTC),
            "unit": unit,
        }
    )
    if key is None:
        key = indicator_key(indicator, period_kind, period_start, dimensions)
    return encode_indicator(payload, key)


@lru_cache(maxsize=65_536)
def cell_identity(cell: CellKey) -> tuple[Mapping[str, str], str]:
    """A cell's dimensions and topic key; the same cells are published round after round."""
    indicator, period_kind, period_start, dims = cell
    dimensions: dict[str, str] = json.loads(dims)
    return MappingProxyType(dimensions), indicator_key(indicator, period_kind, period_start, dimensions)
