"""The processors benchmark: alcance's processors and the peer baselines on one stream, broker and store."""

from benchmarks.processors.cpu import cpu_ticks_by_role, cpu_us_per_event
from benchmarks.processors.stream import FUTURE_ALLOWANCE_S, START, generate

__all__ = ["FUTURE_ALLOWANCE_S", "START", "cpu_ticks_by_role", "cpu_us_per_event", "generate"]
