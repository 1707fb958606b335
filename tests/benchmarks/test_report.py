"""The processors benchmark's summary: medians over repeats, the ratio alcance/peer, the tables."""

from __future__ import annotations

from typing import Any

from benchmarks.processors.report import summarise, tables


def _run(system: str, processes: int, rate: int | None, cpu: float, correct: bool = True) -> dict[str, Any]:
    return {
        "system": system,
        "processes": processes,
        "events_per_s": rate,
        "cpu_us_per_event": {"processors": cpu, "postgres": cpu / 2},
        "cores_busy": 1.5,
        "cvf01_cvf02_correct": correct,
    }


def test_medians_of_the_repeats_and_the_ratio_of_alcance_to_each_peer() -> None:
    runs = [
        _run("alcance", 1, 9_000, 60),
        _run("quix", 1, 20_000, 20),
        _run("alcance", 1, 8_000, 70),
        _run("quix", 1, 30_000, 10),
        _run("alcance", 1, 10_000, 50),
        _run("quix", 1, None, 0),  # too short to measure: left out of every median
    ]
    summary = summarise(runs)["1"]
    assert summary["alcance"]["events_per_s_median"] == 9_000
    assert summary["alcance"]["events_per_s"] == [9_000, 8_000, 10_000]
    assert summary["quix"]["events_per_s_median"] == 25_000
    assert summary["ratio"] == {"alcance/quix": 0.36}
    assert summary["alcance"]["cpu_us_per_event_median"]["processors"] == 60
    assert summary["alcance"]["cpu_us_per_event_total_median"] == 90
    assert summary["cpu_ratio"] == {"alcance/quix": 4.0}, "90 µs against the median of 30 and 15"


def test_a_run_with_wrong_values_is_flagged_in_the_table() -> None:
    summary = summarise([_run("alcance", 2, 15_000, 60), _run("plain", 2, 45_000, 10, correct=False)])
    assert summary["2"]["plain"]["all_correct"] is False
    text = tables(summary)
    assert "| 2 | **15,000** (15,000) | **45,000** (45,000) | 0.33 |" in text
    assert "| plain | 2 | 10 | 5 | 0 | 0 | 0 | 15 | 1.5 | NO |" in text
    assert text.rstrip().endswith("2 process(es): CPU µs per event, alcance/plain = 6.0")
