"""Medians over the repeated runs, the ratio of alcance's rate to each peer's, and the printed tables."""

from __future__ import annotations

import statistics
from typing import Any

ROLES = ("processors", "postgres", "relay", "broker", "benchmark")
_EMPTY: dict[str, Any] = {"events_per_s": None, "cpu_us_per_event": {}, "cores_busy": None}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per process count and system: median events/s (and every value), median CPU µs per event by role.

    Also `ratio`: alcance's median events/s over each peer's, per process count, and `cpu_ratio`: alcance's
    median CPU µs per event (all roles) over each peer's.
    """
    by_processes: dict[str, Any] = {}
    for run in runs:
        cell = by_processes.setdefault(str(run["processes"]), {}).setdefault(run["system"], [])
        cell.append(run)
    summary: dict[str, Any] = {}
    for processes, systems in by_processes.items():
        entry: dict[str, Any] = {}
        for system, found in systems.items():
            # A run too short to measure (every record committed at the first look) has no figures.
            measured = [run for run in found if run["events_per_s"] is not None] or [_EMPTY]
            rates = [run["events_per_s"] for run in measured if run["events_per_s"] is not None]
            cpu = {
                role: round(statistics.median(run["cpu_us_per_event"].get(role, 0.0) for run in measured), 1)
                for role in ROLES
            }
            entry[system] = {
                "events_per_s_median": round(statistics.median(rates)) if rates else None,
                "events_per_s": rates,
                "cpu_us_per_event_median": cpu,
                "cpu_us_per_event_total_median": round(
                    statistics.median(sum(run["cpu_us_per_event"].values()) for run in measured), 1
                ),
                "cores_busy_median": statistics.median(run["cores_busy"] or 0 for run in measured),
                # alcance's relay: seconds it took after ingest ended to take what was pending.
                "relay_catch_up_s": [run["relay_catch_up_s"] for run in found if "relay_catch_up_s" in run],
                # None for the floors, which compute nothing to check.
                "all_correct": None
                if all(run.get("cvf01_cvf02_correct") is None for run in found)
                else all(run.get("cvf01_cvf02_correct") is not False for run in found),
            }
        alcance = entry.get("alcance", {}).get("events_per_s_median")
        entry["ratio"] = {
            f"alcance/{system}": round(alcance / figures["events_per_s_median"], 2)
            for system, figures in entry.items()
            if system != "alcance" and alcance and figures["events_per_s_median"]
        }
        # CPU per event depends less on what else shares the cores than events/s does.
        cpu = entry.get("alcance", {}).get("cpu_us_per_event_total_median")
        entry["cpu_ratio"] = {
            f"alcance/{system}": round(cpu / figures["cpu_us_per_event_total_median"], 1)
            for system, figures in entry.items()
            if system not in ("alcance", "ratio") and cpu and figures["cpu_us_per_event_total_median"]
        }
        summary[processes] = entry
    return summary


def tables(summary: dict[str, Any]) -> str:
    """The side-by-side table of rates and ratios, then CPU µs per event by role, as Markdown."""
    systems = sorted({s for entry in summary.values() for s in entry if "ratio" not in s}, key=_order)
    peers = [s for s in systems if s != "alcance"]
    lines = [
        "| processes | "
        + " | ".join(f"{s} events/s" for s in systems)
        + "".join(f" | alcance/{p}" for p in peers)
        + " |",
        "|---" * (1 + len(systems) + len(peers)) + "|",
    ]
    for processes, entry in summary.items():
        rates = [_rate(entry.get(s)) for s in systems]
        ratios = [str(entry["ratio"].get(f"alcance/{p}", "—")) for p in peers]
        lines.append(f"| {processes} | " + " | ".join(rates + ratios) + " |")
    lines += [
        "",
        "| system | processes | " + " | ".join(ROLES) + " | total µs/event | cores busy | correct |",
    ]
    lines.append("|---" * (len(ROLES) + 5) + "|")
    # Medians of each role and of the totals, so the roles need not add up to the total exactly.
    for processes, entry in summary.items():
        for system in systems:
            if system in entry:
                figures = entry[system]
                cpu = [f"{figures['cpu_us_per_event_median'][role]:g}" for role in ROLES]
                lines.append(
                    f"| {system} | {processes} | "
                    + " | ".join(cpu)
                    + f" | {figures['cpu_us_per_event_total_median']:g} | {figures['cores_busy_median']:g}"
                    + f" | {_correct(figures['all_correct'])} |"
                )
    lines.append("")
    for processes, entry in summary.items():
        for name, ratio in entry["cpu_ratio"].items():
            lines.append(f"{processes} process(es): CPU µs per event, {name} = {ratio}")
    return "\n".join(lines)


def _rate(figures: dict[str, Any] | None) -> str:
    if not figures or figures["events_per_s_median"] is None:
        return "—"
    values = " / ".join(f"{rate:,}" for rate in figures["events_per_s"])
    return f"**{figures['events_per_s_median']:,}** ({values})"


def _correct(checked: bool | None) -> str:
    return "—" if checked is None else "yes" if checked else "NO"


def _order(system: str) -> tuple[int, str]:
    return (0 if system == "alcance" else 1 if system == "quix" else 2, system)
