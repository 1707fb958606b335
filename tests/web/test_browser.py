"""The pages in a real browser: Playwright driving Debian's Chromium (`make browser` installs it).

Screenshots of the main pages are written to `.alcance/screenshots/` (or `ALCANCE_SCREENSHOTS`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from infra.kafka import make_producer
from infra.settings import Settings
from processors.runtime import IndicatorProcessor
from schemas.cloudevents import encode
from schemas.topics import TopicCatalogue
from tests.directory.support import firm_values, grant, setup
from tests.schemas.factories import make_enrolment_created, person_key
from tests.web.conftest import MakeToken
from tests.web.test_pages import targets
from web import identities

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAIN_PAGES = ("/", "/reach", "/funnel", "/cohorts", "/courses", "/pathways", "/activities", "/portfolio")
TITLES = {
    "/": ("Resumen", "Resumo", "Overview"),
    "/reach": ("Alcance", "Alcance", "Reach"),
    "/funnel": ("Embudo de formación", "Funil de formação", "Training funnel"),
    "/cohorts": ("Cohortes", "Coortes", "Cohorts"),
    "/courses": ("Comparación de cursos", "Comparação de cursos", "Course comparison"),
    "/targets": ("Metas y ritmo", "Metas e ritmo", "Targets and pace"),
    "/pathways": ("Trayectorias", "Trajetórias", "Pathways"),
    "/activities": ("Actividades", "Atividades", "Activities"),
    "/portfolio": ("Cartera anual", "Carteira anual", "Annual portfolio"),
    "/health": ("Estado de los datos", "Estado dos dados", "Data health"),
}
TILE = '[data-indicator="CVF-01"] [data-value]'
STAMP = "p.updated time[data-updated]"
# A page's stamp: the instant its values are exact at; a page that reads no indicator, when it was made.
VALUES_AS_OF = ("Valores al", "Valores em", "Values as of")
UPDATED = ("Actualizado:", "Atualizado:", "Updated:")
SCREENSHOTS = Path(os.environ.get("ALCANCE_SCREENSHOTS", ".alcance/screenshots"))

__all__ = ["targets"]  # the module's targets fixture: the art. 7 audiences' targets in the store
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="run `make browser` (Debian's chromium)")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def signed_in(
    browser: Browser, base_url: str, pool: asyncpg.Pool, role: str, member_state: str | None = None
) -> BrowserContext:
    """A browser context signed in through a one-time login link, as a person does."""
    _, _, secret = await identities.create_credential(
        pool, role=role, member_state=member_state, kind="login_link", ttl_s=300
    )
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    response = await page.goto(f"{base_url}/login?token={secret}")
    assert response is not None and response.ok
    await page.close()
    return context


@pytest.fixture
async def coordinator(browser: Browser, base_url: str, web_pool: asyncpg.Pool) -> AsyncIterator[Page]:
    """A page of a signed-in coordinator."""
    context = await signed_in(browser, base_url, web_pool, "coordinator")
    page = await context.new_page()
    yield page
    await context.close()


async def test_each_main_page_renders_in_the_three_languages_and_is_screenshotted(
    coordinator: Page, base_url: str
) -> None:
    await asyncio.to_thread(SCREENSHOTS.mkdir, parents=True, exist_ok=True)
    for path, titles in TITLES.items():
        for lang, title in zip(("es", "pt", "en"), titles, strict=True):
            response = await coordinator.goto(f"{base_url}{path}?lang={lang}")
            assert response is not None and response.status == 200, path
            assert await coordinator.get_attribute("html", "lang") == lang
            assert (await coordinator.locator("h1").inner_text()).strip() == title
            assert await coordinator.locator("table caption").count() >= 1, path
            label = (await coordinator.locator("p.updated [data-updated-label]").inner_text()).strip()
            labels = UPDATED if path == "/health" else VALUES_AS_OF
            assert label == labels[("es", "pt", "en").index(lang)], path
            instant = datetime.fromisoformat(str(await coordinator.get_attribute(STAMP, "datetime")))
            assert instant <= datetime.now(UTC), path
        if path in MAIN_PAGES:
            name = path.strip("/") or "overview"
            await coordinator.screenshot(path=str(SCREENSHOTS / f"{name}-en-1280.png"), full_page=True)
    await coordinator.set_viewport_size({"width": 390, "height": 844})
    await coordinator.goto(f"{base_url}/reach?lang=es")
    await coordinator.screenshot(path=str(SCREENSHOTS / "reach-es-390.png"), full_page=True)
    print(f"screenshots: {await asyncio.to_thread(SCREENSHOTS.resolve)}")


@pytest.fixture
async def member_state(
    browser: Browser, base_url: str, web_pool: asyncpg.Pool, filled: Settings
) -> AsyncIterator[tuple[Page, str]]:
    """A page of a signed-in agency user of Argentina, and a firm that authorised Argentina to read it."""
    firm = f"o-{uuid.uuid4().hex[:12]}"
    name = f"Vinos {firm[2:8]} S.A."
    fields = ("legalName", "country", "sector", "hsChapters", "sizeBand")
    async with web_pool.acquire() as admin:
        values = {firm: firm_values(legalName=name)}
        await setup(admin, filled.directory.db_schema, [grant(firm, ("AR",), fields)], values)
    context = await signed_in(browser, base_url, web_pool, "state", "AR")
    page = await context.new_page()
    yield page, name
    await context.close()


async def test_a_member_state_reads_the_directory_page_in_the_three_languages(
    member_state: tuple[Page, str], base_url: str
) -> None:
    page, firm_name = member_state
    titles = {"es": "Directorio PLGN", "pt": "Diretório PLGN", "en": "PLGN directory"}
    for lang, title in titles.items():
        response = await page.goto(f"{base_url}/directory?lang={lang}")
        assert response is not None and response.status == 200
        assert response.headers["cache-control"] == "no-store"
        assert await page.get_attribute("html", "lang") == lang
        assert (await page.locator("h1").inner_text()).strip() == title
        # The pages' own navigation, with this page marked, and its language switch.
        current = page.locator('nav[aria-label] a[aria-current="page"]')
        assert await current.get_attribute("href") == f"/directory?lang={lang}"
        assert await page.locator("nav.languages a").count() == 3
        table = await page.locator("#firms table").inner_text()
        assert firm_name in table
        assert "ana@uvas.example" not in table  # the contact was not authorised for Argentina
    await page.get_by_role("link", name="Español").click()
    await page.wait_for_url("**lang=es**")
    assert (await page.locator("h1").inner_text()).strip() == titles["es"]
    # A filter the firm does not match leaves it out; the URL alone reproduces the view.
    await page.select_option("#f-size", "LARGE")
    await page.get_by_role("button", name="Aplicar").click()
    await page.wait_for_url("**size=LARGE**")
    assert firm_name not in await page.locator("main").inner_text()
    await page.goto(f"{base_url}/directory?lang=en")
    axe = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()
    await page.evaluate(axe)
    result: dict[str, Any] = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")] == []


async def test_a_coordinator_sees_the_directory_is_for_member_states_only(
    coordinator: Page, base_url: str
) -> None:
    response = await coordinator.goto(f"{base_url}/directory?lang=en")
    assert response is not None and response.status == 200
    assert await coordinator.locator("#firms .forbidden").count() == 1
    assert await coordinator.locator("#firms table").count() == 0


async def _table_text(page: Page, table_id: str) -> str:
    return await page.locator(f"#{table_id} table").inner_text()


async def test_a_filter_changes_the_url_and_the_numbers(coordinator: Page, base_url: str) -> None:
    await coordinator.goto(f"{base_url}/reach?lang=en")
    before = await _table_text(coordinator, "learners-by-country")
    options = await coordinator.locator("#f-year option").all_inner_texts()
    selected = await coordinator.locator("#f-year").input_value()
    other = next(year for year in options if year != selected)
    await coordinator.select_option("#f-year", other)
    await coordinator.get_by_role("button", name="Apply").click()
    await coordinator.wait_for_url(f"**year={other}**")
    after = await _table_text(coordinator, "learners-by-country")
    assert after != before
    await coordinator.reload()  # the URL alone reproduces the view
    assert await _table_text(coordinator, "learners-by-country") == after


async def test_a_csv_export_equals_the_api(
    coordinator: Page, base_url: str, make_token: MakeToken, http: aiohttp.ClientSession
) -> None:
    await coordinator.goto(f"{base_url}/pathways?lang=pt")
    year = await coordinator.locator("#f-year").input_value()
    async with coordinator.expect_download() as waiting:
        await coordinator.locator("#continuation .export a").click()
    download = await waiting.value
    path = await download.path()
    rows = list(csv.DictReader(io.StringIO(await asyncio.to_thread(Path(path).read_text))))
    headers = {"Authorization": f"Bearer {await make_token('coordinator')}"}
    async with http.get(f"{base_url}/api/v1/indicators/CVF-22?grain=year&by=course", headers=headers) as r:
        cells = [c for c in (await r.json())["cells"] if c["period"]["start"].startswith(year)]
    assert rows and len(rows) == len(cells)
    api = {c["dimensions"]["course"]: c for c in cells}
    for row in rows:
        cell = api[row["course"]]
        assert row["rate"] == ("" if cell["value"] is None else str(cell["value"]))
        assert row["rate_numerator"] == str(cell["parts"]["continued"])
        assert row["rate_denominator"] == str(cell["parts"]["certified_learners"])


async def test_axe_finds_no_serious_or_critical_violation(coordinator: Page, base_url: str) -> None:
    axe = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()
    found: dict[str, list[str]] = {}
    for path in TITLES:
        await coordinator.goto(f"{base_url}{path}?lang=es")
        await coordinator.evaluate(axe)
        result: dict[str, Any] = await coordinator.evaluate(
            "axe.run(document, {resultTypes: ['violations']})"
        )
        bad = [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")]
        if bad:
            found[path] = bad
    assert found == {}


async def test_the_keyboard_reaches_the_content_and_every_filter(coordinator: Page, base_url: str) -> None:
    await coordinator.goto(f"{base_url}/funnel?lang=en")
    await coordinator.keyboard.press("Tab")
    assert await coordinator.evaluate("document.activeElement.className") == "skip"
    await coordinator.keyboard.press("Enter")
    assert await coordinator.evaluate("document.activeElement.id") == "main"
    reached = set()
    for _ in range(12):
        await coordinator.keyboard.press("Tab")
        reached.add(await coordinator.evaluate("document.activeElement.id || document.activeElement.tagName"))
    assert {"f-year", "f-by", "BUTTON"} <= reached


async def test_an_external_viewer_sees_withheld_cells_and_no_internal_table(
    browser: Browser, base_url: str, web_pool: asyncpg.Pool
) -> None:
    context = await signed_in(browser, base_url, web_pool, "external")
    page = await context.new_page()
    await page.goto(f"{base_url}/activities?lang=en")
    assert await page.locator(".forbidden").count() == 1
    await page.goto(f"{base_url}/reach?lang=en")
    await page.screenshot(path=str(SCREENSHOTS / "reach-external-en-1280.png"), full_page=True)
    assert await page.locator("#learners-by-country table").count() == 1
    await context.close()


async def test_an_event_published_to_the_input_topic_shows_on_an_open_page(
    filled: Settings, coordinator: Page, base_url: str, web_pool: asyncpg.Pool
) -> None:
    """The full pipeline: the broker, the processor and its outbox relay, the stream, the page."""
    processor = IndicatorProcessor(filled, pool=web_pool)
    running = asyncio.create_task(processor.run())
    try:
        await coordinator.goto(f"{base_url}/?lang=en&year=2026")
        await coordinator.wait_for_selector("body[data-stream-open]")
        tile = coordinator.locator(TILE)
        # The relay first publishes what the store's loading left in the outbox: let the page settle.
        await _settled(coordinator)
        before = await tile.inner_text()
        stamped = datetime.fromisoformat(str(await coordinator.get_attribute(STAMP, "datetime")))
        ref = uuid.uuid4().hex
        event = make_enrolment_created(
            source_ref=f"live-{ref}",
            enrolment_id=f"live-{ref}",
            subject_key=person_key(ref),
            enrolled_at=datetime(2026, 6, 15, 10, tzinfo=UTC),
        )
        topic = TopicCatalogue.from_settings(filled).topic_for(event).name
        producer = make_producer(filled.kafka)
        await producer.start()
        try:
            record = encode(event)
            began = time.perf_counter()
            await producer.send_and_wait(topic, key=record.key, value=record.value, headers=record.headers)
        finally:
            await producer.stop()
        await coordinator.wait_for_function(
            f"before => document.querySelector('{TILE}').textContent !== before",
            arg=before,
            timeout=20_000,
        )
        print(f"event published -> open page updated: {time.perf_counter() - began:.2f} s")
        assert int((await tile.inner_text()).replace(",", "")) == int(before.replace(",", "")) + 1
        # Read live (no snapshots here): the refreshed page's stamp is the new read's instant.
        assert datetime.fromisoformat(str(await coordinator.get_attribute(STAMP, "datetime"))) > stamped
    finally:
        processor.request_stop()
        await asyncio.wait_for(running, 30)


async def _settled(page: Page, quiet_s: float = 3.0) -> None:
    """Wait until the page has not refreshed itself for `quiet_s`."""
    last, since = "", time.monotonic()
    while time.monotonic() - since < quiet_s:
        now = await page.evaluate("document.body.getAttribute('data-refreshes') || ''")
        if now != last:
            last, since = now, time.monotonic()
        await asyncio.sleep(0.2)
