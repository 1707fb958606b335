"""`alcance run` end to end on the embedded default: simulated sources, local broker, local PostgreSQL.

These tests drive the real command in child processes, as a user would, and check what it leaves in the
evaluation store against the simulated sources' own ground truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from connectors.simulators.generator import generate
from connectors.simulators.xapi_lrs import statements_from_world
from infra.local import LocalStack, service_environment
from infra.settings import load_settings
from schemas.events.base import MEMBER_STATES
from tests.conftest import make_state_dir
from tests.support.processes import REPO_ROOT, descendants, is_running, python_child

SEED = 503
RUN_TIMEOUT_S = 180.0


def _env(state_dir: Path) -> dict[str, str]:
    return {"ALCANCE_STATE_DIR": str(state_dir), "ALCANCE_SIMULATION_SEED": str(SEED)}


async def _run_until_idle(state_dir: Path) -> str:
    async with python_child(module="alcance.cli", args=["run", "--until-idle"], env=_env(state_dir)) as run:
        try:
            code = await run.wait(RUN_TIMEOUT_S)
        except TimeoutError:
            raise AssertionError(f"run --until-idle not idle in {RUN_TIMEOUT_S} s:\n{run.output}") from None
        assert code == 0, run.output
        return run.output


async def _indicators(state_dir: Path, *args: str) -> list[dict[str, Any]]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ALCANCE_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alcance.cli",
        "indicators",
        "--json",
        # The store's present: a snapshot the refresher took mid-run may still be within its bound.
        "--fresh",
        *args,
        cwd=REPO_ROOT,
        env={**environment, **_env(state_dir)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()
    rows: list[dict[str, Any]] = json.loads(stdout)
    return rows


async def _facts(state_dir: Path) -> dict[tuple[str, str], int]:
    """Distinct events in the store by (source, event type), retracted ones excluded."""
    stack = LocalStack(state_dir, broker=False, postgres=True)
    await stack.start()
    try:
        connection = await asyncpg.connect(stack.dsn)
        try:
            rows = await connection.fetch(
                "SELECT source, event_type, count(*) AS n FROM alcance.fact"
                " WHERE received AND NOT retracted GROUP BY source, event_type"
            )
        finally:
            await connection.close()
    finally:
        await stack.stop()
    return {(row["source"], row["event_type"]): row["n"] for row in rows}


def _by_source(facts: dict[tuple[str, str], int]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (source, _), count in facts.items():
        totals[source] = totals.get(source, 0) + count
    return totals


def _expected_lrs_events() -> int:
    world = generate(SEED)
    _, truth = statements_from_world(world, seed=SEED)
    return sum(1 for statement in truth if statement.expected is not None and statement.duplicate_of is None)


def _canonical(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


@pytest.fixture(scope="module")
async def uninterrupted_run() -> AsyncIterator[tuple[Path, list[dict[str, Any]]]]:
    """One complete `alcance run --until-idle` and every yearly indicator it produced."""
    state_dir = make_state_dir()
    try:
        await _run_until_idle(state_dir)
        yield state_dir, await _indicators(state_dir, "--period", "year")
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
async def uninterrupted_facts(
    uninterrupted_run: tuple[Path, list[dict[str, Any]]],
) -> dict[tuple[str, str], int]:
    return await _facts(uninterrupted_run[0])


async def test_run_until_idle_counts_every_source_record_once(
    uninterrupted_run: tuple[Path, list[dict[str, Any]]],
) -> None:
    state_dir, _ = uninterrupted_run
    facts = _by_source(await _facts(state_dir))
    world = generate(SEED)
    assert facts["cvf-lrs"] == _expected_lrs_events()
    assert facts["finance-ledger"] == len(world.costs)
    assert facts["plgn"] > 0 and facts["cvf-moodle"] > 0


async def test_indicators_command_prints_enrolments_per_country_and_month(
    uninterrupted_run: tuple[Path, list[dict[str, Any]]],
) -> None:
    state_dir, _ = uninterrupted_run
    rows = await _indicators(state_dir, "--indicator", "CVF-01", "--period", "month", "--by", "country")
    assert rows, "no enrolment indicator was computed"
    for row in rows:
        assert set(row) >= {"indicator", "period", "dimensions", "value"}
        assert row["indicator"] == "CVF-01"
        assert row["period"]["kind"] == "month"
        assert set(row["dimensions"]) == {"country"}
    totals = await _indicators(state_dir, "--indicator", "CVF-01", "--period", "month")
    assert all(row["dimensions"] == {} for row in totals)
    # Regrouping by country neither loses nor adds enrolments.
    assert sum(row["parts"]["gross"] for row in rows) == sum(row["parts"]["gross"] for row in totals)


async def test_plgn_16_by_country_gives_each_receiving_member_state_its_rate(
    uninterrupted_run: tuple[Path, list[dict[str, Any]]],
) -> None:
    # The README's own example: authorisation rate per member state.
    state_dir, _ = uninterrupted_run
    rows = await _indicators(state_dir, "--indicator", "plgn-16", "--period", "year", "--by", "country")
    latest = max(row["period"]["start"] for row in rows)
    rates = {row["dimensions"]["country"]: row["value"] for row in rows if row["period"]["start"] == latest}
    world = generate(SEED)
    receiving = {
        state
        for grant in world.authorisations
        if grant.withdrawn_at is None
        for state in (MEMBER_STATES if "ALL_MEMBERS" in grant.recipients else grant.recipients)
    }
    assert receiving and "UNKNOWN" not in rates
    assert all(rates[state] > 0 for state in receiving), rates


@pytest.mark.parametrize("broker_log", ["kept", "wiped"])
async def test_run_killed_with_its_broker_and_postgres_recovers_to_the_same_indicators(
    uninterrupted_run: tuple[Path, list[dict[str, Any]]],
    uninterrupted_facts: dict[tuple[str, str], int],
    stack_state_dir: Path,
    broker_log: str,
) -> None:
    _, expected = uninterrupted_run
    async with python_child(
        module="alcance.cli", args=["run", "--until-idle"], env=_env(stack_state_dir)
    ) as run:
        # Mid-run: events are published and the processor has committed its first batch, not the rest.
        await run.wait_for_line(lambda line: "batch 1:" in line, timeout_s=RUN_TIMEOUT_S)
        victims = [run.pid, *run.descendants()]
        for pid in reversed(victims):
            # A child may already be gone: it dies with its parent (parent-death signal).
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert await run.wait() == -signal.SIGKILL
    await _wait_gone(victims)

    if broker_log == "wiped":
        # As a rebuilt cluster would: every record and offset gone, the store and checkpoints kept. The
        # log-identity guard makes connectors re-publish from what the processors had committed.
        shutil.rmtree(stack_state_dir / "kafka")
    output = await _run_until_idle(stack_state_dir)
    assert "idle:" in output
    recovered = await _indicators(stack_state_dir, "--period", "year")
    assert _canonical(recovered) == _canonical(expected)
    # Every source record is counted once: no event lost, none doubled, for every source and type.
    facts = await _facts(stack_state_dir)
    assert facts == uninterrupted_facts
    assert _by_source(facts)["cvf-lrs"] == _expected_lrs_events()


async def test_a_broker_killed_and_restarted_mid_run_leaves_the_same_indicators(
    uninterrupted_run: tuple[Path, list[dict[str, Any]]],
    uninterrupted_facts: dict[tuple[str, str], int],
    stack_state_dir: Path,
) -> None:
    _, expected = uninterrupted_run
    # The broker and PostgreSQL are external to the run (set by configuration), so the test can crash
    # the broker under it while connectors publish and processors commit.
    stack = LocalStack(stack_state_dir)
    await stack.start()
    try:
        configured = load_settings(state_dir=stack_state_dir)
        env = {
            **_env(stack_state_dir),
            **service_environment(stack.resolve(configured), configured),
            # Retry the broker often while it is down, so the test waits for recovery, not for backoff.
            "ALCANCE_CONNECTOR__BACKOFF_MAX_S": "1",
        }
        async with python_child(module="alcance.cli", args=["run", "--until-idle"], env=env) as run:
            await run.wait_for_line(lambda line: "batch 1:" in line, timeout_s=RUN_TIMEOUT_S)
            await stack.restart_broker(kill=True, down_s=2.0)
            try:
                code = await run.wait(RUN_TIMEOUT_S)
            except TimeoutError:
                raise AssertionError(
                    f"not idle in {RUN_TIMEOUT_S} s after the crash:\n{run.output}"
                ) from None
            assert code == 0, run.output
    finally:
        await stack.stop()
    assert _canonical(await _indicators(stack_state_dir, "--period", "year")) == _canonical(expected)
    assert await _facts(stack_state_dir) == uninterrupted_facts


async def test_sigterm_stops_the_run_and_leaves_no_process_behind(stack_state_dir: Path) -> None:
    async with python_child(module="alcance.cli", args=["run"], env=_env(stack_state_dir)) as run:
        await run.wait_for_line(lambda line: "batch 1:" in line, timeout_s=RUN_TIMEOUT_S)
        family = run.descendants()
        assert len(family) >= 2, f"expected the broker and PostgreSQL below alcance, found {family}"
        run.send_signal(signal.SIGTERM)
        assert await run.wait(60) == 0, run.output
        assert "stopped after" in run.output
    await _wait_gone(family)
    assert not (stack_state_dir / "stack.env").exists()


async def _wait_gone(pids: list[int], timeout_s: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while any(is_running(pid) for pid in pids):
        if loop.time() > deadline:
            left = [pid for pid in pids if is_running(pid)]
            raise AssertionError(f"processes left behind: {left} ({[descendants(p) for p in left]})")
        await asyncio.sleep(0.1)
