"""xAPI (1.0.3 and 2.0) connector: pulls statements from an LRS and publishes CVF training events.

Pull contract. `GET <endpoint>statements?since=<cursor>&ascending=true&limit=<page>&format=exact`, then the
`more` links (resolved against the LRS origin) until one is empty. Every request sends
`X-Experience-API-Version` (option `version`). The cursor is the newest `stored` seen, never later than the
`X-Experience-API-Consistent-Through` header, and each new pass re-reads `connector.cursor_overlap_s`
before it because `since` is exclusive and statements can share one `stored`. A `more` link kept in the
cursor is used after a restart; when the LRS no longer accepts it (4xx) the pass restarts from `since`.

Event identity. Event ids derive from the statement's *content* (actor pseudonym, verb, object id,
timestamp, registration), not from the LRS-assigned id: Moodle's logstore sends statements without ids and
replays them, and each replay gets a new LRS id. The same content always gives the same event id.

Voiding. A voiding statement (verb `voided`, object `StatementRef`) becomes one `cvf.event.retracted` per
event of the voided statement. Every statement pulled leaves the ids of the events it produced, keyed by its
LRS statement id, in PostgreSQL (`xapi_statement_event`: event ids, learner pseudonym, country and
audience, no personal data), so a voiding statement retracts by lookup without a request. Only a target
never pulled is asked of the LRS, with `voidedStatementId` and then `statementId`, accepting a Statement
or a StatementResult whose only statement is the target: LRSs differ (Ralph ignores `voidedStatementId`
and answers a page of other statements; it answers `statementId` with a StatementResult). A target
neither pulled nor returned is dead-lettered with that reason; the source goes on. A voiding statement
cannot itself be voided (xAPI 1.0.3 Data 2.3.2, kept by xAPI 2.0), so one that targets another voiding
statement is dead-lettered with that reason.

Verb table (extendable with option `verbs`, IRI -> one of the targets below):

===================================================================  ========================
verb IRI                                                              event
===================================================================  ========================
http://adlnet.gov/expapi/verbs/registered, EDLM .../verbs/enrolled    cvf.enrolment.created
http://id.tincanapi.com/verb/unregistered                             cvf.enrolment.withdrawn
http://adlnet.gov/expapi/verbs/completed, .../adl/verbs/satisfied      cvf.enrolment.completed
                                                                      (progress 100 % on a module)
http://adlnet.gov/expapi/verbs/passed, .../failed                     cvf.assessment.submitted
https://w3id.org/xapi/tla/verbs/achieved, tincan .../verb/earned      cvf.certificate.issued
http://adlnet.gov/expapi/verbs/progressed                             cvf.progress.recorded
===================================================================  ========================

Other verbs are counted (`records_skipped`, reason `verb <IRI>`) and skipped, never dead-lettered.

Learner attributes. The actor becomes the person pseudonym: the e-mail of `mbox` (so that it matches
other sources keyed by e-mail), `mbox_sha1sum`, `openid`, or `account` as `<homePage>|<name>`.
alcance reads these context extensions (all optional; attributes absent are left empty):

* `https://w3id.org/alcance/xapi/extensions/country`: ISO 3166-1 alpha-2 country of residence;
* `.../audience`: audience segment (`TPO_AUTHORITY`, `BUSINESS_CHAMBER`, `SECTOR_ASSOCIATION`, `MSME`,
  `GOVT_OTHER`, `ACADEMIA`, `OTHER`);
* `.../organisation`: native id of the learner's organisation (pseudonymised with the org key);
* `.../gender`: `F`, `M`, `OTHER`, `NOT_STATED`;
* `.../course`, `.../offering`: native course and offering (cohort) ids; without them the course is the
  object activity (or its `parent` for modules) and the offering is the course;
* `.../enrolment`: enrolment id; without it `context.registration`, else the learner and course;
* `.../assessment`: the role of a passed/failed assessment, `PRE`, `QUIZ`, `FINAL` (the default) or
  `POST`: finals give the pass rate (CVF-06), pre- and post-tests the learning gain (CVF-12);
* `https://w3id.org/xapi/lms/extensions/starting-date` / `ending-date`: the offering's dates;
* result extensions `.../certificate` (certificate id, else the statement's content identity) and
  `.../hours`.

The mapping of statements to events is `connectors.xapi_mapping` (the push intake uses it too); this
module pulls, resolves voiding statements and remembers what each statement produced.

Delivery guarantee: at-least-once into Kafka with deterministic event ids (exactly-once in effect after
de-duplication by event id).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urljoin, urlsplit

from pydantic import Field, ValidationError

from connectors.base import ConnectorOptions, Cursor, Page, PollingConnector
from connectors.exceptions import DeadLetterRecord, FatalSourceError, RetryableError, SkipRecord
from connectors.xapi_extensions import DEFAULT_VERBS, VERB_VOIDED, Target
from connectors.xapi_mapping import (
    StatementMapper,
    as_dict,
    event_rows,
    parse_time,
    voided_id,
)
from connectors.xapi_redact import redact_statement
from schemas.events.base import Event

if TYPE_CHECKING:
    from connectors.context import ConnectorContext

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_VERBS", "VERB_VOIDED", "XapiConnector", "XapiOptions", "XapiRecord", "event_rows"]


class XapiOptions(ConnectorOptions):
    """Options of an xAPI source.

    Attributes:
        version: value of `X-Experience-API-Version` (the LRS selects the statement format by it).
        statements_path: path of the statement resource relative to the endpoint.
        verbs: extra or overriding verb IRI -> target mappings.
    """

    version: Literal["1.0.3", "2.0.0"] = "1.0.3"
    statements_path: str = "statements"
    verbs: dict[str, Target] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class XapiRecord:
    """A statement as pulled, and what `prepare_page` resolved for it.

    Attributes:
        statement: the statement exactly as the LRS returned it.
        voided: the voided statement, when a voiding statement's target was fetched from the LRS.
        retracts: for a voiding statement whose target was resolved, the events to retract (rows of
            `xapi_statement_event`); None when not resolved (the record is then dead-lettered).
        events: the statement's events, when already mapped by `prepare_page`.
        error: the mapping error of the statement, raised again by `map_record`.
    """

    statement: dict[str, Any]
    voided: dict[str, Any] | None = None
    retracts: list[dict[str, Any]] | None = None
    events: list[Event] | None = None
    error: Exception | None = None


class XapiConnector(PollingConnector[XapiRecord]):
    """Pulls an xAPI LRS (see the module docstring for the contract, identities and verb table).

    Delivery guarantee: at-least-once into Kafka; event ids are deterministic from statement content, so
    re-pulled and replayed statements are dropped by consumers.
    """

    kind: ClassVar[str] = "xapi"
    family: ClassVar[str] = "training"
    options_model: ClassVar[type[ConnectorOptions]] = XapiOptions
    options: XapiOptions
    _context: ConnectorContext | None = None

    @property
    def statements_url(self) -> str:
        """Absolute URL of the statement resource."""
        endpoint = self.source.endpoint if self.source.endpoint.endswith("/") else self.source.endpoint + "/"
        return urljoin(endpoint, self.options.statements_path)

    @property
    def verbs(self) -> dict[str, Target]:
        """The effective verb table."""
        return {**DEFAULT_VERBS, **self.options.verbs}

    def default_headers(self) -> dict[str, str]:
        """The xAPI version header, sent with every request."""
        return {"X-Experience-API-Version": self.options.version}

    def _origin(self) -> str:
        parts = urlsplit(self.statements_url)
        return f"{parts.scheme}://{parts.netloc}"

    async def fetch_page(self, cursor: Cursor | None) -> Page[XapiRecord]:
        """One page of statements after `cursor` (`{"since": <stored>, "more": <IRL or None>}`)."""
        since: str | None = (cursor or {}).get("since")
        more: str | None = (cursor or {}).get("more")
        response = None
        # While the runtime asks for smaller pages (a page kept failing), the `more` link would repeat the
        # old page size: the pass goes on from `since` with the smaller limit instead.
        if more and self.page_limit is None:
            try:
                response = await self.http.get_json(urljoin(self._origin(), more))
            except FatalSourceError as exc:
                if exc.status not in (400, 404, 410):
                    raise
                logger.info(
                    "source %s: `more` link no longer valid (%s); restarting from since", self.name, exc
                )
        if response is None:
            params = {"ascending": "true", "limit": str(self.page_size), "format": "exact"}
            if since is not None:
                params["since"] = self.overlap(parse_time(since, "cursor")).isoformat()
            response = await self.http.get_json(self.statements_url, params=params)
        body = as_dict(response.body)
        statements = body.get("statements")
        if not isinstance(statements, list):
            raise RetryableError("statement result without a `statements` list")
        next_more = body.get("more") or None
        if next_more is not None and not isinstance(next_more, str):
            raise RetryableError("`more` is not a string")

        newest: datetime | None = None
        for statement in statements:
            stored = as_dict(statement).get("stored")
            if isinstance(stored, str):
                try:
                    when = parse_time(stored, "stored")
                except DeadLetterRecord:
                    continue
                newest = when if newest is None or when > newest else newest
        position = parse_time(since, "cursor") if since is not None else None
        if newest is not None:
            candidate = newest
            consistent = response.headers.get("X-Experience-API-Consistent-Through")
            if consistent:
                try:
                    candidate = min(candidate, parse_time(consistent, "Consistent-Through"))
                except DeadLetterRecord:
                    logger.warning("source %s: unparseable Consistent-Through %r", self.name, consistent)
            if position is None or candidate > position:
                position = candidate
        next_cursor: Cursor = {"since": position.isoformat() if position else None, "more": next_more}
        records = [XapiRecord(statement) for statement in statements]
        return Page(records=records, next_cursor=next_cursor, exhausted=next_more is None, newest_at=newest)

    async def open(self, context: ConnectorContext) -> None:
        """Keep the context: its pool holds the statement -> events map."""
        self._context = context

    async def prepare_page(self, page: Page[XapiRecord]) -> Page[XapiRecord]:
        """Map the page's statements, record their events by statement id, and resolve its voiding statements.

        Targets are looked up in this page, then in `xapi_statement_event`, and only then asked of the LRS.
        """
        records: list[XapiRecord] = []
        produced: dict[str, list[dict[str, Any]]] = {}
        for record in page.records:
            statement = record.statement
            if voided_id(statement) is not None or not isinstance(statement, dict):
                records.append(record)
                continue
            try:
                events = self.mapper.events(statement)
            except Exception as exc:  # raised again, unchanged, by map_record
                records.append(XapiRecord(statement, error=exc))
                continue
            records.append(XapiRecord(statement, events=events))
            if isinstance(statement.get("id"), str):
                produced[statement["id"]] = event_rows(events)
        await self._remember(produced)
        targets = {t for r in records if (t := voided_id(r.statement)) is not None} - produced.keys()
        known = {**await self._recall(sorted(targets)), **produced}
        voidings = {
            statement["id"]: statement
            for record in records
            if voided_id(statement := record.statement) is not None and isinstance(statement.get("id"), str)
        }
        resolved: list[XapiRecord] = []
        for record in records:
            target = voided_id(record.statement)
            if target is None:
                resolved.append(record)
            elif target in voidings:
                resolved.append(XapiRecord(record.statement, voided=voidings[target]))
            elif target in known:
                resolved.append(XapiRecord(record.statement, retracts=known[target]))
            else:
                voided = await self._fetch_voided(target)
                rows: list[dict[str, Any]] | None = None
                if voided is not None and voided_id(voided) is None:
                    try:
                        rows = event_rows(self.mapper.events(voided))
                    except (SkipRecord, DeadLetterRecord, ValidationError):
                        rows = []
                    await self._remember({target: rows})
                    known[target] = rows
                resolved.append(XapiRecord(record.statement, voided=voided, retracts=rows))
        return Page(resolved, page.next_cursor, page.exhausted, page.newest_at)

    async def _fetch_voided(self, target: str) -> dict[str, Any] | None:
        """The statement `target` as the LRS returns it (`voidedStatementId`, then `statementId`), or None."""
        for parameter in ("voidedStatementId", "statementId"):
            response = await self.http.get_json(
                self.statements_url, params={parameter: target, "format": "exact"}, accept_statuses=(400, 404)
            )
            if response.status != 200:
                continue
            body = as_dict(response.body)
            if body.get("id") == target:
                return body
            statements = body.get("statements")
            # A StatementResult counts only when the target is all it holds: an LRS that ignores the
            # parameter answers a page of other statements.
            if (
                isinstance(statements, list)
                and len(statements) == 1
                and as_dict(statements[0]).get("id") == target
            ):
                return as_dict(statements[0])
        return None

    async def _remember(self, produced: dict[str, list[dict[str, Any]]]) -> None:
        if self._context is None or not produced:
            return
        await self._context.pool.execute(
            "INSERT INTO xapi_statement_event (source, statement_id, events)"
            " SELECT $1, s, e::jsonb FROM unnest($2::text[], $3::text[]) AS t(s, e)"
            " ON CONFLICT (source, statement_id) DO NOTHING",
            self.name,
            list(produced),
            [json.dumps(rows) for rows in produced.values()],
        )

    async def _recall(self, statement_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        if self._context is None or not statement_ids:
            return {}
        rows = await self._context.pool.fetch(
            "SELECT statement_id, events FROM xapi_statement_event"
            " WHERE source = $1 AND statement_id = ANY($2::text[])",
            self.name,
            statement_ids,
        )
        return {row["statement_id"]: json.loads(row["events"]) for row in rows}

    @cached_property
    def mapper(self) -> StatementMapper:
        """The statement mapping of this source (its verb table and pseudonyms)."""
        return StatementMapper(self.name, self.pseudonyms, self.verbs)

    def record_json(self, record: XapiRecord) -> bytes:
        """The dead-letter value: the statement without personal data (see `connectors.xapi_redact`)."""
        redacted = redact_statement(record.statement, self.mapper.person_or_none, self.pseudonyms.org)
        return json.dumps(redacted, ensure_ascii=False).encode()

    def map_record(self, record: XapiRecord) -> list[Event]:
        """Events of one statement (retractions for a voiding statement)."""
        if record.error is not None:
            raise record.error
        if record.events is not None:
            return record.events
        statement = record.statement
        if not isinstance(statement, dict):
            raise DeadLetterRecord("statement is not a JSON object")
        if as_dict(statement.get("verb")).get("id") == VERB_VOIDED:
            return self._map_voiding(record)
        return self.mapper.events(statement)

    def _map_voiding(self, record: XapiRecord) -> list[Event]:
        statement = record.statement
        target = voided_id(statement)
        if target is None:
            raise DeadLetterRecord("voiding statement without a StatementRef object")
        if record.voided is not None and voided_id(record.voided) is not None:
            raise DeadLetterRecord(
                f"statement {target} is itself a voiding statement, which cannot be voided"
            )
        retracts = record.retracts
        if retracts is None and record.voided is not None:
            try:
                retracts = event_rows(self.mapper.events(record.voided))
            except (SkipRecord, DeadLetterRecord, ValidationError):
                retracts = []
        if retracts is None:
            raise DeadLetterRecord(
                f"voided statement {target} was never pulled and the LRS does not return it"
                " (voidedStatementId, statementId)"
            )
        if not retracts:
            raise SkipRecord("voided statement produced no events")
        return self.mapper.retractions(statement, retracts)
