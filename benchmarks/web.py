"""Query API and page latency over a filled store: server time (`Server-Timing`) p50/p95, as JSON.

Usage: `.venv/bin/python -m benchmarks.web [--events N] [--repeat 5] [--state-dir DIR] [--json]`

The store is filled as `benchmarks.read_model` fills it (same schema per scale and seed, so a kept
state directory serves both benchmarks), then measured at rest: its outbox marks relayed and the
snapshots not current refreshed (`snapshots` in the output: relay and refresh seconds); the web
app is served on a free port with its own pool, and an API mix (`api_mix`) is requested `--repeat`
times one request at a time with a developer token (one external request too), then every page
(`page_mix`) with a coordinator's token. Reported for the API: p50, p95 and p99 of the server's time
over every request, the client-observed p50/p95, and the median server time per request; for the
pages: the same over every page request, and each page's p95.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.processors.alcance import committed_records
from benchmarks.read_model import (
    _load,
    _produced,
    _snapshots,
    benchmark_settings,
    percentile,
    store_name,
)


def api_mix(year: int) -> list[tuple[str, str]]:
    """(role, path) of a coordinators' dashboard session and of dashboard developers."""
    return [
        ("developer", "/api/v1/catalogue"),
        ("developer", "/api/v1/indicators/CVF-01?grain=year"),
        ("developer", "/api/v1/indicators/CVF-01?grain=month&by=country"),
        ("developer", "/api/v1/indicators/CVF-02?grain=year&by=country"),
        ("developer", "/api/v1/indicators/CVF-05?grain=year&by=country"),
        ("developer", "/api/v1/indicators/CVF-07?grain=year&by=audience"),
        ("developer", "/api/v1/indicators/PLGN-01?grain=year"),
        ("developer", "/api/v1/indicators/ACT-08?grain=year&by=activity"),
        ("developer", f"/api/v1/indicators/CVF-01?grain=month&by=country&country=AR,BR&from={year}-01"),
        ("developer", "/api/v1/health/sources"),
        ("developer", "/api/v1/funnels/training?grain=year"),
        ("developer", f"/api/v1/portfolio?year={year}"),
        ("external", "/api/v1/indicators/CVF-04?grain=year&by=country"),
    ]


# Every page of the web app, in the three languages, one filtered and one CSV export.
PAGES = (
    "/",
    "/reach",
    "/funnel",
    "/cohorts",
    "/courses",
    "/targets",
    "/pathways",
    "/activities",
    "/portfolio",
    "/health",
)


def page_mix(year: int, activity: str) -> list[tuple[str, str]]:
    """(role, path) of a coordinator reading every page once, in es, pt and en in turn."""
    langs = ("es", "pt", "en")
    paths = [f"{page}?lang={langs[i % 3]}" for i, page in enumerate(PAGES)]
    paths += [
        f"/activities/{activity}?lang=en",
        f"/funnel?lang=pt&year={year}&by=country",
        f"/portfolio?year={year}&csv=portfolio",
    ]
    return [("coordinator", path) for path in paths]


def _page_name(path: str) -> str:
    name = path.split("?")[0]
    return "/activities/{id}" if name.startswith("/activities/") else name


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    from infra.kafka import ensure_topics
    from infra.local import running_stack
    from infra.postgres import create_pool, migrate
    from infra.settings import load_settings
    from schemas.topics import TopicCatalogue
    from web import identities
    from web.app import serving_web

    with contextlib.ExitStack() as stack:
        state = args.state_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="alcance-bench-"))
        async with running_stack(load_settings(state_dir=Path(state))) as resolved:
            name = store_name(args.events, args.seed)  # the read model benchmark's store
            settings = benchmark_settings(resolved, name)
            settings = settings.model_copy(update={"web": settings.web.model_copy(update={"port": 0})})
            catalogue = TopicCatalogue.from_settings(settings)
            await ensure_topics(settings.kafka, catalogue.all())
            pool = await create_pool(settings.postgres)
            await migrate(pool)
            # The read model benchmark's load: a store it kept is read as it is.
            records = await _produced(settings, Path(state) / f"{name}.records", args, pool)
            if await committed_records(pool) < records:
                await _load(settings, pool, records)
            # At rest: every outbox mark relayed and every snapshot current, as the refresher keeps them.
            snapshots = await _snapshots(settings, pool, only_due=True)
            tokens = {
                role: (await identities.create_credential(pool, role=role))[2]
                for role in ("developer", "external", "coordinator")
            }
            await pool.close()
            async with serving_web(settings, stream=False) as url, aiohttp.ClientSession() as client:
                timings = await _requests(client, url, tokens, args.repeat)
    return {**_summary(args, timings), "snapshots": snapshots}


async def _requests(
    client: Any, url: str, tokens: dict[str, str], repeat: int
) -> list[tuple[str, float, float]]:
    headers = {role: {"Authorization": f"Bearer {token}"} for role, token in tokens.items()}
    async with client.get(f"{url}/api/v1/portfolio", headers=headers["developer"]) as response:
        review = await response.json()
    year, activity = review["year"], review["activities"][0]["dimensions"]["activity"]
    timings = []
    for _ in range(repeat):
        for role, path in [*api_mix(year), *page_mix(year, activity)]:
            began = time.perf_counter()
            async with client.get(f"{url}{path}", headers=headers[role]) as response:
                await response.read()
                assert response.status == 200, (path, response.status)
                server_ms = float(response.headers["Server-Timing"].split("dur=")[1])
            timings.append((path, server_ms, (time.perf_counter() - began) * 1000))
    return timings


def _summary(args: argparse.Namespace, timings: list[tuple[str, float, float]]) -> dict[str, Any]:
    api = [timing for timing in timings if timing[0].startswith("/api/")]
    pages = [timing for timing in timings if not timing[0].startswith("/api/")]
    server = sorted(ms for _, ms, _ in api)
    client = sorted(ms for _, _, ms in api)
    per_path: dict[str, list[float]] = {}
    for path, ms, _ in api:
        per_path.setdefault(path, []).append(ms)
    per_page: dict[str, list[float]] = {}
    for path, ms, _ in pages:
        per_page.setdefault(_page_name(path), []).append(ms)
    page_server = sorted(ms for _, ms, _ in pages)
    summary = {
        "events": args.events,
        "requests": len(api),
        "server_p50_ms": percentile(server, 0.50),
        "server_p95_ms": percentile(server, 0.95),
        "server_p99_ms": percentile(server, 0.99),
        "client_p50_ms": percentile(client, 0.50),
        "client_p95_ms": percentile(client, 0.95),
        "median_server_ms_by_request": {path: percentile(sorted(ms), 0.5) for path, ms in per_path.items()},
        "page_requests": len(pages),
        "page_server_p50_ms": percentile(page_server, 0.50),
        "page_server_p95_ms": percentile(page_server, 0.95),
        "page_client_p95_ms": percentile(sorted(ms for _, _, ms in pages), 0.95),
        "page_server_p95_ms_by_page": {page: percentile(sorted(ms), 0.95) for page, ms in per_page.items()},
    }
    if args.json:
        return summary
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    return {"benchmark": "web", "machine": machine, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=503)
    parser.add_argument("--state-dir", help="keep the broker and store here; a rerun reads the kept store")
    parser.add_argument("--json", action="store_true", help="print only the summary, as one JSON object")
    args = parser.parse_args()
    result = asyncio.run(_run(args))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
