"""Who may post to the push intake: hashed per-client tokens, strength, revocation, scope, rate, TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from connectors import intake_access
from connectors.intake_access import Gatekeeper, token_sha256
from infra.settings import IntakeClient, IntakeSettings, Settings
from schemas.topics import TopicCatalogue
from tests.connectors.support import read_topic
from tests.connectors.test_intake import EXT, TOKEN, statement
from tests.connectors.test_intake_hostile import running_intake

PLATFORM_A = "platform-a-token-0123456789abcdefghijkl"
PLATFORM_B = "platform-b-token-0123456789abcdefghijkl"
REVOKED = "revoked-token-0123456789abcdefghijklmnop"
COURSE_1 = "https://cvf.aladi.org/course/course-1"
REGISTRATION = uuid.UUID(int=77, version=4)

CLIENTS = [
    IntakeClient(name="platform-a", token_sha256=token_sha256(PLATFORM_A), activities=[COURSE_1]),
    IntakeClient(name="platform-b", token_sha256=token_sha256(PLATFORM_B), registrations=[REGISTRATION]),
    IntakeClient(name="gone", token_sha256=token_sha256(REVOKED), revoked=True),
]


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Experience-API-Version": "1.0.3"}


async def post(url: str, body: Any, token: str) -> tuple[int, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/xapi/statements", json=body, headers=headers(token)) as response,
    ):
        await response.read()
        return response.status, dict(response.headers)


async def test_a_weak_configured_token_is_refused_at_start(settings: Settings) -> None:
    for weak in ("x", "a" * 40, "short-but-varied-123"):
        with pytest.raises(ValueError, match=r"intake\.token is too weak"):
            async with running_intake(settings, token=SecretStr(weak)):
                pass


def test_the_token_maker_prints_a_strong_token_and_only_its_hash_for_the_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["intake_access", "moodle-uy"])
    intake_access.main()
    out = capsys.readouterr().out
    token = out.split(": ", 1)[1].split("\n", 1)[0]
    assert intake_access.weak_token_reason(token) is None
    assert f'token_sha256 = "{token_sha256(token)}"' in out
    assert out.count(token) == 1


def test_client_names_and_tokens_are_unique() -> None:
    twin = IntakeClient(name="platform-a", token_sha256=token_sha256(PLATFORM_B))
    with pytest.raises(ValueError, match="names must be unique"):
        Gatekeeper(IntakeSettings(clients=[CLIENTS[0], twin]))
    shared = IntakeClient(name="platform-c", token_sha256=token_sha256(PLATFORM_A))
    with pytest.raises(ValueError, match="shares its token"):
        Gatekeeper(IntakeSettings(clients=[CLIENTS[0], shared]))
    with pytest.raises(ValueError, match="needs a client"):
        Gatekeeper(IntakeSettings(clients=[CLIENTS[2]]))


async def test_clients_are_admitted_by_their_hashed_token_only(settings: Settings) -> None:
    async with running_intake(settings, token=None, clients=CLIENTS) as url:
        assert (await post(url, [statement(1)], PLATFORM_A))[0] == 200
        for wrong in ("x", "", REVOKED, PLATFORM_A[:-1], token_sha256(PLATFORM_A)):
            status, answer = await post(url, [statement(2)], wrong)
            assert status == 401, wrong
            assert answer["X-Experience-API-Version"] == "1.0.3"


async def test_a_client_posts_only_about_its_own_activities_or_registrations(settings: Settings) -> None:
    other_course = {"objectType": "Activity", "id": "https://cvf.aladi.org/course/course-2"}
    own_registration = {"registration": str(REGISTRATION), "extensions": {EXT + "course": "course-1"}}
    async with running_intake(settings, token=None, clients=CLIENTS) as url:
        assert (await post(url, [statement(3, object=other_course)], PLATFORM_A))[0] == 403
        # One foreign statement refuses the whole batch.
        assert (await post(url, [statement(4), statement(5, object=other_course)], PLATFORM_A))[0] == 403
        assert (await post(url, [statement(6)], PLATFORM_B))[0] == 403
        assert (await post(url, [statement(7, context=own_registration)], PLATFORM_B))[0] == 200
    catalogue = TopicCatalogue.from_settings(settings)
    records = await read_topic(settings, catalogue.training.name, quiet_s=0.3, timeout_s=5)
    assert len(records) == 1


async def test_each_client_has_its_own_rate_limit(settings: Settings) -> None:
    async with running_intake(settings, token=None, clients=CLIENTS, rate_per_s=0.2, rate_burst=2) as url:
        statuses = [(await post(url, "not a statement", PLATFORM_A))[0] for _ in range(3)]
        assert statuses == [400, 400, 429]
        status, answer = await post(url, "not a statement", PLATFORM_A)
        assert status == 429 and int(answer["Retry-After"]) >= 1
        # Another client is not slowed by the first one's bucket.
        assert (await post(url, "not a statement", PLATFORM_B))[0] == 400


async def test_requests_beyond_the_concurrency_limit_get_503_before_their_body_is_read(
    settings: Settings,
) -> None:
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"["
        await release.wait()
        yield b"]"

    async with running_intake(settings, max_concurrent_requests=1) as url, aiohttp.ClientSession() as session:
        auth = {**headers(TOKEN), "Content-Type": "application/json"}
        slow = asyncio.ensure_future(session.post(f"{url}/xapi/statements", data=slow_body(), headers=auth))
        await asyncio.sleep(0.3)
        async with session.post(f"{url}/xapi/statements", json=[statement(8)], headers=auth) as response:
            assert response.status == 503 and response.headers["Retry-After"] == "1"
        release.set()
        async with await slow as response:
            assert response.status == 400  # "[]" holds no statement


async def test_dead_letters_carry_no_personal_data(settings: Settings) -> None:
    personal = {
        "actor": {"objectType": "Agent", "name": "Ana García", "mbox": "mailto:ana.garcia@example.org"},
        "authority": {"objectType": "Agent", "name": "LMS Admin", "mbox": "mailto:admin@example.org"},
        "context": {
            "instructor": {"name": "Prof. Pérez", "mbox": "mailto:perez@example.org"},
            "team": {
                "objectType": "Group",
                "name": "Equipo Rojo",
                "member": [{"mbox": "mailto:m@example.org"}],
            },
            # An audience alcance does not know: the statement is dead-lettered.
            "extensions": {EXT + "audience": "PIRATES", EXT + "organisation": "orgs/firm-7", "x:free": "Ana"},
        },
        "result": {"response": "Me llamo Ana y mi RUT es 12.345.678-9", "success": True},
        "object": {
            "objectType": "Activity",
            "id": COURSE_1,
            "definition": {"name": {"es": "Curso de Ana"}, "description": {"es": "tel 555-0100"}},
        },
    }
    async with running_intake(settings) as url:
        assert (await post(url, [statement(9, **personal)], TOKEN))[0] == 200
    catalogue = TopicCatalogue.from_settings(settings)
    (dead,) = await read_topic(
        settings, catalogue.dead_letter(catalogue.training).name, quiet_s=0.3, timeout_s=5
    )
    text = dead.value.decode()
    for secret in ("Ana", "García", "example.org", "Pérez", "Equipo", "LMS Admin", "12.345.678-9", "555-0100",
                   "firm-7"):  # fmt: skip
        assert secret not in text, secret
    letter = json.loads(text)
    assert letter["actor"]["pseudonym"].startswith("p-")
    assert letter["context"]["extensions"][EXT + "organisation"].startswith("o-")
    assert letter["context"]["extensions"][EXT + "audience"] == "PIRATES"
    assert letter["result"] == {"success": True, "extensions": {}}
    assert dict(dead.headers)["dlq_reason"].decode().startswith("unknown audience")
    assert dict(dead.headers)["dlq_raw_record"] == b"false"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_by_configuration(settings: Settings, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    async with running_intake(settings, tls_certfile=cert, tls_keyfile=key) as url:
        assert url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(cert))
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{url}/caliper", headers={"Authorization": f"Bearer {TOKEN}"}, ssl=trust
            ) as response,
        ):
            assert response.status == 200
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url.replace("https://", "http://") + "/caliper"):
                    pass
    with pytest.raises(ValueError, match="set together"):
        async with running_intake(settings, tls_certfile=cert):
            pass
