"""The xAPI pull contract against the LRS simulator: since/more paging, Consistent-Through, voided lookups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from connectors.exceptions import FatalSourceError
from connectors.http import HttpClient
from connectors.pseudonym import Pseudonymiser
from connectors.simulators.generator import generate
from connectors.simulators.xapi_lrs import XapiLrs, parse_iso, statements_from_world
from connectors.xapi import XapiConnector
from infra.settings import ConnectorSettings, SourceConfig, load_settings


@pytest.fixture
async def lrs() -> AsyncIterator[XapiLrs]:
    statements, _ = statements_from_world(generate(3, learners=15), seed=3)
    server = XapiLrs(statements)
    server.endpoint = await server.start()  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def connector(lrs: XapiLrs, tmp_path: Path) -> AsyncIterator[XapiConnector]:
    endpoint: str = lrs.endpoint  # type: ignore[attr-defined]
    settings = load_settings(state_dir=tmp_path, connector=ConnectorSettings(cursor_overlap_s=0))
    source = SourceConfig(
        name="cvf-lrs",
        kind="xapi",
        endpoint=endpoint,
        username="cvf",
        password=SecretStr("secret"),
        page_size=20,
        options={"version": "2.0.0"},
    )
    xapi = XapiConnector(source, settings, pseudonymiser=Pseudonymiser(b"a" * 32, b"b" * 32))
    async with aiohttp.ClientSession() as session:
        xapi.http = HttpClient(session, source, settings.connector, default_headers=xapi.default_headers())
        yield xapi


async def pull_all(connector: XapiConnector, cursor: dict[str, Any] | None = None) -> tuple[list[str], Any]:
    ids: list[str] = []
    while True:
        page = await connector.fetch_page(cursor)
        ids.extend(record.statement["id"] for record in page.records)
        cursor = page.next_cursor
        if page.exhausted:
            return ids, cursor


async def test_paging_follows_more_to_the_end_in_stored_order(lrs: XapiLrs, connector: XapiConnector) -> None:
    ids, cursor = await pull_all(connector)
    assert ids == [s["id"] for s in lrs.statements]
    assert cursor["more"] is None
    assert parse_iso(cursor["since"]) == parse_iso(lrs.statements[-1]["stored"])


async def test_the_cursor_never_passes_consistent_through(lrs: XapiLrs, connector: XapiConnector) -> None:
    lrs.consistent_lag_s = 3600
    _, cursor = await pull_all(connector)
    consistent = lrs.newest_stored().timestamp() - 3600
    assert datetime.fromisoformat(cursor["since"]).timestamp() <= consistent
    # The next pass re-reads what came after the watermark: nothing is skipped.
    again, _ = await pull_all(connector, cursor)
    late = [s["id"] for s in lrs.statements if parse_iso(s["stored"]).timestamp() > consistent]
    assert late and set(late) <= set(again)


async def test_a_restart_resumes_from_the_more_link_and_since(lrs: XapiLrs, connector: XapiConnector) -> None:
    first = await connector.fetch_page(None)
    assert first.next_cursor is not None and first.next_cursor["more"]
    rest, _ = await pull_all(connector, first.next_cursor)
    assert [r.statement["id"] for r in first.records] + rest == [s["id"] for s in lrs.statements]
    # An expired or rejected `more` link falls back to `since`.
    stale = {**first.next_cursor, "more": "/xapi/expired-link"}
    fallback, _ = await pull_all(connector, stale)
    assert fallback == [s["id"] for s in lrs.statements][len(first.records) :]


async def test_voided_statements_are_hidden_from_queries_but_fetched_for_their_voiding(
    lrs: XapiLrs, connector: XapiConnector
) -> None:
    target = lrs.statements[5]
    voiding = lrs.void(target["id"])
    ids, _ = await pull_all(connector)
    assert target["id"] not in ids and voiding["id"] in ids
    page = await connector.prepare_page(await connector.fetch_page({"since": lrs.statements[-2]["stored"]}))
    (record,) = [r for r in page.records if r.statement["id"] == voiding["id"]]
    assert record.voided is not None and record.voided["id"] == target["id"]


async def test_requests_carry_the_configured_version_and_credentials(
    lrs: XapiLrs, connector: XapiConnector
) -> None:
    await connector.fetch_page(None)
    assert lrs.last_version == "2.0.0"
    lrs.password = "changed"  # noqa: S105 - test credential
    with pytest.raises(FatalSourceError) as caught:
        await connector.fetch_page(None)
    assert caught.value.status == 401
