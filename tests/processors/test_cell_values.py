"""Values kept per cell (`processors.cell_values`) equal the merge of the month rows, whatever the history.

Random histories of distinct and latest parts spread over two years, committed through the store's own
batch transaction (`Store.commit_batch`) by two writers at once on two partitions, with duplicates,
retractions before and after their event, and replayed batches, while the relay's step applies what
they noted (`apply_noted_changes`) again and again: every month, quarter and year cell the relay reads
(`relayed_parts`) equals `cell_parts`, which merges the month rows, and the naive values of the events
that count. A store upgraded with history gets the same values from migration 0422, and a recompute
rebuilds them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from infra.settings import Settings
from processors.base import FactIn, PartKey, cells_of_month, dims_key, month_of
from processors.cell_values import apply_noted_changes, kept_values_usable, refill_lost_values
from processors.cells import cell_parts, current_parts, relayed_parts
from processors.deltas import PartDeltas, ReportKey, expected_deltas
from processors.indicators.base import Part
from processors.recompute import rebuild
from processors.store import Store, apply_deltas
from tests.processors.histories import fresh_store
from tests.processors.histories import histories as batches_of
from tests.processors.support import assert_kept_values_agree
from tests.schemas.factories import make_cost_recorded
from tests.support.processes import REPO_ROOT

TOPIC = "cell-values-test"
JANUARY = date(2026, 1, 1)
KEPT_TABLES = "indicator_member_year, indicator_report_winner, indicator_cell_value"
DIMS = ({"country": "AR"}, {"country": "BR"}, {})
MIGRATION = REPO_ROOT / "infra/migrations/0422_indicator_cell_value.sql"


@st.composite
def contribution(draw: Any) -> Part:
    month = draw(st.integers(1, 24))
    at = datetime(2025 + (month - 1) // 12, (month - 1) % 12 + 1, draw(st.integers(1, 28)), tzinfo=UTC)
    dims = draw(st.sampled_from(DIMS))
    member = f"m{draw(st.integers(0, 4))}"
    if draw(st.booleans()):
        return Part("T-D", "learners", "distinct", at, dims, member=member)
    amount = Decimal(draw(st.integers(-500, 5000))) / 100
    # Keys sort by month first, as real ones start with the report's moment (`periods.order_key`); few
    # per month, so reports of one month tie on it and the event id decides.
    order_key = f"{month:02d}|k{draw(st.integers(0, 3))}"
    return Part("T-L", "deals", "latest", at, dims, amount=amount, member=member, order_key=order_key)


def histories() -> st.SearchStrategy[list[list[FactIn]]]:
    """Batches of facts over a distinct and a latest part (`tests.processors.histories`)."""
    return batches_of(contribution(), topic=TOPIC, max_events=30, max_retractions=8, max_cuts=6)


def naive_values(batches: list[list[FactIn]]) -> dict[PartKey, Decimal]:
    """Per cell part: live members counted once; per member the highest (order key, event id, amount)
    wins."""
    retracted = {fact.retracts for batch in batches for fact in batch if fact.retracts is not None}
    seen: set[uuid.UUID] = set()
    members: dict[PartKey, set[str]] = defaultdict(set)
    reports: dict[PartKey, dict[str, tuple[str, uuid.UUID, Decimal]]] = defaultdict(dict)
    for batch in batches:
        for fact in batch:
            if fact.event_id in seen or fact.event_id in retracted:
                continue
            seen.add(fact.event_id)
            for part in fact.parts:
                for indicator, kind, start, dims in cells_of_month(
                    part.indicator, month_of(part.occurred_at), dims_key(part.dimensions)
                ):
                    key = (indicator, kind, start, dims, part.part)
                    if part.kind == "distinct":
                        members[key].add(part.member or "")
                        continue
                    report = (part.order_key, fact.event_id, part.amount)
                    best = reports[key].get(part.member or "")
                    # One event reporting a member twice keeps its higher (order key, amount).
                    if best is None or report > best:
                        reports[key][part.member or ""] = report
    values = {key: Decimal(len(found)) for key, found in members.items()}
    values.update({key: sum((r[2] for r in found.values()), Decimal(0)) for key, found in reports.items()})
    return values


async def commit_concurrently(pool: asyncpg.Pool, batches: list[list[FactIn]]) -> None:
    """Batches alternate between two writers on two partitions, each committing while the other does.

    A retraction committed before its event by the other writer is still exact: the store records it
    and the event then contributes nothing. Meanwhile the relay's step applies what they noted, as
    often as it can.
    """
    store = Store(pool, log_identity="test", consumer_group="test")
    claims = await store.claim_partitions([(TOPIC, 0), (TOPIC, 1)])
    lanes: list[list[list[FactIn]]] = [batches[0::2], batches[1::2]]

    async def write(partition: int) -> None:
        epoch = claims[(TOPIC, partition)][1]
        for offset, batch in enumerate(lanes[partition]):
            facts = [replace(fact, partition=partition) for fact in batch]
            # Counted ahead, as the runtime does, and corrected in the transaction.
            await store.commit_batch({(TOPIC, partition): (offset + 1, epoch)}, facts, expected_deltas(facts))

    async def apply_while_writing(writers: asyncio.Future[Any]) -> None:
        while not writers.done():
            async with pool.acquire() as connection, connection.transaction():
                await apply_noted_changes(connection)
            await asyncio.sleep(0)

    writers = asyncio.gather(write(0), write(1))
    await asyncio.gather(writers, apply_while_writing(writers))


async def every_kept_value(pool: asyncpg.Pool | asyncpg.Connection) -> dict[PartKey, Decimal]:
    """The kept values of every cell the month rows hold, as the relay reads them after applying."""
    if isinstance(pool, asyncpg.Pool):
        async with pool.acquire() as connection, connection.transaction():
            await apply_noted_changes(connection)
    else:
        await apply_noted_changes(pool)
    cells = [(key[0], key[1], key[2], key[3]) for key in await cell_parts(pool)]
    return await relayed_parts(pool, cells)


@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=histories())
async def test_kept_values_equal_the_merged_months_and_the_naive_values(
    local_stack: Settings, batches: list[list[FactIn]]
) -> None:
    async with fresh_store(local_stack) as pool:
        await commit_concurrently(pool, batches)
        await assert_kept_values_agree(pool)
        assert await every_kept_value(pool) == naive_values(batches)


async def test_an_upgraded_store_gets_the_values_its_batches_would_have_kept(pg_pool: asyncpg.Pool) -> None:
    at = [datetime(2026, month, 3, tzinfo=UTC) for month in (1, 2, 5)]
    parts = [
        [Part("T-D", "learners", "distinct", when, {"country": "AR"}, member=m) for m in ("a", "b")]
        + [Part("T-L", "deals", "latest", when, {}, amount=Decimal(i + 1), member="d", order_key=f"k{i}")]
        for i, when in enumerate(at)
    ]
    facts = [
        FactIn(
            event_id=uuid.uuid4(),
            event_type="test.contribution",
            occurred_at=at[0],
            subject_key="s",
            source="test",
            payload="{}",
            parts=found,
            retracts=None,
            topic=TOPIC,
            partition=0,
            offset=offset,
        )
        for offset, found in enumerate(parts)
    ]
    store = Store(pg_pool, log_identity="test", consumer_group="test")
    epoch = (await store.claim_partitions([(TOPIC, 0)]))[(TOPIC, 0)][1]
    await store.commit_batch({(TOPIC, 0): (len(facts), epoch)}, facts)
    kept = await every_kept_value(pg_pool)
    # Two learners in every cell; the deal's latest report (May, "k2", amount 3) wins its quarter and year.
    assert kept[("T-D", "year", JANUARY, '{"country":"AR"}', "learners")] == 2
    assert kept[("T-L", "year", JANUARY, "{}", "deals")] == 3
    assert kept[("T-L", "quarter", JANUARY, "{}", "deals")] == 2
    # The migration's statements after its tables: those that fill them from the month rows.
    backfill = MIGRATION.read_text().split("-- A store with history", 1)[1].split("\n", 1)[1]
    backfill = backfill.split("COMMENT ON", 1)[0]
    async with pg_pool.acquire() as connection, connection.transaction():
        await connection.execute(f"TRUNCATE {KEPT_TABLES}")
        # Emptied, only what is read from the month rows is left: a month's latest values.
        assert {(key[0], key[1]) for key in await every_kept_value(connection)} == {("T-L", "month")}
    async with pg_pool.acquire() as connection, connection.transaction():
        await connection.execute(f"TRUNCATE {KEPT_TABLES}")
        await connection.execute(backfill)
    assert await every_kept_value(pg_pool) == kept
    # A second batch after the backfill keeps them in step: the deal's year winner moves on.
    later = replace(
        facts[0],
        event_id=uuid.uuid4(),
        offset=len(facts),
        parts=[Part("T-L", "deals", "latest", at[1], {}, amount=Decimal(9), member="d", order_key="k9")],
    )
    await store.commit_batch({(TOPIC, 0): (len(facts) + 1, epoch)}, [later])
    await assert_kept_values_agree(pg_pool)
    assert (await every_kept_value(pg_pool))[("T-L", "year", JANUARY, "{}", "deals")] == 9


async def test_a_recompute_rebuilds_the_kept_values(pg_pool: asyncpg.Pool) -> None:
    event = make_cost_recorded(record_identity="k", cost_id="k")
    at = datetime(2026, 3, 30, tzinfo=UTC)

    def code(part: str) -> list[Part]:
        return [Part("T-D", part, "distinct", at, {}, member="a")]

    fact = FactIn(
        event.event_id,
        event.event_type,
        event.occurred_at,
        event.subject_key,
        event.source,
        event.model_dump_json(),
        code("old"),
        topic=TOPIC,
    )
    store = Store(pg_pool, log_identity="test", consumer_group="test")
    epoch = (await store.claim_partitions([(TOPIC, 0)]))[(TOPIC, 0)][1]
    await store.commit_batch({(TOPIC, 0): (1, epoch)}, [fact])
    assert {key[4] for key in await every_kept_value(pg_pool)} == {"old"}
    async with pg_pool.acquire() as connection, connection.transaction():
        await rebuild(connection, contribute=lambda _: code("new"), progress=False)
    await assert_kept_values_agree(pg_pool)
    assert await pg_pool.fetchval("SELECT array_agg(DISTINCT part) FROM indicator_cell_value") == ["new"]


async def test_batches_without_cell_values_leave_the_relay_merging_months_until_a_recompute(
    pg_pool: asyncpg.Pool,
) -> None:
    at = datetime(2026, 2, 14, tzinfo=UTC)
    names = ("a", "b")
    events = [make_cost_recorded(record_identity=name, cost_id=name) for name in names]
    parts = {
        event.event_id: [
            Part("T-D", "learners", "distinct", at, {}, member=name),
            Part("T-L", "deals", "latest", at, {}, amount=Decimal(4), member="d", order_key=name),
        ]
        for name, event in zip(names, events, strict=True)
    }
    facts = [
        FactIn(
            e.event_id,
            e.event_type,
            e.occurred_at,
            e.subject_key,
            e.source,
            e.model_dump_json(),
            parts[e.event_id],
            topic=TOPIC,
            offset=offset,
        )
        for offset, e in enumerate(events)
    ]
    without = Store(pg_pool, log_identity="test", consumer_group="test", cell_values=False)
    epoch = (await without.claim_partitions([(TOPIC, 0)]))[(TOPIC, 0)][1]
    await without.commit_batch({(TOPIC, 0): (1, epoch)}, facts[:1])
    # A later batch with them on cannot make them whole: they stay incomplete.
    with_them = Store(pg_pool, log_identity="test", consumer_group="test")
    await with_them.commit_batch({(TOPIC, 0): (2, epoch)}, facts[1:])
    assert await pg_pool.fetchval("SELECT complete FROM indicator_cell_value_state") is False
    merged = {key: value for key, (_, value, _) in (await cell_parts(pg_pool)).items()}
    cells = [(key[0], key[1], key[2], key[3]) for key in merged]
    async with pg_pool.acquire() as connection:
        assert await current_parts(connection, cells) == merged
        assert await relayed_parts(connection, cells) != merged  # the kept values miss the first batch
    assert merged[("T-D", "year", JANUARY, "{}", "learners")] == 2

    async with pg_pool.acquire() as connection, connection.transaction():
        await rebuild(connection, contribute=lambda event: parts[event.event_id], progress=False)
    assert await pg_pool.fetchval("SELECT complete FROM indicator_cell_value_state") is True
    await assert_kept_values_agree(pg_pool)
    async with pg_pool.acquire() as connection:
        assert await current_parts(connection, cells) == merged


_WAITING_ON_A_LOCK = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1"


async def _blocked_or_done(pool: asyncpg.Pool, pid: int, task: asyncio.Task[Any]) -> None:
    """Wait until `task` has finished or its connection (`pid`) waits on a row lock."""
    for _ in range(500):
        if task.done():
            return
        if await pool.fetchval(_WAITING_ON_A_LOCK, pid):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the retraction neither finished nor waited on a lock")


@pytest.mark.parametrize("first", ["batch", "relay"])
async def test_a_winner_replaced_while_its_successor_is_retracted_is_never_a_retracted_report(
    pg_pool: asyncpg.Pool, first: str
) -> None:
    """Member "d" reported three times in a year: k3 in January wins it, then k2, then k1. k3 is
    retracted; while the relay replaces it, a batch retracts k2, the `first` of the two still uncommitted
    when the other runs: the best report left is k1, whichever way the two transactions interleave."""
    ids = {order_key: uuid.uuid4() for order_key in ("k1", "k2", "k3")}
    months = {"k3": JANUARY, "k2": date(2026, 2, 1), "k1": date(2026, 3, 1)}

    def report(order_key: str) -> ReportKey:
        return ("T-L", "month", months[order_key], "{}", "deals", "d", ids[order_key])

    amounts = {"k1": Decimal(1), "k2": Decimal(2), "k3": Decimal(3)}
    async with pg_pool.acquire() as connection, connection.transaction():
        await apply_deltas(
            connection, PartDeltas(latest_add={report(key): (key, amounts[key]) for key in ids})
        )
        await apply_noted_changes(connection)
        await apply_deltas(connection, PartDeltas(latest_remove={report("k3")}))

    async def retract_k2(connection: asyncpg.Connection) -> None:
        await apply_deltas(connection, PartDeltas(latest_remove={report("k2")}))

    steps = {"batch": retract_k2, "relay": apply_noted_changes}
    later = "relay" if first == "batch" else "batch"
    async with pg_pool.acquire() as early, pg_pool.acquire() as late:
        early_transaction = early.transaction()
        await early_transaction.start()
        await steps[first](early)
        late_transaction = late.transaction()
        await late_transaction.start()
        running = asyncio.ensure_future(steps[later](late))
        await _blocked_or_done(pg_pool, late.get_server_pid(), running)
        await early_transaction.commit()
        await running
        await late_transaction.commit()
    await assert_kept_values_agree(pg_pool)
    kept = await every_kept_value(pg_pool)
    assert kept[("T-L", "year", JANUARY, "{}", "deals")] == 1
    assert kept[("T-L", "quarter", JANUARY, "{}", "deals")] == 1


async def test_a_report_stored_and_deleted_between_two_rounds_never_wins(pg_pool: asyncpg.Pool) -> None:
    """One round takes both notes of a report that two batches stored and deleted since the last round:
    the deletion is applied after the report won as a candidate, and the report it beat wins again."""

    kept: ReportKey = ("T-L", "month", JANUARY, "{}", "deals", "d", uuid.uuid4())
    passing: ReportKey = ("T-L", "month", JANUARY, "{}", "deals", "d", uuid.uuid4())
    async with pg_pool.acquire() as connection, connection.transaction():
        await apply_deltas(connection, PartDeltas(latest_add={kept: ("k1", Decimal(1))}))
        await apply_noted_changes(connection)
    async with pg_pool.acquire() as connection, connection.transaction():
        await apply_deltas(connection, PartDeltas(latest_add={passing: ("k2", Decimal(7))}))
    async with pg_pool.acquire() as connection, connection.transaction():
        await apply_deltas(connection, PartDeltas(latest_remove={passing}))
    async with pg_pool.acquire() as connection:
        assert await connection.fetchval("SELECT count(*) FROM indicator_report_change") == 2
    await assert_kept_values_agree(pg_pool)
    values = await every_kept_value(pg_pool)
    assert values[("T-L", "quarter", JANUARY, "{}", "deals")] == 1
    assert values[("T-L", "year", JANUARY, "{}", "deals")] == 1


UNLOGGED_TABLES = f"indicator_member_flip, indicator_report_change, {KEPT_TABLES}, indicator_cell_value_kept"


async def test_values_a_crash_emptied_are_filled_again_from_the_month_rows(pg_pool: asyncpg.Pool) -> None:
    """Their tables are UNLOGGED (migration 0425): crash recovery empties them all, the sentinel too. The
    relay merges months meanwhile, and fills them again from the month rows before its next round; what
    batches noted before the fill is in the month rows, and is not applied twice."""

    def learner(member: str, month: int) -> PartDeltas:
        return PartDeltas(distinct={("T-D", "month", date(2026, month, 1), "{}", "learners", member): 1})

    async def commit(deltas: PartDeltas) -> None:
        async with pg_pool.acquire() as connection, connection.transaction():
            await apply_deltas(connection, deltas)

    await commit(learner("a", 1))
    await commit(learner("b", 2))
    year = ("T-D", "year", JANUARY, "{}", "learners")
    assert (await every_kept_value(pg_pool))[year] == 2
    await pg_pool.execute(f"TRUNCATE {UNLOGGED_TABLES}")  # what recovery does to unlogged tables
    await commit(learner("c", 3))  # noted after the crash
    merged = {key: value for key, (_, value, _) in (await cell_parts(pg_pool)).items()}
    async with pg_pool.acquire() as connection:
        assert not await kept_values_usable(connection)
        assert await current_parts(connection, [key[:4] for key in merged]) == merged
    assert merged[year] == 3

    assert await refill_lost_values(pg_pool)
    assert not await refill_lost_values(pg_pool)  # filled: nothing lost any more
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_member_flip") == 0
    await assert_kept_values_agree(pg_pool)
    await commit(learner("d", 3))
    assert (await every_kept_value(pg_pool))[year] == 4
    await assert_kept_values_agree(pg_pool)
