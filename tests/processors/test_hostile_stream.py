"""Ten thousand hostile records among valid ones: each dead-lettered once with a reason, each valid one
counted once, and the processors never stop."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from infra.kafka import read_topic_to_end
from infra.settings import Settings
from schemas.cloudevents import KafkaRecord, encode
from schemas.topics import TopicCatalogue
from tests.processors.support import naive_parts, normalise, produce, random_stream, records_for, stored_parts
from tests.processors.test_runtime import process_all
from tests.schemas.factories import make_cost_recorded

HOSTILE = 10_000
# A field of every event and a value its type never admits.
WRONG_VALUES: list[tuple[str, object]] = [
    ("event_id", "not-a-uuid"),
    ("event_id", None),
    ("occurred_at", "yesterday"),
    ("occurred_at", 5),
    ("event_type", "nope"),
    ("event_type", ["finance.cost.recorded"]),
]
Hostile = Callable[[random.Random, int], tuple[str, KafkaRecord]]


def _template(settings: Settings, n: int) -> tuple[str, KafkaRecord]:
    cost = make_cost_recorded(record_identity=f"hostile-{n}", cost_id=f"hostile-{n}")
    return TopicCatalogue.from_settings(settings).finance.name, encode(cost)


def hostile_kinds(settings: Settings) -> list[Hostile]:
    """Each builds one bad record (topic, record) that no processor may turn into a fact."""
    catalogue = TopicCatalogue.from_settings(settings)

    def garbage(rng: random.Random, n: int) -> tuple[str, KafkaRecord]:
        topic, record = _template(settings, n)
        return topic, KafkaRecord(record.key, rng.randbytes(rng.randint(0, 300)), record.headers)

    def truncated(rng: random.Random, n: int) -> tuple[str, KafkaRecord]:
        topic, record = _template(settings, n)
        assert record.value is not None
        return topic, KafkaRecord(
            record.key, record.value[: rng.randint(0, len(record.value) - 1)], record.headers
        )

    def wrong_shape(rng: random.Random, n: int) -> tuple[str, KafkaRecord]:
        topic, record = _template(settings, n)
        return topic, KafkaRecord(
            record.key, rng.choice([b"{}", b"[]", b'"x"', b"1", b"null", b"NaN"]), record.headers
        )

    def wrong_types(rng: random.Random, n: int) -> tuple[str, KafkaRecord]:
        topic, record = _template(settings, n)
        assert record.value is not None
        body = json.loads(record.value)
        field, value = rng.choice(WRONG_VALUES)
        body[field] = value
        return topic, KafkaRecord(record.key, json.dumps(body).encode(), record.headers)

    def missing_headers(rng: random.Random, n: int) -> tuple[str, KafkaRecord]:
        topic, record = _template(settings, n)
        dropped = rng.choice(["ce_type", "ce_id", "ce_specversion", "ce_source"])
        kept = [h for h in record.headers if h[0] != dropped]
        return topic, KafkaRecord(record.key, record.value, kept)

    def inflated_headers(rng: random.Random, n: int) -> tuple[str, KafkaRecord]:
        topic, record = _template(settings, n)
        return topic, KafkaRecord(record.key, b"{", [*record.headers, ("junk", b"j" * 20_000)])

    def wrong_topic(rng: random.Random, n: int) -> tuple[str, KafkaRecord]:
        _, record = _template(settings, n)
        return rng.choice([catalogue.training.name, catalogue.plgn.name]), record

    def implausible_date(rng: random.Random, n: int) -> tuple[str, KafkaRecord]:
        year = rng.choice([1, 1970, 1999, 3000, 9999])
        cost = make_cost_recorded(
            record_identity=f"dated-{n}", cost_id=f"dated-{n}", occurred_at=datetime(year, 6, 1, tzinfo=UTC)
        )
        return catalogue.finance.name, encode(cost)

    def empty(rng: random.Random, n: int) -> tuple[str, KafkaRecord]:
        topic, record = _template(settings, n)
        return topic, KafkaRecord(record.key, rng.choice([b"", None]), record.headers)

    return [
        garbage,
        truncated,
        wrong_shape,
        wrong_types,
        missing_headers,
        inflated_headers,
        wrong_topic,
        implausible_date,
        empty,
    ]


async def test_ten_thousand_hostile_records_are_each_dead_lettered_once_and_the_valid_ones_counted_once(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    rng = random.Random(18)
    kinds = hostile_kinds(settings)
    valid_events = random_stream(2_000, seed=18)
    valid = records_for(settings, valid_events)
    bad = [rng.choice(kinds)(rng, n) for n in range(HOSTILE)]
    # A few records just under the broker's limit, too large to dead-letter whole.
    big_topic, big = _template(settings, -1)
    bad += [(big_topic, KafkaRecord(big.key, b"{" + b" " * 900_000, big.headers)) for _ in range(5)]
    mixed = [*valid, *bad]
    rng.shuffle(mixed)
    await produce(settings, mixed)

    processor = await process_all(settings, pg_pool, len(mixed))

    assert processor.stats.dead_lettered == len(bad)
    assert await stored_parts(pg_pool) == normalise(naive_parts(valid_events))
    catalogue = TopicCatalogue.from_settings(settings)
    dead = [
        record
        for spec in catalogue.input_topics()
        for record in await read_topic_to_end(settings.kafka, catalogue.dead_letter(spec).name, timeout_s=60)
    ]
    sources = Counter(
        (h["dlq_source_topic"], h["dlq_source_partition"], h["dlq_source_offset"])
        for h in (dict(record.headers) for record in dead)
    )
    assert len(dead) == len(bad) and set(sources.values()) == {1}, (
        "each bad record dead-lettered exactly once"
    )
    assert all(dict(record.headers)["dlq_reason"] for record in dead)
