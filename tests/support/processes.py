"""Child processes a test can kill, and checks of what they leave behind (Linux /proc)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from infra.local import parent_death_preexec
from infra.settings import Settings
from infra.settings_export import settings_as_environment

REPO_ROOT = Path(__file__).resolve().parents[2]


class ChildProcess:
    """A running child whose combined stdout/stderr is collected line by line in the background."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self._reader = asyncio.create_task(self._collect())

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def _collect(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._new_line.set()
        self._new_line.set()

    async def wait_for_line(self, predicate: Callable[[str], bool], timeout_s: float = 30.0) -> str:
        """The first output line matching `predicate`; fails if the child exits or time runs out first."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if predicate(line):
                    return line
            seen = len(self.lines)
            if self._reader.done():
                raise AssertionError(f"child {self.pid} ended without the expected line:\n{self.output}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"child {self.pid} printed no expected line in {timeout_s} s:\n{self.output}"
                )
            self._new_line.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_line.wait(), remaining)

    def send_signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing of the child's cleanup code runs."""
        self.send_signal(signal.SIGKILL)

    async def wait(self, timeout_s: float = 30.0) -> int:
        """Wait for the child to exit and return its exit code (negative: killed by that signal)."""
        code = await asyncio.wait_for(self.process.wait(), timeout_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reader, 5.0)
        return code

    def descendants(self) -> list[int]:
        return descendants(self.pid)


@asynccontextmanager
async def python_child(
    code: str | None = None,
    *,
    module: str | None = None,
    command: Sequence[str] | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> AsyncIterator[ChildProcess]:
    """Run `python -c code`, `python -m module` or a `command` of the project's environment, from the
    repository root.

    The child inherits our environment without its `ALCANCE_*` variables, then gets `settings` as
    `ALCANCE_*` variables and `env` on top. It dies with the test process (parent-death signal) and is
    SIGKILLed if still running when the block ends.
    """
    if sum(given is not None for given in (code, module, command)) != 1:
        raise ValueError("give exactly one of code, module or command")
    if command is not None:
        argv = list(command)
    elif code is not None:
        argv = [sys.executable, "-c", code]
    else:
        argv = [sys.executable, "-m", str(module)]
    child_env = {key: value for key, value in os.environ.items() if not key.startswith("ALCANCE_")}
    if settings is not None:
        child_env.update(settings_env(settings))
    else:
        # A child that serves the web app takes any free port: parallel runs never fight over 8470.
        child_env["ALCANCE_WEB__PORT"] = "0"
    child_env.update(env or {})
    child_env["PYTHONUNBUFFERED"] = "1"
    process = await asyncio.create_subprocess_exec(
        *argv,
        *args,
        cwd=REPO_ROOT,
        env=child_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=parent_death_preexec(signal.SIGKILL),
    )
    child = ChildProcess(process)
    try:
        yield child
    finally:
        if process.returncode is None:
            child.kill()
        await child.wait()


def settings_env(settings: Settings) -> dict[str, str]:
    """`settings` as the `ALCANCE_*` environment variables that reproduce it in another process."""
    return settings_as_environment(settings)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name (which may contain spaces): state, ppid, pgrp, ...
    return line.rsplit(")", 1)[1].split()


def is_running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie waiting to be reaped."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`, children first."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = [child for parent in frontier for child in children(parent)]
        found.extend(below)
        frontier = below
    return found


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


async def wait_until_gone(pids: Iterable[int], timeout_s: float = 10.0) -> set[int]:
    """Wait until none of `pids` runs any more; return those still running when time is up."""
    remaining = set(pids)
    deadline = time.monotonic() + timeout_s
    while remaining and time.monotonic() < deadline:
        remaining = {pid for pid in remaining if is_running(pid)}
        if remaining:
            await asyncio.sleep(0.05)
    return remaining


def port_is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


async def wait_until_closed(ports: Iterable[int], timeout_s: float = 10.0) -> set[int]:
    """Wait until nothing listens on `ports`; return those still listening when time is up."""
    remaining = set(ports)
    deadline = time.monotonic() + timeout_s
    while remaining and time.monotonic() < deadline:
        remaining = {port for port in remaining if port_is_listening(port)}
        if remaining:
            await asyncio.sleep(0.05)
    return remaining
