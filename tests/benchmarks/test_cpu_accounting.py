"""The processors benchmark's CPU accounting: time is charged to the role of the process that spent it."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from benchmarks.processors import cpu_ticks_by_role, cpu_us_per_event

# Half a second of CPU spent by a grandchild that has exited (and been reaped) before the worker
# says "done": its time must still be charged to the worker's role.
_WORKER = (
    "import subprocess, sys\n"
    "subprocess.run([sys.executable, '-c',"
    " 'import time\\nend = time.process_time() + 0.5\\nwhile time.process_time() < end: pass'])\n"
    "print('done', flush=True)\n"
    "input()\n"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_cpu_of_a_workers_exited_descendants_is_charged_to_its_role() -> None:
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WORKER, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert worker.stdin is not None and worker.stdout is not None
    roles = {worker.pid: "worker"}
    before = cpu_ticks_by_role(roles)
    try:
        assert await asyncio.wait_for(worker.stdout.readline(), 30) == b"done\n"
        after = cpu_ticks_by_role(roles)
    finally:
        worker.stdin.close()
        await worker.wait()
    spent = cpu_us_per_event(before, after, events=1)
    assert spent["worker"] >= 400_000
    assert "benchmark" in after, "this process counts as the benchmark"
    assert spent["worker"] > spent.get("benchmark", 0)


def test_cpu_per_event_divides_each_roles_ticks_by_the_events() -> None:
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    spent = cpu_us_per_event({"postgres": 10}, {"postgres": 110, "broker": 50}, events=1000)
    assert spent == {"postgres": round(100 * tick_us / 1000, 1), "broker": round(50 * tick_us / 1000, 1)}
    assert list(spent) == ["postgres", "broker"], "largest first"
