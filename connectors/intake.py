"""Push intake: platforms POST xAPI statements or Caliper 1.2 envelopes; alcance answers once Kafka has them.

Delivery guarantee: a 2xx answer means every event of the request was acknowledged by the broker
(`acks=all`); on any failure the client gets an error and sends again, and deterministic event ids make
the resend harmless (at-least-once into Kafka, exactly-once in effect).

xAPI (statement resource, 1.0.3 and 2.0.0):

* `POST /xapi/statements` with one statement or an array: 200 with the statement ids (ids are assigned
  to statements without one); `PUT /xapi/statements?statementId=<uuid>` with one statement: 204.
* 400 for malformed JSON, a missing or unsupported `X-Experience-API-Version`, a statement without an
  actor identifier, verb id or object, two statements with one id in a batch, or a PUT whose id differs
  from `statementId`; 401 without the bearer token; 409 when an id was already received with different
  content (the whole batch is rejected). Every answer carries `X-Experience-API-Version`.
* Statements are mapped by the xAPI connector's own mapping (`connectors.xapi`); a voiding statement
  retracts the events of the statement it voids when the intake received that one. Statements alcance
  cannot map are accepted and dead-lettered (the sender can do nothing about them); verbs alcance does not
  measure are accepted and dropped.

Caliper 1.2 (`POST /caliper`): an envelope `{sensor, sendTime, dataVersion, data[]}`; 200 with an empty body,
401 without the token, 415 when not JSON, 400 for a malformed envelope or event, 422 for a `dataVersion`
other than v1p2. Events are translated to xAPI statements (Activated -> registered, Deactivated ->
unregistered, Completed -> completed; actor and object ids kept, `extensions` as context extensions) and
mapped like pushed statements; other actions and entity descriptions are accepted and dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from connectors.exceptions import DeadLetterRecord, SkipRecord
from connectors.publisher import DeadLetter
from connectors.runtime import ConnectorContext, describe_error
from connectors.xapi import XapiConnector, XapiRecord
from infra.settings import SourceConfig
from schemas.events.base import Event
from schemas.events.training import TrainingEventRetracted

logger = logging.getLogger(__name__)

XAPI_VERSION_HEADER = "X-Experience-API-Version"
CALIPER_V1P2 = "http://purl.imsglobal.org/ctx/caliper/v1p2"
VERB_VOIDED = "http://adlnet.gov/expapi/verbs/voided"
_CALIPER_VERBS = {
    "Activated": "http://adlnet.gov/expapi/verbs/registered",
    "Deactivated": "http://id.tincanapi.com/verb/unregistered",
    "Completed": "http://adlnet.gov/expapi/verbs/completed",
}
_IFI = ("mbox", "mbox_sha1sum", "openid", "account")


class BadRequest(Exception):
    """Raised when a request is malformed; answered with 400 and the message."""


@dataclass
class _Accepted:
    """What one statement becomes: events to publish, dead letters, and its row for `intake_statement`."""

    statement_id: uuid.UUID
    digest: str
    events: list[Event] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _statement_id(value: Any) -> uuid.UUID:
    try:
        parsed = uuid.UUID(str(value))
    except ValueError as exc:
        raise BadRequest("statement id is not a UUID") from exc
    return parsed


def check_statement(statement: Any) -> None:
    """Reject what is not an xAPI statement (structure only; alcance's mapping comes later).

    Raises:
        BadRequest: naming the first problem found.
    """
    if not isinstance(statement, dict):
        raise BadRequest("a statement must be a JSON object")
    actor = statement.get("actor")
    if not isinstance(actor, dict) or not any(key in actor for key in _IFI):
        raise BadRequest("actor must be an Agent with an inverse functional identifier")
    verb = statement.get("verb")
    if not isinstance(verb, dict) or not isinstance(verb.get("id"), str) or ":" not in verb["id"]:
        raise BadRequest("verb.id must be an IRI")
    obj = statement.get("object")
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise BadRequest("object must have an id")
    if "id" in statement:
        _statement_id(statement["id"])
    if "timestamp" in statement:
        try:
            datetime.fromisoformat(str(statement["timestamp"]).replace("Z", "+00:00"))
        except ValueError as exc:
            raise BadRequest("timestamp is not an ISO 8601 timestamp") from exc


class Intake:
    """The push-intake aiohttp application.

    Args:
        context: the connector context of the process (publisher, catalogue, PostgreSQL pool).

    Raises:
        ValueError: when `settings.intake.token` is not set (the intake never runs unauthenticated).
    """

    def __init__(self, context: ConnectorContext) -> None:
        settings = context.settings
        if settings.intake.token is None:
            raise ValueError("intake.token must be set: the push intake requires a bearer token")
        self.context = context
        self.source = settings.intake.source_name
        self._token = settings.intake.token.get_secret_value().encode()
        self._mapper = XapiConnector(
            SourceConfig(name=self.source, kind="xapi", endpoint="http://intake.invalid/"), settings
        )
        catalogue = context.catalogue
        self._dead_topic = catalogue.dead_letter(catalogue.training).name

    def app(self) -> web.Application:
        """The aiohttp application with the xAPI and Caliper routes."""
        application = web.Application(client_max_size=8 * 1024 * 1024)
        application.router.add_post("/xapi/statements", self._post_statements)
        application.router.add_put("/xapi/statements", self._put_statement)
        application.router.add_post("/caliper", self._post_caliper)
        application.router.add_get("/caliper", self._caliper_config)
        return application

    # ---- shared ---------------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)

    def _digest(self, statement: dict[str, Any]) -> str:
        # The actor enters only through its keyed pseudonym, so the digest reveals nothing about a person.
        content = {
            k: v for k, v in statement.items() if k not in {"id", "stored", "authority", "version", "actor"}
        }
        try:
            actor = self._mapper._person_key(statement.get("actor"))
        except DeadLetterRecord:
            actor = ""
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(f"{actor}|{canonical}".encode()).hexdigest()

    def _dead_letter(self, statement: dict[str, Any], reason: str) -> DeadLetter:
        scrubbed = {**statement, "actor": "<removed>"}
        value = json.dumps(scrubbed, ensure_ascii=False, default=str).encode()
        return DeadLetter(topic=self._dead_topic, value=value, reason=reason, source=self.source)

    async def _known(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, list[dict[str, Any]]]]:
        rows = await self.context.pool.fetch(
            "SELECT statement_id, content_digest, events FROM intake_statement"
            " WHERE source = $1 AND statement_id = ANY($2::uuid[])",
            self.source,
            ids,
        )
        return {row["statement_id"]: (row["content_digest"], json.loads(row["events"])) for row in rows}

    def _map(
        self, statement: dict[str, Any], known: dict[uuid.UUID, tuple[str, list[dict[str, Any]]]]
    ) -> _Accepted:
        statement_id = _statement_id(statement["id"])
        accepted = _Accepted(statement_id=statement_id, digest=self._digest(statement))
        try:
            if statement["verb"]["id"] == VERB_VOIDED:
                accepted.events = self._retractions(statement, known)
            else:
                accepted.events = self._mapper.map_record(XapiRecord(statement=statement))
        except SkipRecord as exc:
            logger.debug("intake: statement skipped: %s", exc.reason)
        except DeadLetterRecord as exc:
            accepted.dead.append(self._dead_letter(statement, exc.reason))
        except (ValidationError, ValueError, TypeError, KeyError) as exc:
            accepted.dead.append(self._dead_letter(statement, describe_error(exc)))
        return accepted

    def _retractions(
        self, statement: dict[str, Any], known: dict[uuid.UUID, tuple[str, list[dict[str, Any]]]]
    ) -> list[Event]:
        target = statement["object"]
        if target.get("objectType") != "StatementRef":
            raise DeadLetterRecord("voiding statement without a StatementRef object")
        voided = known.get(_statement_id(target["id"]))
        if voided is None:
            raise DeadLetterRecord("voided statement was not received by this intake")
        when = statement.get("timestamp") or datetime.now().astimezone().isoformat()
        return [
            TrainingEventRetracted.create(
                source=self.source,
                record_identity=f"void:{statement['id']}:{original['event_id']}",
                occurred_at=when,
                source_ref=str(statement["id"]),
                subject_key=original["subject_key"],
                country=original.get("country"),
                audience=original.get("audience"),
                retracted_event_id=original["event_id"],
                reason="xapi statement voided",
            )
            for original in voided[1]
        ]

    async def _accept(self, statements: list[dict[str, Any]]) -> web.Response | None:
        """Map, publish (awaiting acks) and record `statements`; an error response, or None when done."""
        ids = [_statement_id(s["id"]) for s in statements]
        refs = [
            _statement_id(s["object"]["id"])
            for s in statements
            if s["verb"]["id"] == VERB_VOIDED and s["object"].get("objectType") == "StatementRef"
        ]
        known = await self._known(ids + refs)
        # Statements voided earlier in the same batch are known too.
        batch: list[_Accepted] = []
        for statement in statements:
            accepted = self._map(statement, known)
            previous = known.get(accepted.statement_id)
            if previous is not None and accepted.statement_id in ids and previous[0] != accepted.digest:
                return _json_error(
                    409, f"statement {accepted.statement_id} was already received with other content"
                )
            known[accepted.statement_id] = (accepted.digest, self._event_rows(accepted.events))
            batch.append(accepted)
        events = [event for accepted in batch for event in accepted.events]
        dead = [letter for accepted in batch for letter in accepted.dead]
        await self.context.publisher.publish(events, dead)
        await self.context.pool.executemany(
            "INSERT INTO intake_statement (source, statement_id, content_digest, events)"
            " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (source, statement_id) DO NOTHING",
            [(self.source, a.statement_id, a.digest, json.dumps(self._event_rows(a.events))) for a in batch],
        )
        logger.info(
            "intake: %d statements -> %d events, %d dead-lettered", len(batch), len(events), len(dead)
        )
        return None

    @staticmethod
    def _event_rows(events: list[Event]) -> list[dict[str, Any]]:
        return [
            {
                "event_id": str(event.event_id),
                "subject_key": event.subject_key,
                "country": event.country,
                "audience": event.audience.value if event.audience is not None else None,
            }
            for event in events
            if not isinstance(event, TrainingEventRetracted)
        ]

    # ---- xAPI -----------------------------------------------------------------------------------

    def _version(self, request: web.Request) -> str:
        version = request.headers.get(XAPI_VERSION_HEADER, "")
        if not (version.startswith("1.0.") or version.startswith("2.0.")):
            raise BadRequest(f"missing or unsupported {XAPI_VERSION_HEADER}")
        return "2.0.0" if version.startswith("2.0.") else "1.0.3"

    async def _statements_request(
        self, request: web.Request, *, single: bool
    ) -> tuple[str, list[dict[str, Any]]]:
        version = self._version(request)
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            raise BadRequest("body is not JSON") from exc
        statements = body if isinstance(body, list) and not single else [body]
        if not statements:
            raise BadRequest("no statement")
        for statement in statements:
            check_statement(statement)
        return version, statements

    async def _post_statements(self, request: web.Request) -> web.Response:
        headers = {XAPI_VERSION_HEADER: "1.0.3"}
        if not self._authorised(request):
            return _json_error(401, "bearer token required", headers)
        try:
            version, statements = await self._statements_request(request, single=False)
            headers[XAPI_VERSION_HEADER] = version
            for statement in statements:
                statement.setdefault("id", str(uuid.uuid4()))
            ids = [str(_statement_id(s["id"])) for s in statements]
            if len(set(ids)) != len(ids):
                raise BadRequest("two statements of the batch share one id")
        except BadRequest as exc:
            return _json_error(400, str(exc), headers)
        refused = await self._accept(statements)
        if refused is not None:
            refused.headers.update(headers)
            return refused
        return web.json_response(ids, headers=headers)

    async def _put_statement(self, request: web.Request) -> web.Response:
        headers = {XAPI_VERSION_HEADER: "1.0.3"}
        if not self._authorised(request):
            return _json_error(401, "bearer token required", headers)
        try:
            version, (statement,) = await self._statements_request(request, single=True)
            headers[XAPI_VERSION_HEADER] = version
            wanted = _statement_id(request.query.get("statementId", ""))
            if "id" in statement and _statement_id(statement["id"]) != wanted:
                raise BadRequest("statement id differs from statementId")
            statement["id"] = str(wanted)
        except BadRequest as exc:
            return _json_error(400, str(exc), headers)
        refused = await self._accept([statement])
        if refused is not None:
            refused.headers.update(headers)
            return refused
        return web.Response(status=204, headers=headers)

    # ---- Caliper --------------------------------------------------------------------------------

    async def _caliper_config(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _json_error(401, "bearer token required")
        return web.json_response(
            {"caliper_supported_versions": [CALIPER_V1P2], "caliper_maximum_payload_size": 8192}
        )

    async def _post_caliper(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _json_error(401, "bearer token required")
        if request.content_type != "application/json":
            return _json_error(415, "Content-Type must be application/json")
        try:
            envelope = json.loads(await request.read())
        except ValueError:
            return _json_error(400, "body is not JSON")
        if not isinstance(envelope, dict) or not all(
            k in envelope for k in ("sensor", "sendTime", "dataVersion", "data")
        ):
            return _json_error(400, "an envelope needs sensor, sendTime, dataVersion and data")
        if envelope["dataVersion"] != CALIPER_V1P2:
            return _json_error(422, f"unsupported dataVersion; supported: {CALIPER_V1P2}")
        if not isinstance(envelope["data"], list):
            return _json_error(400, "data must be an array")
        try:
            statements = [
                s for s in (caliper_to_statement(item) for item in envelope["data"]) if s is not None
            ]
            for statement in statements:
                check_statement(statement)
        except BadRequest as exc:
            return _json_error(400, str(exc))
        if statements:
            refused = await self._accept(statements)
            if refused is not None:
                return refused
        return web.Response(status=200)


def caliper_to_statement(item: Any) -> dict[str, Any] | None:
    """The xAPI statement equivalent of one Caliper event, or None for entities and unmapped actions.

    Raises:
        BadRequest: when the item is not a valid Caliper event or entity.
    """
    if not isinstance(item, dict) or "id" not in item or "type" not in item:
        raise BadRequest("every data item needs an id and a type")
    if "action" not in item:
        return None  # an entity description ("describe"): nothing to measure
    for key in ("actor", "object", "eventTime"):
        if key not in item:
            raise BadRequest(f"Caliper event without {key}")
    event_id = str(item["id"])
    if not event_id.startswith("urn:uuid:"):
        raise BadRequest("Caliper event id must be a urn:uuid")
    verb = _CALIPER_VERBS.get(str(item["action"]))
    if verb is None:
        return None
    actor_id = item["actor"]["id"] if isinstance(item["actor"], dict) else item["actor"]
    obj = item["object"]
    object_id = obj.get("id") if isinstance(obj, dict) else obj
    if not isinstance(actor_id, str) or not isinstance(object_id, str):
        raise BadRequest("Caliper actor and object need ids")
    home, _, name = actor_id.rpartition("/")
    statement: dict[str, Any] = {
        "id": str(_statement_id(event_id.removeprefix("urn:uuid:"))),
        "actor": {"objectType": "Agent", "account": {"homePage": home or actor_id, "name": name or actor_id}},
        "verb": {"id": verb},
        "object": {"objectType": "Activity", "id": object_id},
        "timestamp": item["eventTime"],
        "context": {"extensions": dict(item.get("extensions") or {})},
    }
    generated = item.get("generated")
    if isinstance(generated, dict) and "scoreGiven" in generated and generated.get("maxScore"):
        statement["result"] = {
            "score": {"scaled": float(generated["scoreGiven"]) / float(generated["maxScore"])}
        }
    return statement


@asynccontextmanager
async def serving_intake(context: ConnectorContext) -> AsyncIterator[str]:
    """Serve the intake on `settings.intake.host:port` (port 0: any free port); yields its base URL."""
    intake = Intake(context)
    runner = web.AppRunner(intake.app(), access_log=None)
    await runner.setup()
    settings = context.settings.intake
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    server: Any = site._server  # aiohttp exposes the bound port only through the server's sockets
    port = int(server.sockets[0].getsockname()[1])
    logger.info("push intake listening on http://%s:%d", settings.host, port)
    try:
        yield f"http://{settings.host}:{port}"
    finally:
        await runner.cleanup()
