"""Serving reads of "now" from the indicator snapshots (`processors.snapshots`), when they are recent enough.

A snapshot holds what `processors.read.read_indicators` returned for the internal audience at one
instant (`as_of`), per indicator, period kind and declared grouping (`GROUPINGS`). A read is served
from it only when it names no instant of its own and does not ask for the present (`fresh`), asks for
a declared grouping, and the snapshots of all its indicators were computed with the same settings and
code and are younger than ``processor.snapshot_max_age_s``. When a change to a stored indicator any of
them reads is pending (an outbox mark the relay has not taken yet, or a stale entry the refresher has
not taken yet), every one of those snapshots must also be younger than ``processor.snapshot_max_lag_s``
(0: never served while a change is pending). All of it is judged in the read's own transaction;
otherwise the read computes its cells live. The values served are exact as of the snapshot's instant,
which the read reports, with whether received changes may be missing (`Served.pending`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg

from infra.settings import Settings
from processors.indicators import catalogue
from processors.indicators.base import PeriodKind
from processors.read_enrolments import RAW_READS

PERIOD_KINDS: tuple[PeriodKind, ...] = ("month", "quarter", "year")

# The `by` groupings dashboards, pages and the query API ask for: totals, every single dimension, and
# the combinations the pages and the dashboard mix use. An indicator is snapshotted in those of them
# whose dimensions it has. The order is the order asked for (it orders the cells and their keys).
PAIRS: tuple[tuple[str, ...], ...] = (
    ("country", "audience"),
    ("audience", "country"),
    ("activity", "category", "payer"),
)


def groupings(entry: catalogue.Indicator) -> list[tuple[str, ...]]:
    """The declared groupings of one indicator."""
    return [
        (),
        *((name,) for name in entry.dimensions),
        *(pair for pair in PAIRS if set(pair) <= set(entry.dimensions)),
    ]


def grouping_name(by: Sequence[str]) -> str:
    """The `grouping` column of a `by` tuple."""
    return ",".join(by)


def sources(entry: catalogue.Indicator) -> frozenset[str]:
    """The stored indicators whose changes can change this indicator's results (itself included)."""
    raw = {key[0] for key in RAW_READS.get(entry.aggregation, ())}
    return frozenset({entry.id, *(ref.indicator for ref in entry.reads), *raw})


def dependents(changed: Iterable[str]) -> list[catalogue.Indicator]:
    """The catalogue indicators whose results a change to the stored indicators `changed` can change."""
    wanted = set(changed)
    return [entry for entry in catalogue.INDICATORS if sources(entry) & wanted]


def settings_key(settings: Settings) -> str:
    """The settings and the code an internal result depends on, as text (a snapshot serves only the same).

    The code is a digest of the read model's sources, so results computed by another release (a
    rolling upgrade, or a snapshot left from before one) are not served as this one's.
    """
    processor = settings.processor
    return json.dumps(
        {
            "grace": processor.cohort_grace_days,
            "margin": str(processor.roi_margin_coefficient),
            "code": code_digest(),
        },
        sort_keys=True,
    )


@cache
def code_digest() -> str:
    """A digest of the sources that compute results: the indicators package and the read modules."""
    here = Path(__file__).parent
    sources = sorted((here / "indicators").glob("*.py")) + sorted(here.glob("read*.py"))
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def encode_result(result: dict[str, Any]) -> str:
    """A result object as JSON text; decimal numbers as text, so they come back exactly."""
    return json.dumps(result, default=_decimal_text, separators=(",", ":"))


def _decimal_text(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"a result holds {type(value).__name__}, not a decimal number: {value!r}")


def decode_result(text: str) -> dict[str, Any]:
    """The result object `encode_result` wrote: the value and the parts back as `Decimal`."""
    result: dict[str, Any] = json.loads(text)
    if result["value"] is not None:
        result["value"] = Decimal(result["value"])
    result["parts"] = {name: _number(value) for name, value in result["parts"].items()}
    return result


def _number(value: Any) -> Any:
    return Decimal(value) if isinstance(value, str) else value


# Whether a mark is waiting is asked as min(): an index scan stopping at the first entry in every plan,
# where EXISTS let the generic plan of this prepared statement read the whole outbox when no mark of
# these indicators waited (370 ms at 10M events with a backlog of 5.6M marks).
_STATE = """
SELECT indicator, as_of, settings, as_of >= now() - make_interval(secs => $3) AS recent,
       as_of >= now() - make_interval(secs => $4) AS within_lag,
       (SELECT min(indicator) FROM indicator_outbox WHERE indicator = ANY($2::text[])) IS NOT NULL
       OR EXISTS (SELECT 1 FROM indicator_stale WHERE indicator = ANY($2::text[])) AS pending
  FROM indicator_snapshot_state
 WHERE indicator = ANY($1::text[])
"""
_ROWS = """
SELECT indicator, result FROM indicator_snapshot
 WHERE indicator = ANY($1::text[]) AND period_kind = $2 AND grouping = $3
 ORDER BY indicator, position
"""


@dataclass(frozen=True)
class Served:
    """What the snapshots serve a read.

    Attributes:
        by_indicator: Per indicator, the instant its values are exact at and its internal results.
        pending: Whether a change to what the indicators read was received and is not in these values
            yet (served within ``snapshot_max_lag_s``); False means they are also the values of now.
    """

    by_indicator: dict[str, tuple[datetime, list[dict[str, Any]]]]
    pending: bool


async def served(
    connection: asyncpg.Connection,
    indicators: Sequence[catalogue.Indicator],
    period: PeriodKind,
    by: Sequence[str],
    settings: Settings,
) -> Served | None:
    """The snapshots' instants and internal results for a read of now, or None when it must be live.

    Call it inside the read's transaction (repeatable read), so the checks and the rows agree.
    """
    processor = settings.processor
    if not processor.snapshots or not indicators:
        return None
    if any(tuple(by) not in groupings(entry) for entry in indicators):
        return None
    ids = [entry.id for entry in indicators]
    read = sorted(set().union(*(sources(entry) for entry in indicators)))
    states = await connection.fetch(
        _STATE, ids, read, processor.snapshot_max_age_s, processor.snapshot_max_lag_s
    )
    key = settings_key(settings)
    if len(states) != len(ids) or any(not state["recent"] or state["settings"] != key for state in states):
        return None
    # Every state carries the same `pending`: it is judged over all the indicators the read needs.
    pending = any(state["pending"] for state in states)
    if pending and (processor.snapshot_max_lag_s <= 0 or not all(state["within_lag"] for state in states)):
        return None
    found: dict[str, tuple[datetime, list[dict[str, Any]]]] = {
        state["indicator"]: (state["as_of"], []) for state in states
    }
    for indicator, text in await connection.fetch(_ROWS, ids, period, grouping_name(by)):
        found[indicator][1].append(decode_result(text))
    return Served(found, pending)
