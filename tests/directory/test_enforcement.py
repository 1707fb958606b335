"""Row-level security of the directory, attacked through the read functions and directly as the API role."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from directory.access import (
    DirectoryDenied,
    FirmFilters,
    Identity,
    InvalidFilter,
    get_firm,
    list_firms,
    withdraw_consent,
)
from directory.schema import API_ROLE, sql

from .support import NOW, firm_values, grant, setup, stored_firms

BR_ONLY, EVERY_MEMBER, TOMORROW, NO_PERSON = "o-br", "o-all", "o-tomorrow", "o-noperson"
BR, CL, MX = (Identity(f"agency-{s.lower()}", "state", s) for s in ("BR", "CL", "MX"))
PLGN = Identity("plgn", "plgn")


@pytest.fixture
async def world(admin: asyncpg.Connection, directory_schema: str) -> str:
    entries = [
        grant(BR_ONLY, ("BR", "CL"), ("legalName", "country", "hsChapters", "contactEmail"), consent="c-br"),
        grant(BR_ONLY, ("BR",), ("contactEmail",), person="p-ana"),
        grant(EVERY_MEMBER, ("ALL_MEMBERS",), ("legalName", "sizeBand")),
        grant(TOMORROW, ("BR",), ("legalName",), starts_at=NOW + timedelta(days=1)),
        grant(NO_PERSON, ("BR",), ("legalName", "contactEmail", "contactPhone")),
    ]
    firms = {
        org: firm_values(legalName=f"Firm {org}") for org in (BR_ONLY, EVERY_MEMBER, TOMORROW, NO_PERSON)
    }
    await setup(admin, directory_schema, entries, firms)
    return directory_schema


async def _stored(admin: asyncpg.Connection, schema: str) -> dict[str, asyncpg.Record]:
    return await stored_firms(admin, schema)


async def test_each_state_sees_only_its_firms_and_fields(admin: asyncpg.Connection, world: str) -> None:
    seen = {firm["ref"]: firm for firm in await list_firms(admin, BR, FirmFilters(), schema=world)}
    assert set(seen) == {BR_ONLY, EVERY_MEMBER, NO_PERSON}
    # The contact person consented for BR: the e-mail is shared with BR, and only what was authorised.
    assert seen[BR_ONLY] == {
        "ref": BR_ONLY, "legalName": f"Firm {BR_ONLY}", "country": "UY", "hsChapters": ["08"],
        "contactEmail": "ana@uvas.example",
    }  # fmt: skip
    # Without the contact person's own consent the contact fields are neither shown nor stored.
    assert seen[NO_PERSON] == {"ref": NO_PERSON, "legalName": f"Firm {NO_PERSON}"}
    chile = {firm["ref"]: firm for firm in await list_firms(admin, CL, FirmFilters(), schema=world)}
    assert set(chile) == {BR_ONLY, EVERY_MEMBER}
    assert "contactEmail" not in chile[BR_ONLY]  # the person consented for BR only
    assert [firm["ref"] for firm in await list_firms(admin, MX, FirmFilters(), schema=world)] == [
        EVERY_MEMBER
    ]
    stored = await _stored(admin, world)
    assert stored[NO_PERSON]["contact_email"] is None and stored[NO_PERSON]["tax_id"] is None
    # Not current (dated tomorrow): not stored at all.
    assert TOMORROW not in stored


async def test_a_grant_dated_tomorrow_is_invisible(admin: asyncpg.Connection, world: str) -> None:
    assert await get_firm(admin, BR, TOMORROW, schema=world) is None


async def test_another_states_filter_or_session_setting_shows_nothing_more(
    admin: asyncpg.Connection, world: str
) -> None:
    # Mexico filters on the country of firms only Brazil and Chile may see: nothing, and a firm whose
    # country Mexico may not see is not revealed by the filter either.
    assert await list_firms(admin, MX, FirmFilters(country="UY"), schema=world) == []
    assert [firm["ref"] for firm in await list_firms(admin, BR, FirmFilters(country="UY"), schema=world)] == [
        BR_ONLY
    ]
    # A state left in the session by someone else is overridden by the identity's, for the transaction.
    await admin.execute("SET alcance.member_state = 'BR'")
    assert [firm["ref"] for firm in await list_firms(admin, MX, FirmFilters(), schema=world)] == [
        EVERY_MEMBER
    ]
    assert await get_firm(admin, MX, BR_ONLY, schema=world) is None


@pytest.mark.parametrize(
    "filters",
    [
        FirmFilters(country="BR' OR '1'='1"),
        FirmFilters(sector="01; DELETE FROM firm"),
        FirmFilters(hs_chapter="08') OR true --"),
        FirmFilters(size_band="SMALL' OR ''='"),
        FirmFilters(after="o-x' OR org_ref IS NOT NULL --"),
        FirmFilters(limit=51),
    ],
)
async def test_injection_in_filters_is_refused_before_any_query(
    admin: asyncpg.Connection, world: str, filters: FirmFilters
) -> None:
    with pytest.raises(InvalidFilter, match="is not valid: expected"):
        await list_firms(admin, MX, filters, schema=world)
    assert len(await _stored(admin, world)) == 3


async def test_injection_reaching_the_query_is_only_a_value(admin: asyncpg.Connection, world: str) -> None:
    # Past the checks (as a careless adapter would pass it), the filter is still a bound parameter.
    unchecked = FirmFilters(country="UY' OR '1'='1")
    unchecked_check = FirmFilters.check
    try:
        FirmFilters.check = lambda self: None  # type: ignore[method-assign]
        assert await list_firms(admin, MX, unchecked, schema=world) == []
    finally:
        FirmFilters.check = unchecked_check  # type: ignore[method-assign]


@pytest.mark.parametrize(
    "identity",
    [Identity("nobody", "state", None), Identity("guest", "state", "US"),
     Identity("x", "state", "ALL_MEMBERS"), Identity("coord", "coordinator", "BR"),
     Identity("plgn", "plgn", "BR")],
)  # fmt: skip
async def test_no_state_or_a_non_member_sees_nothing_and_is_logged(
    admin: asyncpg.Connection, world: str, identity: Identity
) -> None:
    with pytest.raises(DirectoryDenied):
        await list_firms(admin, identity, FirmFilters(), schema=world)
    row = await admin.fetchrow(sql("SELECT * FROM {s}.access_log ORDER BY seq DESC LIMIT 1", world))
    assert row["outcome"] == "denied" and row["client_id"] == identity.client_id and row["org_refs"] == []


async def test_the_api_role_without_a_state_sees_nothing_and_cannot_touch_tables(
    admin: asyncpg.Connection, world: str
) -> None:
    async with admin.transaction():
        await admin.execute(f"SET LOCAL ROLE {API_ROLE}")
        assert await admin.fetchval(sql("SELECT count(*) FROM {s}.firm_shared", world)) == 0
        await admin.execute("SELECT set_config('alcance.member_state', 'BR', true)")
        assert await admin.fetchval(sql("SELECT count(*) FROM {s}.firm_shared", world)) == 3
    for statement in (
        sql("SELECT * FROM {s}.firm", world),
        sql("SELECT * FROM {s}.consent_event", world),
        sql("SELECT * FROM {s}.authorisation", world),
        sql("SELECT * FROM {s}.access_log", world),
        sql("SELECT * FROM {s}.org_authorisations('o-br')", world),
        sql("DELETE FROM {s}.firm", world),
        sql("UPDATE {s}.access_log SET outcome = 'granted'", world),
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with admin.transaction():
                await admin.execute(f"SET LOCAL ROLE {API_ROLE}")
                await admin.execute("SELECT set_config('alcance.member_state', 'BR', true)")
                await admin.execute(statement)
    flags = await admin.fetchrow("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = $1", API_ROLE)
    assert flags["rolbypassrls"] is False and flags["rolsuper"] is False


async def test_what_a_state_sees_is_decided_only_by_the_policy_and_the_view(
    admin: asyncpg.Connection, world: str
) -> None:
    # The first view's own copy of the rule, worked out of the ledger, is gone.
    assert await admin.fetchval("SELECT to_regprocedure($1)", f"{world}.shared_fields(text)") is None
    uses = await admin.fetch(
        "SELECT policyname FROM pg_policies WHERE schemaname = $1 AND tablename = 'firm'"
        " AND qual LIKE '%current_authorisation%'",
        world,
    )
    assert [row["policyname"] for row in uses] == ["firm_for_state"]
    view = await admin.fetchval("SELECT pg_get_viewdef(to_regclass($1))", f"{world}.firm_shared")
    assert "current_authorisation" in view and "shared_fields" not in view


async def test_a_withdrawal_mid_session_removes_the_firm_from_the_next_query(
    admin: asyncpg.Connection, world: str, directory_dsn: str
) -> None:
    assert await get_firm(admin, BR, BR_ONLY, schema=world) is not None
    plgn = await asyncpg.connect(directory_dsn)
    try:
        assert await withdraw_consent(plgn, PLGN, "c-br", schema=world, request_id="r-1")
        # Idempotent: the same request again, or the feed's copy later, changes nothing more.
        assert await withdraw_consent(plgn, PLGN, "c-br", schema=world, request_id="r-1")
    finally:
        await plgn.close()
    assert await get_firm(admin, BR, BR_ONLY, schema=world) is None
    assert BR_ONLY not in {firm["ref"] for firm in await list_firms(admin, CL, FirmFilters(), schema=world)}
    # Deleted, not hidden; the person's consent alone keeps nothing.
    assert BR_ONLY not in await _stored(admin, world)
    statuses = await admin.fetch(
        sql("SELECT status FROM {s}.consent_event WHERE consent_ref = $1 ORDER BY seq", world), "c-br"
    )
    assert [row["status"] for row in statuses] == ["ConsentGiven", "ConsentWithdrawn"]
    with pytest.raises(DirectoryDenied):
        await withdraw_consent(admin, BR, "c-all", schema=world, request_id="r-2")
