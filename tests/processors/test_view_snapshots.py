"""The composed views read now are served from the snapshots, equal to the views computed at their instant.

A history goes through the real broker, processor and relay into PostgreSQL, with a reach target; after a
refresh every view read of now reports the snapshot's instant and equals the same view computed live at
it (the targets' pace included). A pending change to an indicator a view reads leaves that view served
from the snapshots, saying so, within the staleness bound; without a bound, or read `fresh`, it is live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from infra.settings import ReachTargetConfig, Settings
from infra.targets import set_targets
from processors import read_views
from tests.processors.indicators import scenario
from tests.processors.indicators.test_read_store import isolated_store, process
from tests.processors.test_snapshots import refreshed, relay_everything, strict

View = Callable[[asyncpg.Pool, Settings, datetime | None], Awaitable[Any]]

VIEWS: dict[str, View] = {
    "funnel by country": lambda pool, s, at: read_views.read_training_funnel(
        pool, period="year", by=["country"], audience="internal", settings=s, as_of=at
    ),
    "funnel by country and audience, external": lambda pool, s, at: read_views.read_training_funnel(
        pool, period="quarter", by=["country", "audience"], audience="external", settings=s, as_of=at
    ),
    "funnel totals per month": lambda pool, s, at: read_views.read_training_funnel(
        pool, period="month", by=[], audience="internal", settings=s, as_of=at
    ),
    "offerings": lambda pool, s, at: read_views.read_offerings(
        pool, audience="internal", settings=s, as_of=at
    ),
    "targets": lambda pool, s, at: read_views.read_reach_targets(pool, settings=s, as_of=at),
    "activities": lambda pool, s, at: read_views.read_activities(pool, settings=s, as_of=at),
    "portfolio": lambda pool, s, at: read_views.read_portfolio(pool, year=None, settings=s, as_of=at),
}


def instant_of(view: Any) -> datetime:
    found: datetime = view["as_of"] if isinstance(view, dict) else view.as_of
    return found


def pending_in(view: Any) -> bool:
    found: bool = view["changes_pending"] if isinstance(view, dict) else view.changes_pending
    return found


async def test_the_views_read_now_equal_the_views_at_the_snapshots_instant(local_stack: Settings) -> None:
    async with isolated_store(local_stack) as (fresh, pool):
        await process(fresh, pool, scenario.history())
        year = datetime.now(UTC).year
        await set_targets(
            pool,
            [
                ReachTargetConfig(audience="MSME", year=2025, target=Decimal(4)),
                ReachTargetConfig(audience="MSME", year=year, target=Decimal(4)),
            ],
        )
        await relay_everything(fresh, pool)
        done = await refreshed(fresh, pool)
        for name, view in VIEWS.items():
            now = await view(pool, fresh, None)
            assert instant_of(now) == done.as_of, f"{name} was not served from the snapshots"
            live = await view(pool, fresh, done.as_of)
            assert now == live, name
            assert now, f"{name} is empty; the comparison would prove nothing"
        targets = await read_views.read_reach_targets(pool, settings=fresh)
        assert [row["share_of_year_elapsed"] for row in targets] == [
            read_views._year_elapsed(row["year"], done.as_of) for row in targets
        ]
        # The pace is the share of the year elapsed at the snapshots' instant, not at the request: an
        # instant 1.5 h back (still young enough to serve) is more than the pace's rounding (about 53 min).
        await pool.execute("UPDATE indicator_snapshot_state SET as_of = as_of - interval '90 minutes'")
        earlier = done.as_of - timedelta(minutes=90)
        paced = await read_views.read_reach_targets(pool, settings=fresh)
        assert paced.as_of == earlier
        this_year = next(row for row in paced if row["year"] == year)
        assert this_year["share_of_year_elapsed"] == read_views._year_elapsed(year, earlier)
        assert this_year["share_of_year_elapsed"] < read_views._year_elapsed(year, datetime.now(UTC))
        await pool.execute("UPDATE indicator_snapshot_state SET as_of = as_of + interval '90 minutes'")
        # A change not yet refreshed (ACT-01, read by the activities and the portfolio): within the
        # staleness bound those are served at the snapshots' instant, saying changes are pending; without
        # a bound, or read fresh, they are live.
        await pool.execute("INSERT INTO indicator_stale (indicator) VALUES ('ACT-01')")
        for name in ("activities", "portfolio"):
            kept = await VIEWS[name](pool, fresh, None)
            assert instant_of(kept) == done.as_of and pending_in(kept), name
            at_instant = await VIEWS[name](pool, fresh, done.as_of)
            if isinstance(at_instant, dict):  # the portfolio says in its body that changes are pending
                at_instant = {**at_instant, "changes_pending": True}
            assert kept == at_instant, name
            live = await VIEWS[name](pool, strict(fresh), None)
            assert instant_of(live) > done.as_of and not pending_in(live), name
        present = await read_views.read_activities(pool, settings=fresh, fresh=True)
        assert present.as_of > done.as_of and not present.changes_pending
        review = await read_views.read_portfolio(pool, year=None, settings=fresh, fresh=True)
        assert review["as_of"] > done.as_of and not review["changes_pending"]
        # Views reading nothing that changed are still served from the snapshots, nothing pending.
        offerings = await VIEWS["offerings"](pool, fresh, None)
        assert instant_of(offerings) == done.as_of and not pending_in(offerings)
        # Refreshed: served again, at the oldest instant of its indicators (those ACT-01 feeds are newer).
        again = await refreshed(fresh, pool)
        assert "ACT-01" in again.indicators and "ACT-02" not in again.indicators
        for name in ("activities", "portfolio"):
            now = await VIEWS[name](pool, fresh, None)
            assert instant_of(now) == done.as_of, name
            assert now == await VIEWS[name](pool, fresh, done.as_of), name
