"""The query API over a store the real pipeline filled: identities, values equal to the CLI's, suppression."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import aiohttp
import asyncpg

from infra.settings import Settings
from processors.indicators import catalogue
from tests.web.conftest import MakeToken
from web import identities

PROBLEM = "application/problem+json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def cli_json(settings: Settings, *args: str) -> Any:
    """Run the `alcance` CLI against the same store and parse its JSON output."""
    assert settings.postgres.dsn is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ALCANCE_")},
        "ALCANCE_POSTGRES__DSN": settings.postgres.dsn.get_secret_value(),
        "ALCANCE_POSTGRES__DB_SCHEMA": settings.postgres.db_schema,
        "ALCANCE_PROCESSOR__FUTURE_ALLOWANCE_S": str(settings.processor.future_allowance_s),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alcance.cli", *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return json.loads(out)


async def test_healthz_answers_without_an_identity(base_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{base_url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_without_a_token_every_api_call_and_page_is_a_401_problem(
    base_url: str, http: aiohttp.ClientSession
) -> None:
    for path in ("/api/v1/indicators/CVF-01?grain=year", "/api/v1/catalogue", "/api/v1/openapi.json", "/"):
        async with http.get(f"{base_url}{path}") as response:
            assert response.status == 401, path
            assert response.content_type == PROBLEM
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            body = await response.json(content_type=PROBLEM)
            assert body["status"] == 401 and "token" in body["detail"]
    async with http.get(f"{base_url}/api/v1/catalogue", headers=bearer("alc_not-a-real-token")) as response:
        assert response.status == 401


async def test_an_indicator_read_returns_the_same_values_as_the_cli(
    filled: Settings, base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("developer")
    url = f"{base_url}/api/v1/indicators/cvf-01?grain=year"
    async with http.get(url, headers=bearer(token)) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "private, no-store"
        assert float(response.headers["Server-Timing"].split("dur=")[1]) > 0
        table = await response.json()
    expected = await cli_json(filled, "indicators", "--json", "--indicator", "CVF-01", "--period", "year")
    assert expected, "the store holds CVF-01 cells"
    cells = [{k: v for k, v in cell.items() if k != "suppressed"} for cell in table["cells"]]
    assert cells == expected
    assert table["audience"] == "internal" and all(not cell["suppressed"] for cell in table["cells"])
    assert table["indicator"] == "CVF-01" and table["as_of"]


async def test_grouping_period_range_and_filters_select_the_cells(
    filled: Settings, base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    headers = bearer(await make_token("coordinator"))
    async with http.get(f"{base_url}/api/v1/indicators/CVF-01?grain=month&by=country", headers=headers) as r:
        every = (await r.json())["cells"]
    countries = sorted({cell["dimensions"]["country"] for cell in every})
    months = sorted({cell["period"]["start"] for cell in every})
    assert len(countries) >= 2 and len(months) >= 3
    first, last = months[1][:7], months[-2][:7]
    query = f"grain=month&by=country&country={countries[0]}&from={first}&to={last}"
    async with http.get(f"{base_url}/api/v1/indicators/CVF-01?{query}", headers=headers) as r:
        chosen = (await r.json())["cells"]
    assert chosen == [
        cell
        for cell in every
        if cell["dimensions"]["country"] == countries[0] and first <= cell["period"]["start"][:7] <= last
    ]
    assert chosen


async def test_wrong_parameters_are_400_problems_naming_what_is_valid(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    headers = bearer(await make_token("developer"))
    cases = {
        "/api/v1/indicators/CVF-01?by=planet": "country",
        "/api/v1/indicators/CVF-01?grain=week": "grain",
        "/api/v1/indicators/CVF-01?colour=red": "colour",
        "/api/v1/indicators/CVF-01?country=AR": "by=",
        "/api/v1/indicators/CVF-01?from=2025-13": "calendar date",
    }
    for path, named in cases.items():
        async with http.get(f"{base_url}{path}", headers=headers) as response:
            assert response.status == 400, path
            body = await response.json(content_type=PROBLEM)
            assert named in body["detail"], (path, body)
    async with http.get(f"{base_url}/api/v1/indicators/XYZ-99", headers=headers) as response:
        assert response.status == 404
        assert "/api/v1/catalogue" in (await response.json(content_type=PROBLEM))["detail"]


async def test_external_roles_read_suppressed_published_tables_only(
    filled: Settings, base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    internal = bearer(await make_token("coordinator"))
    # CVF-04 (active learners) by country holds small yearly cells in the generated store.
    url = f"{base_url}/api/v1/indicators/CVF-04?grain=year&by=country"
    async with http.get(url, headers=internal) as response:
        full = await response.json()
    small = {
        (c["period"]["start"], c["dimensions"]["country"])
        for c in full["cells"]
        if 0 < c["parts"]["active_learners"] < filled.processor.small_cell_threshold
    }
    assert small, "the store holds small cells to withhold"
    expected = await cli_json(
        filled,
        "indicators",
        "--json",
        "--indicator",
        "CVF-04",
        "--period",
        "year",
        "--by",
        "country",
        "--external",
    )
    for role, state in (("external", None), ("state", "AR")):
        headers = bearer(await make_token(role, state))
        async with http.get(url, headers=headers) as response:
            table = await response.json()
        assert table["audience"] == "external"
        assert table["cells"] == expected
        withheld = {
            (c["period"]["start"], c["dimensions"]["country"]) for c in table["cells"] if c["suppressed"]
        }
        assert small <= withheld
        assert all(c["value"] is None and c["parts"] == {} for c in table["cells"] if c["suppressed"])
        # No free tabulation, no month/year differencing, and no parameter turns suppression off.
        for query in ("grain=month", "grain=year&by=country,audience", "grain=year&by=course"):
            async with http.get(f"{base_url}/api/v1/indicators/CVF-04?{query}", headers=headers) as response:
                assert response.status == 403, query
        async with http.get(f"{url}&audience_override=internal", headers=headers) as response:
            assert response.status == 400


async def test_a_revoked_token_is_refused(
    base_url: str, http: aiohttp.ClientSession, web_pool: asyncpg.Pool
) -> None:
    _, name, secret = await identities.create_credential(web_pool, role="developer", name="to-revoke")
    async with http.get(f"{base_url}/api/v1/catalogue", headers=bearer(secret)) as response:
        assert response.status == 200
        ids = [entry["id"] for entry in (await response.json())["indicators"]]
        assert ids == [entry.id for entry in catalogue.INDICATORS]
    assert await identities.revoke_credential(web_pool, name) == 1
    async with http.get(f"{base_url}/api/v1/catalogue", headers=bearer(secret)) as response:
        assert response.status == 401


async def test_the_overview_page_lists_every_indicator_with_its_value(
    filled: Settings, base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    headers = bearer(await make_token("coordinator"))
    async with http.get(f"{base_url}/?lang=pt", headers=headers) as response:
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
    assert '<html lang="pt">' in page
    for entry in catalogue.INDICATORS:
        assert entry.name_pt in page
    year_totals = await cli_json(filled, "indicators", "--json", "--indicator", "CVF-01", "--period", "year")
    latest = max(year_totals, key=lambda cell: cell["period"]["start"])
    async with http.get(f"{base_url}/?csv=all-indicators", headers=headers) as response:
        exported = {line.split(",")[0]: line.split(",")[2] for line in (await response.text()).splitlines()}
    assert exported["CVF-01"] == str(latest["value"])


async def test_several_indicators_are_read_at_once_in_the_order_asked(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    headers = bearer(await make_token("developer"))
    async with http.get(f"{base_url}/api/v1/indicators?ids=CVF-07,cvf-01&grain=year", headers=headers) as r:
        tables = (await r.json())["tables"]
    async with http.get(f"{base_url}/api/v1/indicators/CVF-01?grain=year", headers=headers) as r:
        single = await r.json()
    assert [t["indicator"] for t in tables] == ["CVF-07", "CVF-01"]
    assert tables[1]["cells"] == single["cells"]
    async with http.get(f"{base_url}/api/v1/indicators?ids=CVF-01,ACT-01&by=country", headers=headers) as r:
        assert (
            r.status == 400
            and "ACT-01 has no dimension country" in (await r.json(content_type=PROBLEM))["detail"]
        )


async def test_a_session_ends_when_idle_too_long_and_on_sign_out(
    filled: Settings, base_url: str, web_pool: asyncpg.Pool
) -> None:
    async def signed_in() -> aiohttp.ClientSession:
        _, _, link = await identities.create_credential(
            web_pool, role="coordinator", kind="login_link", ttl_s=60
        )
        browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with browser.get(f"{base_url}/login?token={link}", allow_redirects=False) as response:
            assert response.status == 303
        return browser

    async with await signed_in() as browser:
        async with browser.get(f"{base_url}/api/v1/catalogue") as response:
            assert response.status == 200
        idle = filled.web.session_idle_s + 1
        await web_pool.execute(
            "UPDATE web_session SET last_seen_at = last_seen_at - make_interval(secs => $1)", idle
        )
        async with browser.get(f"{base_url}/api/v1/catalogue") as response:
            assert response.status == 401
    async with await signed_in() as browser:
        async with browser.post(f"{base_url}/logout") as response:
            assert response.status == 200
        sessions = await web_pool.fetchval(
            "SELECT count(*) FROM web_session WHERE last_seen_at > now() - interval '1 minute'"
        )
        assert sessions == 0
        async with browser.get(f"{base_url}/api/v1/catalogue") as response:
            assert response.status == 401


async def test_a_state_identity_carries_its_member_state_and_reads_as_external(
    web_pool: asyncpg.Pool,
) -> None:
    credential_id, name, secret = await identities.create_credential(
        web_pool, role="state", member_state="py"
    )
    found = await identities.identity_for_token(web_pool, secret)
    assert found == identities.Identity(
        name=name, role="state", member_state="PY", credential_id=credential_id
    )
    assert found.audience == "external"
    stored = await web_pool.fetchval("SELECT secret_sha256 FROM web_credential WHERE id = $1", credential_id)
    assert stored == identities.digest(secret) and secret.encode() not in bytes(stored)
    assert await identities.identity_for_token(web_pool, secret + "x") is None


async def test_an_expired_token_is_refused(
    base_url: str, http: aiohttp.ClientSession, web_pool: asyncpg.Pool
) -> None:
    credential_id, _, secret = await identities.create_credential(
        web_pool, role="developer", ttl_s=90 * 86_400
    )
    async with http.get(f"{base_url}/api/v1/catalogue", headers=bearer(secret)) as response:
        assert response.status == 200
    await web_pool.execute(
        "UPDATE web_credential SET expires_at = now() - interval '1 second' WHERE id = $1", credential_id
    )
    async with http.get(f"{base_url}/api/v1/catalogue", headers=bearer(secret)) as response:
        assert response.status == 401
