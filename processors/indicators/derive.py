"""The value of an indicator cell, derived at read time from its aggregated parts; pure."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from processors.indicators import catalogue

# Derived values are published with six decimals; the parts keep full precision.
VALUE_QUANTUM = Decimal("0.000001")
_HUNDRED = Decimal(100)


def derive_value(
    indicator_id: str, parts: Mapping[str, Decimal], *, margin_coefficient: Decimal = Decimal(1)
) -> Decimal | None:
    """The indicator's value from the aggregated parts of one cell (see `catalogue.Derivation`).

    Args:
        indicator_id: Catalogue id.
        parts: Aggregated parts of the cell.
        margin_coefficient: m of ROI and benefit-cost ratio (``settings.processor.roi_margin_coefficient``).

    Returns:
        The value, or None when it is undefined (a zero or missing denominator, no observations).

    Raises:
        KeyError: when the indicator is unknown.
    """
    derivation = catalogue.get(indicator_id).derivation
    values = [parts.get(name) for name in derivation.args]
    if any(value is None for value in values):
        return None
    args = [value for value in values if value is not None]
    if derivation.op == "part":
        result = args[0]
    else:
        numerator, denominator = args
        if denominator == 0:
            return None
        if derivation.op == "ratio":
            result = numerator / denominator * derivation.scale
        elif derivation.op == "roi":
            result = (numerator * margin_coefficient - denominator) / denominator * _HUNDRED
        else:
            result = numerator * margin_coefficient / denominator
    return result.quantize(VALUE_QUANTUM, rounding=ROUND_HALF_EVEN)


def extra_ratios(indicator_id: str, parts: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The indicator's secondary rates (e.g. PLGN-07's no-show rate), where their denominator is not zero."""
    found = {}
    for name, numerator, denominator in catalogue.get(indicator_id).extra_ratios:
        top, bottom = parts.get(numerator), parts.get(denominator)
        if top is not None and bottom:
            found[name] = (top / bottom).quantize(VALUE_QUANTUM, rounding=ROUND_HALF_EVEN)
    return found
