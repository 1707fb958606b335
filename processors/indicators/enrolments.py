"""The enrolment records the training indicators read, joined from their stored parts; pure.

Each enrolment's anchor row (``CVF-01/enrolled``) gives its period, dimensions, learner, firm and
cohort dates; withdrawal, start, completion and certificate parts join it by enrolment id. An
enrolment's cohort is closed once ``offering_ends_at + cohort_grace_days`` is past the read's as-of
instant; an enrolment without a known offering end stays in progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from processors.indicators.grouping import ReadContext, RowIndex, StoredRow, latest_per_member
from processors.indicators.periods import decode_member, epoch_seconds


class Enrolment(NamedTuple):
    """One enrolment as the read model sees it, joined from its stored parts.

    A named tuple rather than a frozen dataclass: a read builds one per enrolment, and tuples are
    built several times faster.
    """

    enrolment_id: str
    learner: str
    org: str
    enrolled_s: int
    ends_s: int | None
    period_start: date
    dimensions: Mapping[str, str]
    withdrawn_before: bool
    withdrawn_after: bool
    started: bool
    completed_s: int | None
    certified_s: int | None
    certified_period: date | None
    attempted_final: bool = False
    passed_final: bool = False
    pre_score: Decimal | None = None
    post_score: Decimal | None = None

    @property
    def net(self) -> bool:
        """Not withdrawn before the offering started."""
        return not self.withdrawn_before


def _members(index: RowIndex, indicator: str, part: str) -> set[str]:
    return {row.member for row in index.get((indicator, part), ()) if row.member is not None}


def enrolments(index: RowIndex) -> list[Enrolment]:
    """The enrolment records of `index`, joined once per index (see `RowIndex.joined`)."""
    return index.joined(join_enrolments)


def join_enrolments(index: RowIndex) -> list[Enrolment]:
    """Join the stored training parts into enrolment records (one per anchored enrolment id)."""
    anchors: dict[str, tuple[str, StoredRow]] = {}
    for row in index.get(("CVF-01", "enrolled"), ()):
        if row.member is None:
            continue
        enrolment_id = decode_member(row.member)[0]
        # An enrolment re-published with other attributes has two anchors: keep one, deterministically.
        current = anchors.get(enrolment_id)
        if current is None or (row.member, row.period_start) > (current[0], current[1].period_start):
            anchors[enrolment_id] = (row.member, row)
    withdrawn_before = _members(index, "CVF-01", "withdrawn_before_start")
    withdrawn_after = _members(index, "CVF-08", "withdrawn_after_start")
    started = _members(index, "CVF-08", "started")
    completed = latest_per_member(index.get(("CVF-05", "completed"), ()))
    certified = latest_per_member(index.get(("CVF-07", "certified"), ()))
    attempted_final = _members(index, "CVF-06", "final_attempted")
    passed_final = _members(index, "CVF-06", "final_passed")
    pre_scores = latest_per_member(index.get(("CVF-12", "pre_score"), ()))
    post_scores = latest_per_member(index.get(("CVF-12", "post_score"), ()))
    records = []
    for enrolment_id, (member, row) in anchors.items():
        _, learner, org, enrolled, ends = decode_member(member)
        done = completed.get(enrolment_id)
        cert = certified.get(enrolment_id)
        has_cert = cert is not None and cert.value > 0
        pre, post = pre_scores.get(enrolment_id), post_scores.get(enrolment_id)
        records.append(
            Enrolment(
                enrolment_id=enrolment_id,
                learner=learner,
                org=org,
                enrolled_s=int(enrolled),
                ends_s=int(ends) if ends else None,
                period_start=row.period_start,
                dimensions=row.dimensions,
                withdrawn_before=enrolment_id in withdrawn_before,
                withdrawn_after=enrolment_id in withdrawn_after,
                started=enrolment_id in started or enrolment_id in withdrawn_after,
                completed_s=int(done.value) if done is not None and done.value > 0 else None,
                certified_s=int(cert.value) if cert is not None and has_cert else None,
                certified_period=cert.period_start if cert is not None and has_cert else None,
                attempted_final=enrolment_id in attempted_final,
                passed_final=enrolment_id in passed_final,
                pre_score=None if pre is None else pre.value,
                post_score=None if post is None else post.value,
            )
        )
    return records


def is_closed(record: Enrolment, ctx: ReadContext) -> bool:
    """Whether the enrolment's cohort closed (offering end + grace) by the read's as-of instant."""
    if record.ends_s is None:
        return False
    return record.ends_s <= closing_cutoff_s(ctx)


def closing_cutoff_s(ctx: ReadContext) -> int:
    """The latest offering end (epoch seconds) whose cohort is closed at the read's as-of instant."""
    return epoch_seconds(ctx.as_of) - ctx.cohort_grace_days * 86_400
