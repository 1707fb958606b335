"""Child processes of the local stack: spawned in their own group, tied to our life, logged to a file."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_BYTES = 3_000
# Ports are picked free, but another process may bind one before our child does: then pick again.
BIND_ATTEMPTS = 3


class LocalStackError(RuntimeError):
    """Raised when a local service cannot start or its state directory is in use by a live stack."""


@dataclass(frozen=True)
class RunAs:
    """The system identity a child process runs under (None fields: our own)."""

    uid: int | None = None
    gid: int | None = None


class Child:
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

    async def stop(self, signum: int, timeout_s: float) -> None:
        """Send `signum`, wait up to `timeout_s`, then SIGKILL the whole group and wait for it."""
        self.signal(signum)
        if not await self.wait(timeout_s):
            self.signal_group(signal.SIGKILL)
            await self.wait(5.0)

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


async def wait_until_ready(
    child: Child, what: str, probe: Callable[[], Awaitable[bool]], timeout_s: float, poll_s: float
) -> None:
    """Poll `probe` until it answers True; fail with the child's output if it exits or time runs out.

    Raises:
        LocalStackError: naming `what`, the exit code or the wait, the last error line and the log.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if not child.alive():
            output = child.log_tail()
            raise LocalStackError(
                f"the local {what} exited with code {child.process.returncode}: {last_error_line(output)}; "
                f"its output ({child.log_path}):\n{output}"
            )
        if await probe():
            return
        if time.monotonic() >= deadline:
            raise LocalStackError(
                f"the local {what} did not answer within {timeout_s:.0f} s; "
                f"its output ({child.log_path}):\n{child.log_tail()}"
            )
        await asyncio.sleep(poll_s)


def last_error_line(output: str) -> str:
    """The last line of a service's output that names an error, for a one-line message."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [
        line for line in lines if "Exception" in line or "Error" in line or "ERROR" in line or "FATAL" in line
    ]
    return (errors or lines or ["no output"])[-1][:300]


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


def spawn(
    name: str,
    argv: list[str],
    log_path: Path,
    *,
    death_signal: int | None,
    run_as: RunAs = RunAs(),
    env: dict[str, str] | None = None,
) -> Child:
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
        process = subprocess.Popen(  # noqa: S603  # our own argv: binaries of installed wheels and the JDK
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
    return Child(name, process, log_path, log_offset)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether `port` on 127.0.0.1 can be bound right now by a server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As PostgreSQL and the JVM do: connections of the last run still in TIME_WAIT do not block it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


class StoredPort:
    """A port remembered in a file of the state directory, so a service keeps its address across runs.

    A person's SQL client or Kafka tool configured once keeps working; when the remembered port is
    taken by something else, a free one is picked and remembered instead.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def remembered(self) -> int | None:
        """The stored port, if any and valid."""
        try:
            port = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None
        return port if 0 < port < 65_536 else None

    def pick(self, attempt: int) -> int:
        """The remembered port on a first attempt when it is free; otherwise a new free one."""
        remembered = self.remembered()
        if attempt == 1 and remembered is not None and port_is_free(remembered):
            return remembered
        return free_port()

    def remember(self, port: int) -> None:
        """Store `port` for the next run."""
        self.path.write_text(f"{port}\n")


# The lock file a running local stack holds in its state directory.
STATE_DIR_LOCK = "stack.lock"


class StateDirLock:
    """An exclusive lock on a state directory, held while a stack runs there.

    The kernel releases it when we die, even by SIGKILL: if we can take it, any service still running on
    this directory belongs to a dead run and may be stopped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise LocalStackError naming the process that holds it."""
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise LocalStackError(
                f"{self.path.parent} is used by another running local stack (process {owner}); "
                "stop it or choose another state_dir"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Give the lock back (safe to call when not held)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def proc_cmdline(pid: int) -> list[str]:
    """The argv of process `pid`, or an empty list when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def process_gone(pid: int) -> bool:
    """Whether `pid` has exited (or is a zombie nobody reaped yet)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state follows the parenthesised command name, which may itself contain spaces.
    return stat_line.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def stop_foreign_process(pid: int, name: str, signals: tuple[tuple[int, float], ...]) -> None:
    """Stop a service process that is not our child, trying each (signal, wait) in turn.

    Raises:
        LocalStackError: when it is still running after the last signal.
    """
    for signum, wait_s in signals:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if process_gone(pid):
                return
            time.sleep(0.05)
    raise LocalStackError(f"could not stop the {name} (pid {pid}) left by a dead run")


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only (it may hold a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)


def stored_secret(path: Path) -> str:
    """A random password kept in `path` (owner-only), created on first use."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        secret = secrets.token_urlsafe(24)
        write_private(path, secret)
        return secret
