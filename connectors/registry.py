"""Finds connector classes by kind through the entry-point group `alcance.connectors`."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points

from connectors.base import Connector

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "alcance.connectors"


class UnknownConnectorKind(LookupError):
    """Raised when no installed connector registers the requested kind."""


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_kinds() -> list[str]:
    """Kinds registered by the installed distributions (alcance itself and any plug-ins)."""
    return sorted(_entry_points())


def load_connector_class(kind: str) -> type[Connector]:
    """The connector class registered under `kind`.

    Raises:
        UnknownConnectorKind: when no entry point has that name.
        TypeError: when the entry point does not name a `Connector` subclass.
    """
    found = _entry_points().get(kind)
    if found is None:
        raise UnknownConnectorKind(
            f"no connector of kind {kind!r}; installed kinds: {', '.join(available_kinds()) or 'none'}"
        )
    loaded = found.load()
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        raise TypeError(f"entry point {kind!r} ({found.value}) is not a Connector subclass")
    return loaded
