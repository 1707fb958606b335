"""The enrolment records PostgreSQL joins equal the Python join over the stored rows they replace."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import uuid4

from hypothesis import HealthCheck, Phase, given, settings

from infra.settings import Settings
from processors.base import dims_key
from processors.indicators.aggregate import index_rows
from processors.indicators.base import PeriodKind
from processors.indicators.enrolments import join_enrolments
from processors.indicators.periods import encode_member
from processors.read import load_rows
from processors.read_enrolments import JOINED_PARTS, load_enrolments

from . import scenario
from .test_read_store import isolated_store, process
from .world import World, worlds

PERIODS: tuple[PeriodKind, ...] = ("month", "quarter", "year")


async def assert_same_records(fresh: Settings, world: World) -> int:
    """Both joins of `world`'s store, per period kind and for a subset of the parts; the records seen."""
    async with isolated_store(fresh) as (store_settings, pool):
        await process(store_settings, pool, world)
        seen = 0
        subsets = (JOINED_PARTS, frozenset({("CVF-01", "enrolled"), ("CVF-07", "certified")}))
        async with pool.acquire() as connection, connection.transaction(readonly=True):
            for period in PERIODS:
                for parts in subsets:
                    by_sql = await load_enrolments(connection, period, parts)
                    by_python = join_enrolments(index_rows(await load_rows(connection, period, parts)))
                    key = lambda record: record.enrolment_id  # noqa: E731 - a sort key
                    assert sorted(by_sql, key=key) == sorted(by_python, key=key), f"{period} {sorted(parts)}"
                    seen += len(by_sql)
        return seen


def _anchor(enrolment_id: str, learner: str) -> str:
    return encode_member(enrolment_id, learner, "org-1", "1767225600", "1777593600")


DIMS = dims_key({"audience": "MSME", "country": "AR", "course": "c1", "gender": "F", "offering": "o1"})
OTHER_DIMS = dims_key({"audience": "MSME", "country": "AR", "course": "UNKNOWN", "offering": "UNKNOWN"})
# Edge cases the generated histories rarely hold, written straight into the stored parts.
MEMBERS = [
    # e1 was re-published with another learner a month later: two anchors, the greatest member wins.
    ("CVF-01", date(2026, 1, 1), DIMS, "enrolled", _anchor("e1", "l1")),
    ("CVF-01", date(2026, 2, 1), DIMS, "enrolled", _anchor("e1", "l2")),
    # e2 was withdrawn after the start with no learning event stored: it started all the same.
    ("CVF-01", date(2026, 1, 1), DIMS, "enrolled", _anchor("e2", "l3")),
    ("CVF-08", date(2026, 3, 1), OTHER_DIMS, "withdrawn_after_start", "e2"),
    # An enrolment id holding the member separator and the escape character.
    ("CVF-01", date(2026, 4, 1), DIMS, "enrolled", _anchor("e|3%", "l4")),
    ("CVF-01", date(2026, 5, 1), OTHER_DIMS, "withdrawn_before_start", "e|3%"),
    ("CVF-01", date(2026, 1, 1), DIMS, "enrolled", _anchor("e4", "l5")),
    ("CVF-08", date(2026, 2, 1), OTHER_DIMS, "started", "e4"),
    ("CVF-06", date(2026, 2, 1), OTHER_DIMS, "final_attempted", "e4"),
]
REPORTS = [
    # e1's certificate issued in March and revoked in May: the revocation wins across months.
    ("CVF-07", date(2026, 3, 1), "certified", "e1", "2026-03-10", Decimal(1773100800)),
    ("CVF-07", date(2026, 5, 1), "certified", "e1", "2026-05-02", Decimal(0)),
    # e4 reissued: the later certificate counts, in its own month.
    ("CVF-07", date(2026, 2, 1), "certified", "e4", "2026-02-01", Decimal(1769904000)),
    ("CVF-07", date(2026, 6, 1), "certified", "e4", "2026-06-01", Decimal(1780272000)),
    ("CVF-05", date(2026, 6, 1), "completed", "e4", "2026-06-01", Decimal(1780272000)),
    # e|3%'s pre-test: the first attempt wins (its order key sorts last).
    ("CVF-12", date(2026, 4, 1), "pre_score", "e|3%", "2", Decimal(40)),
    ("CVF-12", date(2026, 4, 1), "pre_score", "e|3%", "1", Decimal(70)),
]


async def test_edge_cases_join_alike(local_stack: Settings) -> None:
    async with isolated_store(local_stack) as (_, pool):
        await pool.executemany(
            "INSERT INTO indicator_member"
            " (indicator, period_kind, period_start, dims, part, member, refcount)"
            " VALUES ($1, 'month', $2, $3, $4, $5, 1)",
            MEMBERS,
        )
        await pool.executemany(
            "INSERT INTO indicator_report"
            " (indicator, period_kind, period_start, dims, part, member, event_id, order_key, amount)"
            " VALUES ($1, 'month', $2, $6, $3, $4, $7, $5, $8)",
            [(*report[:5], OTHER_DIMS, uuid4(), report[5]) for report in REPORTS],
        )
        async with pool.acquire() as connection, connection.transaction(readonly=True):
            for period in PERIODS:
                by_sql = {r.enrolment_id: r for r in await load_enrolments(connection, period, JOINED_PARTS)}
                rows = await load_rows(connection, period, JOINED_PARTS)
                assert by_sql == {r.enrolment_id: r for r in join_enrolments(index_rows(rows))}, period
                assert set(by_sql) == {"e1", "e2", "e|3%", "e4"}
                assert by_sql["e1"].learner == "l2"
                assert by_sql["e1"].certified_s is None
                assert by_sql["e2"].started
                assert by_sql["e|3%"].withdrawn_before
                assert by_sql["e|3%"].pre_score == 40
                assert by_sql["e4"].certified_s == 1780272000
                assert by_sql["e4"].attempted_final


async def test_the_scenario_joins_alike(local_stack: Settings) -> None:
    assert await assert_same_records(local_stack, scenario.history()) > 0


@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds(min_enrolments=6, max_enrolments=20))
async def test_random_histories_join_alike(local_stack: Settings, world: World) -> None:
    # Duplicates, reordering, retractions, revoked certificates and retaken tests of random histories.
    await assert_same_records(local_stack, world)
