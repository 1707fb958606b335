"""Push intake: platforms POST xAPI statements or Caliper 1.2 envelopes; alcance answers once Kafka has them.

Delivery guarantee: a 2xx answer means every event of the request was acknowledged by the broker
(`acks=all`); on any failure the client gets an error and sends again, and deterministic event ids make
the resend harmless (at-least-once into Kafka, exactly-once in effect).

Every request first passes the guard: a known, unrevoked client token (401), the client's rate limit
(429 with `Retry-After`) and the concurrency limit (503), before its body is read. Bodies must be
`application/json` (415), at most `intake.max_body_bytes` (413, counted while streaming) and strict JSON
(`connectors.intake_body`); a client restricted to some activities or registrations gets 403 for a
statement outside them (`connectors.intake_access`). No input gives a 500.

xAPI (statement resource, 1.0.3 and 2.0.0):

* `POST /xapi/statements` with one statement or an array: 200 with the statement ids (ids are assigned
  to statements without one); `PUT /xapi/statements?statementId=<uuid>` with one statement: 204.
* 400 for malformed JSON, a missing or unsupported `X-Experience-API-Version`, a statement without exactly
  one actor identifier of the right type, verb IRI or object, a timestamp that is not an ISO 8601
  date-time with a time zone, two statements with one id in a batch, or a PUT whose id differs from
  `statementId`; 409 when an id was already received with different content (the whole batch is
  rejected). Every answer carries `X-Experience-API-Version`.
* Statements are mapped by the xAPI statement mapping (`connectors.xapi_mapping`) and remembered
  (`connectors.intake_accept`); a voiding statement retracts the events of the statement it voids when
  the intake received that one. Statements alcance cannot map are accepted and dead-lettered as a
  redacted copy (`connectors.xapi_redact`: no personal data); verbs alcance does not measure are
  accepted and dropped.

Caliper 1.2 (`POST /caliper`): an envelope `{sensor, sendTime, dataVersion, data[]}`; 200 with an empty body,
400 for a malformed envelope or event, 422 for a `dataVersion` other than v1p2. `GET /caliper` advertises
the size limit in KB. Events are translated to xAPI statements (Activated -> registered, Deactivated ->
unregistered, Completed -> completed; actor and object ids kept, `extensions` as context extensions) and
mapped like pushed statements; other actions and entity descriptions are accepted and dropped.
"""

from __future__ import annotations

import logging
import math
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from connectors.context import ConnectorContext
from connectors.intake_accept import StatementIntake
from connectors.intake_access import Client, Gatekeeper
from connectors.intake_body import (
    BadRequest,
    check_timestamp,
    parse_json,
    read_body,
    require_json_media_type,
)
from connectors.intake_shapes import (
    CALIPER_V1P2,
    caliper_to_statement,
    check_statement,
    parse_statement_id,
)
from infra.errors import is_retryable

logger = logging.getLogger(__name__)

XAPI_VERSION_HEADER = "X-Experience-API-Version"
# The xAPI versions spoken: 1.0.x and 2.0.x (patch levels are wire-compatible).
_VERSION = re.compile(r"(1|2)\.0\.[0-9]{1,3}")
_CLIENT = web.RequestKey("client", Client)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

__all__ = [
    "CALIPER_V1P2",
    "BadRequest",
    "Intake",
    "caliper_to_statement",
    "check_statement",
    "serving_intake",
]


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class Intake:
    """The push-intake aiohttp application.

    Args:
        context: the connector context of the process (publisher, catalogue, PostgreSQL pool).

    Raises:
        ValueError: when no client token is configured, or `intake.token` is too weak (the intake never
            runs unauthenticated).
    """

    def __init__(self, context: ConnectorContext) -> None:
        settings = context.settings
        self.context = context
        self.source = settings.intake.source_name
        self._limits = settings.intake
        self._gate = Gatekeeper(settings.intake)
        self._in_flight = 0
        self._statements = StatementIntake(context)

    def app(self) -> web.Application:
        """The aiohttp application with the xAPI and Caliper routes."""
        application = web.Application(client_max_size=self._limits.max_body_bytes, middlewares=[self._guard])
        application.router.add_post("/xapi/statements", self._post_statements)
        application.router.add_put("/xapi/statements", self._put_statement)
        application.router.add_post("/caliper", self._post_caliper)
        application.router.add_get("/caliper", self._caliper_config)
        return application

    # ---- shared ---------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Authenticate, rate-limit and bound concurrency before any body is read; map errors to statuses.

        Every answer of an xAPI route carries `X-Experience-API-Version`. Only a broker that cannot take
        the events gives 503; anything else unexpected is a defect, logged and answered 500.
        """
        headers = {XAPI_VERSION_HEADER: "1.0.3"} if request.path.startswith("/xapi") else {}
        client = self._gate.authenticate(request.headers.get("Authorization", ""))
        if client is None:
            return _json_error(401, "a valid bearer token is required", headers)
        wait_s = self._gate.retry_after_s(client)
        if wait_s > 0:
            return _json_error(429, "too many requests", {**headers, "Retry-After": str(math.ceil(wait_s))})
        if self._in_flight >= self._limits.max_concurrent_requests:
            return _json_error(503, "the intake is busy; retry shortly", {**headers, "Retry-After": "1"})
        self._in_flight += 1
        request[_CLIENT] = client
        try:
            response = await handler(request)
        except BadRequest as exc:
            return _json_error(exc.status, str(exc), headers)
        except Exception as exc:
            if not is_retryable(exc):
                raise
            # Nothing was acknowledged: the client sends again, and event ids make that harmless.
            logger.warning("intake: broker or store unavailable: %s", type(exc).__name__)
            return _json_error(
                503, "the pipeline is unavailable; retry later", {**headers, "Retry-After": "5"}
            )
        finally:
            self._in_flight -= 1
        return response

    def _refuse_foreign(self, request: web.Request, statements: list[dict[str, Any]]) -> None:
        client = request[_CLIENT]
        for statement in statements:
            refusal = client.refusal(statement)
            if refusal is not None:
                raise _Forbidden(refusal)

    async def _accept(self, statements: list[dict[str, Any]]) -> web.Response | None:
        """Map, publish (awaiting acks) and record `statements`; an error response, or None when done."""
        conflict = await self._statements.accept(statements)
        return None if conflict is None else _json_error(409, conflict)

    # ---- xAPI ---------------------------------------------------------------------------------

    def _version(self, request: web.Request) -> str:
        version = request.headers.get(XAPI_VERSION_HEADER, "")
        if not _VERSION.fullmatch(version):
            raise BadRequest(f"missing or unsupported {XAPI_VERSION_HEADER}; supported: 1.0.x, 2.0.x")
        return "2.0.0" if version.startswith("2.0.") else "1.0.3"

    async def _json_body(self, request: web.Request) -> Any:
        require_json_media_type(request)
        return parse_json(await read_body(request, self._limits.max_body_bytes))

    async def _statements_request(
        self, request: web.Request, *, single: bool
    ) -> tuple[str, list[dict[str, Any]]]:
        version = self._version(request)
        body = await self._json_body(request)
        statements = body if isinstance(body, list) and not single else [body]
        if not statements:
            raise BadRequest("no statement")
        for statement in statements:
            check_statement(statement)
        self._refuse_foreign(request, statements)
        return version, statements

    async def _post_statements(self, request: web.Request) -> web.Response:
        headers = {XAPI_VERSION_HEADER: "1.0.3"}
        try:
            version, statements = await self._statements_request(request, single=False)
            headers[XAPI_VERSION_HEADER] = version
            for statement in statements:
                statement.setdefault("id", str(uuid.uuid4()))
            ids = [str(parse_statement_id(s["id"])) for s in statements]
            if len(set(ids)) != len(ids):
                raise BadRequest("two statements of the batch share one id")
        except BadRequest as exc:
            return _json_error(exc.status, str(exc), headers)
        refused = await self._accept(statements)
        if refused is not None:
            refused.headers.update(headers)
            return refused
        return web.json_response(ids, headers=headers)

    async def _put_statement(self, request: web.Request) -> web.Response:
        headers = {XAPI_VERSION_HEADER: "1.0.3"}
        try:
            version, (statement,) = await self._statements_request(request, single=True)
            headers[XAPI_VERSION_HEADER] = version
            wanted = parse_statement_id(request.query.get("statementId", ""))
            if "id" in statement and parse_statement_id(statement["id"]) != wanted:
                raise BadRequest("statement id differs from statementId")
            statement["id"] = str(wanted)
        except BadRequest as exc:
            return _json_error(exc.status, str(exc), headers)
        refused = await self._accept([statement])
        if refused is not None:
            refused.headers.update(headers)
            return refused
        return web.Response(status=204, headers=headers)

    # ---- Caliper --------------------------------------------------------------------------------

    async def _caliper_config(self, request: web.Request) -> web.Response:
        # Caliper 1.2 section 6.2 gives the maximum payload size in kilobytes: exactly what read_body takes.
        return web.json_response(
            {
                "caliper_supported_versions": [CALIPER_V1P2],
                "caliper_maximum_payload_size": self._limits.max_body_bytes // 1024,
            }
        )

    async def _post_caliper(self, request: web.Request) -> web.Response:
        envelope = await self._json_body(request)
        if not isinstance(envelope, dict) or not all(
            k in envelope for k in ("sensor", "sendTime", "dataVersion", "data")
        ):
            raise BadRequest("an envelope needs sensor, sendTime, dataVersion and data")
        if envelope["dataVersion"] != CALIPER_V1P2:
            return _json_error(422, f"unsupported dataVersion; supported: {CALIPER_V1P2}")
        check_timestamp(envelope["sendTime"], "sendTime")
        if not isinstance(envelope["data"], list):
            raise BadRequest("data must be an array")
        statements = [s for s in (caliper_to_statement(item) for item in envelope["data"]) if s is not None]
        for statement in statements:
            check_statement(statement)
        self._refuse_foreign(request, statements)
        if statements:
            refused = await self._accept(statements)
            if refused is not None:
                return refused
        return web.Response(status=200)


class _Forbidden(BadRequest):
    """Raised when a client posts about activities or registrations that are not its own."""

    status = 403


@asynccontextmanager
async def serving_intake(context: ConnectorContext) -> AsyncIterator[str]:
    """Serve the intake on `settings.intake.host:port` (port 0: any free port); yields its base URL.

    With `intake.tls_certfile` and `tls_keyfile` it serves HTTPS only.

    Raises:
        ValueError: when only one of the TLS files is set, or the intake has no client.
    """
    intake = Intake(context)
    settings = context.settings.intake
    tls = _tls_context(settings.tls_certfile, settings.tls_keyfile)
    runner = web.AppRunner(intake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=tls)
    await site.start()
    server: Any = site._server  # aiohttp exposes the bound port only through the server's sockets
    port = int(server.sockets[0].getsockname()[1])
    scheme = "https" if tls is not None else "http"
    logger.info("push intake listening on %s://%s:%d", scheme, settings.host, port)
    try:
        yield f"{scheme}://{settings.host}:{port}"
    finally:
        await runner.cleanup()


def _tls_context(certfile: Any, keyfile: Any) -> ssl.SSLContext | None:
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        raise ValueError("intake.tls_certfile and intake.tls_keyfile must be set together")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(certfile, keyfile)
    return tls
