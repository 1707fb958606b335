"""CPU time and memory of the processes a benchmark started, read from /proc and charged by role."""

from __future__ import annotations

import os
from pathlib import Path


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def _process_table() -> dict[int, tuple[int, str, int]]:
    """Every visible process: pid -> (parent pid, command name, CPU ticks).

    The ticks are user + system time of the process and of its children that it has reaped, so the
    time of a process that exited is still counted, in its parent.
    """
    table: dict[int, tuple[int, str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        # The command name is parenthesised and may itself hold spaces or parentheses.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), name, sum(int(ticks) for ticks in fields[11:15]))
    return table


def cpu_ticks_by_role(roles: dict[int, str]) -> dict[str, int]:
    """CPU ticks used so far by this process and its descendants, summed per role.

    Args:
        roles: Role of some child processes by pid (their descendants share it). Other
            descendants are named by command: "postgres" and "java" (the local stack's servers);
            anything else counts as "benchmark", like this process.
    """
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    ticks: dict[str, int] = {}
    pending = [(os.getpid(), "benchmark")]
    while pending:
        pid, inherited = pending.pop()
        if pid not in table:
            continue
        name = table[pid][1]
        role = roles.get(pid) or {"postgres": "postgres", "java": "broker"}.get(name, inherited)
        ticks[role] = ticks.get(role, 0) + table[pid][2]
        pending.extend((child, role) for child in children.get(pid, []))
    return ticks


def cpu_us_per_event(before: dict[str, int], after: dict[str, int], events: int) -> dict[str, float]:
    """Microseconds of CPU per event spent by each role between two `cpu_ticks_by_role` samples."""
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    return {
        role: round((after[role] - before.get(role, 0)) * tick_us / events, 1)
        for role in sorted(after, key=lambda role: before.get(role, 0) - after[role])
        if events > 0
    }
