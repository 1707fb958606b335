"""Rollups kept by the store's batch transactions equal the naive computation over the live events.

Random histories of contributions to every rolled-up part, committed in batches through the store's
own transaction (`Store.commit_batch`) with duplicates inside and across batches, retractions before
and after their event, and replays of whole batches: every period kind and grouping read from the
rollups equals the cells computed naively from the events that count (first occurrence, not
retracted), and the cells the generic aggregation makes of the part tables.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import combinations, permutations
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from infra.settings import Settings
from processors.base import FactIn
from processors.deltas import PartDeltas
from processors.indicators import catalogue, contributions
from processors.indicators.aggregate import ReadContext, aggregate
from processors.indicators.base import Part, PeriodKind
from processors.indicators.derive import derive_value
from processors.indicators.periods import period_start
from processors.read import load_rows, read_indicators
from processors.read_rollups import rolled_up_cells, rollups_complete
from processors.recompute import rebuild
from processors.rollups import UNKNOWN, qualifies, rolled_up_parts, rollup_deltas
from processors.store import Store
from schemas.events.finance import CostCategory
from tests.processors.histories import fresh_store
from tests.processors.histories import histories as batches_of
from tests.schemas.factories import make_cost_recorded, money
from tests.support.processes import REPO_ROOT

ROLLED = [entry.id for entry in catalogue.INDICATORS if qualifies(entry)]
PARTS = sorted(rolled_up_parts())
VALUES = ("A", "B", UNKNOWN)
TOPIC = "rollup-test"


@st.composite
def contribution(draw: Any) -> Part:
    indicator, part = draw(st.sampled_from(PARTS))
    stored = catalogue.stored_part(indicator, part)
    names = catalogue.get(indicator).dimensions
    # Some parts omit a dimension: the read model reads it as UNKNOWN.
    dims = {name: draw(st.sampled_from(VALUES)) for name in names if draw(st.integers(0, 5))}
    month = draw(st.integers(1, 14))
    occurred = datetime(2025 + (month - 1) // 12, (month - 1) % 12 + 1, draw(st.integers(1, 28)), tzinfo=UTC)
    if stored.kind == "sum":
        amount = Decimal(draw(st.integers(-300, 3000))) / 100
        return Part(indicator, part, "sum", occurred, dims, amount=amount)
    return Part(indicator, part, "distinct", occurred, dims, member=f"m{draw(st.integers(0, 6))}")


def histories() -> st.SearchStrategy[list[list[FactIn]]]:
    """Batches of facts over every rolled-up part (`tests.processors.histories`)."""
    return batches_of(contribution(), topic=TOPIC)


def live_parts(batches: list[list[FactIn]]) -> list[Part]:
    """What counts: each event once, unless a retraction of it arrived at any time."""
    retracted = {fact.retracts for batch in batches for fact in batch if fact.retracts is not None}
    seen: set[uuid.UUID] = set()
    parts: list[Part] = []
    for batch in batches:
        for fact in batch:
            if fact.event_id in seen or fact.event_id in retracted:
                continue
            seen.add(fact.event_id)
            parts.extend(fact.parts)
    return parts


def naive_cells(
    parts: list[Part], indicator_id: str, period: PeriodKind, by: tuple[str, ...]
) -> dict[tuple[date, tuple[str, ...]], dict[str, Decimal]]:
    entry = catalogue.get(indicator_id)
    sums: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    members: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    wanted = {(ref.indicator, ref.part) for ref in entry.reads}
    for part in parts:
        if (part.indicator, part.part) not in wanted:
            continue
        key = (
            period_start(part.occurred_at, period),
            tuple(part.dimensions.get(name, UNKNOWN) for name in by),
            part.part,
        )
        if part.kind == "sum":
            sums[key] += part.amount
            counts[key] += 1
        else:
            members[key].add(part.member or "")
    cells: dict[tuple[date, tuple[str, ...]], dict[str, Decimal]] = {}
    present = [key for key, count in counts.items() if count] + list(members)
    for start, group, _ in present:
        cells.setdefault((start, group), {ref.part: Decimal(0) for ref in entry.reads})
    for (start, group, name), total in sums.items():
        if counts[(start, group, name)]:
            cells[(start, group)][name] += total
    for (start, group, name), found in members.items():
        cells[(start, group)][name] = Decimal(len(found))
    return cells


async def commit(pool: asyncpg.Pool, batches: list[list[FactIn]]) -> None:
    store = Store(pool, log_identity="test", consumer_group="test", rollups=True)
    (_, epoch) = (await store.claim_partitions([(TOPIC, 0)]))[(TOPIC, 0)]
    for batch in batches:
        if batch:
            position = max(fact.offset for fact in batch) + 1
            await store.commit_batch({(TOPIC, 0): (position, epoch)}, batch)


def test_rollup_deltas_of_a_month_reach_its_quarter_and_year_in_every_grouping() -> None:
    deltas = PartDeltas()
    at = datetime(2026, 5, 9, tzinfo=UTC)
    deltas.add(
        Part("PLGN-07", "held", "distinct", at, {"activity": "a1", "modality": "online"}, member="m"),
        uuid.uuid4(),
    )
    change = rollup_deltas(deltas)
    assert change.sums == {}
    assert len(change.members) == 3 * 4  # month, quarter, year x {}, activity, modality, both
    assert ("PLGN-07", "held", "quarter", date(2026, 4, 1), "activity", '{"activity":"a1"}', "m") in (
        change.members
    )
    assert ("PLGN-07", "held", "year", date(2026, 1, 1), "", "{}", "m") in change.members


def test_parts_that_are_not_rolled_up_change_no_rollup() -> None:
    deltas = PartDeltas()
    at = datetime(2026, 5, 9, tzinfo=UTC)
    deltas.add(Part("CVF-01", "enrolments", "distinct", at, {"country": "AR"}, member="e"), uuid.uuid4())
    assert rollup_deltas(deltas).members == {}


@settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=histories())
async def test_rollups_equal_the_naive_cells_after_duplicates_retractions_and_replays(
    local_stack: Settings, batches: list[list[FactIn]]
) -> None:
    parts = live_parts(batches)
    async with fresh_store(local_stack) as pool:
        await commit(pool, batches)
        async with pool.acquire() as connection:
            assert await rollups_complete(connection)
            for indicator_id in ROLLED:
                names = catalogue.get(indicator_id).dimensions
                groupings = [()] + [g for size in (1, 2) for g in permutations(names, size)]
                for period in ("month", "quarter", "year"):
                    rows = await load_rows(
                        connection, period, [(r.indicator, r.part) for r in catalogue.get(indicator_id).reads]
                    )
                    for by in groupings:
                        cells = await rolled_up_cells(connection, indicator_id, period, by)
                        got = {(c.period_start, tuple(c.dimensions[n] for n in by)): c.parts for c in cells}
                        assert got == naive_cells(parts, indicator_id, period, by), (indicator_id, period, by)
                        from_parts = aggregate(indicator_id, rows, ReadContext(period=period, by=by))
                        assert [(c.period_start, c.dimensions, c.parts) for c in cells] == [
                            (c.period_start, c.dimensions, c.parts) for c in from_parts
                        ]
            await check_value_view(connection)


async def check_value_view(connection: asyncpg.Connection) -> None:
    """The BI view's values and parts equal the derived values of the rollup cells, for every grouping."""
    expected = {}
    for indicator_id in ROLLED:
        names = sorted(catalogue.get(indicator_id).dimensions)
        for by in [tuple(names[:0])] + [g for size in (1, 2, 3) for g in combinations(names, size)]:
            for period in ("month", "quarter", "year"):
                for cell in await rolled_up_cells(connection, indicator_id, period, by):
                    key = (
                        indicator_id,
                        period,
                        cell.period_start,
                        by,
                        json.dumps(cell.dimensions, sort_keys=True),
                    )
                    expected[key] = (derive_value(indicator_id, cell.parts), cell.parts)
    rows = await connection.fetch(
        "SELECT indicator, period_kind, period_start, grouped_by, dimensions::text, value, parts::text"
        " FROM indicator_rollup_value"
    )
    found = {
        (r[0], r[1], r[2], tuple(r[3]), json.dumps(json.loads(r[4]), sort_keys=True)): (
            r[5],
            {name: Decimal(str(value)) for name, value in json.loads(r[6], parse_float=Decimal).items()},
        )
        for r in rows
    }
    assert found == expected


def test_the_value_view_derives_as_the_catalogue_says() -> None:
    migration = (REPO_ROOT / "infra/migrations/0251_indicator_rollup_value.sql").read_text()
    for indicator_id in ROLLED:
        entry = catalogue.get(indicator_id)
        assert all(ref.indicator == indicator_id for ref in entry.reads)
        parts = ", ".join(f"'{ref.part}'" for ref in entry.reads)
        numerator, *rest = entry.derivation.args
        denominator = f"'{rest[0]}'" if rest else "NULL"
        row = (
            f"('{indicator_id}', '{entry.derivation.op}', '{numerator}', {denominator},"
            f" {entry.derivation.scale}, ARRAY[{parts}])"
        )
        assert row in migration


async def test_a_store_upgraded_with_parts_in_it_reads_the_old_way_until_recomputed(
    pg_pool: asyncpg.Pool,
) -> None:
    await pg_pool.execute("UPDATE indicator_rollup_state SET complete = false")
    async with pg_pool.acquire() as connection:
        assert not await rollups_complete(connection)


@pytest.mark.parametrize("by", [("activity", "activity"), ("country",)])
async def test_a_rollup_read_names_a_wrong_grouping(pg_pool: asyncpg.Pool, by: tuple[str, ...]) -> None:
    async with pg_pool.acquire() as connection:
        with pytest.raises(ValueError, match="dimension"):
            await rolled_up_cells(connection, "ACT-02", "year", by)


async def test_recompute_rebuilds_the_rollups_of_an_upgraded_store_and_marks_them_complete(
    pg_pool: asyncpg.Pool,
) -> None:
    costs = [
        make_cost_recorded(record_identity=f"c{i}", cost_id=f"c{i}", category=category, money=money(amount))
        for i, (category, amount) in enumerate(
            [(CostCategory.VENUE, "10.50"), (CostCategory.TRAVEL, "7"), (CostCategory.VENUE, "2.25")]
        )
    ]
    store = Store(pg_pool, log_identity="log", consumer_group="g", rollups=True)
    claims = await store.claim_partitions([("t", 0)])
    facts = [
        FactIn(
            e.event_id,
            e.event_type,
            e.occurred_at,
            e.subject_key,
            e.source,
            e.model_dump_json(),
            contributions(e),
            topic="t",
            offset=i,
        )
        for i, e in enumerate(costs)
    ]
    await store.commit_batch({("t", 0): (3, claims[("t", 0)][1])}, facts)
    table = "SELECT * FROM indicator_rollup ORDER BY 1, 2, 3, 4, 5, 6"
    incremental = [tuple(r) for r in await pg_pool.fetch(table)]
    assert any(r[0] == "ACT-01" and r[4] == "" and r[2] == "month" for r in incremental)
    # As an upgraded store: rollups missing and not complete, until a recompute.
    await pg_pool.execute("TRUNCATE indicator_rollup, indicator_rollup_member")
    await pg_pool.execute("UPDATE indicator_rollup_state SET complete = false")
    async with pg_pool.acquire() as connection, connection.transaction():
        await rebuild(connection, progress=False, rollups=True)
    assert [tuple(r) for r in await pg_pool.fetch(table)] == incremental
    async with pg_pool.acquire() as connection:
        assert await rollups_complete(connection)


async def test_a_batch_written_without_rollups_makes_them_incomplete(pg_pool: asyncpg.Pool) -> None:
    cost = make_cost_recorded()
    store = Store(pg_pool, log_identity="log", consumer_group="g", rollups=False)
    claims = await store.claim_partitions([("t", 0)])
    fact = FactIn(
        cost.event_id,
        cost.event_type,
        cost.occurred_at,
        cost.subject_key,
        cost.source,
        cost.model_dump_json(),
        contributions(cost),
        topic="t",
    )
    async with pg_pool.acquire() as connection:
        assert await rollups_complete(connection)
        await store.commit_batch({("t", 0): (1, claims[("t", 0)][1])}, [fact])
        assert not await rollups_complete(connection)
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_rollup") == 0


async def test_read_indicators_gives_the_same_cells_from_rollups_and_from_parts(
    settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    costs = [
        make_cost_recorded(record_identity=f"c{i}", cost_id=f"c{i}", category=category, money=money(amount))
        for i, (category, amount) in enumerate(
            [(CostCategory.VENUE, "10.50"), (CostCategory.TRAVEL, "7"), (CostCategory.VENUE, "2.25")]
        )
    ]
    store = Store(pg_pool, log_identity="log", consumer_group="g", rollups=True)
    claims = await store.claim_partitions([("t", 0)])
    facts = [
        FactIn(
            e.event_id,
            e.event_type,
            e.occurred_at,
            e.subject_key,
            e.source,
            e.model_dump_json(),
            contributions(e),
            topic="t",
            offset=i,
        )
        for i, e in enumerate(costs)
    ]
    await store.commit_batch({("t", 0): (3, claims[("t", 0)][1])}, facts)

    async def read_all() -> list[list[dict[str, Any]]]:
        found = []
        for period in ("month", "year"):
            for by in ((), ("category",), ("activity", "category")):
                for audience in ("internal", "external"):
                    found.append(
                        await read_indicators(
                            pg_pool,
                            indicator="ACT-01",
                            period=period,
                            by=by,
                            audience=audience,
                            settings=settings,
                        )
                    )
            found.append(
                await read_indicators(pg_pool, indicator=None, period=period, by=(), settings=settings)
            )
        return found

    from_rollups = await read_all()
    assert any(cells for cells in from_rollups)
    await pg_pool.execute("UPDATE indicator_rollup_state SET complete = false")
    assert await read_all() == from_rollups
