"""A record too large to dead-letter whole is summarised, and the partition moves on."""

from __future__ import annotations

import hashlib
import json

import asyncpg

from infra.dead_letters import DEAD_LETTER_MAX_BYTES, KEY_MAX_BYTES, bound_dead_letter
from infra.kafka import make_producer, read_topic_to_end
from infra.settings import Settings
from schemas.cloudevents import encode
from schemas.topics import TopicCatalogue
from tests.processors.test_runtime import process_all
from tests.schemas.factories import make_cost_recorded

# The size of the record that used to crash-loop every processor: just under the broker's 1 MiB.
POISON_BYTES = 1_048_300


async def test_a_record_of_about_one_mib_is_dead_lettered_as_a_summary_and_the_partition_moves_on(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    catalogue = TopicCatalogue.from_settings(settings)
    topic = catalogue.finance.name
    before, after = (make_cost_recorded(record_identity=f"good-{n}", cost_id=f"cost-{n}") for n in (1, 2))
    opening = b'{"event_type": "finance.cost.recorded", "padding": "'
    poison = opening + b"x" * (POISON_BYTES - len(opening) - 2) + b'"}'
    assert len(poison) == POISON_BYTES
    # A careless or hostile producer, allowed larger requests than alcance's own.
    producer = make_producer(settings.kafka, max_request_size=2 * 1024 * 1024)
    await producer.start()
    try:
        # One key: the three records land in one partition, in this order.
        key = encode(before).key
        for value, headers in (
            (encode(before).value, encode(before).headers),
            (poison, []),
            (encode(after).value, encode(after).headers),
        ):
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()

    processor = await process_all(settings, pg_pool, 3)
    assert processor.stats.dead_lettered == 1
    assert await pg_pool.fetchval("SELECT count(*) FROM fact") == 2
    (dead,) = await read_topic_to_end(settings.kafka, catalogue.dead_letter(catalogue.finance).name)
    headers = dict(dead.headers)
    assert headers["dlq_value"] == b"summary"
    assert headers["dlq_source_offset"] == b"1"
    assert json.loads(dead.value) == {
        "size_bytes": POISON_BYTES,
        "sha256": hashlib.sha256(poison).hexdigest(),
    }


def test_a_record_that_fits_is_dead_lettered_whole_with_its_own_headers() -> None:
    letter = bound_dead_letter(b"{}", b"k", [("ce_id", b"1")], [("dlq_reason", b"bad")])
    assert (letter.value, letter.key) == (b"{}", b"k")
    assert letter.headers == [("ce_id", b"1"), ("dlq_reason", b"bad"), ("dlq_value", b"record")]


def test_inflated_headers_and_keys_are_dropped_or_hashed_and_the_value_summarised() -> None:
    huge_key = b"k" * (KEY_MAX_BYTES + 1)
    letter = bound_dead_letter(
        b"v" * (DEAD_LETTER_MAX_BYTES + 1), huge_key, [("junk", b"j" * 20_000)], [("dlq_reason", b"bad")]
    )
    assert letter.key == hashlib.sha256(huge_key).hexdigest().encode()
    names = [name for name, _ in letter.headers]
    assert "junk" not in names and ("dlq_headers_dropped", b"20004") in letter.headers
    assert letter.value is not None and len(letter.value) < 200
    assert ("dlq_value", b"summary") in letter.headers
