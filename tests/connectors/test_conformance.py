"""The conformance kit run for every connector of alcance, and for a plug-in found through its entry point."""

# ruff: noqa: S106 - simulators' well-known test credentials

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from connectors.conformance import ConnectorConformance, SimulatedSource
from connectors.registry import load_connector_class
from connectors.simulators.generator import generate
from connectors.simulators.moodle_ws import CertIssue, MoodleSimulator, state_from_world
from connectors.simulators.plgn_feed import PlgnFeedSimulator, feed_from_world
from connectors.simulators.serving import serving
from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world


class TestMoodleConformance(ConnectorConformance):
    connector_kind = "moodle"
    source_name = "conf-moodle"

    @pytest.fixture
    async def simulated_source(self) -> AsyncIterator[SimulatedSource]:
        state = state_from_world(generate(11, learners=24, firms=4, courses=2))
        # A certificate of a customcert instance that belongs to no course of the site: unmappable.
        state.issues[9_999] = CertIssue(9_999, 77_777, next(iter(state.users)), "ORPHAN0001", 1_767_225_600)
        async with serving(MoodleSimulator(state, token="moodle-token").app()) as url:
            yield SimulatedSource(endpoint=url, token="moodle-token", page_size=6, expected_dead_letters=1)


class TestPlgnConformance(ConnectorConformance):
    connector_kind = "plgn"
    source_name = "conf-plgn"

    @pytest.fixture
    async def simulated_source(self) -> AsyncIterator[SimulatedSource]:
        feed = feed_from_world(generate(12, learners=5, firms=12), invalid=2)
        async with serving(PlgnFeedSimulator(feed, token="plgn-token").app()) as url:
            yield SimulatedSource(
                endpoint=f"{url}/activities", token="plgn-token", page_size=10, expected_dead_letters=2
            )


class TestXapiConformance(ConnectorConformance):
    connector_kind = "xapi"
    source_name = "conf-xapi"

    @pytest.fixture
    async def simulated_source(self) -> AsyncIterator[SimulatedSource]:
        statements, _ = statements_from_world(generate(13, learners=12), seed=13)
        bad = dict(statements[3], id="00000000-0000-4000-8000-00000000bad1", actor={"objectType": "Agent"})
        statements.insert(4, bad)
        server = XapiLrs(statements)
        endpoint = await server.start()
        try:
            yield SimulatedSource(
                endpoint=endpoint, username="cvf", password="secret", page_size=15, expected_dead_letters=1
            )
        finally:
            await server.stop()


PLUGIN_MODULE = '''
"""A minimal third-party connector: numbered records from a JSON list endpoint."""
from typing import Any, ClassVar

from connectors.base import Cursor, Page, PollingConnector
from connectors.exceptions import DeadLetterRecord
from schemas.events.training import LearnerRegistered


class ToyConnector(PollingConnector[dict[str, Any]]):
    kind: ClassVar[str] = "toy"
    family: ClassVar[str] = "training"

    async def fetch_page(self, cursor: Cursor | None) -> Page[dict[str, Any]]:
        after = int(cursor["after"]) if cursor else 0
        response = await self.http.get_json(
            self.source.endpoint, params={"after": str(after), "limit": str(self.page_size)}
        )
        records = response.body["records"]
        following = records[-1]["n"] if records else after
        done = len(records) < self.page_size
        return Page(records=records, next_cursor={"after": following}, exhausted=done)

    def map_record(self, record: dict[str, Any]) -> list[Any]:
        if "email" not in record:
            raise DeadLetterRecord("record without e-mail")
        key = self.pseudonyms.person(record["email"])
        return [LearnerRegistered.create(
            source=self.name, record_identity=str(record["n"]), occurred_at=record["at"],
            source_ref=f"toy:{record['n']}", subject_key=key,
        )]
'''


@pytest.fixture(scope="module")
def toy_plugin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Install a plug-in distribution on sys.path: a module plus a dist-info declaring its entry point."""
    root: Path = tmp_path_factory.mktemp("plugin")
    (root / "toy_alcance_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    dist = root / "toy_alcance_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-alcance-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[alcance.connectors]\ntoy = toy_alcance_plugin:ToyConnector\n")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield "toy"
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("toy_alcance_plugin", None)


def _toy_app() -> web.Application:
    records = [
        {"n": n, "email": f"toy{n}@example.org", "at": f"2026-01-{1 + n % 28:02d}T10:00:00Z"}
        for n in range(1, 24)
    ]
    records[6] = {"n": 7, "at": "2026-01-08T10:00:00Z"}

    async def listing(request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "5"))
        return web.json_response({"records": [r for r in records if r["n"] > after][:limit]})

    app = web.Application()
    app.router.add_get("/records", listing)
    return app


class TestPluginConformance(ConnectorConformance):
    connector_kind = "toy"
    source_name = "conf-toy"

    @pytest.fixture
    async def simulated_source(self, toy_plugin: str) -> AsyncIterator[SimulatedSource]:
        assert load_connector_class(toy_plugin).__name__ == "ToyConnector"
        async with serving(_toy_app()) as url:
            yield SimulatedSource(endpoint=f"{url}/records", page_size=5, expected_dead_letters=1)
