"""The push intake as an internet-facing service: hostile bodies get 4xx, never 500; memory stays bounded."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.context import ConnectorContext
from connectors.intake import serving_intake
from infra.settings import IntakeSettings, PseudonymSettings, Settings
from tests.connectors.test_intake import AUTH, TOKEN, caliper_event, envelope, statement

CALIPER_AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
XAPI_HEADERS = {**AUTH, "Content-Type": "application/json"}
# Every answer the intake may give to a request it does not take; 500 is never among them.
REFUSALS = {400, 403, 409, 413, 415, 422}


@asynccontextmanager
async def running_intake(settings: Settings, **intake: Any) -> AsyncIterator[str]:
    """The intake of `settings` with the test token and `intake` overrides; yields its base URL."""
    configured = settings.model_copy(
        update={
            "intake": IntakeSettings(**{"enabled": True, "port": 0, "token": SecretStr(TOKEN), **intake}),
            "pseudonym": PseudonymSettings(
                person_key=SecretStr("test-person-key-0123456789"),
                org_key=SecretStr("test-org-key-0123456789"),
            ),
        }
    )
    async with ConnectorContext.open(configured) as context, serving_intake(context) as url:
        yield url


@pytest.fixture
async def intake_url(settings: Settings) -> AsyncIterator[str]:
    async with running_intake(settings, rate_per_s=10_000.0, rate_burst=10_000) as url:
        yield url


async def post(url: str, path: str, body: bytes | str, headers: dict[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}{path}", data=body, headers=headers) as response,
    ):
        return response.status, await response.text()


def with_timestamp(value: str) -> str:
    return json.dumps(statement(1, timestamp=value))


# The probe's crash classes (and the spec rules next to them): each must get its 4xx and a message.
XAPI_PROBES: dict[str, tuple[str, int]] = {
    "deeply nested array": ("[" * 100_000 + "]" * 100_000, 400),
    "nested beyond 32 levels in extensions": (
        json.dumps(statement(1, context={"extensions": {"x:a": json.loads("[" * 40 + "]" * 40)}})),
        400,
    ),
    "lone surrogate in a value": (with_timestamp("2026-02-01T10:00:00Z").replace("Ana", "\\ud800"), 400),
    "lone surrogate in a key": ('{"\\udfff": 1}', 400),
    "+14:00 at year 1": (with_timestamp("0001-01-01T00:00:00+14:00"), 400),
    "-14:00 at year 9999": (with_timestamp("9999-12-31T23:59:59-14:00"), 400),
    "date-only timestamp": (with_timestamp("2026-02-01"), 400),
    "naive timestamp": (with_timestamp("2026-02-01T10:00:00"), 400),
    "unknown offset -00:00": (with_timestamp("2026-02-01T10:00:00-00:00"), 400),
    "NaN literal": (json.dumps(statement(1)).replace('"Ana Garc\\u00eda"', "NaN"), 400),
    "Infinity literal": ('{"result": {"score": {"raw": Infinity}}}', 400),
    "number overflowing to infinity": (
        json.dumps(statement(1, result={"score": {"raw": 1}})).replace('"raw": 1', '"raw": 1e400'),
        400,
    ),
    "voiding a non-UUID statement ref (BadRequest outside the handler)": (
        json.dumps(
            statement(
                1,
                verb={"id": "http://adlnet.gov/expapi/verbs/voided"},
                object={"objectType": "StatementRef", "id": "not-a-uuid"},
            )
        ),
        400,
    ),
    "mbox not a string": (json.dumps(statement(1, actor={"mbox": 7})), 400),
    "two identifiers": (json.dumps(statement(1, actor={"mbox": "mailto:a@b.c", "openid": "x:y"})), 400),
    "score not a number": (json.dumps(statement(1, result={"score": {"scaled": "high"}})), 400),
    "registration not a UUID": (json.dumps(statement(1, context={"registration": 5})), 400),
    "not UTF-8": ("\udcff", 400),
}


@pytest.mark.parametrize("case", list(XAPI_PROBES))
async def test_hostile_xapi_bodies_get_a_4xx_with_a_reason(intake_url: str, case: str) -> None:
    body, status = XAPI_PROBES[case]
    raw = body.encode("utf-8", "surrogateescape")
    got, text = await post(intake_url, "/xapi/statements", raw, XAPI_HEADERS)
    assert got == status, (case, text)
    assert json.loads(text)["error"]


async def test_the_version_header_must_name_a_spoken_xapi_version(intake_url: str) -> None:
    body = json.dumps([statement(1)])
    for version in ("", "1.0", "1.0.", "1.0.3-beta", "2.0.0x", "1.1.0", "3.0.0"):
        got, text = await post(
            intake_url, "/xapi/statements", body, {**XAPI_HEADERS, "X-Experience-API-Version": version}
        )
        assert got == 400, version
        assert "X-Experience-API-Version" in json.loads(text)["error"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{intake_url}/xapi/statements",
            data=body,
            headers={**XAPI_HEADERS, "X-Experience-API-Version": "2.0.0"},
        ) as response,
    ):
        assert response.status == 200
        assert response.headers["X-Experience-API-Version"] == "2.0.0"


def caliper_with(**changes: Any) -> str:
    return json.dumps(envelope({**caliper_event(1), **changes}))


CALIPER_PROBES: dict[str, str] = {
    "actor id is a number": caliper_with(actor={"id": 7, "type": "Person"}),
    "actor without id": caliper_with(actor={"type": "Person"}),
    "object is a list": caliper_with(object=["x"]),
    "extensions is a list": caliper_with(extensions=["x"]),
    "scoreGiven is text": caliper_with(generated={"scoreGiven": "ten", "maxScore": 10}),
    "maxScore overflows": caliper_with(generated={"scoreGiven": 1, "maxScore": 10**400}),
    "eventTime is a number": caliper_with(eventTime=5),
    "eventTime at year 9999 and -14:00": caliper_with(eventTime="9999-12-31T23:59:59.000-14:00"),
    "action is a list": caliper_with(action=["Activated"]),
    "id is a number": caliper_with(id=5),
    "id is a urn:uuid of nothing": caliper_with(id="urn:uuid:zzz"),
    "sendTime is naive": json.dumps({**envelope(caliper_event(1)), "sendTime": "2026-02-01T10:00:00"}),
    "data is an object": json.dumps({**envelope(), "data": {}}),
}


@pytest.mark.parametrize("case", list(CALIPER_PROBES))
async def test_hostile_caliper_envelopes_get_400(intake_url: str, case: str) -> None:
    got, text = await post(intake_url, "/caliper", CALIPER_PROBES[case], CALIPER_AUTH)
    assert got == 400, (case, text)
    assert json.loads(text)["error"]


async def test_only_application_json_is_taken(intake_url: str) -> None:
    body = json.dumps(statement(1))
    for path, headers in (("/xapi/statements", AUTH), ("/caliper", {"Authorization": f"Bearer {TOKEN}"})):
        for content_type in (
            "text/plain",
            "multipart/mixed; boundary=x",
            "application/x-www-form-urlencoded",
        ):
            got, text = await post(intake_url, path, body, {**headers, "Content-Type": content_type})
            assert got == 415, (path, content_type)
            assert "application/json" in json.loads(text)["error"]


# ---- fuzzing over the xAPI and Caliper shapes ---------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2026-02-01",
            "2026-02-01T10:00:00Z",
            "mailto:x@example.org",
            "urn:uuid:00000000-0000-4000-8000-000000000001",
            "http://adlnet.gov/expapi/verbs/voided",
            "StatementRef",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
XAPI_PATHS = [
    ("id",), ("actor",), ("actor", "mbox"), ("actor", "account"), ("verb",), ("verb", "id"), ("object",),
    ("object", "id"), ("object", "objectType"), ("timestamp",), ("context",), ("context", "registration"),
    ("context", "extensions"), ("context", "extensions", "https://w3id.org/alcance/xapi/extensions/country"),
    ("result",), ("result", "score"), ("authority",),
]  # fmt: skip
CALIPER_PATHS = [
    ("id",), ("type",), ("action",), ("actor",), ("actor", "id"), ("object",), ("object", "id"),
    ("eventTime",), ("extensions",), ("generated",), ("generated", "scoreGiven"), ("generated", "maxScore"),
]  # fmt: skip


def mutated(base: dict[str, Any], changes: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    """`base` with each path set to its value (missing or non-object parents are created)."""
    document = json.loads(json.dumps(base))
    for path, value in changes.items():
        node = document
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[path[-1]] = value
    return document


@hypothesis_settings(
    max_examples=150,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    xapi=st.lists(st.dictionaries(st.sampled_from(XAPI_PATHS), JSON_VALUES, max_size=3), max_size=3),
    caliper=st.lists(st.dictionaries(st.sampled_from(CALIPER_PATHS), JSON_VALUES, max_size=3), max_size=3),
    n=st.integers(min_value=1, max_value=10**6),
)
async def test_no_input_shape_gets_a_500(
    intake_url: str, xapi: list[dict[tuple[str, ...], Any]], caliper: list[dict[tuple[str, ...], Any]], n: int
) -> None:
    statements = [mutated(statement(n + i), changes) for i, changes in enumerate(xapi)]
    got, text = await post(intake_url, "/xapi/statements", json.dumps(statements), XAPI_HEADERS)
    assert got == 200 or got in REFUSALS, text
    events = [mutated(caliper_event(n + i), changes) for i, changes in enumerate(caliper)]
    got, text = await post(intake_url, "/caliper", json.dumps(envelope(*events)), CALIPER_AUTH)
    assert got == 200 or got in REFUSALS, text


# ---- size limits and memory ---------------------------------------------------------------------------


async def test_the_size_limit_is_the_advertised_one(settings: Settings) -> None:
    async with running_intake(settings, max_body_bytes=64 * 1024) as url, aiohttp.ClientSession() as session:
        async with session.get(f"{url}/caliper", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            advertised_kb = (await response.json())["caliper_maximum_payload_size"]
        assert advertised_kb == 64
        # A JSON string padded to exactly the advertised size passes the size gate (and is no envelope).
        at_limit = json.dumps("x" * (advertised_kb * 1024 - 2))
        assert len(at_limit) == advertised_kb * 1024
        assert (await post(url, "/caliper", at_limit, CALIPER_AUTH))[0] == 400
        over = json.dumps("x" * (advertised_kb * 1024 - 1))
        got, text = await post(url, "/caliper", over, CALIPER_AUTH)
        assert got == 413 and "65536 bytes" in text

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(advertised_kb + 1):
                yield b" " * 1024

        async with session.post(f"{url}/xapi/statements", data=chunked(), headers=XAPI_HEADERS) as response:
            assert response.status == 413


_CLIENT_SCRIPT = """
import asyncio, json, sys
import aiohttp

URL, TOKEN, COUNT, SIZE = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
CHUNK = b"[" + b" " * (64 * 1024 - 1)

async def body():
    for _ in range(SIZE // len(CHUNK)):
        yield CHUNK

async def one(session, i):
    headers = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json",
               "X-Experience-API-Version": "1.0.3"}
    data = CHUNK * (SIZE // len(CHUNK)) if i % 2 else body()
    try:
        async with session.post(URL + "/xapi/statements", data=data, headers=headers) as response:
            return response.status
    except aiohttp.ClientError as exc:
        return type(exc).__name__

async def main():
    async with aiohttp.ClientSession() as session:
        print(json.dumps(await asyncio.gather(*(one(session, i) for i in range(COUNT)))))

asyncio.run(main())
"""


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.mark.parametrize(
    ("limits", "bound_mib"),
    [
        # Defaults: each body is cut off at 1 MiB, eight at a time.
        ({}, 48),
        # Bodies as large as the probe's, read whole and parsed, but only two at a time.
        ({"max_body_bytes": 8 * 1024 * 1024, "max_concurrent_requests": 2}, 96),
    ],
)
async def test_sixteen_concurrent_8mb_bodies_stay_under_a_memory_bound(
    settings: Settings, limits: dict[str, int], bound_mib: int
) -> None:
    async with running_intake(settings, **limits) as url:
        baseline = _rss_bytes()
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _rss_bytes())
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # The senders run in another process so that only the intake's memory is measured here.
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CLIENT_SCRIPT,
            url,
            TOKEN,
            "16",
            str(8 * 1024 * 1024),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(client.communicate(), 120)
        done.set()
        sampler.join()
    statuses = json.loads(out)
    assert len(statuses) == 16
    assert 500 not in statuses
    assert all(status in (400, 413, 503) for status in statuses), statuses
    growth_mib = (peak - baseline) / 2**20
    # The probe saw 1.15 GiB for these sixteen bodies.
    assert growth_mib < bound_mib, f"RSS grew by {growth_mib:.1f} MiB"
