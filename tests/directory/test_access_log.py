"""The access log: a row per read and denial in the read's transaction, append-only, hash-chained."""

from __future__ import annotations

import asyncpg
import pytest

from alcance.cli_errors import ExitCode
from directory.access import (
    DirectoryDenied,
    FirmFilters,
    Identity,
    get_firm,
    list_firms,
    read_access_log,
)
from directory.audit import verify_log
from directory.schema import API_ROLE, OWNER_ROLE, sql
from infra.settings import Settings
from tests.support.processes import REPO_ROOT, python_child

from .support import firm_values, grant, setup

BR = Identity("agency-br", "state", "BR")
COORDINATOR = Identity("coord", "coordinator")


@pytest.fixture
async def logged(admin: asyncpg.Connection, directory_schema: str) -> str:
    await setup(
        admin,
        directory_schema,
        [grant("o-a", ("BR",), ("legalName", "sizeBand")), grant("o-b", ("ALL_MEMBERS",), ("country",))],
        {"o-a": firm_values(), "o-b": firm_values()},
    )
    await list_firms(admin, BR, FirmFilters(size_band="SMALL"), schema=directory_schema, request_id="q-1")
    await get_firm(admin, BR, "o-b", schema=directory_schema, request_id="q-2")
    with pytest.raises(DirectoryDenied):
        await list_firms(admin, Identity("guest", "state", "US"), FirmFilters(), schema=directory_schema)
    return directory_schema


async def test_every_read_and_denial_is_logged_with_firms_and_fields(
    admin: asyncpg.Connection, logged: str
) -> None:
    rows = await read_access_log(admin, COORDINATOR, schema=logged)
    assert [(row["seq"], row["outcome"], row["member_state"]) for row in rows] == [
        (1, "granted", "BR"),
        (2, "granted", "BR"),
        (3, "denied", "US"),
    ]
    assert rows[0]["org_refs"] == ["o-a"] and rows[0]["fields"] == ["legalName", "sizeBand"]
    assert rows[0]["query"] == {"path": "/directory/firms", "size_band": "SMALL", "limit": 50}
    assert rows[1]["org_refs"] == ["o-b"] and rows[1]["fields"] == ["country"]
    assert rows[2]["org_refs"] == [] and rows[2]["fields"] == []
    with pytest.raises(DirectoryDenied):
        await read_access_log(admin, BR, schema=logged)
    assert (await verify_log(admin, logged)).ok


async def test_the_api_role_cannot_forge_the_chain_or_read_the_log(
    admin: asyncpg.Connection, logged: str
) -> None:
    forged = (
        "INSERT INTO {s}.access_log (client_id, role, query, org_refs, fields, outcome, prev_hash, hash)"
        " VALUES ('x', 'state', '{}', '{}', '{}', 'granted', '\\x00', '\\x00')"
    )
    for statement in (forged, "SELECT * FROM {s}.access_log"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with admin.transaction():
                await admin.execute(f"SET LOCAL ROLE {API_ROLE}")
                await admin.execute(sql(statement, logged))
    assert await admin.fetchval(sql("SELECT count(*) FROM {s}.access_log", logged)) == 3


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {s}.access_log SET member_state = 'CL'",
        "DELETE FROM {s}.access_log WHERE seq = 1",
        "TRUNCATE {s}.access_log",
        "UPDATE {s}.consent_event SET recipients = '{}'",
        "TRUNCATE {s}.consent_event",
    ],
)
async def test_the_logs_refuse_changes_even_for_the_owner_and_the_superuser(
    admin: asyncpg.Connection, logged: str, statement: str
) -> None:
    for role in (OWNER_ROLE, None):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            async with admin.transaction():
                if role:
                    await admin.execute(f"SET LOCAL ROLE {role}")
                await admin.execute(sql(statement, logged))
    assert await admin.fetchval(sql("SELECT count(*) FROM {s}.access_log", logged)) == 3


async def test_a_tampered_row_breaks_the_chain(admin: asyncpg.Connection, logged: str) -> None:
    assert (await verify_log(admin, logged)).rows == 3
    # Only a superuser switching the trigger off can change a row; the chain still shows it.
    async with admin.transaction():
        await admin.execute(sql("ALTER TABLE {s}.access_log DISABLE TRIGGER access_log_append_only", logged))
        await admin.execute(sql("UPDATE {s}.access_log SET member_state = 'CL' WHERE seq = 2", logged))
        await admin.execute(sql("ALTER TABLE {s}.access_log ENABLE TRIGGER access_log_append_only", logged))
    report = await verify_log(admin, logged)
    assert not report.ok and report.broken_seq == 2 and report.reason is not None
    assert "does not match its hash" in report.reason


async def test_a_deleted_row_breaks_the_chain(admin: asyncpg.Connection, logged: str) -> None:
    async with admin.transaction():
        await admin.execute(sql("ALTER TABLE {s}.access_log DISABLE TRIGGER access_log_append_only", logged))
        await admin.execute(sql("DELETE FROM {s}.access_log WHERE seq = 2", logged))
        await admin.execute(sql("ALTER TABLE {s}.access_log ENABLE TRIGGER access_log_append_only", logged))
    report = await verify_log(admin, logged)
    assert report.broken_seq == 3 and report.reason == "row 3: a row is missing before it"


async def test_verify_log_command_passes_an_intact_chain_and_fails_a_tampered_one(
    admin: asyncpg.Connection, logged: str, local_stack: Settings
) -> None:
    settings = local_stack.model_copy(
        update={"directory": local_stack.directory.model_copy(update={"db_schema": logged})}
    )
    command = [str(REPO_ROOT / ".venv" / "bin" / "alcance"), "directory", "verify-log"]
    async with python_child(command=command, settings=settings) as child:
        assert await child.wait(60) == 0, child.output
    assert "3 rows, chain intact" in child.output
    async with admin.transaction():
        await admin.execute(sql("ALTER TABLE {s}.access_log DISABLE TRIGGER access_log_append_only", logged))
        await admin.execute(sql("UPDATE {s}.access_log SET org_refs = '{o-x}' WHERE seq = 1", logged))
        await admin.execute(sql("ALTER TABLE {s}.access_log ENABLE TRIGGER access_log_append_only", logged))
    async with python_child(command=command, settings=settings) as child:
        assert await child.wait(60) == ExitCode.LOG_TAMPERED, child.output
    assert "chain broken at row 1: content does not match its hash" in child.output
