"""The benchmark's stream: N distinct events of a realistic mix, with retractions and duplicates."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2025, 1, 1, tzinfo=UTC)
FUTURE_ALLOWANCE_S = 5 * 365 * 86_400


def generate(count: int, seed: int) -> list[Any]:
    """`count` distinct events plus ~1 % retractions and ~2 % duplicates, in a shuffled-in-time order."""
    from schemas.events.base import Event
    from schemas.events.plgn import Wave
    from tests.schemas.factories import (
        make_certificate_issued,
        make_cost_recorded,
        make_deal_reported,
        make_enrolment_completed,
        make_enrolment_created,
        make_meeting_held,
        make_progress_recorded,
        make_training_event_retracted,
        money,
        org_key,
        person_key,
    )

    rng = random.Random(seed)
    learners = [person_key(f"l{i}") for i in range(max(100, count // 10))]
    firms = [org_key(f"f{i}") for i in range(max(20, count // 200))]
    countries = ("AR", "BO", "BR", "CL", "CO", "MX", "PE", "UY")
    enrolments: list[tuple[str, str]] = []
    stream: list[Any] = []
    for i in range(count):
        at = START + timedelta(days=rng.randrange(720), seconds=rng.randrange(86_400))
        kind = rng.random()
        rid = f"b{i}"
        event: Event
        if kind < 0.30 or not enrolments:
            learner = rng.choice(learners)
            offering = rng.randrange(120)
            enrolments.append((f"e{i}", learner))
            event = make_enrolment_created(
                record_identity=rid,
                occurred_at=at,
                enrolled_at=at,
                subject_key=learner,
                enrolment_id=f"e{i}",
                # 120 offerings (cohorts) of 40 courses: each offering belongs to one course.
                course_id=f"course-{offering % 40}",
                offering_id=f"offering-{offering}",
                country=rng.choice(countries),
            )
        elif kind < 0.42:
            enrolment, learner = rng.choice(enrolments)
            event = make_enrolment_completed(
                record_identity=rid,
                occurred_at=at,
                completed_at=at,
                subject_key=learner,
                enrolment_id=enrolment,
            )
        elif kind < 0.50:
            enrolment, learner = rng.choice(enrolments)
            event = make_certificate_issued(
                record_identity=rid,
                occurred_at=at,
                issued_at=at,
                subject_key=learner,
                enrolment_id=enrolment,
                certificate_id=f"c-{enrolment}",
            )
        elif kind < 0.70:
            enrolment, learner = rng.choice(enrolments)
            event = make_progress_recorded(
                record_identity=rid, occurred_at=at, subject_key=learner, enrolment_id=enrolment
            )
        elif kind < 0.80:
            event = make_cost_recorded(
                record_identity=rid,
                occurred_at=at,
                cost_id=f"cost-{i}",
                activity_id=f"round-{rng.randrange(30)}",
                money=money(f"{rng.randrange(1, 50_000)}.00"),
            )
        elif kind < 0.90:
            deal = rng.randrange(max(50, count // 50))
            event = make_deal_reported(
                record_identity=rid,
                occurred_at=at,
                deal_id=f"deal-{deal}",
                org_key=firms[deal % len(firms)],
                wave=rng.choice(list(Wave)),
                realised_value_cumulative=money(f"{rng.randrange(1, 90_000)}.00"),
            )
        else:
            event = make_meeting_held(
                record_identity=rid,
                occurred_at=at,
                slot_at=at,
                meeting_id=f"m{i}",
                activity_id=f"round-{rng.randrange(30)}",
                org_a_key=rng.choice(firms),
                org_b_key=rng.choice(firms),
                country=rng.choice(countries),
            )
        stream.append(event)
        if rng.random() < 0.01 and event.family == "training":
            stream.append(
                make_training_event_retracted(
                    record_identity=f"x{i}",
                    source=event.source,
                    source_ref=f"{event.source_ref}-deleted",
                    subject_key=event.subject_key,
                    retracted_event_id=event.event_id,
                    occurred_at=at,
                )
            )
        if rng.random() < 0.02:
            stream.append(rng.choice(stream))
    return stream
