"""The directory's routes (art. 8): thin adapters from verified identities to `directory.access`.

`GET /api/v1/directory/firms` and `/firms/{ref}` for member states, with their withdrawal notices
(`GET /api/v1/directory/notices`, `POST .../notices/{id}/acknowledgement`),
`POST /api/v1/consents/{id}/withdrawal` for PLGN's client, `GET /api/v1/directory/access-log` for
coordinators, and the `/directory` page in es/pt/en. The member state always comes from the identity,
never from the request; every answer is `Cache-Control: no-store`.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from connectors.pseudonym import Pseudonymiser
from directory import access
from directory.schema import migrate
from schemas.events.base import MEMBER_STATES
from web.api.base import PREFIX
from web.auth import MEMBER_TOKENS, identity_of
from web.member_tokens import MemberStateTokens
from web.pages.filters import dimension_filter
from web.pages.i18n import Speaker
from web.pages.render import page_handler
from web.pages.tables import Column, Filter, Kind, Option, Page, Table
from web.problems import ProblemError
from web.state import POOL, SETTINGS

PSEUDONYMS = web.AppKey("directory_pseudonyms", Pseudonymiser)
_FILTERS = {
    "sector": "sector",
    "hs_chapter": "hs_chapter",
    "country": "country",
    "size": "size_band",
    "after": "after",
}
_NO_STORE = {"Cache-Control": "no-store"}
# Row numbers and page sizes: ASCII digits, small enough for PostgreSQL's bigint.
_NUMBER = re.compile(r"[0-9]{1,15}")


def _identity(request: web.Request) -> access.Identity:
    found = identity_of(request)
    client = str(found.credential_id) if found.credential_id else found.name
    return access.Identity(client_id=client, role=found.role, member_state=found.member_state)


def _filters(request: web.Request) -> access.FirmFilters:
    unknown = sorted(set(request.query) - {*_FILTERS, "limit", "lang"})
    if unknown:
        valid = ", ".join(sorted([*_FILTERS, "limit"]))
        raise ProblemError(400, "Bad Request", f"unknown parameter {unknown[0]!r}; valid: {valid}")
    values: dict[str, Any] = {
        name: request.query[key] for key, name in _FILTERS.items() if key in request.query
    }
    if "limit" in request.query:
        if not _NUMBER.fullmatch(request.query["limit"]):
            raise ProblemError(400, "Bad Request", f"limit is not valid: expected 1 to {access.PAGE_MAX}")
        values["limit"] = int(request.query["limit"])
    return access.FirmFilters(**values)


async def _run(request: web.Request, call: Any) -> Any:
    schema = request.app[SETTINGS].directory.db_schema
    try:
        async with request.app[POOL].acquire() as connection:
            return await call(connection, schema)
    except access.InvalidFilter as exc:
        raise ProblemError(400, "Bad Request", str(exc)) from None
    except access.DirectoryDenied as exc:
        raise ProblemError(403, "Forbidden", str(exc)) from None


async def list_firms(request: web.Request) -> web.StreamResponse:
    """One page of the firms authorised for the caller's member state."""
    filters, identity, request_id = _filters(request), _identity(request), str(uuid.uuid4())
    firms = await _run(
        request, lambda c, s: access.list_firms(c, identity, filters, schema=s, request_id=request_id)
    )
    following = firms[-1]["ref"] if len(firms) == filters.limit else None
    return web.json_response({"firms": firms, "next_after": following}, headers=_NO_STORE)


async def get_firm(request: web.Request) -> web.StreamResponse:
    """One firm's authorised fields, or 404 (unknown, or not authorised for the caller's state)."""
    ref, identity, request_id = request.match_info["ref"], _identity(request), str(uuid.uuid4())
    firm = await _run(
        request, lambda c, s: access.get_firm(c, identity, ref, schema=s, request_id=request_id)
    )
    if firm is None:
        raise ProblemError(404, "Not Found", "no firm with this reference is shared with your member state")
    return web.json_response(firm, headers=_NO_STORE)


async def withdraw(request: web.Request) -> web.StreamResponse:
    """Withdraw a whole consent (PLGN's consent id, URL-encoded); effective for the next query."""
    identity = _identity(request)
    consent_ref = request.app[PSEUDONYMS].org(request.match_info["id"])
    request_id = str(uuid.uuid4())
    found = await _run(
        request,
        lambda c, s: access.withdraw_consent(c, identity, consent_ref, schema=s, request_id=request_id),
    )
    if not found:
        raise ProblemError(404, "Not Found", "no consent with this id is in the ledger")
    return web.json_response({"withdrawn": True}, headers=_NO_STORE)


async def access_log(request: web.Request) -> web.StreamResponse:
    """Access-log rows after `after` (a sequence number), for coordinators."""
    after = request.query.get("after", "0")
    if not _NUMBER.fullmatch(after):
        raise ProblemError(400, "Bad Request", "after is not valid: expected a row number")
    identity = _identity(request)
    rows = await _run(request, lambda c, s: access.read_access_log(c, identity, schema=s, after=int(after)))
    return web.json_response({"rows": rows}, headers=_NO_STORE, dumps=_dumps)


async def notices(request: web.Request) -> web.StreamResponse:
    """The caller's member state's withdrawal notices after `after` (a notice id), oldest first."""
    unknown = sorted(set(request.query) - {"after", "limit"})
    if unknown:
        raise ProblemError(400, "Bad Request", f"unknown parameter {unknown[0]!r}; valid: after, limit")
    after, limit = request.query.get("after", "0"), request.query.get("limit", str(access.PAGE_MAX))
    if not _NUMBER.fullmatch(after):
        raise ProblemError(400, "Bad Request", "after is not valid: expected a notice id")
    if not _NUMBER.fullmatch(limit) or not 1 <= int(limit) <= access.PAGE_MAX:
        raise ProblemError(400, "Bad Request", f"limit is not valid: expected 1 to {access.PAGE_MAX}")
    identity, size = _identity(request), int(limit)
    found = await _run(
        request, lambda c, s: access.read_notices(c, identity, schema=s, after=int(after), limit=size)
    )
    following = found[-1]["id"] if len(found) == size else None
    return web.json_response({"notices": found, "next_after": following}, headers=_NO_STORE)


async def acknowledge(request: web.Request) -> web.StreamResponse:
    """Acknowledge a withdrawal notice: the caller's state deleted what it names (idempotent)."""
    notice = request.match_info["id"]
    if not _NUMBER.fullmatch(notice):
        raise ProblemError(400, "Bad Request", "notice id is not valid: expected a number from the notices")
    identity = _identity(request)
    found = await _run(request, lambda c, s: access.acknowledge_notice(c, identity, int(notice), schema=s))
    if not found:
        raise ProblemError(404, "Not Found", "no notice with this id was sent to your member state")
    return web.json_response({"acknowledged": True}, headers=_NO_STORE)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


# The page's columns: (firm field as the API names it, heading, kind, dimension).
_COLUMNS: tuple[tuple[str, str, Kind, str], ...] = (
    ("legalName", "firm", "text", ""),
    ("country", "firm_country", "dimension", "country"),
    ("sector", "sector", "text", ""),
    ("hsChapters", "hs_chapters", "text", ""),
    ("sizeBand", "firm_size", "dimension", "size_band"),
    ("contactEmail", "contact", "text", ""),
)
_PAGE_PARAMETERS = frozenset({"lang", "sort", "order", "csv"})
_TWO_DIGIT_CODES = [f"{n:02d}" for n in range(1, 100)]


def _page_filters(request: web.Request) -> access.FirmFilters:
    # The page's form sends every selector, "" for all of it; the page's own parameters are no filters.
    unknown = sorted(set(request.query) - {"sector", "hs_chapter", "country", "size"} - _PAGE_PARAMETERS)
    if unknown:
        valid = ", ".join(sorted(["sector", "hs_chapter", "country", "size", *_PAGE_PARAMETERS]))
        raise ProblemError(400, "Bad Request", f"unknown parameter {unknown[0]!r}; valid: {valid}")
    values: dict[str, Any] = {
        _FILTERS[key]: request.query.get(key, "") for key in ("sector", "hs_chapter", "country", "size")
    }
    return access.FirmFilters(**{name: value for name, value in values.items() if value})


def _page_selectors(say: Speaker, filters: access.FirmFilters) -> list[Filter]:
    every = Option("", say("all"))
    codes = [Option(code, code) for code in _TWO_DIGIT_CODES]
    return [
        dimension_filter(
            say, "country", sorted(MEMBER_STATES), filters.country or "", label=say("firm_country")
        ),
        Filter("sector", say("sector"), [every, *codes], filters.sector or ""),
        Filter("hs_chapter", say("hs_chapter"), [every, *codes[:97]], filters.hs_chapter or ""),
        Filter("size", say("firm_size"), [every] + [
            Option(band, say.value_of("size_band", band)) for band in ("MICRO", "SMALL", "MEDIUM", "LARGE")
        ], filters.size_band or ""),
    ]  # fmt: skip


async def directory_view(request: web.Request, say: Speaker) -> Page:
    """The directory for a member state's agency users: the same read (and access-log row) as the API.

    Another role sees the page with the table marked as not for its role; its denial is logged too.
    """
    filters, identity, request_id = _page_filters(request), _identity(request), str(uuid.uuid4())
    columns = [Column(key, say(label), kind, dimension) for key, label, kind, dimension in _COLUMNS]
    table = Table("firms", say("firms"), columns, [])
    try:
        firms = await _run(
            request, lambda c, s: access.list_firms(c, identity, filters, schema=s, request_id=request_id)
        )
    except ProblemError as exc:
        if exc.problem.status != 403:
            raise
        table.forbidden = True
    else:
        table.rows = [{key: _shared(firm.get(key), say) for key, *_ in _COLUMNS} for firm in firms]
        if len(firms) == filters.limit:
            table.note = say("first_firms").format(filters.limit)
    return Page(
        "directory", say("directory"), _page_selectors(say, filters), [table], lead=say("directory_lead")
    )


def _shared(value: Any, say: Speaker) -> str:
    # A field the firm did not authorise for this state is blank in the read: say so, not "no data".
    if value is None:
        return say("not_shared")
    return ", ".join(value) if isinstance(value, list) else str(value)


_render_directory = page_handler(directory_view)


async def directory_page(request: web.Request) -> web.StreamResponse:
    """`/directory` in es/pt/en with the other pages' navigation (and its CSV), never cached."""
    response = await _render_directory(request)
    response.headers.update(_NO_STORE)
    return response


async def _prepare(app: web.Application) -> None:
    # The directory's own schema, migrated as the store's owner (the web role may create nothing).
    settings = app[SETTINGS]
    if settings.postgres.dsn is None:
        async with app[POOL].acquire() as connection:
            await migrate(connection, settings.directory.db_schema)
    else:
        owner = await asyncpg.connect(settings.postgres.dsn.get_secret_value())
        try:
            await migrate(owner, settings.directory.db_schema)
        finally:
            await owner.close()
    app[PSEUDONYMS] = Pseudonymiser.from_settings(settings)
    if settings.directory.jwt_issuer and settings.directory.jwt_audience and settings.directory.jwt_jwks_url:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        app[MEMBER_TOKENS] = MemberStateTokens(settings.directory, session)
        app.on_cleanup.append(lambda _app: session.close())


def add_routes(app: web.Application) -> None:
    """Register the directory's routes and the start-up step that prepares its schema."""
    app.on_startup.append(_prepare)
    app.router.add_get(f"{PREFIX}/directory/firms", list_firms, allow_head=False)
    app.router.add_get(f"{PREFIX}/directory/firms/{{ref}}", get_firm, allow_head=False)
    app.router.add_get(f"{PREFIX}/directory/access-log", access_log, allow_head=False)
    app.router.add_post(f"{PREFIX}/consents/{{id:.+}}/withdrawal", withdraw)
    app.router.add_get(f"{PREFIX}/directory/notices", notices, allow_head=False)
    app.router.add_post(f"{PREFIX}/directory/notices/{{id}}/acknowledgement", acknowledge)
    app.router.add_get("/directory", directory_page, allow_head=False)
