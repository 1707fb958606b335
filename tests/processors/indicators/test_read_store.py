"""The read model over the real PostgreSQL store, fed through Kafka by the real processor, equals the naive
computation and the in-memory reference for random histories with duplicates, reordering and retractions."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from infra.kafka import ensure_topics, make_producer
from infra.postgres import create_pool, migrate
from infra.settings import ReachTargetConfig, Settings
from infra.targets import set_targets
from processors.cells import cell_parts
from processors.indicators.aggregate import Cell
from processors.indicators.base import PeriodKind
from processors.indicators.catalogue import INDICATORS
from processors.indicators.derive import extra_ratios
from processors.read import read_indicators
from processors.runtime import IndicatorProcessor
from schemas.cloudevents import encode
from schemas.topics import TopicCatalogue

from . import naive, scenario
from .test_properties import GRACE_DAYS, check, stored_rows
from .test_properties import read as read_reference
from .world import World, worlds

AS_OF = datetime(2026, 9, 1, tzinfo=UTC)


@asynccontextmanager
async def isolated_store(base: Settings) -> AsyncIterator[tuple[Settings, asyncpg.Pool]]:
    """A fresh topic prefix and schema for one hypothesis example (function fixtures would be shared)."""
    token = uuid.uuid4().hex[:8]
    fresh = base.model_copy(
        update={
            "kafka": base.kafka.model_copy(
                update={
                    "topic_prefix": f"t{token}.",
                    "partitions": 2,
                    "session_timeout_ms": 2_000,
                    "heartbeat_interval_ms": 300,
                }
            ),
            "postgres": base.postgres.model_copy(update={"db_schema": f"t_{token}"}),
            # The worlds run into 2027: the plausible-date window must admit all of them.
            "processor": base.processor.model_copy(
                update={"cohort_grace_days": GRACE_DAYS, "future_allowance_s": 3 * 365 * 86_400.0}
            ),
        }
    )
    pool = await create_pool(fresh.postgres)
    try:
        await migrate(pool)
        await ensure_topics(fresh.kafka, TopicCatalogue.from_settings(fresh).all())
        yield fresh, pool
    finally:
        await pool.execute(f'DROP SCHEMA "{fresh.postgres.db_schema}" CASCADE')
        await pool.close()


async def produce(settings_: Settings, world: World) -> int:
    """Publish the history's stream in order, as the connectors would; returns the record count."""
    catalogue = TopicCatalogue.from_settings(settings_)
    producer = make_producer(settings_.kafka)
    await producer.start()
    try:
        deliveries = []
        for event in world.stream:
            record = encode(event)
            deliveries.append(
                await producer.send(
                    catalogue.topic_for(event).name,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                )
            )
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return len(deliveries)


async def process(settings_: Settings, pool: asyncpg.Pool, world: World) -> None:
    records = await produce(settings_, world)
    processor = IndicatorProcessor(settings_, pool=pool, relay=False)
    task = asyncio.create_task(processor.run())
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while int(await pool.fetchval("SELECT coalesce(sum(next_offset), 0) FROM kafka_offset")) < records:
            assert asyncio.get_running_loop().time() < deadline, "the processor did not catch up"
            assert not task.done(), "the processor stopped"
            await asyncio.sleep(0.05)
    finally:
        processor.request_stop()
        await asyncio.wait_for(task, 30)


def keyed(
    results: list[dict[str, Any]], by: tuple[str, ...]
) -> dict[tuple[Any, ...], tuple[Decimal | None, Cell]]:
    return {
        (date.fromisoformat(r["period"]["start"]), tuple(r["dimensions"][name] for name in by)): (
            r["value"],
            Cell(date.fromisoformat(r["period"]["start"]), r["dimensions"], r["parts"], r["provisional"]),
        )
        for r in results
    }


@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds(min_enrolments=6, max_enrolments=14))
async def test_indicators_read_from_the_store_equal_the_naive_computation(
    local_stack: Settings, world: World
) -> None:
    async with isolated_store(local_stack) as (fresh, pool):
        await process(fresh, pool, world)
        reference = stored_rows(world)

        async def read(indicator: str, period: Any, by: tuple[str, ...]) -> dict[tuple[Any, ...], Any]:
            found = await read_indicators(
                pool, indicator=indicator, period=period, by=by, settings=fresh, as_of=AS_OF
            )
            return keyed(found, by)

        expected = naive.training(world.live, ("country",), AS_OF, GRACE_DAYS)
        for indicator in naive.TRAINING_INDICATORS:
            check(indicator, expected.get(indicator, {}), await read(indicator, "month", ("country",)))
        check(
            "CVF-04",
            naive.active_learners(world.live, ("country",)),
            await read("CVF-04", "month", ("country",)),
        )
        # The BI view of enrolments shows the assessment outcomes the read model joins.
        view = {
            row["enrolment_id"]: tuple(row.values())[1:]
            for row in await pool.fetch(
                "SELECT enrolment_id, attempted_final, passed_final, pre_score, post_score FROM cvf_enrolment"
            )
        }
        assert view == {
            r.id: (r.attempted_final, r.passed_final, r.pre_score, r.post_score)
            for r in naive.enrolments(world.live)
        }
        check(
            "CVF-22",
            naive.pathway(world.live, ("country",), AS_OF),
            await read("CVF-22", "month", ("country",)),
        )
        check(
            "PLGN-10",
            naive.realised_by_exporter_country(world.live, AS_OF),
            await read("PLGN-10", "year", ("country",)),
        )
        check("PLGN-16", naive.directory(world.live, AS_OF), await read("PLGN-16", "year", ("recipient",)))
        check("ACT-07", naive.roi(world.live, AS_OF, Decimal(1)), await read("ACT-07", "year", ("activity",)))
        # Every indicator, for every period kind, equals the in-memory reference store's reading.
        for entry in INDICATORS:
            by = entry.dimensions[:1]
            for period in ("month", "quarter", "year"):
                from_store = {
                    key: (value, cell.parts)
                    for key, (value, cell) in (await read(entry.id, period, by)).items()
                }
                from_reference = {
                    key: (value, {**cell.parts, **extra_ratios(entry.id, cell.parts)})
                    for key, (value, cell) in read_reference(reference, entry.id, period, by, AS_OF).items()
                }
                assert from_store == from_reference, f"{entry.id} by {by} per {period}"
        # A read of every indicator at once (joins shared between indicators) equals reading each.
        period_kinds: tuple[PeriodKind, ...] = ("month", "year")
        for period in period_kinds:
            together = await read_indicators(
                pool, indicator=None, period=period, by=(), settings=fresh, as_of=AS_OF
            )
            one_by_one = [
                result
                for entry in INDICATORS
                for result in await read_indicators(
                    pool, indicator=entry.id, period=period, by=(), settings=fresh, as_of=AS_OF
                )
            ]
            assert together == one_by_one, f"all indicators at once per {period}"
            assert any(result["indicator"] == "CVF-01" for result in together), "the world has enrolments"


async def test_the_conversion_view_agrees_with_the_read_api(local_stack: Settings) -> None:
    history = scenario.history()
    async with isolated_store(local_stack) as (fresh, pool):
        await process(fresh, pool, history)
        rows = await pool.fetch("SELECT converted FROM cvf_plgn_conversion")
        results = await read_indicators(
            pool, indicator="CVF-23", period="year", by=(), settings=fresh, as_of=AS_OF
        )
        assert len(results) == 1
        parts = results[0]["parts"]
        assert parts["certified_with_org"] == len(rows) > 0
        assert parts["converted"] == sum(1 for row in rows if row["converted"]) > 0


async def test_external_reads_suppress_small_cells_and_targets_come_from_the_configured_targets(
    local_stack: Settings,
) -> None:
    async with isolated_store(local_stack) as (fresh, pool):
        await process(fresh, pool, scenario.history())
        # As `[[reach_targets]]` in the TOML file or `alcance targets set` give them.
        await set_targets(
            pool, [ReachTargetConfig(audience="MSME", year=2026, target=Decimal(4), source="test plan")]
        )
        reach = await read_indicators(
            pool, indicator="CVF-16", period="year", by=("audience",), settings=fresh, as_of=AS_OF
        )
        assert [(r["dimensions"], r["value"], r["parts"]["target"]) for r in reach] == [
            ({"audience": "MSME"}, Decimal("0.5"), Decimal(4))
        ]
        internal = await read_indicators(
            pool, indicator="CVF-01", period="month", by=("country",), settings=fresh, as_of=AS_OF
        )
        assert {r["dimensions"]["country"]: r["value"] for r in internal} == {
            "AR": Decimal(2),
            "BR": Decimal(1),
            "UY": Decimal(0),
        }
        external = await read_indicators(
            pool,
            indicator="CVF-01",
            period="month",
            by=("country",),
            audience="external",
            settings=fresh,
            as_of=AS_OF,
        )
        assert {r["dimensions"]["country"]: (r["value"], r["suppressed"]) for r in external} == {
            "AR": (None, True),
            "BR": (None, True),
            "UY": (None, True),
        }
        with pytest.raises(ValueError, match="no dimension course"):
            await read_indicators(pool, indicator="CVF-23", period="year", by=("course",), settings=fresh)
        with pytest.raises(KeyError, match="CVF-99"):
            await read_indicators(pool, indicator="CVF-99", period="year", by=(), settings=fresh)
        everything = await read_indicators(
            pool, indicator=None, period="year", by=(), settings=fresh, as_of=AS_OF
        )
        assert {r["indicator"] for r in everything} >= {"CVF-01", "PLGN-10", "ACT-07"}


async def test_the_bi_views_merge_the_stored_months_as_the_store_does(local_stack: Settings) -> None:
    history = scenario.history()
    async with isolated_store(local_stack) as (fresh, pool):
        await process(fresh, pool, history)
        expected = {key: (kind, value) for key, (kind, value, _) in (await cell_parts(pool)).items()}
        rows = await pool.fetch(
            "SELECT indicator, period_kind, period_start, dimensions::text, part, kind, value"
            " FROM indicator_part_value"
        )
        from_view = {(r[0], r[1], r[2], _canonical(r[3]), r[4]): (r[5], r[6]) for r in rows}
        assert {k[1] for k in from_view} == {"month", "quarter", "year"}
        assert from_view == {(k[0], k[1], k[2], _canonical(k[3]), k[4]): v for k, v in expected.items()}
        members = await pool.fetch(
            "SELECT indicator, period_kind, period_start, dimensions::text, part, count(DISTINCT member)"
            " FROM indicator_member_live GROUP BY 1, 2, 3, 4, 5"
        )
        assert {(r[0], r[1], r[2], _canonical(r[3]), r[4]): ("distinct", r[5]) for r in members} == {
            key: value for key, value in from_view.items() if value[0] == "distinct"
        }


def _canonical(dims: str) -> str:
    return json.dumps(json.loads(dims), sort_keys=True)
