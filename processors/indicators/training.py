"""Training (CVF, art. 7) indicator parts: what one CVF event contributes; pure, no I/O.

Enrolment-level indicators (rates, durations) need facts from several events of one enrolment. Each
event stores only what it knows, keyed by enrolment id; the enrolment anchor (``CVF-01/enrolled``)
carries the enrolment's dimensions, learner, firm and cohort dates, and the read model joins the
other parts to it by enrolment id. So late or reordered events land in the enrolment's cohort.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from processors.indicators.base import Part
from processors.indicators.periods import encode_member, epoch_seconds, order_key
from schemas.events.base import Event
from schemas.events.training import (
    AssessmentSubmitted,
    CertificateIssued,
    CertificateRevoked,
    EnrolmentCompleted,
    EnrolmentCreated,
    EnrolmentWithdrawn,
    ProgressRecorded,
)

UNKNOWN = "UNKNOWN"


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


def _dims(
    event: Event, *, course: str | None = None, offering: str | None = None, gender: str | None = None
) -> Mapping[str, str]:
    # Only the enrolment anchor knows course, offering and gender; the other parts join it by enrolment
    # id at read time, so their own cells say UNKNOWN there.
    return {
        "country": event.country or UNKNOWN,
        "audience": event.audience.value if event.audience is not None else UNKNOWN,
        "course": course or UNKNOWN,
        "offering": offering or UNKNOWN,
        "gender": gender or UNKNOWN,
    }


def _part(
    part: str,
    indicator: str,
    kind: str,
    at: datetime,
    dims: Mapping[str, str],
    member: str,
    amount: Decimal = Decimal(1),
    order: str = "",
) -> Part:
    # Every training part is keyed by an enrolment, so only the kind, time and amount vary.
    if kind == "distinct":
        return Part(indicator, part, "distinct", at, dims, member=member)
    return Part(indicator, part, "latest", at, dims, amount=amount, member=member, order_key=order)


def training_parts(event: Event) -> list[Part]:
    """The parts one CVF event contributes (an empty list for events no indicator uses)."""
    if isinstance(event, EnrolmentCreated):
        gender = event.gender.value if event.gender else None
        dims = _dims(event, course=event.course_id, offering=event.offering_id, gender=gender)
        return [_part("enrolled", "CVF-01", "distinct", event.enrolled_at, dims, anchor_member(event))]
    if isinstance(event, EnrolmentWithdrawn):
        if event.before_start:
            return [
                _part(
                    "withdrawn_before_start",
                    "CVF-01",
                    "distinct",
                    event.withdrawn_at,
                    _dims(event),
                    event.enrolment_id,
                )
            ]
        dims = {key: value for key, value in _dims(event).items() if key != "gender"}
        return [
            _part("withdrawn_after_start", "CVF-08", "distinct", event.withdrawn_at, dims, event.enrolment_id)
        ]
    if isinstance(event, ProgressRecorded | AssessmentSubmitted):
        dims = {key: value for key, value in _dims(event).items() if key != "gender"}
        return [_part("started", "CVF-08", "distinct", event.occurred_at, dims, event.enrolment_id)]
    if isinstance(event, EnrolmentCompleted):
        dims = {key: value for key, value in _dims(event).items() if key != "gender"}
        at = event.completed_at
        return [
            _part(
                "completed",
                "CVF-05",
                "latest",
                at,
                dims,
                event.enrolment_id,
                Decimal(epoch_seconds(at)),
                order_key(at),
            )
        ]
    if isinstance(event, CertificateIssued):
        dims = {key: value for key, value in _dims(event).items() if key != "gender"}
        at = event.issued_at
        order = order_key(at, 0, event.certificate_id)
        return [
            _part(
                "certified",
                "CVF-07",
                "latest",
                at,
                dims,
                event.enrolment_id,
                Decimal(epoch_seconds(at)),
                order,
            )
        ]
    if isinstance(event, CertificateRevoked):
        dims = {key: value for key, value in _dims(event).items() if key != "gender"}
        # A revocation at the same instant as an issue wins the tie: rank 1 sorts after rank 0.
        order = order_key(event.revoked_at, 1, event.certificate_id)
        return [
            _part(
                "certified", "CVF-07", "latest", event.revoked_at, dims, event.enrolment_id, Decimal(0), order
            )
        ]
    return []
