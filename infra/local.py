"""The embedded local stack: Apache Kafka and PostgreSQL 18 run as child processes that never outlive us."""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from infra.broker.node import KafkaNode
from infra.broker.scram import SASL_MECHANISM
from infra.local_postgres import PG_SYSTEM_USER, LocalPostgres, postgres_bin_dir
from infra.processes import (
    STATE_DIR_LOCK,
    Child,
    LocalStackError,
    StateDirLock,
    free_port,
    parent_death_preexec,
)
from infra.roles import ADMIN, GRANTED_ROLES, OWNER, READER, KafkaPrincipal, StoreRole, kafka_logins
from infra.settings import Settings, default_cache_dir
from infra.settings_export import settings_section

__all__ = [
    "PG_SYSTEM_USER",
    "LocalStack",
    "LocalStackError",
    "free_port",
    "parent_death_preexec",
    "postgres_bin_dir",
    "running_stack",
    "serve_stack",
    "stack_for",
]

logger = logging.getLogger(__name__)


class LocalStack:
    """The embedded broker and PostgreSQL server for local runs and tests.

    Each service runs as a child process in its own process group, with a parent-death signal so that
    even a SIGKILL of this process leaves no orphan. Both keep their data in the state directory across
    runs (`<state_dir>/kafka`, `<state_dir>/postgres`), and each keeps its port, remembered there.

    Args:
        state_dir: Directory for the services' data, their logs and the lock file.
        cache_dir: Where the Apache Kafka jars were fetched (default: the per-user cache).
        broker: Whether to start the Kafka broker.
        postgres: Whether to start PostgreSQL.
        start_timeout_s: How long each service may take to answer before start() fails.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        cache_dir: Path | None = None,
        broker: bool = True,
        postgres: bool = True,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.state_dir = state_dir.expanduser().resolve()
        self.start_timeout_s = start_timeout_s
        cache = cache_dir if cache_dir is not None else default_cache_dir()
        self._broker = KafkaNode(self.state_dir, cache) if broker else None
        self._postgres = LocalPostgres(self.state_dir) if postgres else None
        self._lock = StateDirLock(self.state_dir / STATE_DIR_LOCK)
        self._started = False

    @property
    def bootstrap_servers(self) -> str:
        """Bootstrap address of the local broker.

        Raises:
            LocalStackError: when the broker was not started by this stack.
        """
        if self._broker is None or self._broker.child is None:
            raise LocalStackError("the local Kafka broker is not running")
        return self._broker.bootstrap_servers

    @property
    def reader_dsn(self) -> str:
        """Connection string of the local PostgreSQL's read-only login for BI tools.

        Raises:
            LocalStackError: when PostgreSQL was not started by this stack.
        """
        return self._running_postgres().reader_dsn

    @property
    def dsn(self) -> str:
        """Connection string of the local PostgreSQL's superuser (its password is in the state directory).

        Raises:
            LocalStackError: when PostgreSQL was not started by this stack.
        """
        return self._running_postgres().dsn

    def role_dsn(self, role: StoreRole) -> str:
        """Connection string of `role`'s login on the local PostgreSQL (see `infra.roles`).

        Raises:
            LocalStackError: when PostgreSQL was not started by this stack.
        """
        return self._running_postgres().role_dsn(role)

    def kafka_password(self, principal: KafkaPrincipal) -> str:
        """The local broker's password of `principal` (kept owner-only in the state directory).

        Raises:
            LocalStackError: when the broker was not started by this stack.
        """
        if self._broker is None or self._broker.child is None:
            raise LocalStackError("the local Kafka broker is not running")
        return self._broker.passwords[principal.key]

    def _running_postgres(self) -> LocalPostgres:
        if self._postgres is None or self._postgres.child is None:
            raise LocalStackError("the local PostgreSQL is not running")
        return self._postgres

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the running services, by service name."""
        pids: dict[str, int] = {}
        if self._broker is not None and self._broker.child is not None:
            pids["kafka"] = self._broker.child.pid
        if self._postgres is not None and self._postgres.child is not None:
            pids["postgres"] = self._postgres.child.pid
        return pids

    async def start(self) -> None:
        """Start the services and wait until each answers; on failure nothing is left running.

        Raises:
            LocalStackError: when a service does not start; the message holds the end of its log.
        """
        if self._started:
            raise LocalStackError("the local stack is already started")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self._broker is not None or self._postgres is not None:
            # Only a stack that runs a service owns the state directory; one pointed at external
            # services may run beside it (a pipeline using the services of `alcance stack`).
            self._lock.acquire()
        self._started = True
        tasks: list[asyncio.Task[None]] = []
        if self._broker is not None:
            tasks.append(asyncio.create_task(self._broker.start(self.start_timeout_s)))
        if self._postgres is not None:
            tasks.append(asyncio.create_task(self._postgres.start(self.start_timeout_s)))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            await self.stop()
            raise errors[0]

    async def stop(self) -> None:
        """Stop the broker (clean shutdown) and PostgreSQL (fast shutdown); wait until both have exited.

        Safe to call more than once, and after a failed start.
        """
        # Signals go out before the first await, so a cancelled stop() still stops both services.
        stops = []
        if self._broker is not None:
            stops.append(self._broker.stop())
        if self._postgres is not None:
            stops.append(self._postgres.stop())
        await asyncio.gather(*stops)
        self._lock.release()
        self._started = False

    async def restart_postgres(self, down_s: float = 0.0) -> None:
        """Restart PostgreSQL on the same address, as an outage of the store would (for fault tests).

        Clients see their sessions end and connections refused for `down_s` seconds; the data stays.

        Raises:
            LocalStackError: when this stack does not run PostgreSQL or it does not come back.
        """
        if self._postgres is None:
            raise LocalStackError("this stack does not run PostgreSQL")
        await self._postgres.restart(self.start_timeout_s, down_s)

    async def restart_broker(self, *, kill: bool = True, down_s: float = 0.0) -> None:
        """Restart the broker on the same address: by SIGKILL, as a crash would, or cleanly.

        Its log stays; clients see connections refused until it is back (for fault tests).

        Raises:
            LocalStackError: when this stack does not run the broker or it does not come back.
        """
        if self._broker is None:
            raise LocalStackError("this stack does not run the Kafka broker")
        await self._broker.restart(self.start_timeout_s, kill=kill, down_s=down_s)

    async def wait_for_exit(self, poll_interval_s: float = 0.2) -> str:
        """Wait until one of the running services exits on its own, and return its name."""
        while True:
            for name, child in self._children():
                if not child.alive():
                    return name
            await asyncio.sleep(poll_interval_s)

    def _children(self) -> list[tuple[str, Child]]:
        children: list[tuple[str, Child]] = []
        if self._broker is not None and self._broker.child is not None:
            children.append(("Kafka broker", self._broker.child))
        if self._postgres is not None and self._postgres.child is not None:
            children.append(("PostgreSQL", self._postgres.child))
        return children

    def resolve(self, settings: Settings) -> Settings:
        """`settings` with the address of every service this stack runs filled in."""
        update: dict[str, Any] = {}
        if self._broker is not None:
            update["kafka"] = settings.kafka.model_copy(update=self._kafka_access())
        if self._postgres is not None:
            postgres = self._running_postgres()
            role_dsns = {role.key: SecretStr(postgres.role_dsn(role)) for role in GRANTED_ROLES}
            update["postgres"] = settings.postgres.model_copy(
                update={"dsn": SecretStr(postgres.role_dsn(OWNER)), "role_dsns": role_dsns}
            )
        return settings.model_copy(update=update)

    def _kafka_access(self) -> dict[str, Any]:
        """The broker's address, its admin as the default login, every principal's login, ACLs on."""
        if self._broker is None or self._broker.child is None:
            raise LocalStackError("the local Kafka broker is not running")
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": SASL_MECHANISM,
            "sasl_username": ADMIN.username,
            "sasl_password": SecretStr(self._broker.admin_password),
            "logins": kafka_logins(self._broker.passwords),
            "manage_acls": True,
        }


def stack_for(settings: Settings) -> LocalStack:
    """A stack that runs only what `settings` does not point at externally."""
    return LocalStack(
        settings.state_dir,
        cache_dir=settings.cache_dir,
        broker=settings.kafka.bootstrap_servers is None,
        postgres=settings.postgres.dsn is None,
    )


@asynccontextmanager
async def running_stack(settings: Settings) -> AsyncIterator[Settings]:
    """Run the local services `settings` does not configure, and yield the resolved settings.

    With both `kafka.bootstrap_servers` and `postgres.dsn` set nothing is started. The services stop when
    the block exits, including by an exception or cancellation.

    Raises:
        LocalStackError: when a service does not start.
    """
    stack = stack_for(settings)
    await stack.start()
    try:
        yield stack.resolve(settings)
    finally:
        await stack.stop()


async def serve_stack(settings: Settings) -> None:
    """Run the local stack until SIGTERM or SIGINT, printing its connection settings (`alcance stack`).

    One `ALCANCE_...=value` line is printed per service started here, ready for an `.env` file or
    `export`; externally configured services are not echoed because their address may hold a secret.

    Raises:
        LocalStackError: when a service does not start or exits on its own while serving.
    """
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    handled = (signal.SIGTERM, signal.SIGINT)
    for signum in handled:
        loop.add_signal_handler(signum, stop_requested.set)
    try:
        stack = stack_for(settings)
        await stack.start()
        try:
            for line in _served_settings(stack.resolve(settings), settings):
                print(line)
            sys.stdout.flush()
            stop_wait = asyncio.create_task(stop_requested.wait())
            exit_wait = asyncio.create_task(stack.wait_for_exit())
            try:
                await asyncio.wait({stop_wait, exit_wait}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (stop_wait, exit_wait):
                    task.cancel()
                await asyncio.gather(stop_wait, exit_wait, return_exceptions=True)
            if not exit_wait.cancelled():
                raise LocalStackError(f"the local {exit_wait.result()} exited unexpectedly; stopping")
            logger.info("stop requested: stopping the local stack")
        finally:
            await stack.stop()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def service_environment(resolved: Settings, configured: Settings) -> dict[str, str]:
    """The `ALCANCE_*` variables that point a process at the services a stack started.

    Args:
        resolved: the settings the stack resolved (`LocalStack.resolve`).
        configured: the settings before, telling which services were configured externally (those
            are left out: their settings may hold secrets the caller has already).
    """
    environment: dict[str, str] = {}
    if configured.kafka.bootstrap_servers is None:
        kafka = settings_section(resolved.kafka)
        for name in ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_username"):
            environment[f"ALCANCE_KAFKA__{name.upper()}"] = str(kafka[name])
        environment["ALCANCE_KAFKA__SASL_PASSWORD"] = str(kafka["sasl_password"])
        environment["ALCANCE_KAFKA__LOGINS"] = json.dumps(kafka["logins"])
        environment["ALCANCE_KAFKA__MANAGE_ACLS"] = json.dumps(kafka["manage_acls"])
    if configured.postgres.dsn is None:
        postgres = settings_section(resolved.postgres)
        environment["ALCANCE_POSTGRES__DSN"] = postgres["dsn"]
        environment["ALCANCE_POSTGRES__ROLE_DSNS"] = json.dumps(postgres["role_dsns"])
    return environment


def _served_settings(resolved: Settings, configured: Settings) -> list[str]:
    """The lines `alcance stack` prints: its services' settings (shell-quoted), and the BI tools' DSN."""
    environment = service_environment(resolved, configured)
    lines = [f"{name}={shlex.quote(value)}" for name, value in environment.items()]
    if configured.postgres.dsn is None:
        reader = resolved.postgres.role_dsns[READER.key].get_secret_value()
        lines.append(f"# read-only, for BI tools: {reader}")
    return lines
