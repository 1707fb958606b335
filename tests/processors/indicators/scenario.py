"""A small hand-written history whose indicator values are worked out by hand in the tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas.events.base import Audience, Event, Money
from schemas.events.finance import ActivityType, CostCategory, CostRecorded
from schemas.events.plgn import (
    Additionality,
    DealReported,
    MeetingHeld,
    MeetingScheduled,
    OrganisationRegistered,
    OrgType,
    RoundRole,
    Wave,
)
from schemas.events.training import (
    CertificateIssued,
    EnrolmentCompleted,
    EnrolmentCreated,
    EnrolmentWithdrawn,
    ProgressRecorded,
)

from .world import World, org, person


def at(month: int, day: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


def _make(cls: type[Any], identity: str, **fields: Any) -> Any:
    return cls.create(source="scenario", record_identity=identity, source_ref=identity, **fields)


def _usd(amount: int) -> Money:
    return Money(amount=Decimal(amount), currency="USD", usd_amount=Decimal(amount))


def history() -> World:
    """Four enrolments of three learners, two firms on PLGN, one business round with costs and a deal."""
    l1 = {"subject_key": person(1), "country": "AR", "audience": Audience.MSME}
    l2 = {"subject_key": person(2), "country": "BR", "audience": Audience.MSME}
    l3 = {"subject_key": person(3), "country": "UY", "audience": Audience.TPO_AUTHORITY}
    off_a = {"offering_id": "off-a", "course_id": "course-1", "offering_ends_at": at(3, 2)}
    off_b = {"offering_id": "off-b", "course_id": "course-2", "offering_ends_at": at(7, 20)}
    events: list[Event] = [
        _make(
            EnrolmentCreated,
            "e1",
            occurred_at=at(1, 5),
            enrolment_id="e1",
            enrolled_at=at(1, 5),
            org_key=org(1),
            **off_a,
            **l1,
        ),
        _make(
            ProgressRecorded,
            "e1p",
            occurred_at=at(1, 6),
            enrolment_id="e1",
            module_id="m1",
            progress_pct=10.0,
            subject_key=person(1),
        ),
        _make(
            EnrolmentCompleted,
            "e1c",
            occurred_at=at(1, 25),
            enrolment_id="e1",
            completed_at=at(1, 25),
            passed=True,
            subject_key=person(1),
        ),
        _make(
            CertificateIssued,
            "e1z",
            occurred_at=at(2, 1),
            enrolment_id="e1",
            certificate_id="c1",
            issued_at=at(2, 1),
            **l1,
        ),
        _make(
            EnrolmentCreated,
            "e2",
            occurred_at=at(1, 10),
            enrolment_id="e2",
            enrolled_at=at(1, 10),
            org_key=org(2),
            **off_a,
            **l2,
        ),
        _make(
            ProgressRecorded,
            "e2p",
            occurred_at=at(1, 11),
            enrolment_id="e2",
            module_id="m1",
            progress_pct=10.0,
            subject_key=person(2),
        ),
        _make(
            EnrolmentCompleted,
            "e2c",
            occurred_at=at(2, 9),
            enrolment_id="e2",
            completed_at=at(2, 9),
            passed=True,
            subject_key=person(2),
        ),
        _make(
            CertificateIssued,
            "e2z",
            occurred_at=at(2, 10),
            enrolment_id="e2",
            certificate_id="c2",
            issued_at=at(2, 10),
            **l2,
        ),
        _make(
            EnrolmentCreated,
            "e3",
            occurred_at=at(1, 12),
            enrolment_id="e3",
            enrolled_at=at(1, 12),
            **off_a,
            **l3,
        ),
        _make(
            EnrolmentWithdrawn,
            "e3w",
            occurred_at=at(1, 13),
            enrolment_id="e3",
            withdrawn_at=at(1, 13),
            before_start=True,
            subject_key=person(3),
        ),
        _make(
            EnrolmentCreated,
            "e4",
            occurred_at=at(1, 20),
            enrolment_id="e4",
            enrolled_at=at(1, 20),
            org_key=org(1),
            **off_b,
            **l1,
        ),
        _make(
            ProgressRecorded,
            "e4p",
            occurred_at=at(1, 21),
            enrolment_id="e4",
            module_id="m1",
            progress_pct=10.0,
            subject_key=person(1),
        ),
        # Firm 1 registers 19 days after its learner's certificate; firm 2 registered long before.
        _make(
            OrganisationRegistered,
            "o1",
            occurred_at=at(2, 20),
            org_key=org(1),
            org_type=OrgType.FIRM,
            registered_at=at(2, 20),
            country="AR",
        ),
        _make(
            OrganisationRegistered,
            "o2",
            occurred_at=at(6, 1, 2025),
            org_key=org(2),
            org_type=OrgType.FIRM,
            registered_at=at(6, 1, 2025),
            country="BR",
        ),
        _make(
            MeetingScheduled,
            "m1s",
            occurred_at=at(3, 1),
            meeting_id="m1",
            activity_id="round-1",
            org_a_key=org(1),
            org_b_key=org(2),
            slot_at=at(3, 10),
        ),
        _make(
            MeetingHeld,
            "m1h",
            occurred_at=at(3, 10),
            meeting_id="m1",
            activity_id="round-1",
            org_a_key=org(1),
            org_b_key=org(2),
            slot_at=at(3, 10),
        ),
        _make(
            CostRecorded,
            "k1",
            occurred_at=at(3, 1),
            cost_id="k1",
            activity_id="round-1",
            activity_type=ActivityType.BUSINESS_ROUND,
            category=CostCategory.VENUE,
            money=_usd(1000),
        ),
        # The importer reports more at a later wave, but the exporter's report counts (rule 1).
        _make(
            DealReported,
            "d1-seller",
            occurred_at=at(6, 10),
            deal_id="d1",
            activity_id="round-1",
            org_key=org(1),
            reporter_role=RoundRole.SELLER,
            counterpart_country="BR",
            country="AR",
            wave=Wave.M3,
            realised_value_cumulative=_usd(4000),
            attribution_pct=50.0,
            confidence_pct=80.0,
            additionality=Additionality.FULL,
        ),
        _make(
            DealReported,
            "d1-buyer",
            occurred_at=at(9, 10),
            deal_id="d1",
            activity_id="round-1",
            org_key=org(2),
            reporter_role=RoundRole.BUYER,
            counterpart_country="AR",
            country="BR",
            wave=Wave.M6,
            realised_value_cumulative=_usd(9000),
            attribution_pct=100.0,
            confidence_pct=100.0,
            additionality=Additionality.FULL,
        ),
    ]
    return World(events=events, stream=list(reversed(events)))
