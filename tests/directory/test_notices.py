"""Withdrawal notices (art. 8): the states that received a firm's record are told what to delete."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from directory.access import (
    DirectoryDenied,
    FirmFilters,
    Identity,
    acknowledge_notice,
    get_firm,
    list_firms,
    read_notices,
    withdraw_consent,
)
from directory.indicators import read_directory_indicators
from directory.ledger import WITHDRAWN, record
from directory.notices import notify_recipients
from directory.schema import sql
from directory.store import as_writer, reconcile

from .support import firm_values, grant, setup

FIRM, OTHER = "o-uvas", "o-vinos"
BR, CL, MX = (Identity(f"agency-{s.lower()}", "state", s) for s in ("BR", "CL", "MX"))
PLGN = Identity("plgn", "plgn")


@pytest.fixture
async def shared(admin: asyncpg.Connection, directory_schema: str) -> str:
    entries = [
        grant(FIRM, ("BR", "CL"), ("legalName", "country", "contactEmail"), consent="c-firm"),
        grant(FIRM, ("BR",), ("contactEmail",), consent="c-ana", person="p-ana"),
        grant(OTHER, ("ALL_MEMBERS",), ("legalName",), consent="c-other"),
    ]
    await setup(admin, directory_schema, entries, {FIRM: firm_values(), OTHER: firm_values()})
    return directory_schema


async def _withdraw(
    admin: asyncpg.Connection, schema: str, consent: str, org: str, person: str | None
) -> None:
    """The feed's withdrawal of `consent`, recorded and reconciled as the sync does."""
    entry = grant(org, (), (), consent=consent, person=person)
    withdrawn = entry.__class__(**{**entry.__dict__, "status": WITHDRAWN, "source_ref": f"feed:w-{consent}"})
    async with admin.transaction():
        await as_writer(admin)
        await record(admin, schema, [withdrawn])
        await reconcile(admin, schema, [org])


async def test_a_withdrawal_notices_only_the_states_that_received_the_record(
    admin: asyncpg.Connection, shared: str
) -> None:
    assert await get_firm(admin, BR, FIRM, schema=shared) is not None  # BR receives it
    assert await list_firms(admin, MX, FirmFilters(), schema=shared)  # MX receives only the other firm
    assert await withdraw_consent(admin, PLGN, "c-firm", schema=shared, request_id="r-1")
    (notice,) = await read_notices(admin, BR, schema=shared)
    # Everything BR was sent of the firm, the whole record to delete.
    assert (notice["ref"], notice["fields"], notice["delete"]) == (
        FIRM,
        ["contactEmail", "country", "legalName"],
        "record",
    )
    assert notice["acknowledged_at"] is None
    # CL could have read it but did not; MX never could.
    assert await read_notices(admin, CL, schema=shared) == []
    assert await read_notices(admin, MX, schema=shared) == []
    # The feed's copy of the withdrawal later notices nothing twice.
    await _withdraw(admin, shared, "c-firm", FIRM, None)
    assert len(await read_notices(admin, BR, schema=shared)) == 1


async def test_a_partial_withdrawal_notices_the_fields_lost_only(
    admin: asyncpg.Connection, shared: str
) -> None:
    assert (await get_firm(admin, BR, FIRM, schema=shared) or {}).get("contactEmail")
    await _withdraw(admin, shared, "c-ana", FIRM, "p-ana")  # the contact person withdraws
    (notice,) = await read_notices(admin, BR, schema=shared)
    assert (notice["fields"], notice["delete"]) == (["contactEmail"], "fields")
    # The firm's own fields stay shared; losing them later is a second notice, without the e-mail again.
    await _withdraw(admin, shared, "c-firm", FIRM, None)
    first, second = await read_notices(admin, BR, schema=shared)
    assert first == notice and (second["fields"], second["delete"]) == (["country", "legalName"], "record")


async def test_a_state_acknowledges_its_own_notices_only_and_gov_02_counts_them(
    admin: asyncpg.Connection, shared: str
) -> None:
    await get_firm(admin, BR, FIRM, schema=shared)
    await withdraw_consent(admin, PLGN, "c-firm", schema=shared, request_id="r-1")
    (notice,) = await read_notices(admin, BR, schema=shared)
    assert not await acknowledge_notice(admin, CL, notice["id"], schema=shared)  # not CL's
    assert not await acknowledge_notice(admin, BR, notice["id"] + 1000, schema=shared)
    assert await acknowledge_notice(admin, BR, notice["id"], schema=shared)
    (acknowledged,) = await read_notices(admin, BR, schema=shared)
    assert acknowledged["acknowledged_at"] is not None
    assert await acknowledge_notice(admin, BR, notice["id"], schema=shared)  # idempotent
    (again,) = await read_notices(admin, BR, schema=shared)
    assert again["acknowledged_at"] == acknowledged["acknowledged_at"]
    async with admin.transaction():
        await as_writer(admin)
        by = await admin.fetchval(sql("SELECT acknowledged_by FROM {s}.withdrawal_notice", shared))
    assert by == BR.client_id
    with pytest.raises(DirectoryDenied):
        await read_notices(admin, PLGN, schema=shared)
    with pytest.raises(DirectoryDenied):
        await acknowledge_notice(admin, Identity("x", "state", "US"), notice["id"], schema=shared)
    indicators = {found["indicator"]: found for found in await read_directory_indicators(admin, shared)}
    (row,) = indicators["GOV-02"]["rows"]
    assert (row["member_state"], row["notices"], row["acknowledged"]) == ("BR", 1, 1)
    assert 0 <= row["median_hours"] == row["max_hours"] < 1


async def test_the_api_role_cannot_write_or_see_other_states_notices(
    admin: asyncpg.Connection, shared: str
) -> None:
    await get_firm(admin, BR, FIRM, schema=shared)
    await withdraw_consent(admin, PLGN, "c-firm", schema=shared, request_id="r-1")
    for statement in (
        "INSERT INTO {s}.withdrawal_notice (member_state, org_ref, fields, whole_record, through_seq)"
        " VALUES ('CL', 'o-x', '{}', true, 1)",
        "UPDATE {s}.withdrawal_notice SET fields = '{}'",
        "DELETE FROM {s}.withdrawal_notice",
    ):
        async with admin.transaction():
            await admin.execute("SET LOCAL ROLE alcance_directory_api")
            await admin.execute("SELECT set_config('alcance.member_state', 'BR', true)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await admin.execute(sql(statement, shared))
    async with admin.transaction():
        await admin.execute("SET LOCAL ROLE alcance_directory_api")
        await admin.execute("SELECT set_config('alcance.member_state', 'CL', true)")
        assert await admin.fetchval(sql("SELECT count(*) FROM {s}.withdrawal_notice", shared)) == 0
        # An acknowledgement of another state's notice touches no row.
        status = await admin.execute(sql("UPDATE {s}.withdrawal_notice SET acknowledged_by = 'cl'", shared))
        assert status == "UPDATE 0"


async def test_two_transactions_noticing_one_firm_at_once_write_one_notice(
    admin: asyncpg.Connection, shared: str, directory_dsn: str
) -> None:
    await get_firm(admin, BR, FIRM, schema=shared)
    async with admin.transaction():  # gone with no notice yet: no firm row left to serialise on
        await as_writer(admin)
        await admin.execute(sql("DELETE FROM {s}.firm WHERE org_ref = $1", shared), FIRM)
    other = await asyncpg.connect(directory_dsn)
    try:
        first = admin.transaction()
        await first.start()
        await as_writer(admin)
        assert await notify_recipients(admin, shared, [FIRM]) == 1  # not committed yet

        async def notify_too() -> int:
            async with other.transaction():
                await as_writer(other)
                return await notify_recipients(other, shared, [FIRM])

        second = asyncio.create_task(notify_too())
        await asyncio.sleep(0.3)
        assert not second.done()  # waits for the first to end
        await first.commit()
        assert await asyncio.wait_for(second, 10) == 0
    finally:
        await other.close()
    assert len(await read_notices(admin, BR, schema=shared)) == 1
