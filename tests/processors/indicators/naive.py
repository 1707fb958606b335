"""Naive indicator computations straight from the domain formulas, over the live events of a history.

Written independently of `processors.indicators` (no parts, no aggregation code): each function walks
the distinct, non-retracted events and applies the definition of domain research section 5.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.events.base import MEMBER_STATES, Event
from schemas.events.finance import ActivityType, CostRecorded
from schemas.events.plgn import (
    ContactRequested,
    ContactResponded,
    DealReported,
    DirectoryAuthorisationGranted,
    DirectoryAuthorisationWithdrawn,
    MeetingHeld,
    MeetingNoShow,
    MeetingScheduled,
    OpportunityPublished,
    OrganisationRegistered,
    RoundRegistered,
    RoundRole,
)
from schemas.events.training import (
    AssessmentKind,
    AssessmentSubmitted,
    CertificateIssued,
    CertificateRevoked,
    EnrolmentCompleted,
    EnrolmentCreated,
    EnrolmentWithdrawn,
    ProgressRecorded,
)

Expected = dict[tuple[date, tuple[str, ...]], dict[str, Any]]


def month_of(moment: datetime) -> date:
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def quarter_of(moment: datetime) -> date:
    utc = moment.astimezone(UTC)
    return date(utc.year, (utc.month - 1) // 3 * 3 + 1, 1)


def year_of(moment: datetime) -> date:
    return date(moment.astimezone(UTC).year, 1, 1)


def year_end(start: date) -> datetime:
    return datetime(start.year + 1, 1, 1, tzinfo=UTC)


def quarter_end(start: date) -> datetime:
    month = start.month + 3
    return datetime(start.year + (month > 12), (month - 1) % 12 + 1, 1, tzinfo=UTC)


def quarters_through(first: date, moment: datetime) -> list[date]:
    """Quarter starts from `first` through the quarter of `moment` (cumulative indicators carry on)."""
    found = [first]
    while found[-1] < quarter_of(moment):
        found.append(quarter_end(found[-1]).date())
    return found


def years_through(first: date, moment: datetime) -> list[date]:
    return [date(year, 1, 1) for year in range(first.year, max(first.year, moment.year) + 1)]


@dataclass
class Enrolment:
    id: str
    learner: str
    org: str | None
    dims: dict[str, str]
    enrolled_at: datetime
    ends_at: datetime | None
    net: bool
    started: bool
    withdrawn_after: bool
    completed_at: datetime | None
    certified_at: datetime | None
    attempted_final: bool = False
    passed_final: bool = False
    pre_score: Decimal | None = None
    post_score: Decimal | None = None


def _assessments(live: Sequence[Event], kind: AssessmentKind) -> dict[str, list[AssessmentSubmitted]]:
    found: dict[str, list[AssessmentSubmitted]] = defaultdict(list)
    for e in live:
        if isinstance(e, AssessmentSubmitted) and e.kind == kind:
            found[e.enrolment_id].append(e)
    return found


def _points(attempt: AssessmentSubmitted) -> Decimal:
    return Decimal(str(attempt.score_scaled)) * 100


def enrolments(live: Sequence[Event]) -> list[Enrolment]:
    created = [e for e in live if isinstance(e, EnrolmentCreated)]
    before = {e.enrolment_id for e in live if isinstance(e, EnrolmentWithdrawn) and e.before_start}
    after = {e.enrolment_id for e in live if isinstance(e, EnrolmentWithdrawn) and not e.before_start}
    activity = {e.enrolment_id for e in live if isinstance(e, ProgressRecorded | AssessmentSubmitted)}
    completed: dict[str, datetime] = {}
    for e in live:
        if isinstance(e, EnrolmentCompleted):
            completed[e.enrolment_id] = max(completed.get(e.enrolment_id, e.completed_at), e.completed_at)
    certificate_history: dict[str, list[tuple[datetime, int, str, datetime | None]]] = defaultdict(list)
    for e in live:
        if isinstance(e, CertificateIssued):
            certificate_history[e.enrolment_id].append((e.issued_at, 0, e.certificate_id, e.issued_at))
        elif isinstance(e, CertificateRevoked):
            certificate_history[e.enrolment_id].append((e.revoked_at, 1, e.certificate_id, None))
    finals = _assessments(live, AssessmentKind.FINAL)
    pre_tests = _assessments(live, AssessmentKind.PRE)
    post_tests = _assessments(live, AssessmentKind.POST)
    result = []
    for e in created:
        history = certificate_history.get(e.enrolment_id)
        decided = [a for a in finals.get(e.enrolment_id, []) if a.passed is not None]
        # The baseline is the first pre-test attempt, the outcome the latest post-test attempt.
        pre = min(
            pre_tests.get(e.enrolment_id, []), key=lambda a: (a.occurred_at, a.attempt_no), default=None
        )
        post = max(
            post_tests.get(e.enrolment_id, []), key=lambda a: (a.occurred_at, a.attempt_no), default=None
        )
        result.append(
            Enrolment(
                id=e.enrolment_id,
                learner=e.subject_key,
                org=e.org_key,
                dims={
                    "country": e.country or "UNKNOWN",
                    "audience": e.audience.value if e.audience else "UNKNOWN",
                    "course": e.course_id,
                    "offering": e.offering_id,
                    "gender": e.gender.value if e.gender else "UNKNOWN",
                },
                enrolled_at=e.enrolled_at,
                ends_at=e.offering_ends_at,
                net=e.enrolment_id not in before,
                started=e.enrolment_id in activity or e.enrolment_id in after,
                withdrawn_after=e.enrolment_id in after,
                completed_at=completed.get(e.enrolment_id),
                certified_at=max(history)[3] if history else None,
                attempted_final=bool(decided),
                passed_final=any(a.passed for a in decided),
                pre_score=None if pre is None else _points(pre),
                post_score=None if post is None else _points(post),
            )
        )
    return result


def _key(dims: dict[str, str], by: Sequence[str]) -> tuple[str, ...]:
    return tuple(dims[name] for name in by)


TRAINING_INDICATORS = (
    "CVF-01",
    "CVF-02",
    "CVF-05",
    "CVF-06",
    "CVF-07",
    "CVF-08",
    "CVF-09",
    "CVF-10",
    "CVF-12",
    "CVF-18",
    "CVF-19",
    "CVF-23",
)
"""The indicators `training` computes."""


def training(
    live: Sequence[Event], by: Sequence[str], as_of: datetime, grace_days: int
) -> dict[str, Expected]:
    """CVF-01, 02, 05, 06, 07, 08, 09, 10, 12, 18 by enrolment month; CVF-19 and CVF-23 by certificate
    month."""
    out: dict[str, Expected] = defaultdict(dict)
    groups: dict[tuple[date, tuple[str, ...]], list[Enrolment]] = defaultdict(list)
    records = enrolments(live)
    for record in records:
        groups[(month_of(record.enrolled_at), _key(record.dims, by))].append(record)
    for key, group in groups.items():
        net = [r for r in group if r.net]
        closed = [r for r in net if r.ends_at is not None and r.ends_at + timedelta(days=grace_days) <= as_of]
        started = [r for r in closed if r.started]
        completed = [r for r in closed if r.completed_at is not None]
        out["CVF-01"][key] = {"value": len(net), "gross": len(group)}
        out["CVF-02"][key] = {"value": len({r.learner for r in net})}
        open_ = len(net) > len(closed)
        out["CVF-05"][key] = {"value": _ratio(len(completed), len(closed)), "provisional": open_}
        certified = sum(1 for r in closed if r.certified_at is not None)
        out["CVF-07"][key] = {"value": _ratio(certified, len(closed)), "provisional": open_}
        dropped = sum(1 for r in started if r.withdrawn_after or r.completed_at is None)
        out["CVF-08"][key] = {"value": _ratio(dropped, len(started)), "provisional": open_}
        out["CVF-09"][key] = {"value": _ratio(len(closed) - len(started), len(closed)), "provisional": open_}
        attempted = [r for r in net if r.attempted_final]
        passed = [r for r in attempted if r.passed_final]
        out["CVF-06"][key] = {"value": _ratio(len(passed), len(attempted)), "provisional": open_}
        pairs = [
            (r.pre_score, r.post_score) for r in net if r.pre_score is not None and r.post_score is not None
        ]
        gains = [post - pre for pre, post in pairs if pre is not None and post is not None]
        normalised = [
            (post - pre) / (100 - pre)
            for pre, post in pairs
            if pre is not None and post is not None and pre < 100
        ]
        out["CVF-12"][key] = {
            "value": sum(gains) / len(gains) if gains else None,
            "normalised_gain": sum(normalised) / len(normalised) if normalised else None,
            "provisional": open_,
        }
        if "gender" not in by:
            women = {r.learner for r in net if r.dims["gender"] == "F"}
            men = {r.learner for r in net if r.dims["gender"] == "M"}
            certified_women = {
                r.learner for r in net if r.dims["gender"] == "F" and r.certified_at is not None
            }
            certified_men = {r.learner for r in net if r.dims["gender"] == "M" and r.certified_at is not None}
            out["CVF-18"][key] = {
                "value": _ratio(len(women), len(women) + len(men)),
                "provisional": False,
                "certified_female_share": _ratio(
                    len(certified_women), len(certified_women) + len(certified_men)
                ),
                "certified_gender_parity_index": _ratio(len(certified_women), len(certified_men)),
            }
        days = [
            Decimal(int((r.completed_at - r.enrolled_at).total_seconds())) / Decimal(86400)
            for r in completed
            if r.completed_at is not None
        ]
        out["CVF-10"][key] = {
            "value": statistics.median(days) if days else None,
            "p90_days": statistics.quantiles(days, n=10, method="inclusive")[8]
            if len(days) > 1
            else (days[0] if days else None),
        }
    certified_groups: dict[tuple[date, tuple[str, ...]], list[Enrolment]] = defaultdict(list)
    for record in records:
        if record.certified_at is not None:
            certified_groups[(month_of(record.certified_at), _key(record.dims, by))].append(record)
    active_days = plgn_action_days(live)
    for key, group in certified_groups.items():
        out["CVF-19"][key] = {"value": len({r.org for r in group if r.org})}
        eligible = [r for r in group if r.org and r.dims["audience"] == "MSME"]
        if eligible:
            converted = 0
            for r in eligible:
                assert r.certified_at is not None and r.org is not None
                start = r.certified_at.astimezone(UTC).date()
                if any(start <= day <= start + timedelta(days=90) for day in active_days.get(r.org, ())):
                    converted += 1
            out["CVF-23"][key] = {"value": _ratio(converted, len(eligible))}
    return out


def active_learners(live: Sequence[Event], by: Sequence[str]) -> Expected:
    """CVF-04 by activity month: distinct learners with a progress or assessment event, grouped by the
    dimensions of the enrolment the event belongs to (events of unknown enrolments are not counted)."""
    records = {r.id: r for r in enrolments(live)}
    learners: dict[tuple[date, tuple[str, ...]], set[str]] = defaultdict(set)
    for e in live:
        if isinstance(e, ProgressRecorded | AssessmentSubmitted) and e.enrolment_id in records:
            record = records[e.enrolment_id]
            learners[(month_of(e.occurred_at), _key(record.dims, by))].add(record.learner)
    return {key: {"value": len(found)} for key, found in learners.items()}


def pathway(live: Sequence[Event], by: Sequence[str], as_of: datetime) -> Expected:
    """CVF-22 by certificate month: certified learners with a net enrolment in another course within
    365 days after one of their certificates of that month, over the certified learners."""
    records = enrolments(live)
    certified: dict[tuple[date, tuple[str, ...]], dict[str, list[Enrolment]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in records:
        if r.certified_at is not None:
            certified[(month_of(r.certified_at), _key(r.dims, by))][r.learner].append(r)
    window = timedelta(days=365)
    out: Expected = {}
    for key, learners in certified.items():
        continued = 0
        still_open = False
        for learner, certificates in learners.items():
            follow_ups = [r for r in records if r.learner == learner and r.net]
            if any(
                c.certified_at is not None
                and c.certified_at < e.enrolled_at <= c.certified_at + window
                and e.dims["course"] != c.dims["course"]
                for c in certificates
                for e in follow_ups
            ):
                continued += 1
            elif any(c.certified_at is not None and c.certified_at + window > as_of for c in certificates):
                still_open = True
        out[key] = {"value": _ratio(continued, len(learners)), "provisional": still_open}
    return out


def country_coverage(live: Sequence[Event]) -> Expected:
    """CVF-17 totals by certificate month: member states with >= 1 certified learner."""
    learners: dict[date, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for record in enrolments(live):
        if record.certified_at is not None:
            learners[month_of(record.certified_at)][record.dims["country"]].add(record.learner)
    return {
        (month, ()): {"value": sum(1 for country in found if country in MEMBER_STATES)}
        for month, found in learners.items()
    }


def plgn_action_days(live: Sequence[Event]) -> dict[str, set[date]]:
    days: dict[str, set[date]] = defaultdict(set)
    for e in live:
        if isinstance(e, OrganisationRegistered):
            days[e.org_key].add(e.registered_at.date())
        elif isinstance(e, OpportunityPublished | RoundRegistered):
            days[e.org_key].add(e.occurred_at.astimezone(UTC).date())
        elif isinstance(e, ContactRequested):
            days[e.from_org_key].add(e.occurred_at.astimezone(UTC).date())
        elif isinstance(e, ContactResponded):
            days[e.to_org_key].add(e.responded_at.astimezone(UTC).date())
        elif isinstance(e, MeetingHeld):
            days[e.org_a_key].add(e.slot_at.astimezone(UTC).date())
            days[e.org_b_key].add(e.slot_at.astimezone(UTC).date())
    return days


def registered_stock(live: Sequence[Event], as_of: datetime) -> Expected:
    """PLGN-01 by quarter (cumulative) and country, from the first registration on."""
    registrations = [e for e in live if isinstance(e, OrganisationRegistered)]
    if not registrations:
        return {}
    last = max(max(e.registered_at for e in registrations), as_of)
    quarters = quarters_through(min(quarter_of(e.registered_at) for e in registrations), last)
    out: Expected = {}
    for quarter in quarters:
        stock: dict[str, set[str]] = defaultdict(set)
        for e in registrations:
            if e.registered_at < quarter_end(quarter):
                stock[e.country or "UNKNOWN"].add(e.org_key)
        for country, orgs in stock.items():
            out[(quarter, (country,))] = {"value": len(orgs)}
    return out


def meetings(live: Sequence[Event]) -> Expected:
    """PLGN-07 by slot month and activity: held / scheduled."""
    scheduled: dict[tuple[date, tuple[str, ...]], set[str]] = defaultdict(set)
    held: dict[tuple[date, tuple[str, ...]], set[str]] = defaultdict(set)
    no_show: dict[tuple[date, tuple[str, ...]], set[str]] = defaultdict(set)
    for e in live:
        if isinstance(e, MeetingScheduled | MeetingHeld | MeetingNoShow):
            table = (
                scheduled
                if isinstance(e, MeetingScheduled)
                else held
                if isinstance(e, MeetingHeld)
                else no_show
            )
            table[(month_of(e.slot_at), (e.activity_id,))].add(e.meeting_id)
    keys = set(scheduled) | set(held) | set(no_show)
    return {key: {"value": _ratio(len(held[key]), len(scheduled[key]))} for key in keys}


def winning_deal_reports(live: Sequence[Event], until: datetime | None = None) -> dict[str, DealReported]:
    """Rules 1 and 2: per deal the exporter's report if any, its latest wave, its latest report."""
    wave_rank = {"M3": 1, "M6": 2, "M12": 3}
    best: dict[str, DealReported] = {}

    def rank(e: DealReported) -> tuple[int, int, datetime, str]:
        exporter = 1 if e.reporter_role in (RoundRole.SELLER, RoundRole.BOTH) else 0
        return (exporter, wave_rank[e.wave.value], e.occurred_at, str(e.event_id))

    for e in live:
        if not isinstance(e, DealReported) or (until is not None and e.occurred_at >= until):
            continue
        if e.deal_id not in best or rank(e) > rank(best[e.deal_id]):
            best[e.deal_id] = e
    return best


def realised_by_exporter_country(live: Sequence[Event], as_of: datetime) -> Expected:
    """PLGN-10 by year (cumulative) and exporter country."""
    reports = [e.occurred_at for e in live if isinstance(e, DealReported)]
    years = years_through(year_of(min(reports)), max(*reports, as_of)) if reports else []
    out: Expected = {}
    for year in years:
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for e in winning_deal_reports(live, year_end(year)).values():
            exporter = (
                e.counterpart_country if e.reporter_role == RoundRole.BUYER else (e.country or "UNKNOWN")
            )
            totals[exporter] += e.realised_value_cumulative.usd_amount
        for country, total in totals.items():
            out[(year, (country,))] = {"value": total}
    return out


def directory(live: Sequence[Event], as_of: datetime) -> Expected:
    """PLGN-16 by year (cumulative) and recipient: firms authorised for R / all registered firms.

    At a year's last instant (at `as_of` while the year runs) a consent holds for R when the last of its
    grants and withdrawals published in or before that year is a grant that has started and not yet
    ended then (as the directory's consent ledger reads it).
    """
    grants = [
        e for e in live if isinstance(e, DirectoryAuthorisationGranted | DirectoryAuthorisationWithdrawn)
    ]
    registrations = [e for e in live if isinstance(e, OrganisationRegistered)]
    out: Expected = {}
    moments = [e.occurred_at for e in grants] + [e.registered_at for e in registrations]
    for year in years_through(year_of(min(moments)), max(*moments, as_of)) if moments else []:
        end_of_year = year_end(year)
        judged_at = min(end_of_year - timedelta(microseconds=1), as_of)
        state: dict[tuple[str, str, str], tuple[datetime, int, str, bool]] = {}
        for e in grants:
            if e.occurred_at >= end_of_year:
                continue
            holds = False
            if isinstance(e, DirectoryAuthorisationGranted):
                started = (e.starts_at or e.occurred_at) <= judged_at
                holds = started and (e.expires_at is None or judged_at < e.expires_at)
            recipients = (
                sorted(MEMBER_STATES) if not e.recipients or "ALL_MEMBERS" in e.recipients else e.recipients
            )
            rank = 0 if isinstance(e, DirectoryAuthorisationGranted) else 1
            for recipient in recipients:
                candidate = (e.occurred_at, rank, str(e.event_id), holds)
                slot = (e.org_key, recipient, e.consent_id)
                if slot not in state or candidate[:3] > state[slot][:3]:
                    state[slot] = candidate
        stock = len({e.org_key for e in registrations if e.registered_at < end_of_year})
        firms: dict[str, set[str]] = defaultdict(set)
        for (org_key, recipient, _), (*_, holds) in state.items():
            if holds:
                firms[recipient].add(org_key)
        for recipient, orgs in firms.items():
            out[(year, (recipient,))] = {"value": _ratio(len(orgs), stock), "authorised": len(orgs)}
    return out


def activity_costs(live: Sequence[Event]) -> Expected:
    """ACT-01 by month (totals)."""
    out: dict[tuple[date, tuple[str, ...]], dict[str, Any]] = {}
    for e in live:
        if isinstance(e, CostRecorded) and e.activity_type != ActivityType.COURSE_OFFERING:
            entry = out.setdefault((month_of(e.occurred_at), ()), {"value": Decimal(0)})
            entry["value"] += e.money.usd_amount
    return out


def _last_sessions(live: Sequence[Event]) -> dict[str, datetime]:
    last: dict[str, datetime] = {}
    for e in live:
        if isinstance(e, MeetingScheduled | MeetingHeld):
            last[e.activity_id] = max(last.get(e.activity_id, e.slot_at), e.slot_at)
    return last


def roi(live: Sequence[Event], as_of: datetime, margin: Decimal) -> Expected:
    """ACT-07 by year (cumulative) and activity, with its provisional flag."""
    costs = [
        e for e in live if isinstance(e, CostRecorded) and e.activity_type != ActivityType.COURSE_OFFERING
    ]
    deals = [e for e in live if isinstance(e, DealReported)]
    last = _last_sessions(live)
    out: Expected = {}
    moments = [e.occurred_at for e in [*costs, *deals]]
    for year in years_through(year_of(min(moments)), max(*moments, as_of)) if moments else []:
        end = year_end(year)
        cost: dict[str, Decimal] = defaultdict(Decimal)
        for e in costs:
            if e.occurred_at < end:
                cost[e.activity_id] += e.money.usd_amount
        benefit: dict[str, Decimal] = defaultdict(Decimal)
        for deal in winning_deal_reports(live, end).values():
            factor = Decimal(str(deal.attribution_pct)) / 100 * Decimal(str(deal.confidence_pct)) / 100
            benefit[deal.activity_id] += deal.realised_value_cumulative.usd_amount * factor
        for activity in set(cost) | set(benefit):
            value = None
            if cost[activity]:
                value = (benefit[activity] * margin - cost[activity]) / cost[activity] * 100
            closes = last[activity] + timedelta(days=365) if activity in last else None
            provisional = closes is None or closes > min(end, as_of)
            out[(year, (activity,))] = {"value": value, "provisional": provisional}
    return out


def portfolio(live: Sequence[Event], as_of: datetime, margin: Decimal) -> Expected:
    """ACT-13 by year of window close: (sum benefit x m - sum cost) / sum cost x 100."""
    cost: dict[str, Decimal] = defaultdict(Decimal)
    for e in live:
        if isinstance(e, CostRecorded) and e.activity_type != ActivityType.COURSE_OFFERING:
            cost[e.activity_id] += e.money.usd_amount
    benefit: dict[str, Decimal] = defaultdict(Decimal)
    for e in winning_deal_reports(live).values():
        factor = Decimal(str(e.attribution_pct)) / 100 * Decimal(str(e.confidence_pct)) / 100
        benefit[e.activity_id] += e.realised_value_cumulative.usd_amount * factor
    closed: dict[date, list[str]] = defaultdict(list)
    for activity, last in _last_sessions(live).items():
        closes = last + timedelta(days=365)
        if closes <= as_of:
            closed[year_of(closes)].append(activity)
    out: Expected = {}
    for year, names in closed.items():
        total_cost = sum((cost[n] for n in names), Decimal(0))
        total_benefit = sum((benefit[n] for n in names), Decimal(0))
        value = (total_benefit * margin - total_cost) / total_cost * 100 if total_cost else None
        out[(year, ())] = {"value": value, "activities": len(names)}
    return out


def _ratio(numerator: int, denominator: int) -> Decimal | None:
    return None if denominator == 0 else Decimal(numerator) / Decimal(denominator)


def time_to_certification(live: Sequence[Event], as_of: datetime, grace_days: int) -> Expected:
    """CVF-11 totals by enrolment month: median days to an unrevoked certificate, closed cohorts."""
    groups: dict[date, list[Decimal]] = defaultdict(list)
    months: set[date] = set()
    for r in enrolments(live):
        months.add(month_of(r.enrolled_at))
        closed = r.ends_at is not None and r.ends_at + timedelta(days=grace_days) <= as_of
        if r.net and closed and r.certified_at is not None:
            seconds = int((r.certified_at - r.enrolled_at).total_seconds())
            groups[month_of(r.enrolled_at)].append(Decimal(seconds) / Decimal(86400))
    return {(m, ()): {"value": statistics.median(groups[m]) if groups[m] else None} for m in months}


def cost_per_certificate(live: Sequence[Event]) -> Expected:
    """CVF-20 by month and offering: offering costs booked in the month / certificates issued in it."""
    cost: dict[tuple[date, tuple[str, ...]], Decimal] = defaultdict(Decimal)
    for e in live:
        if isinstance(e, CostRecorded) and e.activity_type == ActivityType.COURSE_OFFERING:
            cost[(month_of(e.occurred_at), (e.activity_id,))] += e.money.usd_amount
    certificates: dict[tuple[date, tuple[str, ...]], int] = defaultdict(int)
    for r in enrolments(live):
        if r.certified_at is not None:
            certificates[(month_of(r.certified_at), (r.dims["offering"],))] += 1
    return {
        key: {"value": cost[key] / certificates[key] if certificates[key] else None}
        for key in set(cost) | set(certificates)
    }


def contact_answers(live: Sequence[Event]) -> Expected:
    """PLGN-06 by request month and requester country: requests answered within 7 days / requests."""
    first_answer: dict[str, datetime] = {}
    for e in live:
        if isinstance(e, ContactResponded):
            first_answer[e.request_id] = min(first_answer.get(e.request_id, e.responded_at), e.responded_at)
    groups: dict[tuple[date, tuple[str, ...]], list[bool]] = defaultdict(list)
    for e in live:
        if isinstance(e, ContactRequested):
            answer = first_answer.get(e.request_id)
            within = answer is not None and answer - e.occurred_at <= timedelta(days=7)
            groups[(month_of(e.occurred_at), (e.country or "UNKNOWN",))].append(within)
    return {key: {"value": _ratio(sum(found), len(found))} for key, found in groups.items()}


def active_firms(live: Sequence[Event], as_of: datetime) -> Expected:
    """PLGN-02 by month and country: firms acting in the 90 days to the month end / registered firms.

    A firm's country is its registration country; a firm never registered counts under the country
    on the action (unknown for meetings and answers, which name two firms).
    """
    registered = {e.org_key: e for e in live if isinstance(e, OrganisationRegistered)}
    actions: list[tuple[str, date, str]] = []
    for e in live:
        if isinstance(e, OrganisationRegistered):
            actions.append((e.org_key, e.registered_at.date(), e.country or "UNKNOWN"))
        elif isinstance(e, OpportunityPublished | RoundRegistered):
            actions.append((e.org_key, e.occurred_at.date(), e.country or "UNKNOWN"))
        elif isinstance(e, ContactRequested):
            actions.append((e.from_org_key, e.occurred_at.date(), e.country or "UNKNOWN"))
        elif isinstance(e, ContactResponded):
            actions.append((e.to_org_key, e.responded_at.date(), "UNKNOWN"))
        elif isinstance(e, MeetingHeld):
            actions.append((e.org_a_key, e.slot_at.date(), "UNKNOWN"))
            actions.append((e.org_b_key, e.slot_at.date(), "UNKNOWN"))
    if not actions:
        return {}
    out: Expected = {}
    month = min(day for _, day, _ in actions).replace(day=1)
    last = max(max(day for _, day, _ in actions), as_of.date())
    while month <= last:
        end = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        active: dict[str, set[str]] = defaultdict(set)
        for org_key, day, country in actions:
            if end - timedelta(days=90) <= day < end:
                reg = registered.get(org_key)
                active[(reg.country or "UNKNOWN") if reg else country].add(org_key)
        stock: dict[str, set[str]] = defaultdict(set)
        for org_key, reg in registered.items():
            if reg.registered_at.date() < end:
                stock[reg.country or "UNKNOWN"].add(org_key)
        for country in set(active) | set(stock):
            out[(month, (country,))] = {"value": _ratio(len(active[country]), len(stock[country]))}
        month = end
    return out
