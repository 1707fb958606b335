"""Connector discovery through the `alcance.connectors` entry-point group."""

from __future__ import annotations

import pytest

from connectors.registry import UnknownConnectorKind, available_kinds, load_connector_class
from connectors.xapi import XapiConnector


def test_installed_kinds_are_discovered() -> None:
    assert {"xapi", "moodle", "plgn"} <= set(available_kinds())


def test_xapi_kind_loads_the_xapi_connector() -> None:
    cls = load_connector_class("xapi")
    assert cls is XapiConnector and cls.kind == "xapi"


def test_unknown_kind_names_the_installed_ones() -> None:
    with pytest.raises(UnknownConnectorKind, match="xapi"):
        load_connector_class("caliper-nonexistent")
