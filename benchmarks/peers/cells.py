"""What both peers compute: CVF-01 and CVF-02 per country and month, one learner's events at a time.

CVF-01 (enrolments) counts the enrolments created in a month, CVF-02 (unique learners reached) the
learners with at least one of them; both by the enrolment's country. The stream has no withdrawals, so
gross and net enrolments are equal. Every record of a learner goes to one partition (the key is the
learner's pseudonym), so a learner's state lives in one consumer and the distinct learners of a cell
are the sum over learners of "has at least one enrolment in it": each event changes the two counts by
a delta that can be added up per batch and written with `UPSERT_SQL`. The state keeps the event ids
seen (the stream repeats 2 % of its records) and the enrolments retracted (1 % of the training events
are retracted), as alcance does. Pure Python with no dependency: it runs in the peers' virtualenv.
"""

from __future__ import annotations

from typing import Any

ENROLMENT_CREATED = "cvf.enrolment.created"
RETRACTED = "cvf.event.retracted"
#: The only event types that change CVF-01 or CVF-02 here; the state needs no other.
COUNTED = frozenset((ENROLMENT_CREATED, RETRACTED))

#: (country, month "YYYY-MM", change of CVF-01, change of CVF-02)
Delta = tuple[str, str, int, int]


def new_state() -> dict[str, Any]:
    """A learner's state, JSON-serialisable (Quix Streams keeps it in RocksDB as JSON)."""
    return {"seen": [], "retracted": [], "enrolments": {}, "cells": {}}


def apply_event(state: dict[str, Any], event: dict[str, Any]) -> Delta | None:
    """Apply one decoded training event to its learner's `state`; the change it makes, if any.

    Only enrolments and retractions touch the state (the seen ids guard them against repeats); a
    learner's state must see that learner's records in the order of their partition.
    """
    kind = event["event_type"]
    if kind not in COUNTED:
        return None
    event_id = event["event_id"]
    if event_id in state["seen"]:  # a repeated record
        return None
    state["seen"].append(event_id)
    if kind == ENROLMENT_CREATED:
        if event_id in state["retracted"]:  # its retraction came first
            return None
        cell = [event["country"], event["enrolled_at"][:7]]
        state["enrolments"][event_id] = cell
        return _count(state, cell[0], cell[1], +1)
    if kind == RETRACTED:
        target = event["retracted_event_id"]
        if target in state["retracted"]:
            return None
        state["retracted"].append(target)
        retracted = state["enrolments"].pop(target, None)
        return None if retracted is None else _count(state, retracted[0], retracted[1], -1)
    return None


def _count(state: dict[str, Any], country: str, month: str, step: int) -> Delta:
    cells = state["cells"]
    key = f"{country}|{month}"
    before = cells.get(key, 0)
    after = before + step
    if after:
        cells[key] = after
    else:
        cells.pop(key, None)
    return country, month, step, int(after > 0) - int(before > 0)


def add_up(deltas: list[Delta]) -> list[tuple[str, str, int, int]]:
    """The deltas of a batch summed per (country, month), in key order (upserts lock rows in one order)."""
    totals: dict[tuple[str, str], list[int]] = {}
    for country, month, enrolments, learners in deltas:
        total = totals.setdefault((country, month), [0, 0])
        total[0] += enrolments
        total[1] += learners
    return [(c, m, e, n) for (c, m), (e, n) in sorted(totals.items()) if e or n]


def create_sql(schema: str) -> str:
    """The peer's schema and its one table."""
    return (
        f'CREATE SCHEMA IF NOT EXISTS "{schema}";'
        f'CREATE TABLE IF NOT EXISTS "{schema}".cvf_monthly ('
        " country text NOT NULL, month date NOT NULL,"
        " enrolments bigint NOT NULL, learners bigint NOT NULL,"
        " PRIMARY KEY (country, month))"
    )


def upsert_sql(schema: str) -> str:
    """Adds a batch's summed deltas ($1 countries, $2 months as 'YYYY-MM', $3 enrolments, $4 learners)."""
    return (
        f'INSERT INTO "{schema}".cvf_monthly AS t (country, month, enrolments, learners)'  # noqa: S608
        " SELECT c, to_date(m, 'YYYY-MM'), e, n"
        " FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS d(c, m, e, n)"
        " ON CONFLICT (country, month) DO UPDATE"
        " SET enrolments = t.enrolments + excluded.enrolments, learners = t.learners + excluded.learners"
    )


def select_sql(schema: str) -> str:
    """(country, month, enrolments, learners) of every non-empty cell."""
    return (
        f"SELECT country, to_char(month, 'YYYY-MM'), enrolments, learners"  # noqa: S608
        f' FROM "{schema}".cvf_monthly WHERE enrolments <> 0 OR learners <> 0'
    )
