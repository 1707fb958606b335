"""The pages over a store the real pipeline filled: three languages, CSV equal to the API, roles."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import pytest

from infra.settings import ReachTargetConfig
from infra.targets import set_targets
from processors.indicators import catalogue
from tests.web.conftest import MakeToken
from web.pages import PAGES
from web.pages.messages import DIMENSION_VALUES, DIMENSIONS, MESSAGES

PAGE_PATHS = [path for path in PAGES if "{" not in path]
TARGETS = [
    ReachTargetConfig(audience=audience, year=year, target=Decimal(target))
    for year in (2025, 2026)
    for audience, target in (
        ("TPO_AUTHORITY", 20),
        ("BUSINESS_CHAMBER", 30),
        ("SECTOR_ASSOCIATION", 25),
        ("MSME", 120),
    )
]
WORDS = {"es": "Resumen", "pt": "Resumo", "en": "Overview"}


@pytest.fixture(scope="module", autouse=True)
async def targets(web_pool: asyncpg.Pool) -> None:
    """Targets of the four art. 7 audiences for the years the store holds."""
    await set_targets(web_pool, TARGETS)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def fetch(http: aiohttp.ClientSession, url: str, token: str, status: int = 200, **headers: str) -> str:
    async with http.get(url, headers={**bearer(token), **headers}) as response:
        text = await response.text()
        assert response.status == status, (url, text[:500])
        return text


def test_every_text_of_the_pages_is_written_in_the_three_languages() -> None:
    for table in (MESSAGES, DIMENSIONS, DIMENSION_VALUES):
        for key, words in table.items():
            assert len(words) == 3 and all(word.strip() for word in words), key
    for entry in catalogue.INDICATORS:
        assert all(entry.names[lang].strip() for lang in ("es", "pt", "en")), entry.id


@pytest.mark.parametrize("lang", ["es", "pt", "en"])
async def test_every_page_renders_in_each_language(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken, lang: str
) -> None:
    token = await make_token("coordinator")
    for path in PAGE_PATHS:
        html = await fetch(http, f"{base_url}{path}?lang={lang}", token)
        assert f'<html lang="{lang}">' in html, path
        assert WORDS[lang] in html, path  # the navigation is in the language asked for
        assert "<table" in html and "<caption" in html, path
        assert "None" not in re.sub(r"<[^>]+>", " ", html), path  # no raw Python value leaks into the text


async def test_accept_language_picks_the_language_and_countries_are_named_in_it(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    pt = await fetch(http, f"{base_url}/reach", token, **{"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.5"})
    en = await fetch(http, f"{base_url}/reach?lang=en", token, **{"Accept-Language": "pt-BR"})
    assert '<html lang="pt">' in pt and "Brasil" in pt
    assert '<html lang="en">' in en and "Brazil" in en and "Brasil" not in en


async def test_numbers_are_formatted_per_language(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    rates = {}
    for lang in ("es", "pt", "en"):
        html = await fetch(http, f"{base_url}/funnel?lang={lang}&by=country", token)
        rates[lang] = re.findall(r'<td class="rate">([^<]*%[^<]*)</td>', html)
        assert rates[lang], lang
    # Decimal comma in Spanish and Portuguese, decimal point in English, the same numbers underneath.
    assert any("," in rate.split("%")[0] for rate in rates["es"] + rates["pt"])
    assert all("," not in rate.split("%")[0] for rate in rates["en"])


async def test_a_filter_lives_in_the_url_and_changes_the_numbers(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    first = await fetch(http, f"{base_url}/reach?lang=en&year=2025&csv=learners-by-country", token)
    second = await fetch(http, f"{base_url}/reach?lang=en&year=2026&csv=learners-by-country", token)
    one = {row["country"]: row["learners"] for row in csv.DictReader(io.StringIO(first))}
    two = {row["country"]: row["learners"] for row in csv.DictReader(io.StringIO(second))}
    assert one and two and one != two
    wrong = await fetch(http, f"{base_url}/reach?audience=NOBODY", token, status=400)
    assert "MSME" in wrong  # the error names what is valid


def _api_cells(body: dict[str, Any], year: str) -> dict[str, Any]:
    return {c["dimensions"]["country"]: c for c in body["cells"] if c["period"]["start"].startswith(year)}


async def test_a_csv_export_equals_the_api(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    html = await fetch(http, f"{base_url}/reach?lang=en", token)
    year = re.search(r'<option value="(\d{4})" selected>', html)
    assert year is not None
    text = await fetch(http, f"{base_url}/reach?year={year[1]}&csv=gender", token)
    rows = list(csv.DictReader(io.StringIO(text)))
    async with http.get(
        f"{base_url}/api/v1/indicators/CVF-18?grain=year&by=country", headers=bearer(token)
    ) as response:
        api = _api_cells(await response.json(), year[1])
    assert rows and {row["country"] for row in rows} == set(api)
    for row in rows:
        cell = api[row["country"]]
        assert row["female_share"] == ("" if cell["value"] is None else str(cell["value"]))
        assert row["female_share_numerator"] == str(cell["parts"]["female_learners"])
        assert row["female_share_denominator"] == str(cell["parts"]["female_and_male"])
    missing = await fetch(http, f"{base_url}/reach?csv=nothing", token, status=404)
    assert "learners-by-country" in missing


async def test_the_portfolio_exports_every_activity_ranked_as_the_api_does(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    text = await fetch(http, f"{base_url}/portfolio?csv=portfolio", token)
    rows = list(csv.DictReader(io.StringIO(text)))
    async with http.get(f"{base_url}/api/v1/portfolio", headers=bearer(token)) as response:
        review = await response.json()
    assert [r["activity"] for r in rows] == [a["dimensions"]["activity"] for a in review["activities"]]
    assert [r["benefit_cost_ratio"] for r in rows] == [
        "" if a["benefit_cost_ratio"] is None else str(a["benefit_cost_ratio"]) for a in review["activities"]
    ]
    assert {r["status"] for r in rows} <= {"provisional", "final"}
    # Final 12 months after the last session: a final activity's last session is a year old at least.
    for row in rows:
        if row["status"] == "final":
            assert date.fromisoformat(row["last_session"]) + timedelta(days=365) <= datetime.now(UTC).date()


async def test_an_external_viewer_sees_published_tables_only_and_withheld_cells_unlike_zero(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    external, internal = await make_token("external"), await make_token("coordinator")
    page = await fetch(http, f"{base_url}/courses?lang=en", external)
    assert "This table is not published for your role." in page
    await fetch(http, f"{base_url}/courses?csv=courses-all-runs", external, status=404)
    shown = await fetch(http, f"{base_url}/reach?lang=en&csv=learners-by-country", external)
    inside = await fetch(http, f"{base_url}/reach?lang=en&csv=learners-by-country", internal)
    outside_rows = {r["country"]: r["learners"] for r in csv.DictReader(io.StringIO(shown))}
    inside_rows = {r["country"]: r["learners"] for r in csv.DictReader(io.StringIO(inside))}
    assert set(outside_rows) == set(inside_rows)
    small = [c for c, v in inside_rows.items() if int(v) < 5]
    assert all(outside_rows[c] == "withheld" for c in small)
    html = await fetch(http, f"{base_url}/reach?lang=en", external)
    if small:
        assert 'class="count withheld">&lt;5<' in html
    assert "not enough data" in html or "<5" in html  # the legend explains both marks


async def test_an_activity_page_and_an_unknown_activity(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    listing = await fetch(http, f"{base_url}/activities?lang=en", token)
    link = re.search(r'href="(/activities/[^"?]+)\?lang=en"', listing)
    assert link is not None
    detail = await fetch(http, f"{base_url}{link[1]}?lang=en", token)
    assert "Cost by category and payer" in detail and "<svg" in detail
    await fetch(http, f"{base_url}/activities/no-such-activity", token, status=404)


async def test_pages_need_an_identity(base_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{base_url}/reach") as response:
        assert response.status == 401
    async with http.get(f"{base_url}/static/app.js") as response:
        assert response.status == 200 and "EventSource" in await response.text()


async def test_the_cohorts_status_is_the_apis(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    for year in (2025, 2026):
        text = await fetch(http, f"{base_url}/cohorts?year={year}&csv=offerings", token)
        page = {row["offering"]: row["status"] for row in csv.DictReader(io.StringIO(text))}
        async with http.get(f"{base_url}/api/v1/offerings?year={year}", headers=bearer(token)) as response:
            api = {o["dimensions"]["offering"]: o["status"] for o in (await response.json())["offerings"]}
        assert page and page == api
        closed = await fetch(http, f"{base_url}/cohorts?year={year}&status=closed&csv=offerings", token)
        assert {row["offering"] for row in csv.DictReader(io.StringIO(closed))} == {
            name for name, status in api.items() if status == "closed"
        }


async def test_the_data_health_page_shows_each_source_as_the_api_does(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken, web_pool: asyncpg.Pool
) -> None:
    await web_pool.execute(
        "INSERT INTO source_health (source, kind, host, health, last_error, failing_for_s, records_pulled,"
        " events_published, dead_lettered, seconds_behind, updated_at)"
        " VALUES ('ledger-test', 'costs', 'ledger.example', 'failed', 'HTTP 503 from the ledger', 930.5,"
        " 40, 37, 3, 12.5, now()) ON CONFLICT (source) DO NOTHING"
    )
    token = await make_token("coordinator")
    html = await fetch(http, f"{base_url}/health?lang=es", token)
    assert "ledger-test" in html and "con falla" in html and "HTTP 503 from the ledger" in html
    text = await fetch(http, f"{base_url}/health?csv=sources", token)
    rows = {row["source"]: row for row in csv.DictReader(io.StringIO(text))}
    async with http.get(f"{base_url}/api/v1/health/sources", headers=bearer(token)) as response:
        api = {s["source"]: s for s in (await response.json())["sources"]}
    assert set(rows) == set(api)
    for name, row in rows.items():
        assert row["dead_lettered"] == str(api[name]["dead_lettered"])
        assert row["health"] == api[name]["health"]
    await fetch(http, f"{base_url}/health", await make_token("external"), status=200)


async def test_a_table_sorts_by_a_column_from_its_header(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    page = await fetch(http, f"{base_url}/courses?lang=en", token)
    assert "sort=courses-all-runs.enrolled_net" in page.replace("&amp;", "&")
    text = await fetch(
        http, f"{base_url}/courses?sort=courses-all-runs.enrolled_net&order=desc&csv=courses-all-runs", token
    )
    counts = [int(row["enrolled_net"]) for row in csv.DictReader(io.StringIO(text)) if row["enrolled_net"]]
    assert len(counts) > 1 and counts == sorted(counts, reverse=True)
    text = await fetch(http, f"{base_url}/courses?sort=courses-all-runs.course&csv=courses-all-runs", token)
    names = [row["course"] for row in csv.DictReader(io.StringIO(text))]
    assert names == sorted(names)
    html = await fetch(http, f"{base_url}/courses?sort=courses-all-runs.course&order=asc", token)
    assert 'aria-sort="ascending"' in html
    wrong = await fetch(http, f"{base_url}/courses?sort=nothing.x", token, status=400)
    assert "courses-all-runs.<" in wrong


async def test_every_csv_row_has_as_many_fields_as_its_header(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    for path in PAGE_PATHS:
        html = await fetch(http, f"{base_url}{path}?lang=en", token)
        for table_id in re.findall(r'download="([^"]+)\.csv"', html):
            text = await fetch(http, f"{base_url}{path}?csv={table_id}", token)
            rows = list(csv.reader(io.StringIO(text)))
            assert rows and all(len(row) == len(rows[0]) for row in rows), (path, table_id)


async def test_the_course_comparison_equals_the_indicators_api(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("coordinator")
    text = await fetch(http, f"{base_url}/courses?year=2025&csv=courses-all-runs", token)
    rows = {row["course"]: row for row in csv.DictReader(io.StringIO(text))}
    for indicator, column in (("CVF-05", "completion_rate"), ("CVF-07", "certification_rate")):
        url = f"{base_url}/api/v1/indicators/{indicator}?grain=year&by=course&from=2025&to=2025"
        async with http.get(url, headers=bearer(token)) as response:
            api = {c["dimensions"]["course"]: c for c in (await response.json())["cells"]}
        assert rows and set(api) <= set(rows)
        for course, cell in api.items():
            assert rows[course][column] == ("" if cell["value"] is None else str(cell["value"]))
