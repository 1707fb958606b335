"""Checkpoints and leases in PostgreSQL: one puller per source, stale instances fenced, rewind on new log."""

from __future__ import annotations

import asyncpg
import pytest

from connectors.checkpoints import CheckpointStore
from connectors.exceptions import LeaseLost


async def test_second_instance_cannot_take_an_unexpired_lease(pg_pool: asyncpg.Pool) -> None:
    first = CheckpointStore(pg_pool, "src", lease_ttl_s=30)
    second = CheckpointStore(pg_pool, "src", lease_ttl_s=30)
    assert await first.try_acquire()
    assert not await second.try_acquire()
    await first.release()
    assert await second.try_acquire()


async def test_stale_instance_whose_lease_was_taken_cannot_commit(pg_pool: asyncpg.Pool) -> None:
    stale = CheckpointStore(pg_pool, "src", lease_ttl_s=30)
    assert await stale.try_acquire()
    await stale.commit({"since": "a"}, log_identity="L1", page_offsets={("t", 0): 4}, records=5)
    # The stale instance hangs past its lease; a successor takes over.
    await pg_pool.execute("UPDATE connector_lease SET expires_at = now() - interval '1 second'")
    successor = CheckpointStore(pg_pool, "src", lease_ttl_s=30)
    assert await successor.try_acquire()
    with pytest.raises(LeaseLost):
        await stale.commit({"since": "b"}, log_identity="L1", page_offsets={("t", 0): 9}, records=5)
    with pytest.raises(LeaseLost):
        await stale.renew()
    latest = await successor.latest()
    assert latest is not None and latest.cursor == {"since": "a"}


async def test_produced_offsets_accumulate_per_log_identity(pg_pool: asyncpg.Pool) -> None:
    store = CheckpointStore(pg_pool, "src", lease_ttl_s=30)
    assert await store.try_acquire()
    await store.commit({"n": 1}, log_identity="L1", page_offsets={("t", 0): 4, ("t", 1): 2}, records=7)
    await store.commit({"n": 2}, log_identity="L1", page_offsets={("t", 1): 6}, records=4)
    latest = await store.latest()
    assert latest is not None and latest.produced == {("t", 0): 4, ("t", 1): 6}
    assert await store.resume_cursor("L1", "g") == {"n": 2}


async def test_new_broker_log_rewinds_to_the_last_checkpoint_the_processors_consumed(
    pg_pool: asyncpg.Pool,
) -> None:
    store = CheckpointStore(pg_pool, "src", lease_ttl_s=30)
    assert await store.try_acquire()
    await store.commit({"n": 1}, log_identity="old", page_offsets={("t", 0): 9}, records=10)
    await store.commit({"n": 2}, log_identity="old", page_offsets={("t", 0): 19, ("t", 1): 3}, records=10)
    await store.commit({"n": 3}, log_identity="old", page_offsets={("t", 1): 12}, records=10)
    # The processors had consumed t/0 up to 19 and t/1 up to 4 when the broker lost its log.
    await pg_pool.executemany(
        "INSERT INTO kafka_offset (log_identity, consumer_group, topic, partition, next_offset)"
        " VALUES ($1, $2, $3, $4, $5)",
        [("old", "g", "t", 0, 20), ("old", "g", "t", 1, 4), ("old", "other", "t", 1, 100)],
    )
    assert await store.resume_cursor("new", "g") == {"n": 2}
    # The decision is durable: under the new identity the rewound cursor is the newest checkpoint.
    latest = await store.latest()
    assert latest is not None and latest.log_identity == "new" and latest.cursor == {"n": 2}
    assert await store.resume_cursor("new", "g") == {"n": 2}


async def test_new_broker_log_with_nothing_consumed_restarts_from_the_beginning(
    pg_pool: asyncpg.Pool,
) -> None:
    store = CheckpointStore(pg_pool, "src", lease_ttl_s=30)
    assert await store.try_acquire()
    await store.commit({"n": 1}, log_identity="old", page_offsets={("t", 0): 0}, records=1)
    assert await store.resume_cursor("new", "g") is None
