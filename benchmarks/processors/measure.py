"""One throughput run of any system: polled progress, CPU per event by role, memory, over one window.

The window runs from the first moment some records are committed to the moment all are, so start-up
(process start, group join, state recovery) is left out for every system alike.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.processors.cpu import cpu_ticks_by_role, cpu_us_per_event, rss_kib

#: How often progress and memory are sampled.
POLL_S = 0.25


@dataclass
class Window:
    """What one run measured: its rate, its CPU per event by role, its processes' memory."""

    seconds: float
    events_per_s: int | None
    cpu_us_per_event: dict[str, float]
    cores_busy: float | None
    peak_rss_kib: list[int]
    rss_samples: list[list[int]]

    def summary(self) -> dict[str, Any]:
        """The figures every run reports, as JSON-ready values."""
        quarter = max(1, len(self.rss_samples) // 4)
        return {
            "seconds": round(self.seconds, 2),
            "events_per_s": self.events_per_s,
            # The CPU the machine spends per event, by role: what bounds events/s on shared cores.
            "cpu_us_per_event": self.cpu_us_per_event,
            "cores_busy": self.cores_busy,
            "rss_mib_at_quartiles": [
                [
                    round(kib / 1024, 1)
                    for kib in self.rss_samples[min(i * quarter, len(self.rss_samples) - 1)]
                ]
                for i in range(4)
            ]
            + [[round(kib / 1024, 1) for kib in self.rss_samples[-1]]],
        }


async def measure(
    children: list[asyncio.subprocess.Process],
    roles: dict[int, str],
    committed: Callable[[], Awaitable[int]],
    total: int,
    timeout_s: float = 3600,
) -> Window:
    """Poll `committed()` until it reaches `total` records, sampling CPU and memory of `children`.

    Args:
        children: The processes doing the work (their memory is sampled; their exit is an error).
        roles: Role of each child by pid, for the CPU accounting (see `cpu_ticks_by_role`).
        committed: Records committed so far by the system under test.
        total: Records in the stream.
        timeout_s: Longest run before it is called stalled.

    Raises:
        RuntimeError: when a child exits or the run stalls before every record is committed.
    """
    rss_samples: list[list[int]] = []
    started: float | None = None
    first_done = 0
    cpu_before: dict[str, int] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        done = await committed()
        now = time.monotonic()
        if done > 0 and started is None:
            started, first_done = now, done
            cpu_before = cpu_ticks_by_role(roles)
        rss_samples.append([rss_kib(child.pid)[0] for child in children if child.returncode is None])
        if done >= total:
            cpu_after = cpu_ticks_by_role(roles)
            break
        if now > deadline or any(child.returncode is not None for child in children):
            raise RuntimeError(f"the processes stopped or stalled at {done}/{total} records")
        await asyncio.sleep(POLL_S)
    elapsed = time.monotonic() - (started or time.monotonic())
    ticks = sum(cpu_after.values()) - sum(cpu_before.values())
    return Window(
        seconds=elapsed,
        # None when every record was already committed at the first look: too short a run to measure.
        events_per_s=round((total - first_done) / elapsed) if elapsed > 0 and total > first_done else None,
        cpu_us_per_event=cpu_us_per_event(cpu_before, cpu_after, total - first_done),
        cores_busy=round(ticks / os.sysconf("SC_CLK_TCK") / elapsed, 2) if elapsed > 0 else None,
        peak_rss_kib=[rss_kib(child.pid)[1] for child in children],
        rss_samples=rss_samples,
    )
