"""CVF-01 and CVF-02 per country and month computed naively from a generated stream, to check the peers.

It runs in alcance's environment on the stream's event objects, in a way of its own (whole sets, no
per-learner state), so that it and the peers' incremental `cells.apply_event` check each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: (country, month "YYYY-MM") -> (CVF-01 enrolments, CVF-02 unique learners)
Cells = dict[tuple[str, str], tuple[int, int]]


def reference_cells(events: Iterable[Any]) -> Cells:
    """Distinct enrolment events not retracted, and their distinct learners, per country and month."""
    distinct = {event.event_id: event for event in events}
    retracted = {
        event.retracted_event_id for event in distinct.values() if event.event_type == "cvf.event.retracted"
    }
    enrolments: dict[tuple[str, str], int] = {}
    learners: dict[tuple[str, str], set[str]] = {}
    for event in distinct.values():
        if event.event_type != "cvf.enrolment.created" or event.event_id in retracted:
            continue
        cell = (event.country, event.enrolled_at.strftime("%Y-%m"))
        enrolments[cell] = enrolments.get(cell, 0) + 1
        learners.setdefault(cell, set()).add(event.subject_key)
    return {cell: (count, len(learners[cell])) for cell, count in enrolments.items()}
