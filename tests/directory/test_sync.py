"""The directory sync over the simulated PLGN feed and directory endpoint, on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from connectors.plgn import PlgnConnector
from connectors.plgn_contract import directory_firm_violation, directory_page_violation
from connectors.pseudonym import Pseudonymiser
from connectors.simulators.generator import World, generate
from connectors.simulators.plgn_directory import (
    PlgnDirectorySimulator,
    PlgnDirectoryState,
    directory_from_world,
)
from connectors.simulators.plgn_feed import PlgnFeedSimulator, PlgnFeedState, feed_from_world
from connectors.simulators.serving import serving
from directory.access import FirmFilters, Identity, list_firms, read_notices
from directory.ledger import WITHDRAWN, ConsentEntry, record
from directory.schema import sql
from directory.sync import DirectoryContractError, DirectorySource, DirectorySync
from infra.settings import Settings, SourceConfig
from processors.indicators.aggregate import ReadContext, aggregate
from processors.indicators.base import PeriodKind
from schemas.events.base import MEMBER_STATES, Event
from tests.directory.support import stored_firms
from tests.processors.indicators.reference import ReferenceStore
from tests.processors.indicators.simulated import events_of

PSEUDONYMS = Pseudonymiser(b"p" * 16, b"o" * 16)
TOKEN = "directory-token"  # noqa: S105 - the simulators' test token


@dataclass
class Served:
    world: World
    feed: PlgnFeedState
    directory: PlgnDirectoryState
    sync: DirectorySync
    schema: str


@pytest.fixture
async def served(directory_schema: str) -> AsyncIterator[Served]:
    world = generate(41, learners=5, firms=40)
    feed = feed_from_world(world, invalid=1)
    directory = PlgnDirectoryState(directory_from_world(world))
    async with AsyncExitStack() as stack:
        feed_url = await stack.enter_async_context(serving(PlgnFeedSimulator(feed, token=TOKEN).app()))
        dir_url = await stack.enter_async_context(
            serving(PlgnDirectorySimulator(directory, token=TOKEN).app())
        )
        session = await stack.enter_async_context(aiohttp.ClientSession())
        source = DirectorySource(f"{feed_url}/activities", f"{dir_url}/directory/firms", TOKEN, page_size=7)
        yield Served(
            world,
            feed,
            directory,
            DirectorySync(source, directory_schema, PSEUDONYMS, session),
            directory_schema,
        )


def _ref(firm_id: str) -> str:
    return PSEUDONYMS.org(f"https://plgn.example/orgs/{firm_id}")


async def _firms(admin: asyncpg.Connection, schema: str) -> dict[str, asyncpg.Record]:
    return await stored_firms(admin, schema)


async def test_only_authorised_firms_and_fields_are_kept_and_each_entry_once(
    admin: asyncpg.Connection, served: Served
) -> None:
    world, schema = served.world, served.schema
    first = await served.sync.round(admin)
    lasting = {auth.org_id for auth in world.authorisations if auth.withdrawn_at is None}
    firms = await _firms(admin, schema)
    assert set(firms) == {_ref(firm_id) for firm_id in lasting} and lasting
    assert all(row["tax_id"] is None for row in firms.values())  # never authorised
    persons = {
        item["actor"].rsplit("/", 1)[1]
        for item in served.feed.items
        if isinstance(item["object"], dict)
        and "consentSubject" in item["object"]
        and item["type"] == "Create"
    }
    for firm_id in lasting:
        row = firms[_ref(firm_id)]
        assert row["legal_name"] is not None
        # The contact person's own consent decides the contact fields.
        assert (row["contact_email"] is not None) == (firm_id in persons), firm_id
        assert row["contact_phone"] is None  # in no consent
    statuses = await admin.fetch(sql("SELECT status, count(*) FROM {s}.consent_event GROUP BY 1", schema))
    counted = {row["status"]: row["count"] for row in statuses}
    assert counted["ConsentRefused"] > 0 and counted["ConsentWithdrawn"] > 0
    assert first.consent_entries == sum(counted.values())
    again = await served.sync.round(admin)
    assert again.consent_entries == 0 and set(await _firms(admin, schema)) == set(firms)


async def test_a_withdrawal_in_the_feed_or_a_firm_plgn_deleted_removes_the_row(
    admin: asyncpg.Connection, served: Served
) -> None:
    await served.sync.round(admin)
    lasting = sorted({auth.org_id for auth in served.world.authorisations if auth.withdrawn_at is None})
    withdrawn, deleted = lasting[0], lasting[1]
    grant = next(
        item
        for item in served.feed.items
        if item["type"] == "Create"
        and isinstance(item["object"], dict)
        and item["object"].get("type") == "DirectoryAuthorisation"
        and "consentSubject" not in item["object"]
        and item["actor"].endswith(f"/{withdrawn}")
    )
    served.feed.append("Remove", grant["actor"], grant["object"])
    served.directory.records = [r for r in served.directory.records if not r["id"].endswith(f"/{deleted}")]
    stats = await served.sync.round(admin)
    firms = await _firms(admin, served.schema)
    assert _ref(withdrawn) not in firms and _ref(deleted) not in firms
    assert stats.firms_deleted == 2 and stats.consent_entries == 1


def test_the_simulated_directory_serves_records_its_contract_accepts() -> None:
    records = directory_from_world(generate(7, learners=5, firms=300))
    assert directory_page_violation({"items": records, "next": None}) is None
    assert [directory_firm_violation(record) for record in records] == [None] * len(records)
    # The contract is not vacuous: each of these breaks it.
    first = records[0]
    broken = [
        {**first, "sizeBand": "HUGE"},
        {**first, "contact": {**first["contact"], "email": "not an address"}},
        {key: value for key, value in first.items() if key != "id"},
        {**first, "hsChapters": "27"},
    ]
    assert all(directory_firm_violation(record) is not None for record in broken)


async def test_the_states_that_received_a_firm_plgn_no_longer_lists_are_told_to_delete_it(
    admin: asyncpg.Connection, served: Served
) -> None:
    await served.sync.round(admin)
    readers = {}
    for state in sorted(MEMBER_STATES):
        identity = Identity(f"agency-{state.lower()}", "state", state)
        firms = await list_firms(admin, identity, FirmFilters(), schema=served.schema)
        readers[state] = {firm["ref"] for firm in firms}

    def readers_of(firm_id: str) -> int:
        return sum(_ref(firm_id) in refs for refs in readers.values())

    # A firm read by some states only: the others must get no notice.
    deleted = next(
        firm_id
        for firm_id in sorted({a.org_id for a in served.world.authorisations})
        if 0 < readers_of(firm_id) < len(readers)
    )
    served.directory.records = [r for r in served.directory.records if not r["id"].endswith(f"/{deleted}")]
    await served.sync.round(admin)
    for state, refs in readers.items():
        identity = Identity(f"agency-{state.lower()}", "state", state)
        notices = await read_notices(admin, identity, schema=served.schema)
        expected = [(_ref(deleted), "record")] if _ref(deleted) in refs else []
        assert [(notice["ref"], notice["delete"]) for notice in notices] == expected, state


async def test_a_directory_record_that_breaks_the_contract_is_skipped_with_its_reason_and_stops_nothing(
    admin: asyncpg.Connection, served: Served
) -> None:
    await served.sync.round(admin)
    before = await _firms(admin, served.schema)
    lasting = sorted({auth.org_id for auth in served.world.authorisations if auth.withdrawn_at is None})
    broken, renamed = lasting[0], lasting[1]
    for listed in served.directory.records:
        if listed["id"].endswith(f"/{broken}"):
            listed.update(country="Argentina", legalName="Renamed in a broken record")
        if listed["id"].endswith(f"/{renamed}"):
            listed["legalName"] = "Renamed"
    served.directory.records.append({"legalName": "A firm without an id", "country": "UY"})
    stats = await served.sync.round(admin)
    assert stats.rejected_items == {
        "directory contract: firm: /country: fails pattern": 1,
        "directory contract: firm: /: 'id' is a required property": 1,
    }
    firms = await _firms(admin, served.schema)
    # Every firm still listed is kept: the broken record's firm with what was stored for it, the others
    # updated from their valid records.
    assert set(firms) == set(before) and stats.firms_deleted == 0
    kept = firms[_ref(broken)]["legal_name"]
    assert kept == before[_ref(broken)]["legal_name"] and kept != "Renamed in a broken record"
    assert firms[_ref(renamed)]["legal_name"] == "Renamed"


async def test_a_directory_page_that_breaks_the_contract_stops_the_round_with_the_reason(
    admin: asyncpg.Connection, served: Served
) -> None:
    await served.sync.round(admin)
    before = await _firms(admin, served.schema)

    async def broken_page(_: web.Request) -> web.Response:
        return web.json_response({"items": {"id": "https://plgn.example/orgs/X"}, "next": None})

    application = web.Application()
    application.router.add_get("/directory/firms", broken_page)
    async with serving(application) as url, aiohttp.ClientSession() as session:
        source = replace(served.sync.source, directory_endpoint=f"{url}/directory/firms")
        sync = DirectorySync(source, served.schema, PSEUDONYMS, session)
        with pytest.raises(DirectoryContractError, match=r"^directory contract: /items: fails type$"):
            await sync.round(admin)
    # Nothing PLGN still lists was taken for unlisted.
    assert await _firms(admin, served.schema) == before


def _plgn_16_by_state(events: list[Event], as_of: datetime, period: PeriodKind) -> dict[date, dict[str, int]]:
    """PLGN-16's authorised firms per member state at the end of each period, from `events`' parts."""
    store = ReferenceStore()
    for event in events:
        store.apply(event)
    ctx = ReadContext(period=period, by=("country",), as_of=as_of, cohort_grace_days=14)
    found: dict[date, dict[str, int]] = {}
    for cell in aggregate("PLGN-16", store.rows(period), ctx):
        found.setdefault(cell.period_start, {})[cell.dimensions["country"]] = int(cell.parts["authorised"])
    return found


def _grant(served: Served, firm_id: str, name: str, recipient: str, **window: str) -> dict[str, Any]:
    """Append a grant of `firm_id`'s record to `recipient`, with the validity `window` given."""
    consent = {
        "type": "DirectoryAuthorisation",
        "id": f"https://plgn.example/consents/{name}-{firm_id}",
        "recipients": [recipient],
        "fields": ["legalName", "country"],
        "noticeVersion": "2025-01",
        **window,
    }
    return served.feed.append("Create", f"https://plgn.example/orgs/{firm_id}", consent)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_plgn_16_and_the_ledger_count_the_same_authorised_firms_per_member_state(
    admin: asyncpg.Connection, served: Served
) -> None:
    now = datetime.now(UTC)
    # Two firms without any other authorisation: one grants AR a consent that expired an hour ago,
    # the other grants UY one that starts in the year after next. Neither holds now.
    unauthorised = sorted(
        {firm.org_id for firm in served.world.firms} - {auth.org_id for auth in served.world.authorisations}
    )
    expiring, future = unauthorised[0], unauthorised[1]
    extra = [
        _grant(served, expiring, "expiring", "AR", endTime=_rfc3339(now - timedelta(hours=1))),
        _grant(served, future, "future", "UY", startTime=_rfc3339(now.replace(year=now.year + 2))),
    ]
    assert all(item["published"] < _rfc3339(now - timedelta(hours=2)) for item in extra)
    stats = await served.sync.round(admin)
    assert stats.expired == 1
    coverage = {
        row["member_state"]: row["authorised"]
        for row in await admin.fetch(sql("SELECT * FROM {s}.indicator_coverage", served.schema))
    }
    plgn = PlgnConnector(
        SourceConfig(name="plgn", kind="plgn", endpoint="https://plgn.example/activities"),
        Settings(),
        pseudonymiser=PSEUDONYMS,
    )
    events = events_of(served.world, seed=served.world.seed)
    events += [event for item in extra for event in plgn.map_record(item)]
    yearly = _plgn_16_by_state(events, now, "year")
    this_year = yearly[date(now.year, 1, 1)]
    assert set(coverage) == set(MEMBER_STATES)
    assert {state: this_year.get(state, 0) for state in MEMBER_STATES} == coverage
    assert any(coverage.values())
    # The same grants do count while they hold: the expiring one read as of an hour and a half ago,
    # the future one read as of a day after it starts.
    earlier, later = now - timedelta(minutes=90), now.replace(year=now.year + 2) + timedelta(days=1)
    for as_of, state in ((earlier, "AR"), (later, "UY")):
        current = date(as_of.year, 1, 1)
        with_grant = _plgn_16_by_state(events, as_of, "year")[current]
        without = _plgn_16_by_state(events[: -len(extra)], as_of, "year")[current]
        assert with_grant.get(state, 0) == without.get(state, 0) + 1, (as_of, state)
    listed = await admin.fetchval(sql("SELECT DISTINCT listed FROM {s}.indicator_coverage", served.schema))
    assert listed == len(served.world.firms)


_EXPANDED = """
SELECT l.consent_ref, s.iso2::text AS member_state, l.org_ref, l.subject_kind, l.fields, l.starts_at,
       l.expires_at
  FROM {s}.consent_current l
  JOIN {s}.member_state s ON s.iso2::text = ANY (l.recipients) OR 'ALL_MEMBERS' = ANY (l.recipients)
"""


async def _current_terms(admin: asyncpg.Connection, schema: str, query: str) -> set[tuple[Any, ...]]:
    rows = await admin.fetch(sql(query, schema))
    return {tuple(tuple(v) if isinstance(v, list) else v for v in row.values()) for row in rows}


async def test_the_current_terms_follow_each_ledger_entry_in_its_own_transaction(
    admin: asyncpg.Connection, served: Served
) -> None:
    schema, table = served.schema, "SELECT * FROM {s}.current_authorisation"
    await served.sync.round(admin)
    kept = await _current_terms(admin, schema, table)
    assert kept and kept == await _current_terms(admin, schema, _EXPANDED)
    consent, org = next((row[0], row[2]) for row in sorted(kept) if row[3] == "ORG")
    at = datetime.now(UTC)
    withdrawal = ConsentEntry(consent, org, "ORG", org, WITHDRAWN, (), (), at, at, "plgn", "test:withdrawal")
    with pytest.raises(RuntimeError):
        async with admin.transaction():
            await record(admin, schema, [withdrawal])
            assert consent not in {row[0] for row in await _current_terms(admin, schema, table)}
            raise RuntimeError("rolled back")
    assert await _current_terms(admin, schema, table) == kept
    await record(admin, schema, [withdrawal])
    left = await _current_terms(admin, schema, table)
    assert left == {row for row in kept if row[0] != consent}
    assert left == await _current_terms(admin, schema, _EXPANDED)
