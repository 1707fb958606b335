"""The Moodle connector's cursor: where a poll cycle stands, stored as the source's checkpoint (JSON).

Keys (a cursor is a plain dict so that checkpoints written by earlier versions keep working):

| key | meaning |
| --- | --- |
| `cycle` | the poll cycle, from 1; snapshot rows are compared between cycles |
| `cert_from` | certificate watermark (`timecreatedfrom`, inclusive) for the cycle's sweep |
| `courses` | the cycle's courses: [id, startdate, enddate, idnumber, enablecompletion]; absent at first |
| `course_idx` | index in `courses` of the course being read |
| `limitfrom`, `after_id` | the enrolled-users window of that course: next offset, last user id read |
| `cert_offset` | offset of the next certificate page in the sweep |
| `cert_floor`, `cert_floor_ids` | oldest issue time read in the sweep, and the issue ids at that time |
| `cert_top` | newest issue time of the sweep's first page: the next sweep's watermark |
"""

from __future__ import annotations

from typing import Any

from connectors.base import Cursor

MoodleCursor = dict[str, Any]


def resume(cursor: Cursor | None) -> MoodleCursor:
    """A mutable copy of a stored cursor, or the first cycle's start."""
    return dict(cursor) if cursor else {"cycle": 1, "cert_from": 0}


def start_cycle(state: MoodleCursor, courses: list[list[Any]]) -> None:
    """Begin reading the cycle's `courses` from the first."""
    state["courses"] = courses
    state.update(course_idx=0, limitfrom=0, after_id=0)


def next_course(state: MoodleCursor) -> None:
    """Move on to the next course of the cycle."""
    state.update(course_idx=state["course_idx"] + 1, limitfrom=0, after_id=0)


def next_cycle(state: MoodleCursor) -> MoodleCursor:
    """The cursor of the following cycle: only its number and the certificate watermark carry over."""
    return {"cycle": int(state["cycle"]) + 1, "cert_from": int(state["cert_from"])}
