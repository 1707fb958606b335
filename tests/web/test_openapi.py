"""The OpenAPI 3.1 document is valid, lists every API route, and a schema-driven fuzz run finds no 5xx."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import aiohttp
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from infra.settings import Settings
from tests.web.conftest import MakeToken
from web.api import endpoints
from web.directory_openapi import directory_paths
from web.openapi import is_stale, openapi_document

# Few examples per operation: the run must stay well under a minute on two shared cores.
FUZZ_EXAMPLES = 5
FUZZ_TIMEOUT_S = 120


def test_the_document_is_a_valid_openapi_3_1_document() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    validate(document)
    broken = {**document, "paths": {"/x": {"get": {"responses": {"200": {"content": 1}}}}}}
    try:
        validate(broken)
    except OpenAPIValidationError:
        pass
    else:
        raise AssertionError("the validator accepts a broken document")


def test_the_committed_document_is_current() -> None:
    assert not is_stale(), "run `python -m web.openapi` and commit web/openapi.json"


async def test_every_api_route_is_documented_and_the_served_document_is_the_generated_one(
    base_url: str, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    token = await make_token("developer")
    async with http.get(f"{base_url}/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}) as r:
        served = await r.json()
    assert served == openapi_document()
    documented = {endpoint.path for endpoint in endpoints()} | set(directory_paths()) | {"/healthz"}
    assert set(served["paths"]) == documented
    schemas = served["components"]["schemas"]
    assert {"IndicatorTable", "IndicatorCell", "Problem", "Portfolio", "TrainingFunnel"} <= set(schemas)


async def test_a_schema_driven_fuzz_run_against_the_live_api_finds_no_server_error(
    filled: Settings, base_url: str, make_token: MakeToken, tmp_path: Path
) -> None:
    for role in ("coordinator", "external"):
        token = await make_token(role)
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{base_url}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(FUZZ_EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            "--exclude-path",
            "/api/v1/stream",
            "--generation-deterministic",
            "--workers",
            "2",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), FUZZ_TIMEOUT_S)
        text = out.decode(errors="replace")
        assert process.returncode == 0, text
        counts = re.search(r"(\d+) generated, (\d+) passed", text)
        assert counts is not None, text
        assert int(counts[1]) >= 50 and counts[1] == counts[2], text
