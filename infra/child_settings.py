"""Settings for child processes through a pipe, never through their environment.

Any process of the same user can read another's environment (`/proc/<pid>/environ`) for as long as it
runs; a pipe is read once and is gone. The parent writes the resolved settings, secrets included, as one
JSON document to the child's stdin and removes every `ALCANCE_*` variable from the child's environment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from infra.local import parent_death_preexec
from infra.settings import Settings, load_settings
from infra.settings_export import settings_as_json, settings_from_json

SETTINGS_FROM_STDIN = "--settings-from-stdin"
"""The argument that tells a child to read its settings from stdin instead of the environment."""


def child_environment() -> dict[str, str]:
    """The environment to give a child: ours without alcance's settings (they may hold secrets)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("ALCANCE_")}


async def spawn_with_settings(settings: Settings, module: str) -> asyncio.subprocess.Process:
    """Start `python -m <module> --settings-from-stdin`, hand it `settings` over a pipe; it dies with us."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        SETTINGS_FROM_STDIN,
        stdin=asyncio.subprocess.PIPE,
        env=child_environment(),
        preexec_fn=parent_death_preexec(signal.SIGKILL),
    )
    assert process.stdin is not None  # noqa: S101 - created with stdin=PIPE just above
    process.stdin.write(settings_as_json(settings).encode())
    await process.stdin.drain()
    process.stdin.close()
    await process.stdin.wait_closed()
    return process


def settings_of_this_process() -> Settings:
    """The settings a parent piped in (with `--settings-from-stdin`), else those of the environment."""
    if SETTINGS_FROM_STDIN in sys.argv[1:]:
        return settings_from_json(sys.stdin.read())
    return load_settings()
