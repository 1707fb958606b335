"""Enrolment records joined by PostgreSQL: one row per enrolment instead of one per stored part row.

The training indicators aggregate enrolment records joined from up to nine stored parts by enrolment
id (`processors.indicators.enrolments`). Building those records in Python from every stored row took
three quarters of a training read (the rows, then the join); here PostgreSQL joins them in one query
and Python builds each `Enrolment` from one row. The records equal `enrolments.join_enrolments` over the
same rows: the same anchor per enrolment and the same winning report per latest part. A part no
indicator of the read declares is not joined and leaves its fields at their defaults.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

from processors.indicators.base import PeriodKind
from processors.indicators.enrolments import Enrolment
from processors.indicators.periods import decode_member

PartKey = tuple[str, str]

ANCHOR: PartKey = ("CVF-01", "enrolled")
# The parts a join reads as member sets (kind "distinct"), with the column each becomes.
FLAG_PARTS: dict[PartKey, str] = {
    ("CVF-01", "withdrawn_before_start"): "withdrawn_before",
    ("CVF-08", "withdrawn_after_start"): "withdrawn_after",
    ("CVF-08", "started"): "started",
    ("CVF-06", "final_attempted"): "attempted_final",
    ("CVF-06", "final_passed"): "passed_final",
}
# The parts a join reads as one winning report per enrolment (kind "latest").
REPORT_PARTS: dict[PartKey, str] = {
    ("CVF-05", "completed"): "completed",
    ("CVF-07", "certified"): "certified",
    ("CVF-12", "pre_score"): "pre",
    ("CVF-12", "post_score"): "post",
}
JOINED_PARTS = frozenset({ANCHOR, *FLAG_PARTS, *REPORT_PARTS})
# Aggregations that also read rows of a joined part themselves (active learners: the months of each
# enrolment's learning events), by aggregation name.
RAW_READS: dict[str, frozenset[PartKey]] = {"active_learners": frozenset({("CVF-08", "started")})}

# The enrolment id is the first field of the anchor's member (`training.anchor_member`), unescaped as
# `decode_member` does. Per enrolment id the anchor with the greatest (member, period) wins, as in the
# Python join; text is compared bytewise (COLLATE "C") as Python compares strings.
_ANCHORS = """
SELECT DISTINCT ON (eid) eid, member, cell, dims
  FROM (SELECT DISTINCT replace(replace(split_part(member, '|', 1), '%7C', '|'), '%25', '%') AS eid,
               member, date_trunc($1, period_start::timestamp)::date AS cell, dims
          FROM indicator_member
         WHERE indicator = 'CVF-01' AND part = 'enrolled' AND refcount > 0) AS a
 ORDER BY eid, member COLLATE "C" DESC, cell DESC, dims COLLATE "C" DESC
"""
_FLAG = """
SELECT DISTINCT member AS eid FROM indicator_member
 WHERE indicator = '{indicator}' AND part = '{part}' AND refcount > 0
"""
# Per cell and member the store's winner (order key, then event id, as `read._REPORTS`); across
# cells the rank of `grouping.latest_per_member`: order key, period, dimensions, value.
# (Dimensions compare as their canonical JSON text here and as sorted items there; both order the
# codes dimensions hold alike.)
_REPORT = """
SELECT DISTINCT ON (member) member AS eid, cell, amount
  FROM (SELECT DISTINCT ON (cell, dims, member) member, cell, dims, amount, order_key
          FROM (SELECT r.*, date_trunc($1, r.period_start::timestamp)::date AS cell
                  FROM indicator_report AS r WHERE indicator = '{indicator}' AND part = '{part}') AS r
         ORDER BY cell, dims, member, order_key DESC, event_id DESC) AS w
 ORDER BY member, order_key COLLATE "C" DESC, cell DESC, dims COLLATE "C" DESC, amount DESC
"""


def _query(parts: frozenset[PartKey]) -> str:
    """The join of the anchors with the declared parts (built from constant fragments only).

    The columns are always those `_record` unpacks; an undeclared part gives false or NULL.
    """
    columns = ["a.member", "a.cell", "a.dims"]
    joins = []
    for key, name in FLAG_PARTS.items():
        if key in parts:
            columns.append(f"{name}.eid IS NOT NULL")
            joins.append(f"LEFT JOIN ({_FLAG.format(indicator=key[0], part=key[1])}) AS {name} USING (eid)")
        else:
            columns.append("false")
    for key, name in REPORT_PARTS.items():
        if key in parts:
            columns += [f"{name}.amount", f"{name}.cell"]
            joins.append(f"LEFT JOIN ({_REPORT.format(indicator=key[0], part=key[1])}) AS {name} USING (eid)")
        else:
            columns += ["NULL::numeric", "NULL::date"]
    # Constant fragments and catalogue names only; the period arrives as a bind parameter.
    return f"SELECT {', '.join(columns)}\n  FROM ({_ANCHORS}) AS a\n" + "\n".join(joins)  # noqa: S608


async def load_enrolments(
    connection: asyncpg.Connection, period: PeriodKind, parts: Iterable[PartKey]
) -> list[Enrolment]:
    """The enrolment records over the stored parts `parts` declares, read into cells of `period`.

    Must run inside a transaction (the reads' snapshot), which scopes its planner setting.
    """
    declared = frozenset(parts) & JOINED_PARTS
    if ANCHOR not in declared:
        return []
    # Each join matches every anchor with at most one row per part: hash joins. The planner picks
    # nested loops when its statistics predate a bulk load (estimates of one row per part), which
    # took 11 s instead of tens of milliseconds at 50k events; the setting ends with the transaction.
    await connection.execute("SET LOCAL enable_nestloop = off")
    records = await connection.fetch(_query(declared), period)
    parsed: dict[str, Mapping[str, str]] = {}
    return [_record(row, parsed) for row in records]


def _record(row: Iterable[Any], parsed: dict[str, Mapping[str, str]]) -> Enrolment:
    (
        member,
        cell,
        dims_text,
        withdrawn_before,
        withdrawn_after,
        started,
        attempted_final,
        passed_final,
        completed,
        _,
        certified,
        certified_cell,
        pre,
        _,
        post,
        _,
    ) = row
    enrolment_id, learner, org, enrolled, ends = decode_member(member)
    dimensions = parsed.get(dims_text)
    if dimensions is None:
        dimensions = parsed[dims_text] = json.loads(dims_text)
    # A completion or certificate counts when its winning report's value is positive (0: revoked).
    has_cert = certified is not None and certified > 0
    return Enrolment(
        enrolment_id,
        learner,
        org,
        int(enrolled),
        int(ends) if ends else None,
        cell,
        dimensions,
        withdrawn_before,
        withdrawn_after,
        started or withdrawn_after,
        int(completed) if completed is not None and completed > 0 else None,
        int(certified) if has_cert else None,
        certified_cell if has_cert else None,
        attempted_final,
        passed_final,
        pre,
        post,
    )
