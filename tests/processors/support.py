"""Event streams for processor tests, a naive reference computation, and broker/store helpers."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import asyncpg
from aiokafka import TopicPartition

from benchmarks.processors.stream import Shape, distinct_events
from infra.kafka import make_consumer, make_producer
from infra.settings import Settings
from processors.base import PartKey, dims_key, periods
from processors.cell_values import apply_noted_changes, kept_values_usable
from processors.cells import cell_parts, relayed_parts
from processors.indicators import contributions
from processors.indicators.base import Part
from schemas.cloudevents import KafkaRecord, encode
from schemas.events.base import Event, EventRetracted
from schemas.topics import TopicCatalogue
from tests.schemas.factories import (
    make_finance_event_retracted,
    make_plgn_event_retracted,
    make_training_event_retracted,
)

COUNTRIES = ("AR", "BR", "UY", "MX")
# Few learners, firms, courses and rounds, so cells are dense: retractions, duplicates and later reports
# of one deal land on cells other events share.
DENSE = Shape(
    days=540,
    learners=60,
    firms=18,
    offerings=4,
    courses=3,
    activities=3,
    deals=25,
    countries=COUNTRIES,
    cents=True,
)

Contribute = Callable[[Event], list[Part]]


def random_stream(
    count: int,
    *,
    seed: int = 7,
    retract_share: float = 0.06,
    duplicate_share: float = 0.08,
) -> list[Event]:
    """A shuffled-in-time stream of `count` distinct events of several families and part kinds (the
    benchmark's mix on a dense shape), plus retractions (some placed before the event they retract) and
    duplicates (same event id again)."""
    rng = random.Random(seed)
    events = list(distinct_events(rng, count, DENSE))
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
        # An event reporting one member twice in a cell is one report.
        reported = sum(len({event_id for _, event_id, _ in found}) for found in by_member.values())
        expected[key] = ("latest", value, reported)
    return expected


def normalise(parts: dict[PartKey, tuple[str, Decimal, int]]) -> dict[PartKey, tuple[str, Decimal, int]]:
    """Parts with values normalised, so 1.50 and 1.5 compare equal in assertion diffs."""
    return {key: (kind, value.normalize() + 0, count) for key, (kind, value, count) in parts.items()}


async def stored_parts(pool: asyncpg.Pool) -> dict[PartKey, tuple[str, Decimal, int]]:
    """Every cell's parts merged from the month rows, checked equal to the values the relay reads."""
    merged = await cell_parts(pool)
    await assert_kept_values_agree(pool, merged)
    return normalise(merged)


async def assert_kept_values_agree(
    pool: asyncpg.Pool, merged: dict[PartKey, tuple[str, Decimal, int]] | None = None
) -> None:
    """The values kept per cell (`processors.cell_values`), as the relay reads them, equal the merge of
    the month rows for every cell either holds."""
    if not await kept_values_usable(pool):
        return  # batches ran without them (`processor.cell_values` off): nothing kept to compare
    async with pool.acquire() as connection, connection.transaction():
        await apply_noted_changes(connection)  # what the relay does before it reads cells
    if merged is None:
        merged = await cell_parts(pool)
    kept_cells = await pool.fetch(
        "SELECT DISTINCT indicator, period_kind, period_start, dims FROM indicator_cell_value"
    )
    cells = {key[:4] for key in merged} | {(r[0], r[1], r[2], r[3]) for r in kept_cells}
    assert await relayed_parts(pool, cells) == {key: value for key, (_, value, _) in merged.items()}


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
