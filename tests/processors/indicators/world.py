"""Random but realistic event histories for the indicator property tests (a hypothesis strategy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from schemas.events.base import Audience, Event, Money
from schemas.events.finance import ActivityType, CostCategory, CostRecorded, FinanceEventRetracted, Payer
from schemas.events.plgn import (
    Additionality,
    ContactRequested,
    ContactResponded,
    DealReported,
    DirectoryAuthorisationGranted,
    DirectoryAuthorisationWithdrawn,
    Horizon,
    MeetingHeld,
    MeetingModality,
    MeetingNoShow,
    MeetingOutcomeReported,
    MeetingScheduled,
    OpportunityKind,
    OpportunityPublished,
    OrganisationRegistered,
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
    ProgressRecorded,
    TrainingEventRetracted,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
COUNTRIES = ("AR", "BR", "UY", "SV")
AUDIENCES = (Audience.MSME, Audience.TPO_AUTHORITY, Audience.OTHER)
OFFERINGS = {  # offering -> (course, ends_at): one closed early, one late, one unknown end
    "off-a": ("course-1", T0 + timedelta(days=60)),
    "off-b": ("course-2", T0 + timedelta(days=200)),
    "off-c": ("course-1", None),
}
ACTIVITIES = ("round-1", "round-2")


def person(n: int) -> str:
    return f"p-{n:032x}"


def org(n: int) -> str:
    return f"o-{n + 1:032x}"


def usd(amount: int) -> Money:
    return Money(amount=Decimal(amount), currency="USD", usd_amount=Decimal(amount))


@dataclass
class World:
    """A history: the distinct events, the retractions, and the order the processor receives them in."""

    events: list[Event] = field(default_factory=list)
    retractions: list[Event] = field(default_factory=list)
    stream: list[Event] = field(default_factory=list)

    @property
    def retracted_ids(self) -> set[Any]:
        return {getattr(event, "retracted_event_id") for event in self.retractions}  # noqa: B009

    @property
    def live(self) -> list[Event]:
        """The distinct, non-retracted events: what every indicator must reflect."""
        gone = self.retracted_ids
        return [event for event in self.events if event.event_id not in gone]


def _create(cls: type[Any], *, source: str, record_identity: str, **fields: Any) -> Any:
    return cls.create(source=source, record_identity=record_identity, source_ref=record_identity, **fields)


def _at(days: float) -> datetime:
    return T0 + timedelta(days=days)


@st.composite
def enrolment_history(draw: st.DrawFn, n: int) -> list[Event]:
    learner = draw(st.integers(0, 3))
    offering = draw(st.sampled_from(sorted(OFFERINGS)))
    course, ends = OFFERINGS[offering]
    env: dict[str, Any] = {
        "subject_key": person(learner),
        "country": COUNTRIES[learner % 3],
        "audience": AUDIENCES[learner % 3],
    }
    enrolment = f"enr-{n}"
    enrolled = _at(draw(st.integers(0, 150)) + 0.5)
    org_key = org(learner % 3) if learner != 3 else None
    gender = draw(st.sampled_from([Gender.F, Gender.M, None]))
    src = {"source": "cvf-test"}
    events: list[Event] = [
        _create(
            EnrolmentCreated,
            **src,
            record_identity=f"{enrolment}:created",
            occurred_at=enrolled,
            enrolment_id=enrolment,
            offering_id=offering,
            course_id=course,
            enrolled_at=enrolled,
            offering_ends_at=ends,
            org_key=org_key,
            gender=gender,
            **env,
        )
    ]
    fate = draw(st.sampled_from(["before", "after", "progress", "complete", "certify", "revoke", "none"]))
    if fate == "before":
        at = enrolled + timedelta(days=1)
        events.append(
            _create(
                EnrolmentWithdrawn,
                **src,
                record_identity=f"{enrolment}:w",
                occurred_at=at,
                enrolment_id=enrolment,
                withdrawn_at=at,
                before_start=True,
                subject_key=env["subject_key"],
            )
        )
        return events
    started = enrolled + timedelta(days=draw(st.integers(0, 20)), hours=3)
    events.append(
        draw(
            st.sampled_from(
                [
                    _create(
                        ProgressRecorded,
                        **src,
                        record_identity=f"{enrolment}:p",
                        occurred_at=started,
                        enrolment_id=enrolment,
                        module_id="m1",
                        progress_pct=20.0,
                        subject_key=env["subject_key"],
                    ),
                    _create(
                        AssessmentSubmitted,
                        **src,
                        record_identity=f"{enrolment}:a",
                        occurred_at=started,
                        enrolment_id=enrolment,
                        assessment_id="q1",
                        kind=AssessmentKind.QUIZ,
                        score_scaled=0.5,
                        subject_key=env["subject_key"],
                    ),
                ]
            )
        )
    )
    # Pre-tests, post-tests and finals, some retaken; attempts fall at distinct instants.
    attempts = draw(
        st.lists(
            st.tuples(
                st.sampled_from([AssessmentKind.PRE, AssessmentKind.POST, AssessmentKind.FINAL]),
                st.integers(0, 100),
                st.sampled_from([True, False, None]),
                st.integers(0, 60),
            ),
            max_size=3,
        )
    )
    for number, (kind, score, passed, day) in enumerate(attempts):
        at = started + timedelta(days=day, minutes=number)
        events.append(
            _create(
                AssessmentSubmitted,
                **src,
                record_identity=f"{enrolment}:t{number}",
                occurred_at=at,
                enrolment_id=enrolment,
                assessment_id=f"{kind.value.lower()}-test",
                kind=kind,
                score_scaled=score / 100,
                passed=passed,
                attempt_no=number + 1,
                subject_key=env["subject_key"],
            )
        )
    if fate == "after":
        at = started + timedelta(days=2)
        events.append(
            _create(
                EnrolmentWithdrawn,
                **src,
                record_identity=f"{enrolment}:w",
                occurred_at=at,
                enrolment_id=enrolment,
                withdrawn_at=at,
                before_start=False,
                subject_key=env["subject_key"],
                country=env["country"],
            )
        )
        return events
    if fate in ("progress", "none"):
        return events
    done = started + timedelta(days=draw(st.integers(1, 90)), minutes=draw(st.integers(0, 600)))
    events.append(
        _create(
            EnrolmentCompleted,
            **src,
            record_identity=f"{enrolment}:c",
            occurred_at=done,
            enrolment_id=enrolment,
            completed_at=done,
            passed=True,
            subject_key=env["subject_key"],
        )
    )
    if fate == "complete":
        return events
    issued = done + timedelta(days=draw(st.integers(0, 10)))
    events.append(
        _create(
            CertificateIssued,
            **src,
            record_identity=f"{enrolment}:cert",
            occurred_at=issued,
            enrolment_id=enrolment,
            certificate_id=f"cert-{n}",
            issued_at=issued,
            subject_key=env["subject_key"],
            **{k: v for k, v in env.items() if k != "subject_key"},
        )
    )
    if fate == "revoke":
        revoked = issued + timedelta(days=draw(st.integers(0, 40)))
        events.append(
            _create(
                CertificateRevoked,
                **src,
                record_identity=f"{enrolment}:rev",
                occurred_at=revoked,
                enrolment_id=enrolment,
                certificate_id=f"cert-{n}",
                revoked_at=revoked,
                subject_key=env["subject_key"],
            )
        )
    return events


@st.composite
def plgn_history(draw: st.DrawFn) -> list[Event]:
    src = {"source": "plgn-test"}
    events: list[Event] = []
    for n in draw(st.sets(st.integers(0, 3), max_size=4)):
        at = _at(draw(st.integers(0, 300)))
        events.append(
            _create(
                OrganisationRegistered,
                **src,
                record_identity=f"reg-{n}",
                occurred_at=at,
                org_key=org(n),
                org_type=OrgType.FIRM,
                size_band=draw(st.sampled_from([SizeBand.MICRO, SizeBand.SMALL])),
                registered_at=at,
                country=COUNTRIES[n % 3],
                women_led=draw(st.sampled_from([True, False, None])),
            )
        )
    for n in range(draw(st.integers(0, 3))):
        who = draw(st.integers(0, 3))
        at = _at(draw(st.integers(0, 300)) + 0.25)
        events.append(
            draw(
                st.sampled_from(
                    [
                        _create(
                            OpportunityPublished,
                            **src,
                            record_identity=f"opp-{n}",
                            occurred_at=at,
                            opp_id=f"opp-{n}",
                            org_key=org(who),
                            kind=OpportunityKind.OFFER,
                            hs_code="0901",
                            country=COUNTRIES[who % 3],
                        ),
                        _create(
                            RoundRegistered,
                            **src,
                            record_identity=f"rr-{n}",
                            occurred_at=at,
                            activity_id=ACTIVITIES[n % 2],
                            org_key=org(who),
                            role=RoundRole.SELLER,
                            country=COUNTRIES[who % 3],
                        ),
                    ]
                )
            )
        )
    for n in range(draw(st.integers(0, 3))):
        a, b = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        at = _at(draw(st.integers(0, 300)) + 0.1)
        events.append(
            _create(
                ContactRequested,
                **src,
                record_identity=f"cr-{n}",
                occurred_at=at,
                request_id=f"req-{n}",
                from_org_key=org(a),
                to_org_key=org(b),
                country=COUNTRIES[a % 3],
            )
        )
        if draw(st.booleans()):
            answered = at + timedelta(hours=draw(st.integers(1, 400)))
            events.append(
                _create(
                    ContactResponded,
                    **src,
                    record_identity=f"cresp-{n}",
                    occurred_at=answered,
                    request_id=f"req-{n}",
                    from_org_key=org(a),
                    to_org_key=org(b),
                    responded_at=answered,
                )
            )
    for n in range(draw(st.integers(0, 4))):
        activity = ACTIVITIES[draw(st.integers(0, 1))]
        a, b = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        slot = _at(draw(st.integers(0, 200)) + 0.4)
        meeting: dict[str, Any] = {
            "meeting_id": f"mt-{n}",
            "activity_id": activity,
            "org_a_key": org(a),
            "org_b_key": org(b),
            "slot_at": slot,
            "modality": draw(st.sampled_from([MeetingModality.VIRTUAL, None])),
        }
        events.append(
            _create(
                MeetingScheduled,
                **src,
                record_identity=f"mt-{n}:s",
                occurred_at=slot - timedelta(days=3),
                **meeting,
            )
        )
        outcome = draw(st.sampled_from(["held", "no_show", "pending"]))
        if outcome == "no_show":
            events.append(
                _create(MeetingNoShow, **src, record_identity=f"mt-{n}:ns", occurred_at=slot, **meeting)
            )
            continue
        if outcome == "pending":
            continue
        events.append(_create(MeetingHeld, **src, record_identity=f"mt-{n}:h", occurred_at=slot, **meeting))
        for side, reporter in enumerate((a, b)):
            if draw(st.booleans()):
                events.append(
                    _create(
                        MeetingOutcomeReported,
                        **src,
                        record_identity=f"mt-{n}:o{side}",
                        occurred_at=slot + timedelta(hours=side + 1),
                        meeting_id=f"mt-{n}",
                        activity_id=activity,
                        reporter_org_key=org(reporter),
                        interest_level=4,
                        expected_value=usd(draw(st.integers(100, 5000))),
                        horizon=Horizon.M6,
                    )
                )
        for wave_no, wave in enumerate((Wave.M3, Wave.M6, Wave.M12)):
            for side, (reporter, other, role) in enumerate(
                ((a, b, RoundRole.SELLER), (b, a, RoundRole.BUYER))
            ):
                if draw(st.integers(0, 2)) == 0:
                    at = slot + timedelta(days=90 * (wave_no + 1) + side)
                    events.append(
                        _create(
                            DealReported,
                            **src,
                            record_identity=f"deal-{n}:{wave}:{side}",
                            occurred_at=at,
                            deal_id=f"deal-{n}",
                            meeting_id=f"mt-{n}",
                            activity_id=activity,
                            org_key=org(reporter),
                            reporter_role=role,
                            counterpart_country=COUNTRIES[other % 3],
                            country=COUNTRIES[reporter % 3],
                            wave=wave,
                            realised_value_cumulative=usd(draw(st.integers(0, 9000))),
                            attribution_pct=draw(st.sampled_from([50.0, 100.0])),
                            confidence_pct=draw(st.sampled_from([80.0, 100.0])),
                            additionality=Additionality.FULL,
                        )
                    )
    for n in range(draw(st.integers(0, 3))):
        who = draw(st.integers(0, 3))
        at = _at(draw(st.integers(0, 300)) + 0.6)
        recipients = draw(st.sampled_from([["AR"], ["BR", "UY"], ["ALL_MEMBERS"]]))
        consent = f"c-{draw(st.integers(0, 1))}"
        if draw(st.integers(0, 2)) == 0:
            events.append(
                _create(
                    DirectoryAuthorisationWithdrawn,
                    **src,
                    record_identity=f"dw-{n}",
                    occurred_at=at,
                    consent_id=consent,
                    org_key=org(who),
                    recipients=draw(st.sampled_from([[], ["AR"]])),
                    country=COUNTRIES[who % 3],
                )
            )
        else:
            events.append(
                _create(
                    DirectoryAuthorisationGranted,
                    **src,
                    record_identity=f"dg-{n}",
                    occurred_at=at,
                    consent_id=consent,
                    org_key=org(who),
                    recipients=recipients,
                    notice_version="v1",
                    country=COUNTRIES[who % 3],
                    # Starting now, later this month, or in a later year; expiring never, before it
                    # starts, this month, or some months on.
                    starts_at=draw(st.sampled_from([None, at + timedelta(days=3), at + timedelta(days=400)])),
                    expires_at=draw(
                        st.sampled_from(
                            [None, at - timedelta(days=1), at + timedelta(days=5), at + timedelta(days=200)]
                        )
                    ),
                )
            )
    return events


@st.composite
def cost_history(draw: st.DrawFn) -> list[Event]:
    events: list[Event] = []
    for n in range(draw(st.integers(0, 4))):
        course = draw(st.booleans())
        activity = draw(st.sampled_from(sorted(OFFERINGS))) if course else draw(st.sampled_from(ACTIVITIES))
        events.append(
            _create(
                CostRecorded,
                source="fin-test",
                record_identity=f"cost-{n}",
                occurred_at=_at(draw(st.integers(0, 300))),
                cost_id=f"cost-{n}",
                activity_id=activity,
                activity_type=ActivityType.COURSE_OFFERING if course else ActivityType.BUSINESS_ROUND,
                category=draw(st.sampled_from([CostCategory.STAFF, CostCategory.VENUE])),
                payer=Payer.ALADI,
                money=usd(draw(st.integers(1, 20000))),
            )
        )
    return events


def retraction_of(event: Event) -> Event:
    cls: type[Event] = {
        "training": TrainingEventRetracted,
        "plgn": PlgnEventRetracted,
        "finance": FinanceEventRetracted,
    }[type(event).family]
    retraction: Event = _create(
        cls,
        source=event.source,
        record_identity=f"retract:{event.event_id}",
        occurred_at=event.occurred_at,
        subject_key=event.subject_key,
        retracted_event_id=event.event_id,
        reason="deleted at source",
    )
    return retraction


@st.composite
def worlds(draw: st.DrawFn, *, min_enrolments: int = 0, max_enrolments: int = 8) -> World:
    """Events with duplicates, retractions (some arriving before their event) and any arrival order."""
    events: list[Event] = []
    for n in range(draw(st.integers(min_enrolments, max_enrolments))):
        events.extend(draw(enrolment_history(n)))
    events.extend(draw(plgn_history()))
    events.extend(draw(cost_history()))
    world = World(events=events)
    if events:
        retracted = draw(st.lists(st.sampled_from(events), max_size=3, unique_by=lambda e: e.event_id))
        world.retractions = [retraction_of(event) for event in retracted]
        duplicates = draw(st.lists(st.sampled_from(events + world.retractions), max_size=5))
    else:
        duplicates = []
    world.stream = draw(st.permutations(events + world.retractions + duplicates))
    return world
