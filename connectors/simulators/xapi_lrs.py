"""An xAPI LRS simulator serving the generated world's statements: paging, `since`, voiding, auth, faults.

What it implements of the xAPI 1.0.3 / 2.0 statement resource (GET only):

* `since` (exclusive, on `stored`), `until` (inclusive), `limit` (capped at `max_limit`), `ascending`,
  `format` (statements are always returned as stored), `statementId`, `voidedStatementId`;
* paging through `more`, a relative IRL (path and query only) that re-runs the query after the last
  statement served, as the spec allows;
* voided statements are hidden from queries but still returned by `voidedStatementId`; voiding
  statements are returned;
* `X-Experience-API-Version` is required (1.0.x or 2.0.x) and echoed; `X-Experience-API-Consistent-Through`
  is the newest `stored` minus `consistent_lag_s`;
* HTTP Basic authentication; the `Faults` middleware.

Each behaviour mirrors a real LRS. By default it is the xAPI 1.0.3 / 2.0 statement resource (Data
Retrieval, GET /statements). With `like_ralph=True` it answers single-statement queries the way Ralph
5.1.0 (`ralph-malph` on PyPI, `ralph/api/routers/statements.py`) does: `voidedStatementId` is ignored (an
ordinary StatementResult page of other statements comes back) and `statementId` returns a
StatementResult holding the one statement, or an empty one, never a bare Statement or a 404.

The statements come from `connectors.simulators.xapi_statements` (`statements_from_world`).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDict, MultiMapping

from connectors.simulators.faults import Faults
from connectors.simulators.xapi_statements import (
    CVF,
    VERB_VOIDED,
    StatementTruth,
    iso,
    parse_iso,
    statements_from_world,
)

__all__ = ["StatementTruth", "XapiLrs", "content_digest", "statements_from_world"]


@dataclass
class XapiLrs:
    """The LRS: an aiohttp application over an ordered statement list.

    Args:
        statements: initial statements (each with `id` and `stored`).
        username: Basic auth user.
        password: Basic auth password.
        faults: fault middleware (disabled by default).
        consistent_lag_s: how far `Consistent-Through` trails the newest `stored`.
        max_limit: the server's maximum page size (also used for `limit=0`).
        base_path: path prefix of the xAPI resources; `more` links include it.
        like_ralph: answer single-statement queries as Ralph 5.1.0 does (see the module docstring).
        broken: ids of statements that make every page holding them fail with HTTP 500.
    """

    statements: list[dict[str, Any]]
    username: str = "cvf"
    password: str = "secret"  # noqa: S105 - a simulator's well-known test credential
    faults: Faults = field(default_factory=Faults)
    consistent_lag_s: float = 0.0
    max_limit: int = 500
    base_path: str = "/xapi"
    like_ralph: bool = False
    broken: set[str] = field(default_factory=set)
    requests: int = 0
    last_version: str | None = None
    _keys: list[tuple[str, int]] = field(default_factory=list, init=False, repr=False)
    _by_id: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    _raw: list[bytes] = field(default_factory=list, init=False, repr=False)
    _voided: set[str] = field(default_factory=set, init=False, repr=False)
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _seq: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        initial, self.statements = self.statements, []
        for statement in sorted(initial, key=lambda s: s["stored"]):
            self.add(statement)

    def add(self, statement: dict[str, Any]) -> None:
        """Store a statement (its `stored` must not be older than the newest one already stored)."""
        self._seq += 1
        key = (statement["stored"], self._seq)
        if self._keys and key < self._keys[-1]:
            raise ValueError("statements must be added in stored order")
        self._keys.append(key)
        self.statements.append(statement)
        # Serialised once: pages are served by joining these, which keeps the simulator fast.
        self._raw.append(json.dumps(statement, separators=(",", ":")).encode())
        self._by_id[statement["id"]] = statement
        obj = statement.get("object", {})
        if statement["verb"]["id"] == VERB_VOIDED and obj.get("objectType") == "StatementRef":
            self._voided.add(obj["id"])

    def newest_stored(self) -> datetime:
        """`stored` of the newest statement (the simulated clock)."""
        return parse_iso(self._keys[-1][0]) if self._keys else datetime(2025, 1, 1, tzinfo=UTC)

    def void(self, statement_id: str, *, seed: int = 0) -> dict[str, Any]:
        """Void a statement after the fact: a voiding statement is stored after every existing one."""
        target = self._by_id[statement_id]
        at = self.newest_stored() + timedelta(seconds=1)
        voiding = {
            "id": str(uuid.UUID(int=random.Random(f"{seed}:{statement_id}").getrandbits(128), version=4)),
            "actor": {"objectType": "Agent", "account": {"homePage": CVF, "name": "cvf-admin"}},
            "verb": {"id": VERB_VOIDED, "display": {"en-US": "voided"}},
            "object": {"objectType": "StatementRef", "id": target["id"]},
            "timestamp": iso(at),
            "stored": iso(at),
            "version": "1.0.0",
        }
        self.add(voiding)
        return voiding

    def is_voided(self, statement_id: str) -> bool:
        """Whether a voiding statement targets `statement_id`."""
        return statement_id in self._voided

    @property
    def app(self) -> web.Application:
        """A fresh aiohttp application serving this LRS (with the fault middleware)."""
        app = web.Application(middlewares=[self.faults])
        app.router.add_get(f"{self.base_path}/statements", self._get_statements)
        app.router.add_get(f"{self.base_path}/about", self._about)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host:port` (0 = any free port); returns the endpoint URL (ends with `/`)."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # aiohttp exposes the bound port only through the server's sockets.
        server: Any = site._server
        bound_port = int(server.sockets[0].getsockname()[1])
        return f"http://{host}:{bound_port}{self.base_path}/"

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _check(self, request: web.Request) -> web.Response | None:
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "unauthorised"}, status=401)
        version = request.headers.get("X-Experience-API-Version", "")
        self.last_version = version or None
        if not (version.startswith("1.0") or version.startswith("2.0")):
            return web.json_response({"error": "X-Experience-API-Version missing or unsupported"}, status=400)
        return None

    def _headers(self, request: web.Request) -> dict[str, str]:
        consistent = self.newest_stored() - timedelta(seconds=self.consistent_lag_s)
        return {
            "X-Experience-API-Version": request.headers.get("X-Experience-API-Version", "1.0.3"),
            "X-Experience-API-Consistent-Through": iso(consistent),
        }

    async def _about(self, request: web.Request) -> web.Response:
        return web.json_response({"version": ["1.0.3", "2.0.0"]})

    async def _get_statements(self, request: web.Request) -> web.Response:
        self.requests += 1
        rejected = self._check(request)
        if rejected is not None:
            return rejected
        query: MultiMapping[str] = request.query
        headers = self._headers(request)
        if "statementId" in query and "voidedStatementId" in query:
            return web.json_response({"error": "statementId with voidedStatementId"}, status=400)
        if self.like_ralph and "statementId" in query:
            found = self._by_id.get(query["statementId"])
            return web.json_response({"statements": [found] if found else []}, headers=headers)
        if self.like_ralph and "voidedStatementId" in query:
            query = MultiDict((k, v) for k, v in query.items() if k != "voidedStatementId")
            query.setdefault("ascending", "true")
        elif "statementId" in query or "voidedStatementId" in query:
            sid = query.get("statementId") or query["voidedStatementId"]
            found = self._by_id.get(sid)
            voided_wanted = "voidedStatementId" in query
            if found is None or (sid in self._voided) != voided_wanted:
                return web.json_response({"error": "not found"}, status=404, headers=headers)
            return web.json_response(found, headers=headers)
        try:
            since = iso(parse_iso(query["since"])) if "since" in query else None
            until = iso(parse_iso(query["until"])) if "until" in query else None
            limit = int(query.get("limit", "0"))
        except ValueError:
            return web.json_response({"error": "bad parameter"}, status=400, headers=headers)
        limit = self.max_limit if limit <= 0 else min(limit, self.max_limit)
        ascending = query.get("ascending", "false") == "true"
        if not ascending:
            return web.json_response({"error": "this simulator serves ascending=true only"}, status=400)
        after: tuple[str, int] | None = None
        if "after" in query:
            stored, seq = json.loads(base64.urlsafe_b64decode(query["after"]))
            after = (stored, seq)
        start = 0
        if after is not None:
            start = bisect.bisect_right(self._keys, after)
        elif since is not None:
            # `since` is exclusive: skip every statement stored at or before it.
            start = bisect.bisect_right(self._keys, (since, 1 << 62))
        page: list[bytes] = []
        last_key: tuple[str, int] | None = None
        index = start
        while index < len(self._keys) and len(page) < limit:
            key = self._keys[index]
            if until is not None and key[0] > until:
                break
            if self.statements[index]["id"] in self.broken:
                # A row the LRS cannot serialise: every page that holds it fails.
                return web.json_response({"error": "internal error"}, status=500)
            if self.statements[index]["id"] not in self._voided:
                page.append(self._raw[index])
            last_key = key
            index += 1
        more = ""
        remaining = index < len(self._keys) and (until is None or self._keys[index][0] <= until)
        if remaining and last_key is not None:
            token = base64.urlsafe_b64encode(json.dumps(list(last_key)).encode()).decode()
            params = {k: v for k, v in query.items() if k != "after"}
            params["after"] = token
            more = f"{self.base_path}/statements?{urlencode(params)}"
        body = b'{"statements":[' + b",".join(page) + b'],"more":' + json.dumps(more).encode() + b"}"
        return web.Response(body=body, headers=headers, content_type="application/json")


def content_digest(statement: dict[str, Any]) -> str:
    """A short digest of a statement's content (ignoring LRS-assigned fields), for test diagnostics."""
    content = {k: v for k, v in statement.items() if k not in ("id", "stored", "authority", "version")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
