"""`alcance serve` and `alcance token` as a person uses them: printed login link, tokens, the CLI's values."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import pytest

from infra.settings import Settings
from tests.support.processes import python_child, settings_env
from tests.web.test_api import cli_json
from web.app import serving_web, serving_web_beside

LINK = "one-time login link"


async def alcance(settings: Settings, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alcance.cli",
        *args,
        env={**settings_env(settings), "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_serve_prints_a_login_link_that_works_once_and_a_cli_token_reads_the_cli_values(
    filled: Settings,
) -> None:
    async with python_child(module="alcance.cli", args=["serve"], settings=filled) as serve:
        line = await serve.wait_for_line(lambda text: LINK in text, timeout_s=60)
        link = line.split(": ", 1)[1].strip()
        base = link.split("/login?", 1)[0]
        assert (await serve.wait_for_line(lambda text: text.startswith("dashboard: "))).endswith(f"{base}/")

        jar = aiohttp.CookieJar(unsafe=True)  # the app is served on an IP address
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            async with browser.get(link, allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"] == "/"
                cookie = response.headers["Set-Cookie"]
                assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
            async with browser.get(f"{base}/?lang=en") as response:
                assert response.status == 200 and "Enrolments" in await response.text()
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other,
            other.get(link, allow_redirects=False) as response,
        ):
            assert response.status == 401, "a login link works once"

        code, token, _ = await alcance(filled, "token", "create", "--role", "developer", "--name", "curl")
        assert code == 0 and token.strip().startswith("alc_")
        async with aiohttp.ClientSession() as client:
            headers = {"Authorization": f"Bearer {token.strip()}"}
            async with client.get(f"{base}/api/v1/indicators/CVF-01?grain=year", headers=headers) as response:
                cells = (await response.json())["cells"]
            async with client.get(f"{base}/api/v1/indicators/CVF-01?grain=year") as response:
                assert response.status == 401 and response.content_type == "application/problem+json"
        expected = await cli_json(filled, "indicators", "--json", "--indicator", "CVF-01", "--period", "year")
        assert [{k: v for k, v in c.items() if k != "suppressed"} for c in cells] == expected

        code, listed, _ = await alcance(filled, "token", "list")
        assert code == 0 and "\tcurl\tdeveloper\t" in listed and token.strip() not in listed
        code, out, _ = await alcance(filled, "token", "revoke", "curl")
        assert code == 0 and "revoked 1" in out
        async with aiohttp.ClientSession() as client:
            headers = {"Authorization": f"Bearer {token.strip()}"}
            async with client.get(f"{base}/api/v1/catalogue", headers=headers) as response:
                assert response.status == 401
        serve.send_signal(signal.SIGTERM)
        assert await serve.wait(30) == 0
    # Neither the link's secret nor the token reaches the log (the access log omits query strings).
    secret = link.split("token=", 1)[1]
    logged = [text for text in serve.lines if LINK not in text]
    assert not any(secret in text or token.strip() in text for text in logged)
    assert any("GET /login 303" in text for text in logged)


async def test_token_mistakes_end_with_a_message_naming_what_is_valid(filled: Settings) -> None:
    cases = [
        (["token", "create"], "--role"),
        (["token", "create", "--role", "state"], "--state"),
        (["token", "create", "--role", "state", "--state", "US"], "not an ALADI member state"),
        (["token", "revoke", "nobody-has-this-name"], "alcance token list"),
        (["token", "create", "--role", "developer", "--days", "400"], "--days"),
    ]
    for args, named in cases:
        code, out, err = await alcance(filled, *args)
        assert code == 2 and named in err and not out, (args, err)
    code, out, _ = await alcance(
        filled, "token", "create", "--role", "state", "--state", "uy", "--name", "uy-desk"
    )
    assert code == 0
    code, listed, _ = await alcance(filled, "token", "list")
    assert "\tuy-desk\tstate\tUY\t" in listed
    assert "\texpires " in listed.splitlines()[0]


async def test_run_serves_the_dashboard_unless_told_not_to(settings: Settings) -> None:
    async with python_child(module="alcance.cli", args=["run"], settings=settings) as run:
        line = await run.wait_for_line(lambda text: LINK in text, timeout_s=120)
        link = line.split(": ", 1)[1].strip()
        base = link.split("/login?", 1)[0]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with browser.get(link) as response:
                assert response.status == 200 and "CVF-01" in await response.text()
        run.send_signal(signal.SIGTERM)
        assert await run.wait(60) == 0, run.output
    async with python_child(module="alcance.cli", args=["run", "--no-web"], settings=settings) as run:
        await run.wait_for_line(lambda text: "batch 1:" in text, timeout_s=120)
        run.send_signal(signal.SIGTERM)
        assert await run.wait(60) == 0, run.output
        assert LINK not in run.output and "web app listening" not in run.output


async def test_a_taken_port_leaves_the_pipeline_running_without_the_web_app(
    filled: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving_web(filled) as url:
        port = int(url.rsplit(":", 1)[1])
        taken = filled.model_copy(update={"web": filled.web.model_copy(update={"port": port})})
        async with serving_web_beside(taken) as second:
            assert second is None
    assert any("web app not started" in record.getMessage() for record in caplog.records)
