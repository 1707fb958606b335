"""What single events contribute, per family: the rules that make reads count each unit once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from processors.indicators import contributions
from processors.indicators.periods import decode_member
from schemas.events.base import MEMBER_STATES, Audience
from schemas.events.finance import ActivityType, CostCategory, CostRecorded
from schemas.events.plgn import (
    Additionality,
    DealReported,
    DirectoryAuthorisationGranted,
    DirectoryAuthorisationWithdrawn,
    MeetingCancelled,
    MeetingHeld,
    RoundRole,
    Wave,
)
from schemas.events.training import (
    CertificateIssued,
    CertificateRevoked,
    EnrolmentCreated,
    EnrolmentWithdrawn,
)

from .scenario import _make, _usd, at
from .world import org, person

T = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


def deal(role: RoundRole | None, wave: Wave = Wave.M3, **extra: Any) -> DealReported:
    fields: dict[str, Any] = {
        "occurred_at": T,
        "deal_id": "d1",
        "activity_id": "round-1",
        "org_key": org(1),
        "reporter_role": role,
        "counterpart_country": "BR",
        "country": "AR",
        "wave": wave,
        "realised_value_cumulative": _usd(1000),
        "attribution_pct": 50.0,
        "confidence_pct": 40.0,
        "additionality": Additionality.FULL,
    }
    fields.update(extra)
    result: DealReported = _make(DealReported, f"deal-{role}-{wave}", **fields)
    return result


def test_an_enrolment_anchor_carries_learner_firm_and_cohort_dates() -> None:
    event = _make(
        EnrolmentCreated,
        "e1",
        occurred_at=T,
        enrolment_id="e%7C1",
        offering_id="o1",
        course_id="c1",
        enrolled_at=T,
        offering_ends_at=at(6, 1),
        org_key=org(1),
        subject_key=person(1),
        country="AR",
        audience=Audience.MSME,
    )
    (part,) = contributions(event)
    assert (part.indicator, part.part, part.kind) == ("CVF-01", "enrolled", "distinct")
    assert part.member is not None
    enrolment, learner, firm, enrolled, ends = decode_member(part.member)
    assert (enrolment, learner, firm) == ("e%7C1", person(1), org(1))
    assert int(enrolled) == int(T.timestamp()) and int(ends) == int(at(6, 1).timestamp())
    assert part.dimensions == {
        "country": "AR",
        "audience": "MSME",
        "course": "c1",
        "offering": "o1",
        "gender": "UNKNOWN",
    }


@pytest.mark.parametrize(
    ("before_start", "expected"),
    [(True, ("CVF-01", "withdrawn_before_start")), (False, ("CVF-08", "withdrawn_after_start"))],
)
def test_a_withdrawal_counts_before_or_after_the_start(before_start: bool, expected: tuple[str, str]) -> None:
    event = _make(
        EnrolmentWithdrawn,
        "w",
        occurred_at=T,
        enrolment_id="e1",
        withdrawn_at=T,
        before_start=before_start,
        subject_key=person(1),
    )
    assert [(p.indicator, p.part, p.member) for p in contributions(event)] == [(*expected, "e1")]


def test_a_revocation_outranks_an_issue_at_the_same_instant() -> None:
    issued = _make(
        CertificateIssued,
        "i",
        occurred_at=T,
        enrolment_id="e1",
        certificate_id="c",
        issued_at=T,
        subject_key=person(1),
    )
    revoked = _make(
        CertificateRevoked,
        "r",
        occurred_at=T,
        enrolment_id="e1",
        certificate_id="c",
        revoked_at=T,
        subject_key=person(1),
    )
    (issue,) = contributions(issued)
    (revoke,) = contributions(revoked)
    assert issue.amount > 0 and revoke.amount == 0
    assert revoke.order_key > issue.order_key


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (deal(RoundRole.BUYER, Wave.M12), deal(RoundRole.SELLER, Wave.M3)),  # the exporter's report wins
        (deal(RoundRole.SELLER, Wave.M3), deal(RoundRole.SELLER, Wave.M6)),  # then the later wave
        (deal(None, Wave.M12), deal(RoundRole.BOTH, Wave.M3)),
    ],
)
def test_deal_reports_are_ordered_exporter_first_then_by_wave(
    first: DealReported, second: DealReported
) -> None:
    low = next(p for p in contributions(first) if p.indicator == "PLGN-10")
    high = next(p for p in contributions(second) if p.indicator == "PLGN-10")
    assert high.order_key > low.order_key
    assert low.member == high.member == "d1"


def test_both_sides_of_a_deal_land_in_the_exporters_cell() -> None:
    seller = deal(RoundRole.SELLER)
    buyer = deal(RoundRole.BUYER, org_key=org(2), country="BR", counterpart_country="AR")
    cells = {
        tuple(sorted(p.dimensions.items()))
        for e in (seller, buyer)
        for p in contributions(e)
        if p.indicator == "PLGN-10"
    }
    assert cells == {(("activity", "round-1"), ("counterpart_country", "BR"), ("country", "AR"))}


def test_attributable_business_applies_attribution_and_confidence() -> None:
    (part,) = [p for p in contributions(deal(RoundRole.SELLER)) if p.indicator == "ACT-05"]
    assert part.amount == Decimal(200)  # 1000 x 50% x 40%


@pytest.mark.parametrize(
    ("recipients", "expected"),
    [(["AR"], {"AR"}), (["ALL_MEMBERS"], set(MEMBER_STATES)), (["BR", "UY", "BR"], {"BR", "UY"})],
)
def test_an_authorisation_covers_each_listed_member_state(recipients: list[str], expected: set[str]) -> None:
    event = _make(
        DirectoryAuthorisationGranted,
        f"g{recipients}",
        occurred_at=T,
        consent_id="c1",
        org_key=org(1),
        recipients=recipients,
        notice_version="v1",
        country="AR",
    )
    parts = contributions(event)
    assert {p.dimensions["recipient"] for p in parts} == expected
    assert all(p.amount == 1 and p.kind == "latest" for p in parts)


def test_withdrawing_a_whole_consent_clears_every_member_state_and_counts_one_withdrawal() -> None:
    event = _make(
        DirectoryAuthorisationWithdrawn,
        "w1",
        occurred_at=T,
        consent_id="c1",
        org_key=org(1),
        recipients=[],
        country="AR",
    )
    parts = contributions(event)
    cleared = [p for p in parts if p.part == "authorised"]
    assert {p.dimensions["recipient"] for p in cleared} == set(MEMBER_STATES)
    assert all(p.amount == 0 for p in cleared)
    assert [(p.part, p.dimensions["recipient"]) for p in parts if p.part == "withdrawals"] == [
        ("withdrawals", "ALL_MEMBERS")
    ]


def test_a_meeting_held_serves_both_firms_and_marks_them_active() -> None:
    event = _make(
        MeetingHeld,
        "h",
        occurred_at=T,
        meeting_id="m1",
        activity_id="round-1",
        org_a_key=org(1),
        org_b_key=org(2),
        slot_at=T,
    )
    parts = contributions(event)
    assert {p.member for p in parts if p.indicator == "ACT-02"} == {org(1), org(2)}
    assert {decode_member(p.member or "")[0] for p in parts if p.indicator == "PLGN-02"} == {org(1), org(2)}
    assert any(p.indicator == "PLGN-07" and p.part == "held" for p in parts)


def test_a_cancelled_meeting_contributes_nothing() -> None:
    event = _make(
        MeetingCancelled,
        "x",
        occurred_at=T,
        meeting_id="m1",
        activity_id="round-1",
        org_a_key=org(1),
        org_b_key=org(2),
        slot_at=T,
    )
    assert contributions(event) == []


@pytest.mark.parametrize(
    ("activity_type", "indicator"),
    [
        (ActivityType.COURSE_OFFERING, "CVF-20"),
        (ActivityType.BUSINESS_ROUND, "ACT-01"),
        (ActivityType.TRADE_FAIR, "ACT-01"),
    ],
)
def test_a_cost_goes_to_the_offering_or_the_activity(activity_type: ActivityType, indicator: str) -> None:
    event = _make(
        CostRecorded,
        f"k-{activity_type}",
        occurred_at=T,
        cost_id="k",
        activity_id="a1",
        activity_type=activity_type,
        category=CostCategory.STAFF,
        money=_usd(70),
    )
    (part,) = contributions(event)
    assert (part.indicator, part.kind, part.amount) == (indicator, "sum", Decimal(70))
