"""The systemd units of `infra/deploy/` run commands this project installs, and each command stops
cleanly on the unit's kill signal. There is no systemd here: each unit's `ExecStart` runs as a child
process, with the unit's paths mapped to this checkout and its settings pointed at the local stack."""

from __future__ import annotations

import importlib.util
import shlex
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infra.kafka import ensure_topics
from infra.postgres import create_pool, migrate
from infra.settings import Settings
from infra.settings_export import settings_as_environment
from schemas.topics import TopicCatalogue
from tests.support.processes import REPO_ROOT, python_child

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the units are for Linux")

UNITS = sorted((REPO_ROOT / "infra" / "deploy").glob("*.service"))
INSTALLED_BIN = Path("/opt/alcance/.venv/bin")
ENVIRONMENT_FILE = "/etc/alcance/alcance.env"
CONFIG_FILE = "/etc/alcance/alcance.toml"
STATE_DIR = "/var/lib/alcance"
# What each command prints once it is running (so the stop signal arrives in steady state).
READY = {
    "alcance.service": "batch 1:",
    "alcance-processor@.service": "partitions claimed:",
    "alcance-relay.service": "relay started",
    "alcance-snapshots.service": "snapshot refresher started",
}


def directives(unit: Path) -> dict[str, list[str]]:
    """`Section.Key` -> values, in order (systemd allows a key more than once)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def one(unit: Path, key: str) -> str:
    values = directives(unit).get(key, [])
    assert len(values) == 1, f"{unit.name}: expected one {key}, found {values}"
    return values[0]


def local_command(unit: Path, config: Path) -> list[str]:
    """The unit's ExecStart with its installed virtualenv and config file mapped to this checkout's."""
    argv = shlex.split(one(unit, "Service.ExecStart"))
    program = Path(argv[0])
    assert program.parent == INSTALLED_BIN, f"{unit.name} runs {program}, not a program of the install"
    local = Path(sys.executable).parent / program.name
    assert local.exists(), f"{unit.name} runs {program.name}, which this project does not install"
    return [str(local), *(str(config) if arg == CONFIG_FILE else arg for arg in argv[1:])]


def test_every_unit_of_the_deploy_folder_is_checked() -> None:
    assert {unit.name for unit in UNITS} == set(READY)


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_a_unit_runs_an_installed_command_as_the_service_user_with_the_shared_settings(unit: Path) -> None:
    argv = local_command(unit, REPO_ROOT / "alcance.example.toml")
    if Path(argv[0]).name.startswith("python"):
        assert argv[1] == "-m", f"{unit.name}: python runs a module"
        spec = importlib.util.find_spec(argv[2])
        assert spec is not None and spec.origin is not None, f"{unit.name}: no module {argv[2]}"
        assert 'if __name__ == "__main__":' in Path(spec.origin).read_text()
    assert one(unit, "Service.User") == one(unit, "Service.Group") == "alcance"
    assert one(unit, "Service.EnvironmentFile") == ENVIRONMENT_FILE
    # Every command stops gracefully on SIGTERM: the batch in hand commits, the relay drains.
    assert one(unit, "Service.KillSignal") == "SIGTERM"
    assert one(unit, "Service.Restart") == "on-failure"
    assert one(unit, "Install.WantedBy") == "multi-user.target"


@pytest.fixture
async def isolated(local_stack: Settings) -> AsyncIterator[Settings]:
    """The local stack under a topic prefix and schema of this test alone, migrated, topics created."""
    token = uuid.uuid4().hex[:8]
    fresh = local_stack.model_copy(
        update={
            "kafka": local_stack.kafka.model_copy(update={"topic_prefix": f"u{token}."}),
            "postgres": local_stack.postgres.model_copy(update={"db_schema": f"u_{token}"}),
        }
    )
    pool = await create_pool(fresh.postgres)
    try:
        await migrate(pool)
        await ensure_topics(fresh.kafka, TopicCatalogue.from_settings(fresh).all())
        yield fresh
    finally:
        await pool.execute(f'DROP SCHEMA "{fresh.postgres.db_schema}" CASCADE')
        await pool.close()


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
async def test_a_units_command_runs_and_stops_cleanly_on_its_kill_signal(
    unit: Path, isolated: Settings, tmp_path: Path
) -> None:
    config = tmp_path / "alcance.toml"
    config.write_text("# no [[sources]]: the simulated ones\n[processor]\nsmall_cell_threshold = 5\n")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    # The environment file would hold the settings; the unit's own Environment= lines come on top.
    env = settings_as_environment(isolated.model_copy(update={"state_dir": state_dir}))
    for assignment in directives(unit).get("Service.Environment", []):
        name, _, value = assignment.partition("=")
        env[name] = str(state_dir) if value == STATE_DIR else value
    stop = getattr(signal, one(unit, "Service.KillSignal"))
    stop_timeout_s = float(one(unit, "Service.TimeoutStopSec"))
    async with python_child(command=local_command(unit, config), env=env) as child:
        await child.wait_for_line(lambda line: READY[unit.name] in line, timeout_s=60)
        child.send_signal(stop)
        # Exit code 0: systemd's Restart=on-failure leaves a stopped service stopped.
        assert await child.wait(stop_timeout_s) == 0, child.output
