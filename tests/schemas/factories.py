"""Factories of valid events of every type, with sensible defaults; keyword overrides change any field.

    from tests.schemas.factories import make_enrolment_created, person_key
    event = make_enrolment_created(subject_key=person_key("ana"), enrolment_id="e-7")

`event_id` is derived from `source` and `record_identity` (default: `"<source_ref>:<event_type>"`),
as connectors do; pass `event_id=` to set it directly. `subject_key` of PLGN and finance events
follows the field it must equal (`org_key`, `from_org_key`, `org_a_key`, ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from schemas.events.base import Audience, Event, Money
from schemas.events.finance import ActivityType, CostCategory, CostRecorded, FinanceEventRetracted
from schemas.events.plgn import (
    Additionality,
    ContactRequested,
    ContactResponded,
    DealReported,
    DirectoryAuthorisationGranted,
    DirectoryAuthorisationWithdrawn,
    ExporterStatus,
    Horizon,
    MeetingCancelled,
    MeetingHeld,
    MeetingModality,
    MeetingNoShow,
    MeetingOutcomeReported,
    MeetingScheduled,
    OpportunityKind,
    OpportunityPublished,
    OrganisationRegistered,
    OrganisationUpdated,
    OrgType,
    PlgnEventRetracted,
    RoundRegistered,
    RoundRole,
    SizeBand,
    Wave,
)
from schemas.events.training import (
    AssessmentKind,
    AssessmentSubmitted,
    CertificateIssued,
    CertificateRevoked,
    EnrolmentCompleted,
    EnrolmentCreated,
    EnrolmentWithdrawn,
    Gender,
    LearnerRegistered,
    Modality,
    ProgressRecorded,
    TrainingEventRetracted,
)
from schemas.registry import event_type_of

E = TypeVar("E", bound=Event)

BASE_TIME = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
"""Default event time of every factory."""


def person_key(name: str = "learner-1") -> str:
    """A valid, stable learner pseudonym for `name` (tests only: not keyed)."""
    return "p-" + hashlib.sha256(name.encode()).hexdigest()[:32]


def org_key(name: str = "firm-1") -> str:
    """A valid, stable organisation pseudonym for `name` (tests only: not keyed)."""
    return "o-" + hashlib.sha256(name.encode()).hexdigest()[:32]


def money(amount: str | int | Decimal = "1000.00", currency: str = "USD", usd_amount: Any = None) -> Money:
    """A Money value; `usd_amount` defaults to `amount` (i.e. a rate of 1)."""
    return Money(amount=amount, currency=currency, usd_amount=amount if usd_amount is None else usd_amount)


def build(cls: type[E], defaults: dict[str, Any], overrides: dict[str, Any]) -> E:
    """Build `cls` from `defaults` updated with `overrides`, deriving `event_id` like a connector."""
    fields = {"occurred_at": BASE_TIME, **defaults, **overrides}
    source = fields.pop("source")
    identity = fields.pop("record_identity", None) or f"{fields['source_ref']}:{event_type_of(cls)}"
    if "event_id" in fields:
        return cls(source=source, **fields)
    return cls.create(source=source, record_identity=identity, **fields)


def _learner(**extra: Any) -> dict[str, Any]:
    return {
        "source": "cvf-test",
        "subject_key": person_key(),
        "country": "UY",
        "audience": Audience.MSME,
        **extra,
    }


def make_learner_registered(**overrides: Any) -> LearnerRegistered:
    defaults = _learner(source_ref="user-1", org_key=org_key(), gender=Gender.F)
    return build(LearnerRegistered, defaults, overrides)


def make_enrolment_created(**overrides: Any) -> EnrolmentCreated:
    defaults = _learner(
        source_ref="enrol-1",
        org_key=org_key(),
        gender=Gender.F,
        enrolment_id="enrol-1",
        offering_id="offering-1",
        course_id="course-1",
        enrolled_at=BASE_TIME,
        channel="self",
        modality=Modality.TUTORED,
        offering_starts_at=BASE_TIME + timedelta(days=7),
        offering_ends_at=BASE_TIME + timedelta(days=49),
    )
    return build(EnrolmentCreated, defaults, overrides)


def make_enrolment_withdrawn(**overrides: Any) -> EnrolmentWithdrawn:
    defaults = _learner(
        source_ref="enrol-1", enrolment_id="enrol-1", withdrawn_at=BASE_TIME, before_start=True
    )
    return build(EnrolmentWithdrawn, defaults, overrides)


def make_progress_recorded(**overrides: Any) -> ProgressRecorded:
    defaults = _learner(
        source_ref="progress-1",
        enrolment_id="enrol-1",
        module_id="module-1",
        progress_pct=50.0,
        time_spent_s=1800,
    )
    return build(ProgressRecorded, defaults, overrides)


def make_assessment_submitted(**overrides: Any) -> AssessmentSubmitted:
    defaults = _learner(
        source_ref="attempt-1",
        enrolment_id="enrol-1",
        assessment_id="quiz-final",
        kind=AssessmentKind.FINAL,
        score_scaled=0.8,
        passed=True,
        attempt_no=1,
    )
    return build(AssessmentSubmitted, defaults, overrides)


def make_enrolment_completed(**overrides: Any) -> EnrolmentCompleted:
    defaults = _learner(
        source_ref="completion-1",
        enrolment_id="enrol-1",
        completed_at=BASE_TIME,
        final_score_scaled=0.8,
        passed=True,
    )
    return build(EnrolmentCompleted, defaults, overrides)


def make_certificate_issued(**overrides: Any) -> CertificateIssued:
    defaults = _learner(
        source_ref="cert-1",
        certificate_id="cert-1",
        enrolment_id="enrol-1",
        issued_at=BASE_TIME,
        hours=30.0,
        verify_hash="0123456789abcdef",
    )
    return build(CertificateIssued, defaults, overrides)


def make_certificate_revoked(**overrides: Any) -> CertificateRevoked:
    defaults = _learner(
        source_ref="cert-1-revoked",
        certificate_id="cert-1",
        enrolment_id="enrol-1",
        revoked_at=BASE_TIME,
        reason_code="ISSUED_IN_ERROR",
    )
    return build(CertificateRevoked, defaults, overrides)


def make_training_event_retracted(**overrides: Any) -> TrainingEventRetracted:
    retracted = make_enrolment_created()
    defaults = {
        "source": retracted.source,
        "source_ref": "enrol-1-deleted",
        "subject_key": retracted.subject_key,
        "retracted_event_id": retracted.event_id,
        "reason": "deleted at source",
    }
    return build(TrainingEventRetracted, defaults, overrides)


def _firm(**extra: Any) -> dict[str, Any]:
    return {"source": "plgn-test", "country": "AR", **extra}


def make_organisation_registered(**overrides: Any) -> OrganisationRegistered:
    defaults = _firm(
        source_ref="org-1",
        org_key=org_key(),
        org_type=OrgType.FIRM,
        size_band=SizeBand.SMALL,
        hs_chapters=["08"],
        isic_rev4="01",
        exporter_status=ExporterStatus.OCCASIONAL,
        women_led=True,
        registered_at=BASE_TIME,
    )
    return build(OrganisationRegistered, defaults, overrides)


def make_organisation_updated(**overrides: Any) -> OrganisationUpdated:
    defaults = _firm(
        source_ref="org-1-update-1",
        org_key=org_key(),
        completeness_pct=85.0,
        changed_field_names=["hsChapters"],
    )
    return build(OrganisationUpdated, defaults, overrides)


def make_directory_authorisation_granted(**overrides: Any) -> DirectoryAuthorisationGranted:
    defaults = _firm(
        source_ref="consent-1",
        consent_id="consent-1",
        org_key=org_key(),
        recipients=["BR", "UY"],
        fields=["country", "sizeBand"],
        notice_version="2026-01",
    )
    return build(DirectoryAuthorisationGranted, defaults, overrides)


def make_directory_authorisation_withdrawn(**overrides: Any) -> DirectoryAuthorisationWithdrawn:
    defaults = _firm(source_ref="consent-1-withdrawn", consent_id="consent-1", org_key=org_key())
    return build(DirectoryAuthorisationWithdrawn, defaults, overrides)


def make_opportunity_published(**overrides: Any) -> OpportunityPublished:
    defaults = _firm(
        source_ref="opp-1",
        opp_id="opp-1",
        org_key=org_key(),
        kind=OpportunityKind.OFFER,
        hs_code="0806",
        target_countries=["BR"],
        expires_at=BASE_TIME + timedelta(days=60),
    )
    return build(OpportunityPublished, defaults, overrides)


def make_contact_requested(**overrides: Any) -> ContactRequested:
    defaults = _firm(
        source_ref="request-1",
        request_id="request-1",
        from_org_key=org_key("firm-2"),
        to_org_key=org_key(),
        opp_id="opp-1",
    )
    return build(ContactRequested, defaults, overrides)


def make_contact_responded(**overrides: Any) -> ContactResponded:
    defaults = _firm(
        source_ref="request-1-answer",
        request_id="request-1",
        from_org_key=org_key("firm-2"),
        to_org_key=org_key(),
        opp_id="opp-1",
        responded_at=BASE_TIME,
    )
    return build(ContactResponded, defaults, overrides)


def make_round_registered(**overrides: Any) -> RoundRegistered:
    defaults = _firm(
        source_ref="round-1-org-1",
        activity_id="round-1",
        org_key=org_key(),
        role=RoundRole.SELLER,
        interests=["0806"],
    )
    return build(RoundRegistered, defaults, overrides)


def _meeting(**extra: Any) -> dict[str, Any]:
    return _firm(
        meeting_id="meeting-1",
        activity_id="round-1",
        org_a_key=org_key(),
        org_b_key=org_key("firm-2"),
        slot_at=BASE_TIME,
        modality=MeetingModality.IN_PERSON,
        **extra,
    )


def make_meeting_scheduled(**overrides: Any) -> MeetingScheduled:
    return build(MeetingScheduled, _meeting(source_ref="meeting-1-scheduled"), overrides)


def make_meeting_held(**overrides: Any) -> MeetingHeld:
    return build(MeetingHeld, _meeting(source_ref="meeting-1-held"), overrides)


def make_meeting_no_show(**overrides: Any) -> MeetingNoShow:
    defaults = _meeting(source_ref="meeting-1-no-show", absent_org_key=org_key("firm-2"))
    return build(MeetingNoShow, defaults, overrides)


def make_meeting_cancelled(**overrides: Any) -> MeetingCancelled:
    return build(MeetingCancelled, _meeting(source_ref="meeting-1-cancelled"), overrides)


def make_meeting_outcome_reported(**overrides: Any) -> MeetingOutcomeReported:
    defaults = _firm(
        source_ref="meeting-1-outcome-org-1",
        meeting_id="meeting-1",
        activity_id="round-1",
        reporter_org_key=org_key(),
        interest_level=4,
        expected_value=money("250000.00", "BRL", "45000.00"),
        horizon=Horizon.M6,
        hs_code="0806",
    )
    return build(MeetingOutcomeReported, defaults, overrides)


def make_deal_reported(**overrides: Any) -> DealReported:
    defaults = _firm(
        source_ref="deal-1-M6",
        deal_id="deal-1",
        meeting_id="meeting-1",
        activity_id="round-1",
        org_key=org_key(),
        reporter_role=RoundRole.SELLER,
        counterpart_org_key=org_key("firm-2"),
        counterpart_country="BR",
        hs_code="0806",
        wave=Wave.M6,
        realised_value_cumulative=money("30000.00"),
        attribution_pct=70.0,
        confidence_pct=80.0,
        additionality=Additionality.PARTIAL_SCALE,
    )
    return build(DealReported, defaults, overrides)


def make_plgn_event_retracted(**overrides: Any) -> PlgnEventRetracted:
    retracted = make_deal_reported()
    defaults = {
        "source": retracted.source,
        "source_ref": "deal-1-M6-deleted",
        "subject_key": retracted.subject_key,
        "retracted_event_id": retracted.event_id,
        "reason": "deleted at source",
    }
    return build(PlgnEventRetracted, defaults, overrides)


def make_cost_recorded(**overrides: Any) -> CostRecorded:
    defaults = {
        "source": "finance-test",
        "source_ref": "cost-1",
        "cost_id": "cost-1",
        "activity_id": "round-1",
        "activity_type": ActivityType.BUSINESS_ROUND,
        "category": CostCategory.VENUE,
        "money": money("12000.50"),
    }
    return build(CostRecorded, defaults, overrides)


def make_finance_event_retracted(**overrides: Any) -> FinanceEventRetracted:
    retracted = make_cost_recorded()
    defaults = {
        "source": retracted.source,
        "source_ref": "cost-1-deleted",
        "subject_key": retracted.subject_key,
        "retracted_event_id": retracted.event_id,
        "reason": "entered twice",
    }
    return build(FinanceEventRetracted, defaults, overrides)


FACTORIES: dict[str, Callable[..., Event]] = {
    "cvf.learner.registered": make_learner_registered,
    "cvf.enrolment.created": make_enrolment_created,
    "cvf.enrolment.withdrawn": make_enrolment_withdrawn,
    "cvf.progress.recorded": make_progress_recorded,
    "cvf.assessment.submitted": make_assessment_submitted,
    "cvf.enrolment.completed": make_enrolment_completed,
    "cvf.certificate.issued": make_certificate_issued,
    "cvf.certificate.revoked": make_certificate_revoked,
    "cvf.event.retracted": make_training_event_retracted,
    "plgn.org.registered": make_organisation_registered,
    "plgn.org.profile_updated": make_organisation_updated,
    "plgn.directory_authorisation.granted": make_directory_authorisation_granted,
    "plgn.directory_authorisation.withdrawn": make_directory_authorisation_withdrawn,
    "plgn.opportunity.published": make_opportunity_published,
    "plgn.contact.requested": make_contact_requested,
    "plgn.contact.responded": make_contact_responded,
    "plgn.round.registered": make_round_registered,
    "plgn.meeting.scheduled": make_meeting_scheduled,
    "plgn.meeting.held": make_meeting_held,
    "plgn.meeting.no_show": make_meeting_no_show,
    "plgn.meeting.cancelled": make_meeting_cancelled,
    "plgn.meeting.outcome_reported": make_meeting_outcome_reported,
    "plgn.deal.reported": make_deal_reported,
    "plgn.event.retracted": make_plgn_event_retracted,
    "finance.cost.recorded": make_cost_recorded,
    "finance.event.retracted": make_finance_event_retracted,
}
"""Factory of every event type, by `event_type`."""


def make_event(event_type: str, **overrides: Any) -> Event:
    """A valid event of `event_type` (see FACTORIES).

    Raises:
        KeyError: when the event type has no factory.
    """
    return FACTORIES[event_type](**overrides)
