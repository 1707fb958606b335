"""The cyclic garbage collector's schedule for a long-running pipeline process.

A processor batch keeps tens of thousands of container objects alive until it commits (records and
their headers, events, parts, columns); reference counting frees them afterwards, as it frees almost
everything these processes make. With the interpreter's default schedule (a young collection every
700 net allocations), those objects are still alive at every young collection, so they are promoted
and traversed again by the older collections, together with every object made at start-up: measured
in a processor on the processors benchmark, about a fifth of its CPU went to the collector, most of it
in full collections.

`settle_collector` moves the start-up objects out of the collector's sight (`gc.freeze`) and runs
the young collection every `YOUNG_THRESHOLD` net allocations. Garbage cycles are still found: those
that die young at the next young collection, the others at the older collections, which follow the
young ones at the interpreter's usual ratios (`MIDDLE_THRESHOLD`, `OLD_THRESHOLD`), so memory stays
bounded by a few collections' worth of allocations.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 10


def settle_collector() -> None:
    """Freeze what start-up left alive and collect young objects every `YOUNG_THRESHOLD` allocations.

    Call it once, at the entry point of a process, after its modules are imported.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
