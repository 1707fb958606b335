"""Recording a batch's facts: de-duplication by event id, retractions, and the deltas that result.

Runs inside the batch transaction of `processors.store.Store.commit_batch`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from uuid import UUID

import asyncpg

from processors.base import BatchOutcome, FactIn, part_from_json
from processors.deltas import PartDeltas, parts_json

_INSERT_FACTS = """
INSERT INTO fact AS f (event_id, event_type, occurred_at, subject_key, source, payload, parts, received,
                       retracts, topic, "partition", "offset")
SELECT u.event_id, u.event_type, u.occurred_at, u.subject_key, u.source, u.payload, u.parts,
       true, u.retracts, u.topic, u.part_no, u.off
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::uuid[], $9::text[], $10::int[], $11::bigint[])
    AS u(event_id, event_type, occurred_at, subject_key, source, payload, parts, retracts, topic, part_no,
         off)
ORDER BY u.event_id
ON CONFLICT (event_id) DO UPDATE
SET event_type = EXCLUDED.event_type, occurred_at = EXCLUDED.occurred_at,
    subject_key = EXCLUDED.subject_key, source = EXCLUDED.source, payload = EXCLUDED.payload,
    parts = EXCLUDED.parts, received = true, retracts = EXCLUDED.retracts, topic = EXCLUDED.topic,
    "partition" = EXCLUDED."partition", "offset" = EXCLUDED."offset", recorded_at = now()
WHERE NOT f.received
RETURNING f.event_id, f.retracted
"""

# The placeholder insert and the "retracted" update both take the row lock of the retracted event's
# fact, so a retraction and its event processed concurrently by two consumers serialise on it.
_RETRACT_FACTS = """
INSERT INTO fact AS f (event_id, received, retracted)
SELECT t, false, true FROM unnest($1::uuid[]) AS t ORDER BY t
ON CONFLICT (event_id) DO UPDATE SET retracted = true
WHERE NOT f.retracted
RETURNING f.event_id, f.received, f.parts
"""


async def record_facts(
    connection: asyncpg.Connection, facts: Sequence[FactIn], expected: PartDeltas | None = None
) -> tuple[PartDeltas, BatchOutcome]:
    """Store the batch's facts and work out what they contribute; inside the caller's transaction.

    Duplicates of stored events contribute nothing; events already retracted are stored as
    retracted and contribute nothing; retractions negate the parts their event contributed, or leave
    a placeholder when the event has not arrived yet.

    Args:
        connection: A connection inside a transaction.
        facts: The batch's facts.
        expected: The deltas of all `facts` as if every one were new (computed ahead, outside the
            transaction); corrected here for duplicates. Left unchanged, so a retry can reuse it.
    """
    outcome = BatchOutcome()
    unique: dict[UUID, FactIn] = {}
    for fact in facts:
        if fact.event_id in unique:
            outcome.duplicates += 1
        else:
            unique[fact.event_id] = fact
    deltas = expected.copy() if expected is not None else PartDeltas()
    if not unique:
        return deltas, outcome
    # The statement inserts in event-id order (its ORDER BY), so concurrent batches lock alike.
    ordered = list(unique.values())
    columns = (
        [fact.event_id for fact in ordered],
        [fact.event_type for fact in ordered],
        [fact.occurred_at for fact in ordered],
        [fact.subject_key for fact in ordered],
        [fact.source for fact in ordered],
        [fact.payload for fact in ordered],
        [fact.parts_json if fact.parts_json is not None else parts_json(fact.parts) for fact in ordered],
        [fact.retracts for fact in ordered],
        [fact.topic for fact in ordered],
        [fact.partition for fact in ordered],
        [fact.offset for fact in ordered],
    )
    inserted = {record[0]: record[1] for record in await connection.fetch(_INSERT_FACTS, *columns)}
    targets: set[UUID] = set()
    for fact in ordered:
        retracted = inserted.get(fact.event_id)
        if retracted is None or retracted:
            if retracted is None:
                outcome.duplicates += 1
            else:
                outcome.retracted_on_arrival += 1
            if expected is not None:
                for part in fact.parts:
                    deltas.discount(part, fact.event_id)
            continue
        outcome.facts_new += 1
        if fact.retracts is not None:
            targets.add(fact.retracts)
        if expected is None:
            for part in fact.parts:
                deltas.add(part, fact.event_id)
    if targets:
        for record in await connection.fetch(_RETRACT_FACTS, sorted(targets)):
            if not record[1]:
                outcome.retractions_pending += 1
                continue
            outcome.retractions_applied += 1
            for data in json.loads(record[2]):
                deltas.add(part_from_json(data), record[0], sign=-1)
    return deltas, outcome
