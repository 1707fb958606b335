"""Training (CVF, art. 7) indicator parts: what one CVF event contributes; pure, no I/O.

Enrolment-level indicators (rates, durations) need facts from several events of one enrolment. Each
event stores only what it knows, keyed by enrolment id; the enrolment anchor (``CVF-01/enrolled``)
carries the enrolment's dimensions, learner, firm and cohort dates, and the read model joins the
other parts to it by enrolment id. So late or reordered events land in the enrolment's cohort.
"""

from __future__ import annotations

from decimal import Decimal

from processors.indicators.base import UNKNOWN, ByEventType, Part, distinct_part, latest_part
from processors.indicators.periods import (
    encode_member,
    epoch_seconds,
    first_wins_key,
    last_wins_key,
    order_key,
)
from schemas.events.base import Event
from schemas.events.training import (
    AssessmentKind,
    AssessmentSubmitted,
    CertificateIssued,
    CertificateRevoked,
    EnrolmentCompleted,
    EnrolmentCreated,
    EnrolmentWithdrawn,
    ProgressRecorded,
    TrainingEvent,
)

_REVOKED = Decimal(0)
_POINTS = Decimal(100)


def anchor_member(event: EnrolmentCreated) -> str:
    """The member of ``CVF-01/enrolled``: enrolment id, learner, org, enrolled_at, offering_ends_at.

    Times are epoch seconds; an unknown firm or end date is the empty string.
    """
    ends = "" if event.offering_ends_at is None else str(epoch_seconds(event.offering_ends_at))
    return encode_member(
        event.enrolment_id,
        event.learner_key,
        event.org_key or "",
        str(epoch_seconds(event.enrolled_at)),
        ends,
    )


def _dims(event: TrainingEvent) -> dict[str, str]:
    # Only the enrolment anchor knows course, offering and gender; the other parts join it by enrolment
    # id at read time, so their own cells say UNKNOWN there. (`_value_` is what `.value` returns,
    # without the descriptor call.)
    audience = event.audience
    return {
        "country": event.country or UNKNOWN,
        "audience": UNKNOWN if audience is None else audience._value_,
        "course": UNKNOWN,
        "offering": UNKNOWN,
    }


def _enrolled(event: EnrolmentCreated) -> list[Part]:
    audience, gender = event.audience, event.gender
    dims = {
        "country": event.country or UNKNOWN,
        "audience": UNKNOWN if audience is None else audience._value_,
        "course": event.course_id or UNKNOWN,
        "offering": event.offering_id or UNKNOWN,
        "gender": gender._value_ if gender else UNKNOWN,
    }
    return [distinct_part("CVF-01", "enrolled", event.enrolled_at, dims, anchor_member(event))]


def _withdrawn(event: EnrolmentWithdrawn) -> list[Part]:
    if event.before_start:
        dims = {**_dims(event), "gender": UNKNOWN}
        return [
            distinct_part("CVF-01", "withdrawn_before_start", event.withdrawn_at, dims, event.enrolment_id)
        ]
    return [
        distinct_part("CVF-08", "withdrawn_after_start", event.withdrawn_at, _dims(event), event.enrolment_id)
    ]


def _started(event: ProgressRecorded | AssessmentSubmitted) -> list[Part]:
    return [distinct_part("CVF-08", "started", event.occurred_at, _dims(event), event.enrolment_id)]


def _assessed(event: AssessmentSubmitted) -> list[Part]:
    """Every assessment starts its enrolment; a final one counts for CVF-06, pre and post tests for CVF-12."""
    parts = _started(event)
    at, dims, enrolment = event.occurred_at, parts[0].dimensions, event.enrolment_id
    kind = event.kind
    if kind is AssessmentKind.FINAL and event.passed is not None:
        # An attempt without a pass decision says nothing about the pass rate.
        parts.append(distinct_part("CVF-06", "final_attempted", at, dims, enrolment))
        if event.passed:
            parts.append(distinct_part("CVF-06", "final_passed", at, dims, enrolment))
    elif kind is AssessmentKind.PRE or kind is AssessmentKind.POST:
        points = Decimal(repr(event.score_scaled)) * _POINTS
        tiebreak = event.assessment_id
        if kind is AssessmentKind.PRE:
            # The baseline is the first pre-test attempt; a retake after some learning would hide the gain.
            order = first_wins_key(at, event.attempt_no, tiebreak)
            parts.append(latest_part("CVF-12", "pre_score", at, dims, points, enrolment, order))
        else:
            order = last_wins_key(at, event.attempt_no, tiebreak)
            parts.append(latest_part("CVF-12", "post_score", at, dims, points, enrolment, order))
    return parts


def _completed(event: EnrolmentCompleted) -> list[Part]:
    at = event.completed_at
    return [
        latest_part(
            "CVF-05",
            "completed",
            at,
            _dims(event),
            Decimal(epoch_seconds(at)),
            event.enrolment_id,
            order_key(at),
        )
    ]


def _certified(event: CertificateIssued) -> list[Part]:
    at = event.issued_at
    order = order_key(at, 0, event.certificate_id)
    amount = Decimal(epoch_seconds(at))
    return [latest_part("CVF-07", "certified", at, _dims(event), amount, event.enrolment_id, order)]


def _revoked(event: CertificateRevoked) -> list[Part]:
    # A revocation at the same instant as an issue wins the tie: rank 1 sorts after rank 0.
    order = order_key(event.revoked_at, 1, event.certificate_id)
    return [
        latest_part(
            "CVF-07", "certified", event.revoked_at, _dims(event), _REVOKED, event.enrolment_id, order
        )
    ]


TRAINING = ByEventType(
    [
        (EnrolmentCreated, _enrolled),
        (EnrolmentWithdrawn, _withdrawn),
        (ProgressRecorded, _started),
        (AssessmentSubmitted, _assessed),
        (EnrolmentCompleted, _completed),
        (CertificateIssued, _certified),
        (CertificateRevoked, _revoked),
    ]
)
"""The training contribution function of each event type."""


def training_parts(event: Event) -> list[Part]:
    """The parts one CVF event contributes (an empty list for events no indicator uses)."""
    return TRAINING(event)
