"""The directory over HTTP: tokens decide the member state, withdrawals take effect at the next request."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from openapi_spec_validator import validate

from connectors.pseudonym import Pseudonymiser
from connectors.simulators.serving import serving
from directory.schema import sql
from infra.postgres import create_pool
from infra.settings import Settings
from tests.directory.support import firm_values, grant, setup
from web import identities
from web.app import create_app
from web.openapi import openapi_document

CONSENT_IRI = "https://plgn.example/consents/consent-firm-1"
INJECTION = "BR' OR '1'='1"


@dataclass
class Served:
    url: str
    pool: asyncpg.Pool
    schema: str
    firm: str

    async def token(self, role: str, state: str | None = None) -> dict[str, str]:
        _, _, secret = await identities.create_credential(self.pool, role=role, member_state=state)
        return {"Authorization": f"Bearer {secret}"}


@asynccontextmanager
async def _served(settings: Settings) -> AsyncIterator[Served]:
    schema = f"d_{uuid.uuid4().hex[:10]}"
    local = settings.model_copy(
        update={"directory": settings.directory.model_copy(update={"db_schema": schema})}
    )
    pseudonyms = Pseudonymiser.from_settings(local)
    firm = pseudonyms.org("https://plgn.example/orgs/firm-1")
    pool = await create_pool(local.postgres)
    try:
        async with serving(create_app(local, pool=pool, stream=False)) as url:
            async with pool.acquire() as admin:
                entries = [
                    grant(firm, ("BR",), ("legalName", "sector"), consent=pseudonyms.org(CONSENT_IRI)),
                    grant("o-other", ("ALL_MEMBERS",), ("legalName",)),
                ]
                await setup(admin, schema, entries, {firm: firm_values(), "o-other": firm_values()})
            yield Served(url, pool, schema, firm)
        async with pool.acquire() as admin:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await pool.close()


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    async with _served(settings) as found:
        yield found


async def test_tokens_decide_what_each_state_reads(served: Served) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{served.url}/api/v1/directory/firms") as response:
            assert response.status == 401
        brazil = await served.token("state", "BR")
        async with http.get(f"{served.url}/api/v1/directory/firms", headers=brazil) as response:
            assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
            body = await response.json()
        assert {firm["ref"] for firm in body["firms"]} == {served.firm, "o-other"}
        assert next(f for f in body["firms"] if f["ref"] == served.firm) == {
            "ref": served.firm, "legalName": "Uvas del Sur S.A.", "sector": "01",
        }  # fmt: skip
        mexico = await served.token("state", "MX")
        async with http.get(f"{served.url}/api/v1/directory/firms/{served.firm}", headers=mexico) as response:
            assert response.status == 404
        # A filter is never a way to another state's firms, nor into the SQL.
        url = f"{served.url}/api/v1/directory/firms?country={quote(INJECTION)}"
        async with http.get(url, headers=mexico) as response:
            assert response.status == 400 and "country is not valid" in (await response.json())["detail"]
        coordinator = await served.token("coordinator")
        async with http.get(f"{served.url}/api/v1/directory/firms", headers=coordinator) as response:
            assert response.status == 403
        async with http.get(f"{served.url}/directory?lang=pt", headers=brazil) as response:
            page = await response.text()
        assert "Diretório PLGN" in page and "Uvas del Sur S.A." in page
        async with http.get(f"{served.url}/api/v1/directory/access-log", headers=coordinator) as response:
            rows = (await response.json())["rows"]
        assert [(row["member_state"], row["outcome"]) for row in rows] == [
            ("BR", "granted"), ("MX", "granted"), (None, "denied"), ("BR", "granted"),
        ]  # fmt: skip
        async with http.get(f"{served.url}/api/v1/directory/access-log", headers=brazil) as response:
            assert response.status == 403


async def test_a_withdrawal_removes_the_firm_from_the_next_request(served: Served) -> None:
    async with aiohttp.ClientSession() as http:
        brazil = await served.token("state", "BR")
        plgn = await served.token("plgn")
        withdrawal = f"{served.url}/api/v1/consents/{quote(CONSENT_IRI, safe='')}/withdrawal"
        async with http.post(withdrawal, headers=brazil) as response:
            assert response.status == 403
        async with http.post(withdrawal, headers=plgn) as response:
            assert response.status == 200, await response.text()
        async with http.get(f"{served.url}/api/v1/directory/firms/{served.firm}", headers=brazil) as response:
            assert response.status == 404
        async with http.post(f"{served.url}/api/v1/consents/unknown/withdrawal", headers=plgn) as response:
            assert response.status == 404
    async with served.pool.acquire() as admin:
        query = sql("SELECT count(*) FROM {s}.firm WHERE org_ref = $1", served.schema)
        assert await admin.fetchval(query, served.firm) == 0


async def test_a_state_that_read_a_withdrawn_firm_is_told_to_delete_it_and_acknowledges(
    served: Served,
) -> None:
    notices = f"{served.url}/api/v1/directory/notices"
    async with aiohttp.ClientSession() as http:
        brazil, chile = await served.token("state", "BR"), await served.token("state", "CL")
        async with http.get(f"{served.url}/api/v1/directory/firms/{served.firm}", headers=brazil) as response:
            assert response.status == 200
        withdrawal = f"{served.url}/api/v1/consents/{quote(CONSENT_IRI, safe='')}/withdrawal"
        async with http.post(withdrawal, headers=await served.token("plgn")) as response:
            assert response.status == 200
        async with http.get(notices, headers=brazil) as response:
            assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
            (notice,) = (await response.json())["notices"]
        assert (notice["ref"], notice["delete"]) == (served.firm, "record")
        assert notice["fields"] == ["legalName", "sector"]
        acknowledgement = f"{notices}/{notice['id']}/acknowledgement"
        async with http.post(acknowledgement, headers=chile) as response:
            assert response.status == 404  # not Chile's notice
        for _ in range(2):  # idempotent
            async with http.post(acknowledgement, headers=brazil) as response:
                assert response.status == 200 and await response.json() == {"acknowledged": True}
        async with http.get(notices, headers=brazil) as response:
            assert (await response.json())["notices"][0]["acknowledged_at"] is not None
        async with http.get(notices, headers=chile) as response:
            assert await response.json() == {"notices": [], "next_after": None}
        async with http.get(notices, headers=await served.token("coordinator")) as response:
            assert response.status == 403
        for bad in ("?after=x", "?limit=51", "?state=BR"):
            async with http.get(notices + bad, headers=brazil) as response:
                assert response.status == 400, bad
        async with http.post(f"{notices}/{INJECTION}/acknowledgement", headers=brazil) as response:
            assert response.status == 400


ISSUER, AUDIENCE = "https://auth.example", "https://alcance.example/api/v1"


@dataclass
class Authority:
    keys: list[ECKey]
    jwks_requests: int = 0

    def token(self, key: ECKey | None = None, **changes: object) -> str:
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "client_id": "agencia-br",
            "scope": "directory:read", "aladi_member_state": "BR",
        }  # fmt: skip
        header = {"alg": "ES256", "kid": (key or self.keys[0]).kid, "typ": str(changes.pop("typ", "at+jwt"))}
        claims.update(changes)
        return jwt.encode(header, {k: v for k, v in claims.items() if v is not None}, key or self.keys[0])

    def app(self) -> web.Application:
        async def jwks(_request: web.Request) -> web.Response:
            self.jwks_requests += 1
            return web.json_response(KeySet(self.keys).as_dict(private=False))

        application = web.Application()
        application.router.add_get("/jwks", jwks)
        return application


@pytest.fixture
async def with_jwt(settings: Settings) -> AsyncIterator[tuple[Served, Authority]]:
    authority = Authority([ECKey.generate_key("P-256", parameters={"kid": "k1"})])
    async with serving(authority.app()) as auth_url:
        directory = settings.directory.model_copy(
            update={"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, "jwt_jwks_url": f"{auth_url}/jwks"}
        )
        async with _served(settings.model_copy(update={"directory": directory})) as served:
            yield served, authority


async def test_a_member_states_client_credentials_jwt_reads_its_firms(
    with_jwt: tuple[Served, Authority],
) -> None:
    served, authority = with_jwt
    url = f"{served.url}/api/v1/directory/firms"
    async with aiohttp.ClientSession() as http:

        async def status(token: str) -> int:
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
                return response.status

        async with http.get(url, headers={"Authorization": f"Bearer {authority.token()}"}) as response:
            assert response.status == 200
            assert {firm["ref"] for firm in (await response.json())["firms"]} == {served.firm, "o-other"}
        stranger = ECKey.generate_key("P-256", parameters={"kid": "k1"})
        refused = {
            "expired": authority.token(exp=int(time.time()) - 10),
            "too long-lived": authority.token(exp=int(time.time()) + 3600),
            "another audience": authority.token(aud="https://elsewhere.example"),
            "another issuer": authority.token(iss="https://evil.example"),
            "no scope": authority.token(scope="indicators:read"),
            "no member state": authority.token(aladi_member_state=None),
            "not an access token": authority.token(typ="JWT"),
            "another key": authority.token(key=stranger),
        }
        assert {name: await status(token) for name, token in refused.items()} == dict.fromkeys(refused, 401)
        # A non-member in the claim gets through authentication and is denied by the directory.
        assert await status(authority.token(aladi_member_state="US")) == 403
        # A rotated key is fetched once, on its first unknown kid.
        authority.keys.append(ECKey.generate_key("P-256", parameters={"kid": "k2"}))
        assert await status(authority.token(key=authority.keys[1])) == 200
        assert authority.jwks_requests == 2
        # Made-up key ids do not make it fetch again within the minute.
        assert await status(authority.token(key=ECKey.generate_key("P-256", parameters={"kid": "k9"}))) == 401
        assert authority.jwks_requests == 2


def test_the_openapi_document_lists_the_directory_routes_and_stays_valid() -> None:
    document = openapi_document()
    validate(document)
    assert {
        "/api/v1/directory/firms",
        "/api/v1/directory/firms/{ref}",
        "/api/v1/directory/access-log",
        "/api/v1/directory/notices",
        "/api/v1/directory/notices/{id}/acknowledgement",
    } <= set(document["paths"])
    assert "post" in document["paths"]["/api/v1/consents/{id}/withdrawal"]
