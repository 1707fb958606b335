"""Event streams for processor tests, a naive reference computation, and broker/store helpers."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from aiokafka import TopicPartition

from infra.kafka import make_consumer, make_producer
from infra.settings import Settings
from processors.base import PartKey, dims_key, periods
from processors.cells import cell_parts
from processors.indicators import contributions
from processors.indicators.base import Part
from schemas.cloudevents import KafkaRecord, encode
from schemas.events.base import Event, EventRetracted
from schemas.events.plgn import Wave
from schemas.topics import TopicCatalogue
from tests.schemas.factories import (
    make_certificate_issued,
    make_cost_recorded,
    make_deal_reported,
    make_enrolment_completed,
    make_enrolment_created,
    make_finance_event_retracted,
    make_meeting_held,
    make_plgn_event_retracted,
    make_progress_recorded,
    make_training_event_retracted,
    money,
    org_key,
    person_key,
)

START = datetime(2025, 1, 1, tzinfo=UTC)
COUNTRIES = ("AR", "BR", "UY", "MX")

Contribute = Callable[[Event], list[Part]]


def random_stream(
    count: int,
    *,
    seed: int = 7,
    retract_share: float = 0.06,
    duplicate_share: float = 0.08,
) -> list[Event]:
    """A shuffled-in-time stream of `count` distinct events of several families and part kinds, plus
    retractions (some placed before the event they retract) and duplicates (same event id again)."""
    rng = random.Random(seed)
    events: list[Event] = []
    enrolments: list[tuple[str, str]] = []
    for i in range(count):
        at = START + timedelta(days=rng.randrange(540), seconds=rng.randrange(86_400))
        learner = person_key(f"l{rng.randrange(60)}")
        country = rng.choice(COUNTRIES)
        kind = rng.random()
        rid = f"r{i}"
        event: Event
        if kind < 0.30 or not enrolments:
            enrolment = f"e{i}"
            enrolments.append((enrolment, learner))
            event = make_enrolment_created(
                record_identity=rid,
                occurred_at=at,
                enrolled_at=at,
                subject_key=learner,
                enrolment_id=enrolment,
                course_id=f"course-{rng.randrange(3)}",
                offering_id=f"offering-{rng.randrange(4)}",
                country=country,
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
                certificate_id=f"cert-{enrolment}",
            )
        elif kind < 0.62:
            enrolment, learner = rng.choice(enrolments)
            event = make_progress_recorded(
                record_identity=rid, occurred_at=at, subject_key=learner, enrolment_id=enrolment
            )
        elif kind < 0.75:
            event = make_cost_recorded(
                record_identity=rid,
                occurred_at=at,
                cost_id=f"cost-{i}",
                activity_id=f"round-{rng.randrange(3)}",
                money=money(f"{rng.randrange(1, 50_000)}.{rng.randrange(100):02d}"),
            )
        elif kind < 0.88:
            deal = rng.randrange(25)
            event = make_deal_reported(
                record_identity=rid,
                occurred_at=START + timedelta(days=30 * (deal % 12), seconds=rng.randrange(3600)),
                deal_id=f"deal-{deal}",
                org_key=org_key(f"firm-{deal % 7}"),
                wave=rng.choice(list(Wave)),
                realised_value_cumulative=money(f"{rng.randrange(1, 90_000)}.00"),
                country=country,
            )
        else:
            event = make_meeting_held(
                record_identity=rid,
                occurred_at=at,
                slot_at=at,
                meeting_id=f"meeting-{i}",
                activity_id=f"round-{rng.randrange(3)}",
                org_a_key=org_key(f"firm-{rng.randrange(9)}"),
                org_b_key=org_key(f"firm-{9 + rng.randrange(9)}"),
                country=country,
            )
        events.append(event)
    stream: list[Event] = list(events)
    for n, target in enumerate(rng.sample(events, int(count * retract_share))):
        retraction = _retraction_of(target, f"x{n}")
        # A third of the retractions travel ahead of the event they retract.
        low = 0 if n % 3 == 0 else stream.index(target) + 1
        stream.insert(rng.randint(low, len(stream)), retraction)
    for event in rng.sample(stream, int(count * duplicate_share)):
        stream.insert(rng.randint(0, len(stream)), event)
    return stream


def _retraction_of(event: Event, rid: str) -> EventRetracted:
    fields: dict[str, Any] = {
        "record_identity": rid,
        "source": event.source,
        "source_ref": f"{event.source_ref}-deleted",
        "subject_key": event.subject_key,
        "retracted_event_id": event.event_id,
        "occurred_at": event.occurred_at,
    }
    if event.family == "training":
        return make_training_event_retracted(**fields)
    if event.family == "plgn":
        return make_plgn_event_retracted(**fields)
    return make_finance_event_retracted(**fields)


def naive_parts(
    events: Iterable[Event], contribute: Contribute = contributions
) -> dict[PartKey, tuple[str, Decimal, int]]:
    """The parts the store must hold for `events`, computed the obvious way: distinct event ids,
    retracted events left out, then sums, distinct member sets and latest reports per member."""
    distinct: dict[Any, Event] = {}
    for event in events:
        distinct.setdefault(event.event_id, event)
    retracted = {e.retracted_event_id for e in distinct.values() if isinstance(e, EventRetracted)}
    kinds: dict[PartKey, str] = {}
    sums: dict[PartKey, list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    members: dict[PartKey, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reports: dict[PartKey, dict[str, list[tuple[str, Any, Decimal]]]] = defaultdict(lambda: defaultdict(list))
    for event in distinct.values():
        if isinstance(event, EventRetracted) or event.event_id in retracted:
            continue
        for part in contribute(event):
            for period_kind, start in periods(part.occurred_at):
                key: PartKey = (part.indicator, period_kind, start, dims_key(part.dimensions), part.part)
                kinds[key] = part.kind
                if part.kind == "sum":
                    sums[key][0] += part.amount
                    sums[key][1] += 1
                elif part.kind == "distinct":
                    members[key][part.member or ""] += 1
                else:
                    reports[key][part.member or ""].append((part.order_key, event.event_id, part.amount))
    expected: dict[PartKey, tuple[str, Decimal, int]] = {}
    for key, (amount, count) in sums.items():
        expected[key] = ("sum", amount, count)
    for key, counted in members.items():
        expected[key] = ("distinct", Decimal(len(counted)), sum(counted.values()))
    for key, by_member in reports.items():
        value = sum((max(found)[2] for found in by_member.values()), Decimal(0))
        expected[key] = ("latest", value, sum(len(found) for found in by_member.values()))
    return expected


def normalise(parts: dict[PartKey, tuple[str, Decimal, int]]) -> dict[PartKey, tuple[str, Decimal, int]]:
    """Parts with values normalised, so 1.50 and 1.5 compare equal in assertion diffs."""
    return {key: (kind, value.normalize() + 0, count) for key, (kind, value, count) in parts.items()}


async def stored_parts(pool: asyncpg.Pool) -> dict[PartKey, tuple[str, Decimal, int]]:
    return normalise(await cell_parts(pool))


def records_for(settings: Settings, events: Sequence[Event]) -> list[tuple[str, KafkaRecord]]:
    catalogue = TopicCatalogue.from_settings(settings)
    return [(catalogue.topic_for(event).name, encode(event)) for event in events]


async def produce(settings: Settings, records: Sequence[tuple[str, KafkaRecord]]) -> None:
    """Produce records (topic, record) and wait for every acknowledgement."""
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=record.key, value=record.value, headers=record.headers)
            for topic, record in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(
    settings: Settings, topic: str, partitions: int, expected: int, timeout_s: float = 15.0
) -> list[Any]:
    """Read at least `expected` records of `topic` from the beginning (or whatever came in time)."""
    consumer = make_consumer(settings.kafka, group_id=None)
    await consumer.start()
    found: list[Any] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found.extend(records)
    finally:
        await consumer.stop()
    return found
