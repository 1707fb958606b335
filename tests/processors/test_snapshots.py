"""Indicator snapshots serve reads of now exactly as the live read model computes them at their instant.

Random histories go through the real broker, processor and relay into PostgreSQL; a refresh then
snapshots every indicator, and every declared grouping and period kind read from the snapshots equals
the live read at the snapshot's instant. A change not yet taken into account (an outbox mark, a stale
entry) is served from the snapshot, saying so, while the snapshot is within the staleness bound, and
makes reads compute live beyond it, without a bound, or for a `fresh` read; other settings or an old
snapshot make reads live; the next refresh serves the new values.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from hypothesis import HealthCheck, Phase, given, settings

from infra.settings import ReachTargetConfig, Settings
from infra.targets import set_targets
from processors import read_snapshots
from processors.indicators import catalogue
from processors.indicators.base import PeriodKind
from processors.outbox import OutboxRelay
from processors.read import ReadResults, read_indicators
from processors.read_snapshots import PERIOD_KINDS, code_digest, dependents, groupings, settings_key
from processors.snapshots import Refreshed, RefreshPacing, refresh
from tests.processors.indicators import scenario
from tests.processors.indicators.test_read_store import isolated_store, process, produce
from tests.processors.indicators.world import World, worlds
from tests.schemas.factories import make_cost_recorded, money

PACING = RefreshPacing(max_busy_share=0.1, max_age_s=300.0)


def strict(fresh: Settings) -> Settings:
    """`fresh` with no staleness bound: a pending change makes every read live."""
    return fresh.model_copy(
        update={"processor": fresh.processor.model_copy(update={"snapshot_max_lag_s": 0.0})}
    )


async def relay_everything(fresh: Settings, pool: asyncpg.Pool) -> None:
    """Publish every outbox mark, as the relay does (it records the stale indicators meanwhile)."""
    stop = asyncio.Event()
    stop.set()
    await OutboxRelay(fresh, pool).run(stop)
    assert await pool.fetchval("SELECT count(*) FROM indicator_outbox") == 0


async def refreshed(fresh: Settings, pool: asyncpg.Pool, pacing: RefreshPacing = PACING) -> Refreshed:
    async with pool.acquire() as connection:
        done = await refresh(connection, fresh, pacing)
    assert done is not None
    return done


async def both(
    pool: asyncpg.Pool, fresh: Settings, period: PeriodKind, by: tuple[str, ...], **kwargs: Any
) -> tuple[ReadResults, list[dict[str, Any]]]:
    """A read of now (from the snapshots when current) and the live reads at the instants it reports."""
    now = await read_indicators(pool, indicator=None, period=period, by=by, settings=fresh, **kwargs)
    instants: dict[datetime, list[str]] = defaultdict(list)
    for name, instant in now.as_of_by_indicator.items():
        instants[instant].append(name)
    live: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for instant, names in instants.items():
        found = await read_indicators(
            pool, indicator=None, among=names, period=period, by=by, settings=fresh, as_of=instant, **kwargs
        )
        assert not found.from_snapshots
        for row in found:
            live[row["indicator"]].append(row)
    return now, [row for name in now.as_of_by_indicator for row in live[name]]


@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds(min_enrolments=4, max_enrolments=12))
async def test_snapshot_reads_equal_live_reads_at_their_instant_for_every_declared_grouping(
    local_stack: Settings, world: World
) -> None:
    async with isolated_store(local_stack) as (fresh, pool):
        await process(fresh, pool, world)
        await relay_everything(fresh, pool)
        done = await refreshed(fresh, pool)
        assert set(done.indicators) == {entry.id for entry in catalogue.INDICATORS}
        declared = dict.fromkeys(by for entry in catalogue.INDICATORS for by in groupings(entry))
        for by in declared:
            for period in PERIOD_KINDS:
                for audience in ("internal", "external"):
                    now, live = await both(pool, fresh, period, by, audience=audience)
                    assert now.from_snapshots, f"{by} per {period} was not served from the snapshots"
                    assert now.as_of == done.as_of
                    assert now == live, f"{by} per {period} ({audience})"
                    # Every indicator with these dimensions, each at the snapshot's instant.
                    assert set(now.as_of_by_indicator) == {
                        entry.id for entry in catalogue.INDICATORS if by in groupings(entry)
                    }
        # A grouping nobody declared is computed live, at the instant of the read.
        odd = await read_indicators(
            pool, indicator="CVF-01", period="year", by=("gender", "course"), settings=fresh
        )
        assert not odd.from_snapshots
        assert odd.as_of > done.as_of


async def test_a_pending_change_makes_reads_live_until_a_refresh_takes_it_into_account(
    local_stack: Settings,
) -> None:
    async with isolated_store(local_stack) as (fresh, pool):
        await process(fresh, pool, scenario.history())
        await relay_everything(fresh, pool)
        first = await refreshed(fresh, pool)
        before = await read_indicators(pool, indicator="ACT-01", period="year", by=(), settings=fresh)
        assert before.from_snapshots and before.as_of == first.as_of and not before.changes_pending
        costs = [
            make_cost_recorded(record_identity=f"extra-{i}", cost_id=f"extra-{i}", money=money("1000"))
            for i in range(3)
        ]
        added = await produce(fresh, World(events=list(costs), stream=list(costs)))
        committed = int(await pool.fetchval("SELECT sum(next_offset) FROM kafka_offset"))
        # The processor (relay off) commits the events and marks their cells in the outbox.
        from processors.runtime import IndicatorProcessor

        processor = IndicatorProcessor(fresh, pool=pool, relay=False)
        task = asyncio.create_task(processor.run())
        try:
            while int(await pool.fetchval("SELECT sum(next_offset) FROM kafka_offset")) < committed + added:
                assert not task.done(), "the processor stopped"
                await asyncio.sleep(0.05)
        finally:
            processor.request_stop()
            await asyncio.wait_for(task, 30)
        # Marked in the outbox, without a staleness bound: never the snapshot's old value as current.
        marked = await read_indicators(pool, indicator="ACT-01", period="year", by=(), settings=strict(fresh))
        assert not marked.from_snapshots and not marked.changes_pending
        assert marked != before
        # Within the bound: exactly the snapshot's values, at its instant, saying changes are pending.
        lagging = await read_indicators(pool, indicator="ACT-01", period="year", by=(), settings=fresh)
        assert lagging.from_snapshots and lagging.changes_pending
        assert lagging == before and lagging.as_of == first.as_of
        # Asked for the present: live, equal to the live read.
        present = await read_indicators(
            pool, indicator="ACT-01", period="year", by=(), settings=fresh, fresh=True
        )
        assert not present.from_snapshots and not present.changes_pending
        assert present == marked and present.as_of > first.as_of
        # Beyond the bound: live.
        lag = fresh.processor.snapshot_max_lag_s
        shift = "UPDATE indicator_snapshot_state SET as_of = as_of + make_interval(secs => $1)"
        await pool.execute(shift, -(lag + 1))
        beyond = await read_indicators(pool, indicator="ACT-01", period="year", by=(), settings=fresh)
        assert not beyond.from_snapshots and beyond == marked
        await pool.execute(shift, lag + 1)
        # Relayed: the stale entry stands in for the marks. The portfolio reads ACT-01 too.
        await relay_everything(fresh, pool)
        assert await pool.fetchval("SELECT count(*) FROM indicator_stale WHERE indicator = 'ACT-01'") == 1
        for name in ("ACT-01", "ACT-13"):
            stale = await read_indicators(pool, indicator=name, period="year", by=(), settings=strict(fresh))
            assert not stale.from_snapshots, name
            kept = await read_indicators(pool, indicator=name, period="year", by=(), settings=fresh)
            assert kept.from_snapshots and kept.changes_pending and kept.as_of == first.as_of, name
        # An indicator reading nothing that changed is served from its snapshot, with nothing pending.
        untouched = await read_indicators(
            pool, indicator="CVF-01", period="year", by=(), settings=strict(fresh)
        )
        assert untouched.from_snapshots and not untouched.changes_pending
        # The next refresh takes only the changed indicators and those reading them.
        second = await refreshed(fresh, pool)
        assert set(second.indicators) == {entry.id for entry in dependents({"ACT-01"})}
        assert "CVF-01" not in second.indicators
        after = await read_indicators(pool, indicator="ACT-01", period="year", by=(), settings=fresh)
        assert after.from_snapshots and after.as_of == second.as_of and not after.changes_pending
        assert after == marked
        assert await pool.fetchval("SELECT count(*) FROM indicator_stale") == 0
        now, live = await both(pool, fresh, "year", ("activity",))
        assert now.from_snapshots and now == live
        # The read of several indicators reports each one's instant, and the oldest as the read's.
        assert now.as_of_by_indicator["ACT-01"] == second.as_of
        assert now.as_of_by_indicator["ACT-05"] == first.as_of  # ACT-01 is none of its inputs
        assert now.as_of == min(now.as_of_by_indicator.values())


async def test_bi_tools_read_the_snapshots_values_with_their_instant(local_stack: Settings) -> None:
    async with isolated_store(local_stack) as (fresh, pool):
        await process(fresh, pool, scenario.history())
        await relay_everything(fresh, pool)
        done = await refreshed(fresh, pool)
        served = await read_indicators(
            pool, indicator="CVF-01", period="year", by=("country",), settings=fresh
        )
        assert served.from_snapshots and served
        rows = await pool.fetch(
            "SELECT period_start, dimensions, value, parts, unit, provisional, as_of"
            " FROM indicator_snapshot_value WHERE indicator = 'CVF-01' AND period_kind = 'year'"
            " AND grouped_by = ARRAY['country']"
            " ORDER BY period_start, dimensions->>'country'"
        )
        expected = sorted(served, key=lambda row: (row["period"]["start"], row["dimensions"]["country"]))
        assert [
            (
                row["period_start"].isoformat(),
                json.loads(row["dimensions"]),
                row["value"],
                {name: Decimal(amount) for name, amount in json.loads(row["parts"]).items()},
                row["unit"],
                row["provisional"],
            )
            for row in rows
        ] == [
            (
                result["period"]["start"],
                result["dimensions"],
                result["value"],
                result["parts"],
                result["unit"],
                result["provisional"],
            )
            for result in expected
        ]
        assert {row["as_of"] for row in rows} == {done.as_of}


async def test_snapshots_of_other_settings_or_too_old_are_not_served(local_stack: Settings) -> None:
    async with isolated_store(local_stack) as (fresh, pool):
        await process(fresh, pool, scenario.history())
        await relay_everything(fresh, pool)
        await refreshed(fresh, pool)
        read = await read_indicators(pool, indicator="CVF-05", period="year", by=("country",), settings=fresh)
        assert read.from_snapshots
        other = fresh.model_copy(
            update={"processor": fresh.processor.model_copy(update={"cohort_grace_days": 3})}
        )
        assert settings_key(other) != settings_key(fresh)
        read = await read_indicators(pool, indicator="CVF-05", period="year", by=("country",), settings=other)
        assert not read.from_snapshots
        # Results of another release's read code are not served either.
        await pool.execute(
            "UPDATE indicator_snapshot_state SET settings = replace(settings, $1, 'another release')",
            code_digest(),
        )
        read = await read_indicators(pool, indicator="CVF-05", period="year", by=("country",), settings=fresh)
        assert not read.from_snapshots
        await refreshed(fresh, pool)
        # Snapshots older than the largest age are not served; the refresher renews every one of them.
        await pool.execute(
            "UPDATE indicator_snapshot_state SET as_of = as_of - make_interval(secs => $1)",
            fresh.processor.snapshot_max_age_s + 1,
        )
        read = await read_indicators(pool, indicator="CVF-05", period="year", by=("country",), settings=fresh)
        assert not read.from_snapshots
        renewed = await refreshed(fresh, pool)
        assert len(renewed.indicators) == len(catalogue.INDICATORS)
        # A changed reach target makes CVF-16's snapshot stale; the same target written again does not.
        target = [ReachTargetConfig(audience="MSME", year=2026, target=Decimal(4), source="test plan")]
        await set_targets(pool, target)
        read = await read_indicators(pool, indicator="CVF-16", period="year", by=(), settings=strict(fresh))
        assert not read.from_snapshots
        assert "CVF-16" in (await refreshed(fresh, pool)).indicators
        await set_targets(pool, target)
        read = await read_indicators(pool, indicator="CVF-16", period="year", by=(), settings=fresh)
        assert read.from_snapshots
        now, live = await both(pool, fresh, "year", ("audience",))
        assert now.from_snapshots and now == live
        assert any(row["parts"].get("target") == 4 for row in now if row["indicator"] == "CVF-16")


async def test_a_change_after_the_refreshs_snapshot_keeps_its_stale_entry(pg_pool: asyncpg.Pool) -> None:
    from processors.snapshots import _TAKE_STALE

    upsert = (
        "INSERT INTO indicator_stale (indicator) SELECT unnest($1::text[])"
        " ON CONFLICT (indicator) DO UPDATE SET mark = nextval('indicator_stale_seq')"
    )
    await pg_pool.execute(upsert, ["ACT-01", "CVF-01"])
    seen = dict(await pg_pool.fetch("SELECT indicator, mark FROM indicator_stale"))
    # Many relay rounds of the same indicators coalesce into one entry each.
    for _ in range(5):
        await pg_pool.execute(upsert, ["ACT-01"])
    assert await pg_pool.fetchval("SELECT count(*) FROM indicator_stale") == 2
    await pg_pool.execute(_TAKE_STALE, list(seen), list(seen.values()))
    assert [row[0] for row in await pg_pool.fetch("SELECT indicator FROM indicator_stale")] == ["ACT-01"]


def test_the_refresher_waits_nine_times_its_refresh_and_coalesces_meanwhile() -> None:
    pacing = RefreshPacing(max_busy_share=0.1, max_age_s=600.0, poll_interval_s=1.0)
    assert pacing.pause_after(2.0) == 2.0 * 9
    assert pacing.pause_after(0.05) == 1.0  # never below the poll interval
    assert RefreshPacing(max_busy_share=0.25, max_age_s=600.0).pause_after(4.0) == 12.0
    key = "k"
    fresh = {entry.id: (10.0, key) for entry in catalogue.INDICATORS}
    # Nothing changed and nothing is old: nothing to do.
    assert pacing.chosen(stale=set(), states=fresh, settings_key=key) == []
    # A changed stored indicator: the indicators that read it, and only those.
    chosen = {entry.id for entry in pacing.chosen(stale={"CVF-07"}, states=fresh, settings_key=key)}
    assert "CVF-07" in chosen and "ACT-01" not in chosen
    assert chosen == {
        entry.id for entry in catalogue.INDICATORS if "CVF-07" in {r.indicator for r in entry.reads}
    }
    everything = {entry.id for entry in catalogue.INDICATORS}
    # Half as old as the largest age, a missing snapshot, or other settings: every indicator, one instant.
    half = {**fresh, "CVF-01": (300.0, key)}
    assert {e.id for e in pacing.chosen(stale=set(), states=half, settings_key=key)} == everything
    missing = {name: state for name, state in fresh.items() if name != "ACT-13"}
    assert {e.id for e in pacing.chosen(stale=set(), states=missing, settings_key=key)} == everything
    assert {e.id for e in pacing.chosen(stale=set(), states=fresh, settings_key="other")} == everything


def test_the_declared_groupings_are_totals_each_dimension_and_the_pairs_pages_use() -> None:
    entry = catalogue.get("CVF-02")
    assert groupings(entry) == [
        (),
        ("country",),
        ("audience",),
        ("gender",),
        ("country", "audience"),
        ("audience", "country"),
    ]
    assert ("activity", "category", "payer") in groupings(catalogue.get("ACT-01"))
    assert groupings(catalogue.get("ACT-13")) == [()]


async def test_whether_a_change_is_pending_is_looked_up_by_indicator_not_by_reading_the_outbox(
    pg_pool: asyncpg.Pool,
) -> None:
    # A relay far behind: many marks of one indicator, none of the one read.
    await pg_pool.execute(
        "INSERT INTO indicator_outbox (indicator, period_kind, period_start, dims)"
        " SELECT 'CVF-01', 'month', date '2020-01-01' + (i % 2000), '{}' FROM generate_series(1, 50000) AS i"
    )
    await pg_pool.execute("ANALYZE indicator_outbox")
    async with pg_pool.acquire() as connection:
        # The plan a prepared statement falls back to after its first runs, as well as the first.
        for mode in ("force_custom_plan", "force_generic_plan"):
            await connection.execute(f"SET plan_cache_mode = {mode}")
            await connection.execute(
                f"PREPARE state_{mode}(text[], text[], float8, float8) AS {read_snapshots._STATE}"
            )
            plan = "\n".join(
                row[0]
                for row in await connection.fetch(
                    f"EXPLAIN EXECUTE state_{mode}('{{PLGN-01}}', '{{PLGN-01}}', 3600, 3600)"
                )
            )
            assert "indicator_outbox_cell" in plan, (mode, plan)
            assert "Seq Scan on indicator_outbox" not in plan, (mode, plan)
        await connection.execute("RESET plan_cache_mode")
        await connection.execute("DEALLOCATE ALL")
