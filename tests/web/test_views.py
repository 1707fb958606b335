"""The composed views agree with the indicators they are made of, and stay internal where they must."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg

from benchmarks.read_model import _snapshots
from infra.settings import ReachTargetConfig, Settings
from infra.targets import set_targets
from tests.web.conftest import MakeToken

PROBLEM = "application/problem+json"


async def get(http: aiohttp.ClientSession, url: str, token: str, status: int = 200) -> Any:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == status, (url, await response.text())
        return await response.json(content_type=None)


def by_coordinates(cells: list[dict[str, Any]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
    return {(c["period"]["start"], tuple(sorted(c["dimensions"].items()))): c for c in cells}


async def test_the_training_funnel_lines_up_the_indicators_cells(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    funnel = await get(http, f"{base_url}/api/v1/funnels/training?grain=year&by=country", token)
    completion = by_coordinates(
        (await get(http, f"{base_url}/api/v1/indicators/CVF-05?grain=year&by=country", token))["cells"]
    )
    certification = by_coordinates(
        (await get(http, f"{base_url}/api/v1/indicators/CVF-07?grain=year&by=country", token))["cells"]
    )
    assert funnel["cells"] and len(funnel["cells"]) == len(completion)
    for cell in funnel["cells"]:
        key = (cell["period"]["start"], tuple(sorted(cell["dimensions"].items())))
        assert cell["stages"]["completed_closed"] == completion[key]["parts"]["completed_closed"]
        assert cell["stages"]["certified_closed"] == certification[key]["parts"]["certified_closed"]
        assert cell["rates"]["completion_rate"] == completion[key]["value"]
        stages = cell["stages"]
        assert stages["started_closed"] + stages["never_started_closed"] == stages["net_closed"]


async def test_the_portfolio_ranks_a_years_activities_by_benefit_cost_ratio(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    review = await get(http, f"{base_url}/api/v1/portfolio", token)
    year = review["year"]
    assert review["activities"] and year == max(review["years"])
    ratios = [a["benefit_cost_ratio"] for a in review["activities"]]
    defined = [r for r in ratios if r is not None]
    assert defined == sorted(defined, reverse=True) and ratios[: len(defined)] == defined
    bcr = (await get(http, f"{base_url}/api/v1/indicators/ACT-08?grain=year&by=activity&from={year}", token))[
        "cells"
    ]
    assert {c["dimensions"]["activity"]: c["value"] for c in bcr} == {
        a["dimensions"]["activity"]: a["benefit_cost_ratio"] for a in review["activities"]
    }
    costs = [a["cost_usd"] or 0 for a in review["activities"]]
    assert abs(review["totals"]["cost_usd"] - sum(costs)) < 0.01
    earlier = await get(http, f"{base_url}/api/v1/portfolio?year={min(review['years'])}", token)
    assert earlier["year"] == min(review["years"])


async def test_an_activitys_costs_add_up_to_its_yearly_cost(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    listed = (await get(http, f"{base_url}/api/v1/activities", token))["activities"]
    name = next(a["dimensions"]["activity"] for a in listed if a["cost_usd"])
    detail = await get(http, f"{base_url}/api/v1/activities/{name}", token)
    for row in detail["years"]:
        lines = [c["cost_usd"] for c in detail["costs"] if c["period"] == row["period"]]
        assert abs(sum(lines) - (row["cost_usd"] or 0)) < 0.01
    missing = await get(http, f"{base_url}/api/v1/activities/no-such-activity", token, status=404)
    assert "/api/v1/activities" in missing["detail"]


async def test_targets_show_the_certified_learners_against_the_target(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken, web_pool: asyncpg.Pool
) -> None:
    token = await make_token("coordinator")
    await set_targets(web_pool, [ReachTargetConfig(audience="MSME", year=2025, target=Decimal(120))])
    found = (await get(http, f"{base_url}/api/v1/targets?year=2025", token))["targets"]
    reach = await get(
        http, f"{base_url}/api/v1/indicators/CVF-16?grain=year&by=audience&audience=MSME", token
    )
    certified = next(c for c in reach["cells"] if c["period"]["start"] == "2025-01-01")
    assert found == [
        {
            "audience": "MSME",
            "year": 2025,
            "target": 120,
            "certified_learners": certified["parts"]["certified_learners"],
            "share_of_target": certified["value"],
            "share_of_year_elapsed": 1,
        }
    ]


async def test_offerings_filter_by_status(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("developer")
    every = (await get(http, f"{base_url}/api/v1/offerings", token))["offerings"]
    closed = (await get(http, f"{base_url}/api/v1/offerings?status=closed", token))["offerings"]
    assert every and closed and all(o["status"] == "closed" for o in closed)
    assert closed == [o for o in every if o["status"] == "closed"]


async def test_external_roles_get_only_published_views(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("state", "BR")
    for path in ("offerings", "targets", "activities", "activities/round-1", "portfolio", "health/sources"):
        body = await get(http, f"{base_url}/api/v1/{path}", token, status=403)
        assert body["status"] == 403
    funnel = await get(http, f"{base_url}/api/v1/funnels/training?grain=year&by=country", token)
    assert funnel["audience"] == "external"
    await get(http, f"{base_url}/api/v1/funnels/training?grain=month", token, status=403)


def stamp_of(html: str) -> tuple[str, datetime, bool]:
    """A page's stamp: its label, the instant it names, and whether it says newer data waits."""
    line = re.search(r'<p class="updated".*?</p>', html, re.S)
    assert line is not None, "the page has no stamp"
    label = re.search(r"<span data-updated-label>(.*?)</span>", line.group(0))
    instant = re.search(r'<time datetime="([^"]+)" data-updated>', line.group(0))
    assert label is not None and instant is not None, line.group(0)
    return label.group(1), datetime.fromisoformat(instant.group(1)), "data-changes-pending" in line.group(0)


async def page(http: aiohttp.ClientSession, url: str, token: str) -> str:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, (url, await response.text())
        return await response.text()


async def test_the_views_and_pages_report_the_instant_of_the_snapshots_they_are_served_from(
    base_url: str,
    http: aiohttp.ClientSession,
    make_token: MakeToken,
    web_pool: asyncpg.Pool,
    filled: Settings,
) -> None:
    token = await make_token("developer")
    refreshed = await _snapshots(filled, web_pool)
    assert refreshed["snapshot_rows"] > 0
    instant = await web_pool.fetchval("SELECT max(as_of) FROM indicator_snapshot_state")
    assert instant == await web_pool.fetchval("SELECT min(as_of) FROM indicator_snapshot_state")
    paths = (
        "funnels/training?grain=year&by=country",
        "funnels/training?grain=quarter&by=country,audience",
        "offerings",
        "targets",
        "activities",
        "activities/round-1",
        "portfolio",
    )
    for path in paths:
        body = await get(http, f"{base_url}/api/v1/{path}", token)
        assert datetime.fromisoformat(body["as_of"]) == instant, path
        assert body["changes_pending"] is False, path
    # A page says the instant its values are exact at (the snapshots'), not when it was rendered.
    for lang, label in (("es", "Valores al"), ("pt", "Valores em"), ("en", "Values as of")):
        assert stamp_of(await page(http, f"{base_url}/portfolio?lang={lang}", token)) == (
            label,
            instant,
            False,
        )
    # A page that reads no indicator says when it was made.
    label, made, _ = stamp_of(await page(http, f"{base_url}/health?lang=en", token))
    assert label == "Updated:" and made > instant
    # A change not yet refreshed to the activities' costs: within the staleness bound those views are
    # served at the snapshots' instant, saying changes are pending; `fresh=true` computes them live.
    await web_pool.execute("INSERT INTO indicator_stale (indicator) VALUES ('ACT-01')")
    try:
        for path in ("activities", "activities/round-1", "portfolio", "indicators/ACT-01?grain=year"):
            body = await get(http, f"{base_url}/api/v1/{path}", token)
            assert datetime.fromisoformat(body["as_of"]) == instant, path
            assert body["changes_pending"] is True, path
            joined = "&" if "?" in path else "?"
            present = await get(http, f"{base_url}/api/v1/{path}{joined}fresh=true", token)
            assert datetime.fromisoformat(present["as_of"]) > instant, path
            assert present["changes_pending"] is False, path
            # The same cells: the change itself was only announced, not made.
            assert {k: v for k, v in present.items() if k not in ("as_of", "changes_pending")} == {
                k: v for k, v in body.items() if k not in ("as_of", "changes_pending")
            }, path
        body = await get(http, f"{base_url}/api/v1/offerings", token)
        assert datetime.fromisoformat(body["as_of"]) == instant and body["changes_pending"] is False
        # The page of an activity (not read before, so not kept) says newer data is not in it yet.
        html = await page(http, f"{base_url}/activities/round-1?lang=es", token)
        assert stamp_of(html) == ("Valores al", instant, True)
        assert "Puede que datos recibidos después aún no se reflejen aquí." in html
        body = await get(http, f"{base_url}/api/v1/offerings?fresh=maybe", token, status=400)
        assert "fresh" in body["detail"]
    finally:
        await web_pool.execute("DELETE FROM indicator_stale WHERE indicator = 'ACT-01'")
