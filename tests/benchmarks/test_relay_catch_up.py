"""The processors benchmark times the relay's catch-up after ingest: until no outbox mark and no noted
change for the cell values is left (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import date

import asyncpg

from benchmarks.processors.alcance import relay_catch_up, relay_pending
from processors.cell_values import apply_noted_changes
from processors.deltas import PartDeltas
from processors.store import apply_deltas


async def test_the_catch_up_lasts_until_the_marks_and_the_noted_changes_are_taken(
    pg_pool: asyncpg.Pool,
) -> None:
    member = ("T-D", "month", date(2026, 1, 1), "{}", "learners", "a")
    async with pg_pool.acquire() as connection, connection.transaction():
        await apply_deltas(connection, PartDeltas(distinct={member: 1}))
    assert await relay_pending(pg_pool) == {
        "outbox_marks": 1,
        "noted_member_flips": 1,
        "noted_report_changes": 0,
    }
    assert await relay_catch_up(pg_pool, most_s=0.3) is None

    async def relay_round_later() -> None:
        await asyncio.sleep(0.5)
        async with pg_pool.acquire() as connection, connection.transaction():
            await apply_noted_changes(connection)
            await connection.execute("DELETE FROM indicator_outbox")

    taking = asyncio.ensure_future(relay_round_later())
    waited = await relay_catch_up(pg_pool)
    await taking
    assert waited is not None and 0.4 <= waited < 5
    assert await relay_pending(pg_pool) == {
        "outbox_marks": 0,
        "noted_member_flips": 0,
        "noted_report_changes": 0,
    }
