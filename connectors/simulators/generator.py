"""A seeded generator of realistic CVF training and PLGN trade-promotion data, shared by every simulator.

The same seed and sizes always give the same world. The world holds personal data on purpose (names,
e-mails, tax ids): simulators serve it the way real platforms do, and connectors must pseudonymise it.
The world is also the ground truth tests compare a pipeline's output with.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from connectors.simulators.world import (
    Activity,
    Authorisation,
    Contact,
    Cost,
    Course,
    Deal,
    Enrolment,
    Firm,
    Learner,
    Meeting,
    Offering,
    Opportunity,
    World,
)

__all__ = ["ART7_AUDIENCES", "EPOCH", "MEMBER_STATES", "World", "generate"]

MEMBER_STATES: tuple[str, ...] = (
    "AR", "BO", "BR", "CL", "CO", "CU", "EC", "MX", "PA", "PY", "PE", "UY", "VE",
)  # fmt: skip
"""The 13 ALADI member states (ISO 3166-1 alpha-2)."""

ART7_AUDIENCES: tuple[str, ...] = ("TPO_AUTHORITY", "BUSINESS_CHAMBER", "SECTOR_ASSOCIATION", "MSME")
"""The four audiences of art. 7 of Resolution 503."""

OTHER_AUDIENCES: tuple[str, ...] = ("GOVT_OTHER", "ACADEMIA", "OTHER")

# Rough weights of learners per country (larger economies enrol more), used for realism only.
_COUNTRY_WEIGHTS = (14, 4, 18, 8, 10, 3, 5, 15, 3, 3, 8, 5, 4)
_AUDIENCE_WEIGHTS = (10, 12, 10, 48, 8, 7, 5)
_TOOL_AREAS = (
    "ORIGIN_DCO", "AGREEMENTS_PREFERENCES", "NALADISA_TARIFFS", "PLGN_USE",
    "MARKET_INTELLIGENCE", "TRADE_FACILITATION", "SERVICES",
)  # fmt: skip
_COURSE_TITLES = (
    "Certificación de origen digital", "Acuerdos y preferencias arancelarias", "NALADISA en la práctica",
    "Cómo usar PLGN", "Inteligencia comercial para pymes", "Facilitación del comercio",
    "Comercio de servicios", "Reglas de origen avanzadas",
)  # fmt: skip
_FIRST = ("Ana", "Luis", "María", "João", "Carla", "Pedro", "Sofía", "Diego", "Lucía", "Andrés", "Paula")
_LAST = ("García", "Silva", "Rodríguez", "Souza", "Pérez", "Gómez", "Oliveira", "Fernández", "Rojas")
_COST_CATEGORIES = ("STAFF", "VENUE", "PLATFORM", "TRAVEL", "MARKETING", "CONTENT", "TUTORS", "OTHER")
_CURRENCIES = {"AR": "ARS", "BR": "BRL", "CL": "CLP", "CO": "COP", "MX": "MXN", "PE": "PEN", "UY": "UYU"}
# Local-currency units per USD, fixed for reproducibility.
_FX = {"ARS": Decimal(900), "BRL": Decimal("5.0"), "CLP": Decimal(900), "COP": Decimal(4000),
       "MXN": Decimal(17), "PEN": Decimal("3.7"), "UYU": Decimal(39), "USD": Decimal(1)}  # fmt: skip

EPOCH = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
"""Start of the simulated calendar (deterministic: never the wall clock)."""


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _money(rng: random.Random, country: str, usd_low: int, usd_high: int) -> tuple[Decimal, str, Decimal]:
    currency = _CURRENCIES.get(country, "USD") if rng.random() < 0.6 else "USD"
    usd = Decimal(rng.randint(usd_low, usd_high))
    return (usd * _FX[currency]).quantize(Decimal("0.01")), currency, usd


def generate(
    seed: int = 503,
    *,
    scale: int = 1,
    learners: int | None = None,
    firms: int | None = None,
    courses: int = 6,
) -> World:
    """Generate a world.

    Args:
        seed: random seed; equal seeds and sizes give equal worlds.
        scale: multiplies the default sizes (200 learners, 80 firms).
        learners: number of learners (overrides `scale`).
        firms: number of firms (overrides `scale`).
        courses: number of courses; each has two or three offerings.
    """
    rng = random.Random(seed)
    # Pre- and post-tests draw from a stream of their own, so the rest of the world stays as it was.
    tests_rng = random.Random(f"{seed}:pre-post-tests")
    n_learners = learners if learners is not None else 200 * scale
    n_firms = firms if firms is not None else 80 * scale

    course_list: list[Course] = []
    offering_list: list[Offering] = []
    for c in range(courses):
        course = Course(
            course_id=f"course-{c + 1}",
            title=_COURSE_TITLES[c % len(_COURSE_TITLES)],
            tool_area=_TOOL_AREAS[c % len(_TOOL_AREAS)],
            hours=rng.choice((8, 12, 20, 30, 40)),
            certified=rng.random() < 0.8,
        )
        course_list.append(course)
        for o in range(rng.randint(2, 3)):
            starts = EPOCH + timedelta(days=rng.randint(0, 60) + 90 * o)
            offering_list.append(
                Offering(
                    offering_id=f"{course.course_id}-o{o + 1}",
                    course_id=course.course_id,
                    starts_at=starts,
                    ends_at=starts + timedelta(weeks=rng.choice((4, 6, 8))),
                    capacity=rng.choice((50, 100, 200)),
                    pass_mark=0.7,
                    modality=rng.choice(("SELF_PACED", "TUTORED")),
                )
            )

    firm_list: list[Firm] = []
    for f in range(n_firms):
        country = rng.choices(MEMBER_STATES, weights=_COUNTRY_WEIGHTS)[0]
        firm_list.append(
            Firm(
                org_id=f"firm-{f + 1}",
                tax_id=f"{country}{rng.randint(10**9, 10**10 - 1)}",
                name=f"{rng.choice(_LAST)} {rng.choice(('S.A.', 'Ltda.', 'S.R.L.', 'SpA'))} {f + 1}",
                country=country,
                org_type=rng.choices(
                    ("FIRM", "TPO_AGENCY", "CHAMBER", "SECTOR_ASSOC"), weights=(85, 5, 6, 4)
                )[0],
                size_band=rng.choices(("MICRO", "SMALL", "MEDIUM", "LARGE"), weights=(45, 30, 18, 7))[0],
                isic_rev4=f"{rng.randint(1, 96):02d}",
                hs_chapters=sorted({f"{rng.randint(1, 97):02d}" for _ in range(rng.randint(1, 3))}),
                exporter_status=rng.choice(("NON_EXPORTER", "OCCASIONAL", "REGULAR", "UNKNOWN")),
                women_led=rng.choice((True, False, None)),
                registered_at=EPOCH + timedelta(days=rng.randint(0, 300), minutes=rng.randint(0, 1440)),
            )
        )

    learner_list: list[Learner] = []
    for i in range(n_learners):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        firm = rng.choice(firm_list) if firm_list and rng.random() < 0.5 else None
        learner_list.append(
            Learner(
                learner_id=1000 + i,
                email=f"{first.lower()}.{last.lower()}{i}@example.org",
                name=f"{first} {last}",
                country=firm.country if firm else rng.choices(MEMBER_STATES, weights=_COUNTRY_WEIGHTS)[0],
                audience=rng.choices(ART7_AUDIENCES + OTHER_AUDIENCES, weights=_AUDIENCE_WEIGHTS)[0],
                gender=rng.choices(("F", "M", "OTHER", "NOT_STATED"), weights=(48, 46, 1, 5))[0],
                org_id=firm.org_id if firm else None,
            )
        )

    enrolment_list: list[Enrolment] = []
    for learner in learner_list:
        for offering in rng.sample(offering_list, k=min(len(offering_list), rng.choice((1, 1, 2, 3)))):
            enrolled = offering.starts_at - timedelta(days=rng.randint(0, 20), minutes=rng.randint(0, 1440))
            enrolment = Enrolment(
                enrolment_id=f"enr-{learner.learner_id}-{offering.offering_id}",
                learner_id=learner.learner_id,
                offering_id=offering.offering_id,
                enrolled_at=enrolled,
            )
            enrolment_list.append(enrolment)
            if rng.random() < 0.12:
                enrolment.withdrawn_at = enrolled + timedelta(days=rng.randint(1, 30))
                continue
            span_s = int((offering.ends_at - offering.starts_at).total_seconds())
            pct = 0.0
            for step in range(rng.randint(1, 4)):
                pct = min(1.0, pct + rng.uniform(0.1, 0.4))
                at = offering.starts_at + timedelta(seconds=span_s * (step + 1) // 6 + rng.randint(0, 3600))
                enrolment.progress.append((at, round(pct, 2)))
            gain_measured = tests_rng.random() < 0.5
            if gain_measured:
                first_progress = enrolment.progress[0][0]
                pre = round(tests_rng.uniform(0.1, 0.7), 2)
                enrolment.pre_test = (first_progress - timedelta(minutes=tests_rng.randint(5, 120)), pre)
            if rng.random() < 0.65:
                score = round(rng.uniform(0.4, 1.0), 2)
                passed = score >= offering.pass_mark
                submitted = offering.ends_at - timedelta(days=rng.randint(0, 5), minutes=rng.randint(1, 600))
                enrolment.assessment = (submitted, score, passed)
                if enrolment.pre_test is not None:
                    post = min(1.0, round(enrolment.pre_test[1] + tests_rng.uniform(-0.05, 0.45), 2))
                    enrolment.post_test = (submitted - timedelta(hours=tests_rng.randint(2, 48)), post)
                if passed:
                    enrolment.completed_at = submitted + timedelta(minutes=rng.randint(1, 120))
                    course = next(c for c in course_list if c.course_id == offering.course_id)
                    if course.certified:
                        enrolment.certificate = (
                            f"cert-{len(enrolment_list)}-{rng.randint(1000, 9999)}",
                            enrolment.completed_at + timedelta(hours=rng.randint(1, 48)),
                        )

    authorisations = [
        Authorisation(
            consent_id=f"consent-{firm.org_id}",
            org_id=firm.org_id,
            recipients=["ALL_MEMBERS"] if rng.random() < 0.6 else rng.sample(MEMBER_STATES, k=3),
            granted_at=firm.registered_at + timedelta(days=rng.randint(0, 10)),
            withdrawn_at=firm.registered_at + timedelta(days=rng.randint(30, 200))
            if rng.random() < 0.1
            else None,
        )
        for firm in firm_list
        if rng.random() < 0.7
    ]
    opportunities = [
        Opportunity(
            opp_id=f"opp-{i + 1}",
            org_id=firm.org_id,
            kind=rng.choice(("OFFER", "DEMAND")),
            hs_code=f"{rng.choice(firm.hs_chapters)}{rng.randint(10, 99)}",
            target_countries=rng.sample(MEMBER_STATES, k=rng.randint(1, 4)),
            published_at=firm.registered_at + timedelta(days=rng.randint(1, 60)),
        )
        for i, firm in enumerate(rng.sample(firm_list, k=len(firm_list) // 2))
    ]
    contacts: list[Contact] = []
    for i in range(len(opportunities)):
        opp = opportunities[i]
        sender = rng.choice(firm_list)
        if sender.org_id == opp.org_id:
            continue
        requested = opp.published_at + timedelta(days=rng.randint(1, 30))
        contacts.append(
            Contact(
                request_id=f"contact-{i + 1}",
                from_org=sender.org_id,
                to_org=opp.org_id,
                opp_id=opp.opp_id,
                requested_at=requested,
                responded_at=requested + timedelta(days=rng.randint(0, 7)) if rng.random() < 0.6 else None,
            )
        )

    activities: list[Activity] = []
    meetings: list[Meeting] = []
    deals: list[Deal] = []
    for a in range(max(1, n_firms // 40)):
        starts = EPOCH + timedelta(days=120 + 90 * a)
        activity = Activity(
            activity_id=f"round-{a + 1}",
            kind=rng.choice(("BUSINESS_ROUND", "MACRO_ROUND_EXPO", "TRADE_FAIR")),
            host_country=rng.choice(MEMBER_STATES),
            starts_at=starts,
            ends_at=starts + timedelta(days=2),
        )
        activities.append(activity)
        registered = rng.sample(firm_list, k=min(len(firm_list), 20))
        activity.participants = [
            (firm.org_id, rng.choice(("BUYER", "SELLER", "BOTH"))) for firm in registered
        ]
        for m in range(len(registered) // 2):
            a_firm, b_firm = registered[2 * m], registered[2 * m + 1]
            status = rng.choices(("HELD", "NO_SHOW", "SCHEDULED"), weights=(75, 15, 10))[0]
            meeting = Meeting(
                meeting_id=f"{activity.activity_id}-m{m + 1}",
                activity_id=activity.activity_id,
                org_a=a_firm.org_id,
                org_b=b_firm.org_id,
                slot_at=starts + timedelta(minutes=30 * m),
                status=status,
            )
            meetings.append(meeting)
            if status != "HELD":
                continue
            meeting.expected_usd = Decimal(rng.randint(5, 200) * 1000)
            meeting.horizon = rng.choice(("IMMEDIATE", "M3", "M6", "M12"))
            if rng.random() < 0.35:
                amount, currency, usd = _money(rng, a_firm.country, 2_000, 150_000)
                deals.append(
                    Deal(
                        deal_id=f"deal-{meeting.meeting_id}",
                        meeting_id=meeting.meeting_id,
                        activity_id=activity.activity_id,
                        org_id=a_firm.org_id,
                        counterpart_country=b_firm.country,
                        hs_code=f"{rng.choice(a_firm.hs_chapters)}{rng.randint(10, 99)}",
                        wave=rng.choice(("M3", "M6", "M12")),
                        amount=amount,
                        currency=currency,
                        usd_amount=usd,
                        attribution_pct=rng.choice((25, 50, 75, 100)),
                        confidence_pct=rng.choice((50, 75, 100)),
                        additionality=rng.choice(("NONE", "PARTIAL_SCALE", "PARTIAL_TIMING", "FULL")),
                        reported_at=activity.ends_at + timedelta(days=rng.randint(80, 200)),
                    )
                )

    costs: list[Cost] = []
    targets: list[Activity | Offering] = [*activities, *offering_list]
    for target in targets:
        is_activity = isinstance(target, Activity)
        country = target.host_country if isinstance(target, Activity) else "UY"
        for category in rng.sample(_COST_CATEGORIES, k=rng.randint(2, 4)):
            amount, currency, usd = _money(rng, country, 500, 40_000 if is_activity else 8_000)
            costs.append(
                Cost(
                    cost_id=f"cost-{len(costs) + 1}",
                    activity_id=target.activity_id if isinstance(target, Activity) else None,
                    offering_id=target.offering_id if isinstance(target, Offering) else None,
                    category=category,
                    amount=amount,
                    currency=currency,
                    usd_amount=usd,
                    recorded_at=target.starts_at + timedelta(days=rng.randint(-30, 30)),
                )
            )

    return World(
        seed=seed,
        courses=course_list,
        offerings=offering_list,
        learners=learner_list,
        enrolments=enrolment_list,
        firms=firm_list,
        authorisations=authorisations,
        opportunities=opportunities,
        contacts=contacts,
        activities=activities,
        meetings=meetings,
        deals=deals,
        costs=costs,
    )
