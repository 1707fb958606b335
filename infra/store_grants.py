"""The store's roles in SQL: creating them, and granting each its privileges on a schema (`infra.roles`)."""

from __future__ import annotations

import asyncpg

from infra.roles import (
    DIRECTORY_OWNER,
    DIRECTORY_ROLE_MEMBERS,
    GRANTED_ROLES,
    MIGRATIONS_TABLE,
    OWNER,
    PROCESSOR,
    READ_MODEL_TABLES,
    READER,
    STORE_ROLES,
    WEB,
    WEB_TABLE_PREFIX,
    StoreRole,
)

# Serialises role creation with migrations (the same lock as infra.postgres): two starters never race.
ROLES_LOCK_ID = 503_0007


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def role_statements(database: str, passwords: dict[str, str] | None = None) -> list[str]:
    r"""The SQL that creates every role of the store that is missing, as a superuser runs it once.

    Args:
        database: the database alcance's schema lives in (the owner may create schemas there).
        passwords: each login's password by role key; without them the logins get none, and an
            administrator sets each with `\password <login>` in psql.
    """
    statements: list[str] = []
    for role in STORE_ROLES:
        login = "NOLOGIN" if role.login != role.name else "LOGIN"
        statements.append(_create_role(role.name, login, None if login == "NOLOGIN" else passwords, role))
        if role.login != role.name:
            statements.append(_create_role(role.login, "LOGIN", passwords, role, member_of=role.name))
    statements.append(f"GRANT CONNECT, CREATE ON DATABASE {_ident(database)} TO {OWNER.name}")
    for role in GRANTED_ROLES:
        statements.append(f"GRANT CONNECT ON DATABASE {_ident(database)} TO {role.name}")
    for directory_role, members in DIRECTORY_ROLE_MEMBERS.items():
        statements.append(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
            f"{_literal(directory_role)}) THEN CREATE ROLE {_ident(directory_role)}"
            " NOLOGIN NOBYPASSRLS NOSUPERUSER; END IF; END $$"
        )
        for member in members:
            inherit = "TRUE" if (directory_role, member) == (DIRECTORY_OWNER, OWNER) else "FALSE"
            statements.append(
                f"GRANT {_ident(directory_role)} TO {member.name} WITH INHERIT {inherit}, SET TRUE"
            )
    return statements


def _create_role(
    name: str, login: str, passwords: dict[str, str] | None, role: StoreRole, member_of: str | None = None
) -> str:
    options = login
    if passwords is not None and login == "LOGIN":
        options += f" PASSWORD {_literal(passwords[role.key])}"
    if member_of is not None:
        options += f" IN ROLE {member_of}"
    return (
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
        f"{_literal(name)}) THEN CREATE ROLE {_ident(name)} {options}; END IF; END $$"
    )


def roles_script(database: str) -> str:
    """A psql script creating the store's roles without passwords, then asking for each login's."""
    lines = [
        "-- The roles of alcance's store (infra/roles.py). Run once as an administrator, e.g.",
        "--   alcance db roles --database alcance | psql 'postgresql://admin@db.example.org/alcance'",
        "-- Point ALCANCE_POSTGRES__DSN at the owner's login and ALCANCE_POSTGRES__ROLE_DSNS at the others;",
        "-- each migration run then grants every role its privileges on the schema.",
    ]
    lines += [f"{statement};" for statement in role_statements(database)]
    logins = [role.login for role in STORE_ROLES]
    lines += [f"\\echo password of {login}:\n\\password {login}" for login in logins]
    return "\n".join(lines)


async def ensure_roles(connection: asyncpg.Connection, passwords: dict[str, str]) -> None:
    """Create every role of the store with its local password (as the local stack's superuser)."""
    database = await connection.fetchval("SELECT current_database()")
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", ROLES_LOCK_ID)
        for statement in role_statements(database, passwords):
            await connection.execute(statement)


async def grant_privileges(connection: asyncpg.Connection) -> None:
    """Grant each role of the store that exists its privileges on the current schema (`infra.roles`).

    Run after every migration run, so that new tables and views are covered; a role that does not
    exist (a managed PostgreSQL whose administrator did not create it) is skipped.
    """
    existing = {
        row["rolname"]
        for row in await connection.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", [r.name for r in GRANTED_ROLES]
        )
    }
    schema = await connection.fetchval("SELECT current_schema()")
    relations = await connection.fetch(
        "SELECT c.relname, c.relkind::text AS relkind"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S')",
        schema,
    )
    pairs = [(r["relname"], r["relkind"]) for r in relations]
    statements = [
        statement
        for role in GRANTED_ROLES
        if role.name in existing
        for statement in grant_statements(schema, role, pairs)
    ]
    if statements:
        # One round trip: the simple query protocol runs them all in the caller's transaction.
        await connection.execute(";\n".join(statements))


def grant_statements(schema: str, role: StoreRole, relations: list[tuple[str, str]]) -> list[str]:
    """The GRANTs that give `role` its privileges on `relations` (name, pg_class relkind) of `schema`."""
    statements = [f"GRANT USAGE ON SCHEMA {_ident(schema)} TO {role.name}"]
    for name, kind in relations:
        privileges = privileges_of(role, name, kind)
        if privileges:
            target = "SEQUENCE " if kind == "S" else ""
            statements.append(f"GRANT {privileges} ON {target}{_ident(schema)}.{_ident(name)} TO {role.name}")
    return statements


def privileges_of(role: StoreRole, name: str, kind: str) -> str | None:
    """What `role` may do on the relation `name` of pg_class kind `kind` (None: nothing)."""
    if kind in ("v", "m"):
        return "SELECT"
    own_web = name.startswith(WEB_TABLE_PREFIX)
    if kind == "S":
        writes = (role is PROCESSOR and not own_web) or (role is WEB and own_web)
        return "USAGE, SELECT, UPDATE" if writes else None
    if name == MIGRATIONS_TABLE or role is READER:
        return None
    if role is PROCESSOR:
        return None if own_web else "SELECT, INSERT, UPDATE, DELETE"
    if role is WEB:
        if own_web:
            return "SELECT, INSERT, UPDATE, DELETE"
        return "SELECT" if name in READ_MODEL_TABLES else None
    return None
