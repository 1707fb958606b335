"""The simulated world as the connectors map it: the events the pipeline would store, without the network."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.base import PollingConnector
from connectors.costs import CostLedgerConnector
from connectors.exceptions import DeadLetterRecord, SkipRecord
from connectors.plgn import PlgnConnector
from connectors.pseudonym import Pseudonymiser
from connectors.simulators.generator import World
from connectors.simulators.plgn_feed import feed_from_world
from connectors.simulators.sources import write_cost_ledger
from connectors.simulators.xapi_lrs import statements_from_world
from connectors.xapi import XapiConnector, XapiRecord
from infra.settings import Settings, SourceConfig
from processors.indicators.aggregate import Cell, ReadContext, aggregate
from processors.indicators.catalogue import INDICATORS
from schemas.events.base import Event

from .reference import ReferenceStore

PSEUDONYMS = Pseudonymiser(b"p" * 16, b"o" * 16)


def _connector(cls: type[PollingConnector[Any]], kind: str, endpoint: str) -> PollingConnector[Any]:
    source = SourceConfig(name=f"sim-{kind}", kind=kind, endpoint=endpoint)
    return cls(source, Settings(), pseudonymiser=PSEUDONYMS)


def _mapped(connector: PollingConnector[Any], records: Sequence[Any]) -> list[Event]:
    events: list[Event] = []
    for record in records:
        try:
            events.extend(connector.map_record(record))
        except (DeadLetterRecord, SkipRecord):
            continue
    return events


def events_of(world: World, *, seed: int) -> list[Event]:
    """The events the xAPI, PLGN and cost-ledger connectors make of `world` (no contract violations)."""
    statements, _ = statements_from_world(world, seed=seed)
    events = _mapped(
        _connector(XapiConnector, "xapi", "https://lrs.example/xapi/"),
        [XapiRecord(statement) for statement in statements],
    )
    events += _mapped(
        _connector(PlgnConnector, "plgn", "https://plgn.example/activities"),
        feed_from_world(world, invalid=0).items,
    )
    with tempfile.TemporaryDirectory() as folder:
        ledger = Path(folder) / "costs.csv"
        write_cost_ledger(world, ledger)
        with ledger.open(encoding="utf-8", newline="") as file:
            rows = list(csv.DictReader(file))
    events += _mapped(_connector(CostLedgerConnector, "costs", str(ledger)), rows)
    return events


def cells_by_each_dimension(events: Sequence[Event], as_of: datetime) -> dict[tuple[str, str], list[Cell]]:
    """Yearly cells of every indicator grouped by each of its dimensions in turn, from `events`' parts."""
    store = ReferenceStore()
    for event in events:
        store.apply(event)
    rows = store.rows("year")
    found = {}
    for entry in INDICATORS:
        for dimension in entry.dimensions:
            ctx = ReadContext(period="year", by=(dimension,), as_of=as_of, cohort_grace_days=14)
            found[(entry.id, dimension)] = aggregate(entry.id, rows, ctx)
    return found
