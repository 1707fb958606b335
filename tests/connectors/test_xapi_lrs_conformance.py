"""The xAPI connector's conformance against two LRSs: the project's simulator and Ralph 5.1.0 from PyPI.

Both serve the same dataset: a generated CVF world, a voiding statement of a statement in it, a voiding
statement of a statement that no LRS holds, and a statement with an audience outside the contract. The
runtime's conformance kit (idempotent ids, resume after crashes, dead letters, graceful shutdown) and the
xAPI checks below (paging through `more`, Consistent-Through present or not, voiding) run against each.
"""

# ruff: noqa: S106 - the LRSs' well-known test credentials

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.conformance import ConnectorConformance, SimulatedSource, read_topic
from connectors.simulators.generator import generate
from connectors.simulators.xapi_lrs import VERB_VOIDED, XapiLrs, statements_from_world
from connectors.xapi import XapiConnector
from infra.settings import Settings
from schemas.cloudevents import decode
from schemas.events.training import TrainingEventRetracted
from schemas.topics import TopicCatalogue
from tests.connectors.ralph import ralph_lrs

UNKNOWN_TARGET = "00000000-0000-4000-8000-0000000dead1"


def dataset() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The statements every LRS serves, in stored order, and the statement voided among them."""
    statements, _ = statements_from_world(generate(13, learners=12), seed=13)
    voided = next(s for s in statements if s["verb"]["id"].endswith("/completed"))
    last = statements[-1]["stored"]

    def voiding(target: str, n: int) -> dict[str, Any]:
        return {
            "id": str(uuid.UUID(int=n, version=4)),
            "actor": {
                "objectType": "Agent",
                "account": {"homePage": "https://cvf.aladi.org", "name": "admin"},
            },
            "verb": {"id": VERB_VOIDED, "display": {"en-US": "voided"}},
            "object": {"objectType": "StatementRef", "id": target},
            "timestamp": last,
            "stored": last,
        }

    odd = dict(statements[5], id=str(uuid.UUID(int=3, version=4)))
    odd["context"] = {**odd["context"], "extensions": {**odd["context"]["extensions"]}}
    odd["context"]["extensions"]["https://w3id.org/alcance/xapi/extensions/audience"] = "ASTRONAUTS"
    statements.insert(6, odd)
    statements += [voiding(voided["id"], 1), voiding(UNKNOWN_TARGET, 2)]
    return statements, voided


@pytest.fixture(params=["simulator", "ralph"])
async def lrs(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The endpoint of an LRS serving `dataset()`."""
    statements, _ = dataset()
    if request.param == "ralph":
        async with ralph_lrs(statements) as endpoint:
            yield endpoint
        return
    server = XapiLrs(statements)
    endpoint = await server.start()
    try:
        yield endpoint
    finally:
        await server.stop()


class TestXapiConformanceBothLrs(ConnectorConformance):
    """The runtime's conformance kit, pulling from the simulator and from Ralph."""

    connector_kind = "xapi"
    source_name = "conf-xapi-lrs"

    @pytest.fixture
    async def simulated_source(self, lrs: str) -> AsyncIterator[SimulatedSource]:
        yield SimulatedSource(
            endpoint=lrs, username="cvf", password="secret", page_size=15, expected_dead_letters=2
        )

    async def test_pages_through_more_and_retracts_by_lookup(
        self, settings: Settings, simulated_source: SimulatedSource
    ) -> None:
        """Every page is followed through `more`; the voided statement's events are retracted, once each."""
        fast = self._fast(settings)
        result = await self._run(fast, simulated_source)
        statements, voided = dataset()
        assert result.fetches >= len(statements) // simulated_source.page_size
        assert result.dead_letters == 2
        connector = XapiConnector(self._source(simulated_source), fast)
        expected_retracted = {event.event_id for event in connector.mapper.events(voided)}
        catalogue = TopicCatalogue.from_settings(fast)
        records = await read_topic(fast, catalogue.training.name, expect_at_least=len(result.event_ids))
        events = [decode(list(record.headers), record.value) for record in records]
        retracted = [e.retracted_event_id for e in events if isinstance(e, TrainingEventRetracted)]
        assert set(retracted) == expected_retracted
        # Nothing but the dataset's events: the unknown target and the odd statement are dead letters.
        dead = await read_topic(fast, catalogue.dead_letter(catalogue.training).name, expect_at_least=2)
        reasons = sorted(dict(record.headers)["dlq_reason"].decode() for record in dead)
        assert reasons[0].startswith("unknown audience")
        assert reasons[1].startswith(f"voided statement {UNKNOWN_TARGET} was never pulled")
