"""The evaluation store: exact, idempotent application of facts, retractions and offsets."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg

from processors.base import FactIn
from processors.cells import cell_parts
from processors.deltas import expected_deltas
from processors.indicators.base import Part
from processors.store import Store

AT = datetime(2026, 5, 10, 12, tzinfo=UTC)
DIMS = {"country": "UY"}
TOPIC = "events"


def fact(
    parts: list[Part], *, event_id: uuid.UUID | None = None, retracts: uuid.UUID | None = None
) -> FactIn:
    return FactIn(
        event_id=event_id or uuid.uuid4(),
        event_type="test.retracted" if retracts else "test.event",
        occurred_at=AT,
        subject_key="s",
        source="test",
        payload="{}",
        parts=parts,
        retracts=retracts,
        topic=TOPIC,
        partition=0,
        offset=0,
    )


def total(amount: str) -> Part:
    return Part("T-01", "total", "sum", AT, DIMS, amount=Decimal(amount))


def learner(member: str) -> Part:
    return Part("T-02", "learners", "distinct", AT, DIMS, member=member)


def deal(member: str, order_key: str, amount: str) -> Part:
    return Part(
        "T-03", "deals", "latest", AT, DIMS, amount=Decimal(amount), member=member, order_key=order_key
    )


async def new_store(pool: asyncpg.Pool) -> tuple[Store, dict[tuple[str, int], tuple[int, int]]]:
    store = Store(pool, log_identity="log-a", consumer_group="g")
    claims = await store.claim_partitions([(TOPIC, 0)])
    return store, claims


async def apply(store: Store, position: dict[tuple[str, int], tuple[int, int]], *facts: FactIn) -> None:
    (next_offset, epoch) = position[(TOPIC, 0)]
    outcome = await store.commit_batch({(TOPIC, 0): (next_offset + 1, epoch)}, list(facts))
    assert not outcome.lost
    position[(TOPIC, 0)] = (next_offset + 1, epoch)


async def month_value(pool: asyncpg.Pool, indicator: str) -> Decimal | None:
    values = [
        value
        for key, (_, value, _) in (await cell_parts(pool)).items()
        if key[0] == indicator and key[1] == "month"
    ]
    assert len(values) <= 1
    return values[0] if values else None


async def test_a_duplicate_event_id_contributes_nothing(pg_pool: asyncpg.Pool) -> None:
    store, position = await new_store(pg_pool)
    first = fact([total("10.5"), learner("a")])
    await apply(store, position, first, fact(first.parts, event_id=first.event_id))
    await apply(store, position, fact(first.parts, event_id=first.event_id))
    assert await month_value(pg_pool, "T-01") == Decimal("10.5")
    assert await month_value(pg_pool, "T-02") == 1
    assert await pg_pool.fetchval("SELECT count(*) FROM fact") == 1


async def test_a_part_is_stored_once_in_its_month_and_read_into_its_quarter_and_year(
    pg_pool: asyncpg.Pool,
) -> None:
    store, position = await new_store(pg_pool)
    await apply(store, position, fact([total("2")]), fact([total("3")]))
    rows = await pg_pool.fetch("SELECT period_kind, period_start, value FROM indicator_part")
    assert [(r[0], r[1], r[2]) for r in rows] == [("month", date(2026, 5, 1), Decimal(5))]
    values = {(key[1], key[2]): value for key, (_, value, _) in (await cell_parts(pg_pool)).items()}
    assert values == {
        ("month", date(2026, 5, 1)): Decimal(5),
        ("quarter", date(2026, 4, 1)): Decimal(5),
        ("year", date(2026, 1, 1)): Decimal(5),
    }


async def test_a_quarter_merges_its_months_sums_add_members_unite_latest_reports_compete(
    pg_pool: asyncpg.Pool,
) -> None:
    store, position = await new_store(pg_pool)
    april, may = datetime(2026, 4, 3, tzinfo=UTC), datetime(2026, 5, 20, tzinfo=UTC)

    def parts(at: datetime, amount: str, order_key: str) -> list[Part]:
        return [
            Part("T-01", "total", "sum", at, DIMS, amount=Decimal(amount)),
            Part("T-02", "learners", "distinct", at, DIMS, member="a"),
            Part("T-03", "deals", "latest", at, DIMS, Decimal(amount), member="d", order_key=order_key),
        ]

    await apply(store, position, fact(parts(april, "4", "2")), fact(parts(may, "6", "1")))
    stored = await cell_parts(pg_pool)
    quarter = {key[0]: (value, count) for key, (_, value, count) in stored.items() if key[1] == "quarter"}
    # Sum: 4 + 6 from two events; one learner with two references; the deal's report ordered last
    # (April's "2" beats May's "1") wins, backed by two reports.
    assert quarter == {"T-01": (Decimal(10), 2), "T-02": (Decimal(1), 2), "T-03": (Decimal(4), 2)}
    months = {(key[0], key[2]): value for key, (_, value, _) in stored.items() if key[1] == "month"}
    assert months[("T-03", date(2026, 4, 1))] == Decimal(4)
    assert months[("T-03", date(2026, 5, 1))] == Decimal(6)


async def test_a_distinct_member_counts_once_until_all_its_events_are_retracted(
    pg_pool: asyncpg.Pool,
) -> None:
    store, position = await new_store(pg_pool)
    one, two = fact([learner("a")]), fact([learner("a")])
    await apply(store, position, one, two, fact([learner("b")]))
    assert await month_value(pg_pool, "T-02") == 2
    await apply(store, position, fact([], retracts=one.event_id))
    assert await month_value(pg_pool, "T-02") == 2
    await apply(store, position, fact([], retracts=two.event_id))
    assert await month_value(pg_pool, "T-02") == 1


async def test_a_retraction_after_the_event_negates_exactly_its_parts(pg_pool: asyncpg.Pool) -> None:
    store, position = await new_store(pg_pool)
    kept, dropped = fact([total("1")]), fact([total("41"), learner("z")])
    await apply(store, position, kept, dropped)
    retraction = fact([], retracts=dropped.event_id)
    await apply(store, position, retraction)
    await apply(store, position, fact([], event_id=retraction.event_id, retracts=dropped.event_id))
    assert await month_value(pg_pool, "T-01") == 1
    # The learner's only contribution is gone, so the part itself is gone, as if never seen.
    assert await month_value(pg_pool, "T-02") is None


async def test_a_retraction_before_the_event_makes_the_event_contribute_nothing(
    pg_pool: asyncpg.Pool,
) -> None:
    store, position = await new_store(pg_pool)
    event = fact([total("7")])
    await apply(store, position, fact([], retracts=event.event_id))
    await apply(store, position, event)
    await apply(store, position, fact(event.parts, event_id=event.event_id))
    assert await month_value(pg_pool, "T-01") is None
    row = await pg_pool.fetchrow("SELECT received, retracted FROM fact WHERE event_id = $1", event.event_id)
    assert (row[0], row[1]) == (True, True)


async def test_an_event_and_its_retraction_in_one_batch_cancel_out(pg_pool: asyncpg.Pool) -> None:
    store, position = await new_store(pg_pool)
    event = fact([total("7"), deal("d1", "2", "100")])
    await apply(store, position, fact([], retracts=event.event_id), event, fact([total("1")]))
    assert await month_value(pg_pool, "T-01") == 1
    assert await month_value(pg_pool, "T-03") is None


async def test_latest_keeps_the_highest_order_key_and_falls_back_when_it_is_retracted(
    pg_pool: asyncpg.Pool,
) -> None:
    store, position = await new_store(pg_pool)
    early, late, other = (
        fact([deal("d1", "1", "100")]),
        fact([deal("d1", "3", "250")]),
        fact([deal("d2", "1", "5")]),
    )
    await apply(store, position, late)
    await apply(store, position, early, other)  # an older report arriving later does not win
    assert await month_value(pg_pool, "T-03") == 255
    await apply(store, position, fact([], retracts=late.event_id))
    assert await month_value(pg_pool, "T-03") == 105


async def test_an_event_reporting_a_member_twice_keeps_one_report_which_its_duplicates_leave_stored(
    pg_pool: asyncpg.Pool,
) -> None:
    store, position = await new_store(pg_pool)
    twice = fact([deal("d1", "2", "30"), deal("d1", "2", "70"), deal("d1", "1", "500")])
    for parts in (twice.parts, twice.parts[::-1]):
        event = fact(parts, event_id=twice.event_id)
        (next_offset, epoch) = position[(TOPIC, 0)]
        # Counted ahead, as the runtime does, then corrected in the transaction for the duplicate.
        outcome = await store.commit_batch(
            {(TOPIC, 0): (next_offset + 1, epoch)}, [event], expected_deltas([event])
        )
        assert not outcome.lost
        position[(TOPIC, 0)] = (next_offset + 1, epoch)
        # Whatever the order of its parts: the higher order key, then the higher amount.
        assert await month_value(pg_pool, "T-03") == 70
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_report") == 1


async def test_each_batch_marks_the_cells_it_changed_for_publication(pg_pool: asyncpg.Pool) -> None:
    store, position = await new_store(pg_pool)
    both = [
        Part("T-04", "num", "sum", AT, DIMS, Decimal(1)),
        Part("T-04", "den", "sum", AT, DIMS, Decimal(4)),
    ]
    await apply(store, position, fact(both), fact([learner("a")]))
    await apply(store, position, fact([Part("T-04", "num", "sum", AT, DIMS, Decimal(2))]))
    rows = await pg_pool.fetch(
        "SELECT id, indicator FROM indicator_outbox WHERE period_kind = 'month' ORDER BY id"
    )
    assert [r[1] for r in rows] == ["T-02", "T-04", "T-04"]
    assert rows[1][0] < rows[2][0]
    parts = {key[4]: value for key, (_, value, _) in (await cell_parts(pg_pool)).items() if key[1] == "month"}
    assert parts == {"num": 3, "den": 4, "learners": 1}


async def test_a_consumer_whose_epoch_moved_on_cannot_commit(pg_pool: asyncpg.Pool) -> None:
    zombie, position = await new_store(pg_pool)
    successor = Store(pg_pool, log_identity="log-a", consumer_group="g")
    claims = await successor.claim_partitions([(TOPIC, 0)])
    assert claims[(TOPIC, 0)][1] == position[(TOPIC, 0)][1] + 1
    outcome = await zombie.commit_batch({(TOPIC, 0): (50, position[(TOPIC, 0)][1])}, [fact([total("9")])])
    assert outcome.lost == {(TOPIC, 0)}
    assert await pg_pool.fetchval("SELECT count(*) FROM fact") == 0
    assert await pg_pool.fetchval("SELECT next_offset FROM kafka_offset") == 0
    assert (
        await successor.commit_batch({(TOPIC, 0): (3, claims[(TOPIC, 0)][1])}, [fact([total("9")])])
    ).facts_new == 1
    assert await pg_pool.fetchval("SELECT next_offset FROM kafka_offset") == 3
