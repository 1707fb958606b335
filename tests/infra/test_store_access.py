"""The local PostgreSQL asks each role for its password, and each role may do only its own work."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from infra.local import LocalStack
from infra.postgres import create_pool, migrate
from infra.roles import GRANTED_ROLES, OWNER, PROCESSOR, WEB, StoreRole
from infra.settings import PostgresSettings, Settings

# What PostgreSQL answers a client without the right password, as asyncpg raises it.
REFUSED = (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)


def _without_password(dsn: str, password: str | None = None) -> str:
    parts = urlsplit(dsn)
    credentials = f"{parts.username}:{password}" if password is not None else f"{parts.username}"
    return f"postgresql://{credentials}@{parts.hostname}:{parts.port}{parts.path}"


async def _refused(dsn: str) -> bool:
    try:
        connection = await asyncpg.connect(dsn, timeout=10)
    except REFUSED:
        return True
    await connection.close()
    return False


async def test_connections_without_the_right_password_are_refused(stack_state_dir: Path) -> None:
    stack = LocalStack(stack_state_dir, broker=False)
    await stack.start()
    try:
        for dsn in (stack.dsn, stack.reader_dsn):
            assert await _refused(_without_password(dsn))
            assert await _refused(_without_password(dsn, "not-the-password"))
            connection = await asyncpg.connect(dsn)
            await connection.close()
    finally:
        await stack.stop()
    assert (stack_state_dir / "postgres.password").stat().st_mode & 0o077 == 0


async def test_a_data_directory_that_trusted_local_connections_asks_for_passwords_after_a_restart(
    stack_state_dir: Path,
) -> None:
    first = LocalStack(stack_state_dir, broker=False)
    await first.start()
    await first.stop()
    hba = stack_state_dir / "postgres" / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
    second = LocalStack(stack_state_dir, broker=False)
    await second.start()
    try:
        assert await _refused(_without_password(second.dsn))
        assert "trust" not in [
            line.split()[-1]
            for line in hba.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        connection = await asyncpg.connect(second.dsn)
        await connection.close()
    finally:
        await second.stop()


async def test_the_reader_role_reads_the_views_and_no_table_and_writes_nothing(stack_state_dir: Path) -> None:
    stack = LocalStack(stack_state_dir, broker=False)
    await stack.start()
    try:
        store = PostgresSettings.model_validate({"dsn": stack.dsn, "db_schema": "reader_test"})
        pool = await create_pool(store)
        try:
            await migrate(pool)
        finally:
            await pool.close()
        reader = await asyncpg.connect(stack.reader_dsn)
        try:
            assert await reader.fetch("SELECT * FROM reader_test.cvf_enrolment") == []
            assert await reader.fetchval("SELECT count(*) FROM reader_test.indicator_latest") == 0
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.fetch("SELECT * FROM reader_test.fact")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.execute("DELETE FROM reader_test.schema_migration")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.execute("CREATE TABLE reader_test.mine (x int)")
        finally:
            await reader.close()
    finally:
        await stack.stop()


def _role_dsn(settings: Settings, role: StoreRole) -> str:
    dsn = settings.postgres.role_dsns[role.key].get_secret_value()
    assert urlsplit(dsn).username == role.login
    return dsn


async def _connect(dsn: str, schema: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, server_settings={"search_path": schema})


async def test_every_role_s_login_needs_its_own_password(settings: Settings) -> None:
    assert settings.postgres.dsn is not None
    owner = settings.postgres.dsn.get_secret_value()
    assert urlsplit(owner).username == OWNER.login
    for dsn in (owner, *(_role_dsn(settings, role) for role in GRANTED_ROLES)):
        assert await _refused(_without_password(dsn))
        assert await _refused(_without_password(dsn, "not-the-password"))
    # One role's password opens no other role.
    processor_password = urlsplit(_role_dsn(settings, PROCESSOR)).password
    assert await _refused(_without_password(owner, processor_password))


async def test_the_processor_role_reads_and_writes_the_tables_and_changes_no_schema(
    settings: Settings,
) -> None:
    schema = settings.postgres.db_schema
    processor = await _connect(_role_dsn(settings, PROCESSOR), schema)
    try:
        async with processor.transaction():
            await processor.execute(
                "INSERT INTO source_health (source, kind, host, health)"
                " VALUES ('probe', 'xapi', 'lrs', 'pulling')"
            )
            assert await processor.fetchval("SELECT count(*) FROM source_health") == 1
            await processor.execute("DELETE FROM source_health")
        assert await processor.fetchval("SELECT count(*) FROM indicator_latest") == 0
        for statement in (
            "CREATE TABLE mine (x int)",
            "DROP TABLE fact",
            "ALTER TABLE fact ADD COLUMN extra int",
            "TRUNCATE fact",
            "DELETE FROM schema_migration",
            "CREATE VIEW mine AS SELECT 1",
            f'DROP SCHEMA "{schema}" CASCADE',
            'CREATE SCHEMA "processor_made"',
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await processor.execute(statement)
    finally:
        await processor.close()


async def test_the_web_role_reads_the_read_model_and_owns_its_web_tables_only(settings: Settings) -> None:
    schema = settings.postgres.db_schema
    # A new table of the web app (its own migrations make web_credential and web_session); the next
    # migration run grants it.
    pool = await create_pool(settings.postgres)
    try:
        async with pool.acquire() as owner:
            await owner.execute("CREATE TABLE web_scratch (id bigint GENERATED ALWAYS AS IDENTITY, who text)")
        await migrate(pool)
    finally:
        await pool.close()
    web = await _connect(_role_dsn(settings, WEB), schema)
    try:
        await web.execute("INSERT INTO web_scratch (who) VALUES ('someone')")
        assert await web.fetchval("DELETE FROM web_scratch RETURNING who") == "someone"
        assert await web.fetchval("SELECT count(*) FROM indicator_part") == 0
        assert await web.fetchval("SELECT count(*) FROM indicator_latest") == 0
        for statement in (
            "SELECT * FROM fact",
            "DELETE FROM kafka_offset",
            "DELETE FROM indicator_part",
            "INSERT INTO reach_target DEFAULT VALUES",
            "DROP TABLE web_scratch",
            "CREATE TABLE web_mine (x int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await web.execute(statement)
    finally:
        await web.close()
    processor = await _connect(_role_dsn(settings, PROCESSOR), schema)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await processor.execute("SELECT * FROM web_session")
    finally:
        await processor.close()


async def test_a_schema_made_by_the_superuser_belongs_to_the_owner_role_after_a_restart(
    stack_state_dir: Path,
) -> None:
    first = LocalStack(stack_state_dir, broker=False)
    await first.start()
    try:
        pool = await create_pool(PostgresSettings.model_validate({"dsn": first.dsn, "db_schema": "older"}))
        try:
            await migrate(pool)
        finally:
            await pool.close()
    finally:
        await first.stop()
    second = LocalStack(stack_state_dir, broker=False)
    await second.start()
    try:
        owner = await asyncpg.connect(second.role_dsn(OWNER))
        try:
            owners = await owner.fetch(
                "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'older'"
            )
            assert [row["owner"] for row in owners] == [OWNER.name]
            await owner.execute("ALTER TABLE older.fact ADD COLUMN later int")
        finally:
            await owner.close()
    finally:
        await second.stop()
