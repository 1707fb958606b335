"""The OpenTelemetry instruments of the connectors: shared by every source, tagged per source."""

from __future__ import annotations

from infra.telemetry import meter


class ConnectorInstruments:
    """Counters and gauges of the pull runtime (`alcance.connector.*`)."""

    def __init__(self) -> None:
        m = meter()
        self.records = m.create_counter("alcance.connector.records_pulled", unit="{record}")
        self.events = m.create_counter("alcance.connector.events_published", unit="{event}")
        self.dead = m.create_counter("alcance.connector.dead_lettered", unit="{record}")
        self.skipped = m.create_counter("alcance.connector.records_skipped", unit="{record}")
        self.retries = m.create_counter("alcance.connector.retries", unit="{retry}")
        self.behind = m.create_gauge("alcance.connector.seconds_behind", unit="s")


_instruments: ConnectorInstruments | None = None


def instruments() -> ConnectorInstruments:
    """The process's instruments, created on first use (after telemetry is set up)."""
    global _instruments
    if _instruments is None:
        _instruments = ConnectorInstruments()
    return _instruments
