"""The local PostgreSQL asks for passwords, and its read-only role for BI tools reads views, nothing else."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from infra.local import LocalStack
from infra.postgres import create_pool, migrate
from infra.settings import PostgresSettings

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
