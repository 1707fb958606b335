"""What the push intake does with the statements it accepts: map, publish, and remember them.

Each statement received is remembered in `intake_statement` (its id, a digest of its content and the
rows of its events, no personal data): a resend of the same content is accepted again (its event ids
make it harmless), other content under a known id is a conflict, and a voiding statement retracts the
events of a statement received earlier.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.context import ConnectorContext
from connectors.exceptions import DeadLetterRecord, SkipRecord, describe_error
from connectors.intake_shapes import parse_statement_id
from connectors.pseudonym import Pseudonymiser
from connectors.publisher import DeadLetter
from connectors.xapi_extensions import DEFAULT_VERBS, VERB_VOIDED
from connectors.xapi_mapping import StatementMapper, event_rows
from connectors.xapi_redact import redact_statement
from schemas.events.base import Event
from schemas.events.training import TrainingEventRetracted

logger = logging.getLogger(__name__)


@dataclass
class _Accepted:
    """What one statement becomes: events to publish, dead letters, and its row for `intake_statement`."""

    statement_id: uuid.UUID
    digest: str
    events: list[Event] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


class StatementIntake:
    """Maps, publishes and remembers pushed statements.

    Args:
        context: the connector context of the process (publisher, catalogue, PostgreSQL pool).
    """

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context
        self.source = context.settings.intake.source_name
        self.mapper = StatementMapper(
            self.source, Pseudonymiser.from_settings(context.settings), DEFAULT_VERBS
        )
        catalogue = context.catalogue
        self._dead_topic = catalogue.dead_letter(catalogue.training).name

    def digest(self, statement: dict[str, Any]) -> str:
        """The statement's content digest: tells a resend from another statement under the same id."""
        # The actor enters only through its keyed pseudonym, so the digest reveals nothing about a person.
        content = {
            k: v for k, v in statement.items() if k not in {"id", "stored", "authority", "version", "actor"}
        }
        try:
            actor = self.mapper.person_key(statement.get("actor"))
        except DeadLetterRecord:
            actor = ""
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(f"{actor}|{canonical}".encode()).hexdigest()

    def dead_letter(self, statement: dict[str, Any], reason: str) -> DeadLetter:
        """The statement's dead letter, redacted."""
        # Dead letters are read by operators: only the redacted statement, never personal data.
        redacted = redact_statement(statement, self.mapper.person_or_none, self.mapper.pseudonyms.org)
        value = json.dumps(redacted, ensure_ascii=False, default=str).encode()
        return DeadLetter(
            topic=self._dead_topic, value=value, reason=reason, source=self.source, redacted=True
        )

    async def known(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, list[dict[str, Any]]]]:
        """Per statement id already received: its digest and the rows of its events."""
        rows = await self.context.pool.fetch(
            "SELECT statement_id, content_digest, events FROM intake_statement"
            " WHERE source = $1 AND statement_id = ANY($2::uuid[])",
            self.source,
            ids,
        )
        return {row["statement_id"]: (row["content_digest"], json.loads(row["events"])) for row in rows}

    def map(
        self, statement: dict[str, Any], known: dict[uuid.UUID, tuple[str, list[dict[str, Any]]]]
    ) -> _Accepted:
        """What one statement becomes; a mapping failure is its dead letter, never an error."""
        statement_id = parse_statement_id(statement["id"])
        accepted = _Accepted(statement_id=statement_id, digest=self.digest(statement))
        try:
            if statement["verb"]["id"] == VERB_VOIDED:
                accepted.events = self.retractions(statement, known)
            else:
                accepted.events = self.mapper.events(statement)
        except SkipRecord as exc:
            logger.debug("intake: statement skipped: %s", exc.reason)
        except DeadLetterRecord as exc:
            accepted.dead.append(self.dead_letter(statement, exc.reason))
        except Exception as exc:
            # Any failure to map one statement is that statement's dead letter, never a 500.
            accepted.dead.append(self.dead_letter(statement, describe_error(exc)))
        return accepted

    def retractions(
        self, statement: dict[str, Any], known: dict[uuid.UUID, tuple[str, list[dict[str, Any]]]]
    ) -> list[Event]:
        """The retractions a voiding statement makes of a statement this intake received."""
        target = statement["object"]
        if target.get("objectType") != "StatementRef":
            raise DeadLetterRecord("voiding statement without a StatementRef object")
        voided = known.get(parse_statement_id(target["id"]))
        if voided is None:
            raise DeadLetterRecord("voided statement was not received by this intake")
        when = statement.get("timestamp") or datetime.now(UTC).isoformat()
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

    async def accept(self, statements: list[dict[str, Any]]) -> str | None:
        """Map, publish (awaiting acks) and record `statements`.

        Returns:
            None when done; the reason of a conflict (a statement id already received with other
            content) when nothing of the batch was taken.
        """
        ids = [parse_statement_id(s["id"]) for s in statements]
        refs = [
            parse_statement_id(s["object"]["id"])
            for s in statements
            if s["verb"]["id"] == VERB_VOIDED and s["object"].get("objectType") == "StatementRef"
        ]
        known = await self.known(ids + refs)
        # Statements voided earlier in the same batch are known too.
        batch: list[_Accepted] = []
        for statement in statements:
            accepted = self.map(statement, known)
            previous = known.get(accepted.statement_id)
            if previous is not None and accepted.statement_id in ids and previous[0] != accepted.digest:
                return f"statement {accepted.statement_id} was already received with other content"
            known[accepted.statement_id] = (accepted.digest, event_rows(accepted.events))
            batch.append(accepted)
        events = [event for accepted in batch for event in accepted.events]
        dead = [letter for accepted in batch for letter in accepted.dead]
        await self.context.publisher.publish(events, dead)
        await self.context.pool.executemany(
            "INSERT INTO intake_statement (source, statement_id, content_digest, events)"
            " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (source, statement_id) DO NOTHING",
            [(self.source, a.statement_id, a.digest, json.dumps(event_rows(a.events))) for a in batch],
        )
        logger.info(
            "intake: %d statements -> %d events, %d dead-lettered", len(batch), len(events), len(dead)
        )
        return None
