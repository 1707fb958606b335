"""The directory's own PostgreSQL schema: its roles, its migrations, and the grants that bound each role.

Three roles, created once per cluster:

* `alcance_directory_owner` (NOLOGIN) owns every object of the schema. Its tables force row-level
  security, so even the views it owns read firms through the member-state policy.
* `alcance_directory_api` (NOLOGIN, NOBYPASSRLS, not owner) is the role every member-state read runs as
  (`SET LOCAL ROLE`): SELECT on the view `firm_shared`, INSERT into `access_log`, and its own state's
  withdrawal notices (read and acknowledge), nothing else.
* `alcance_directory_writer` (NOLOGIN) is for the sync and withdrawals: firm rows and ledger entries.

The store's role set-up (`infra.store_grants.role_statements`, which `alcance db roles` prints for a
managed PostgreSQL) creates them and lets the owner login `SET ROLE` to each, the web login to the API
and writer roles, and the processor login to the writer role. A superuser migrating a schema creates
any that are missing.
"""

from __future__ import annotations

import re
from importlib import resources

import asyncpg

from infra.roles import DIRECTORY_API, DIRECTORY_OWNER, DIRECTORY_WRITER

MIGRATIONS_PACKAGE = "directory.migrations"
OWNER_ROLE = DIRECTORY_OWNER
API_ROLE = DIRECTORY_API
WRITER_ROLE = DIRECTORY_WRITER
# Shared by every process that creates the roles or migrates a directory schema.
_LOCK_ID = 503_0350
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_ACCESS_LOG_COLUMNS = "client_id, role, member_state, request_id, query, org_refs, fields, outcome"


class DirectorySchemaError(ValueError):
    """Raised when the configured directory schema name is not a plain lower-case identifier."""


def quoted_schema(name: str) -> str:
    """`name` as a quoted identifier, after checking it is a plain lower-case name.

    Raises:
        DirectorySchemaError: when `name` is not `[a-z_][a-z0-9_]*` (at most 63 characters).
    """
    if not _SCHEMA_NAME.fullmatch(name):
        raise DirectorySchemaError(
            f"directory schema {name!r} is not valid: use lower-case letters, digits and _ (at most 63)"
        )
    return f'"{name}"'


def sql(text: str, schema: str) -> str:
    """`text` with every `{s}` replaced by the checked, quoted schema name (values stay parameters)."""
    return text.replace("{s}", quoted_schema(schema))


def migration_files() -> list[tuple[str, str]]:
    """The directory migrations, as (name, SQL with a `{schema}` placeholder) in the order they apply."""
    folder = resources.files(MIGRATIONS_PACKAGE)
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return [(name, folder.joinpath(name).read_text(encoding="utf-8")) for name in names]


async def ensure_roles(connection: asyncpg.Connection) -> None:
    """Create the three directory roles where they do not exist yet (they are cluster-wide)."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        for role in (OWNER_ROLE, API_ROLE, WRITER_ROLE):
            if not await connection.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role):
                await connection.execute(f"CREATE ROLE {role} NOLOGIN NOBYPASSRLS NOSUPERUSER")


async def migrate(connection: asyncpg.Connection, schema: str) -> list[str]:
    """Create `schema` (owned by the owner role) and apply the directory migrations it lacks, in order.

    Returns:
        The names of the migrations this call applied.
    """
    target = quoted_schema(schema)
    await ensure_roles(connection)
    applied: list[str] = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {target} AUTHORIZATION {OWNER_ROLE}")
        # Every object is created by, hence owned by, the owner role.
        await connection.execute(f"SET LOCAL ROLE {OWNER_ROLE}")
        await connection.execute(
            f"CREATE TABLE IF NOT EXISTS {target}.schema_migration ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        listed = await connection.fetch(sql("SELECT name FROM {s}.schema_migration", schema))
        done = {row["name"] for row in listed}
        for name, text in migration_files():
            if name in done:
                continue
            await connection.execute(text.replace("{schema}", target))
            await connection.execute(sql("INSERT INTO {s}.schema_migration (name) VALUES ($1)", schema), name)
            applied.append(name)
        await _grant(connection, target)
    return applied


async def _grant(connection: asyncpg.Connection, target: str) -> None:
    # Run as the owner: it grants on what it owns. The API role reads one view and appends to the log.
    await connection.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {target} FROM PUBLIC")
    await connection.execute(f"GRANT USAGE ON SCHEMA {target} TO {API_ROLE}, {WRITER_ROLE}")
    await connection.execute(f"GRANT SELECT ON {target}.firm_shared TO {API_ROLE}")
    await connection.execute(f"GRANT INSERT ({_ACCESS_LOG_COLUMNS}) ON {target}.access_log TO {API_ROLE}")
    await connection.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {target}.firm TO {WRITER_ROLE}")
    await connection.execute(
        f"GRANT SELECT, INSERT ON {target}.consent_event, {target}.access_log TO {WRITER_ROLE}"
    )
    await connection.execute(
        f"GRANT SELECT ON {target}.consent_current, {target}.authorisation, {target}.indicator_accesses,"
        f" {target}.indicator_firms_viewed, {target}.indicator_coverage TO {WRITER_ROLE}"
    )
    await connection.execute(f"GRANT SELECT, INSERT, UPDATE ON {target}.sync_state TO {WRITER_ROLE}")
    # The firm policy reads the current terms; the writer's own reads of `firm` evaluate it too.
    await connection.execute(f"GRANT SELECT ON {target}.current_authorisation TO {WRITER_ROLE}")
    # Withdrawal notices: the writer writes them and reads what each state may still see (`firm_shared`,
    # under the state it sets); a state reads and acknowledges its own (row-level security).
    await connection.execute(f"GRANT SELECT, INSERT ON {target}.withdrawal_notice TO {WRITER_ROLE}")
    await connection.execute(
        f"GRANT SELECT ON {target}.firm_shared, {target}.indicator_withdrawal_propagation TO {WRITER_ROLE}"
    )
    await connection.execute(
        f"GRANT SELECT, UPDATE (acknowledged_at, acknowledged_by) ON {target}.withdrawal_notice TO {API_ROLE}"
    )
    # The ledger's terms per firm: for the owner's policy functions and the writer, not for readers.
    await connection.execute(f"REVOKE EXECUTE ON FUNCTION {target}.org_authorisations(text) FROM PUBLIC")
    await connection.execute(f"GRANT EXECUTE ON FUNCTION {target}.org_authorisations(text) TO {WRITER_ROLE}")
