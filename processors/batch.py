"""Batch preparation: decode fetched records, admit them, compute what they contribute and their deltas.

No I/O and no await: the processor prepares the next batch while the previous one commits. Records of
partitions the ledger does not own are left for whoever owns them; invalid records become dead letters
with their reason; the rest become facts with their parts and the batch's expected deltas.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import ConsumerRecord, TopicPartition
from opentelemetry.trace import Link, get_current_span

from infra import telemetry
from processors.admission import Admission
from processors.base import BatchOutcome, FactIn, TopicPartitionKey
from processors.deltas import PartDeltas, expected_deltas, parts_json
from processors.indicators.base import Part
from processors.ownership import PartitionLedger, Position
from schemas.cloudevents import InvalidEvent, decode
from schemas.events.base import Event, EventRetracted

logger = logging.getLogger(__name__)

Contribute = Callable[[Event], list[Part]]

# The SDK keeps at most 128 links per span; extracting more trace contexts would be wasted work.
_MAX_LINKS = 128


@dataclass
class PreparedBatch:
    """A fetched batch, decoded and evaluated, waiting for its transaction.

    Attributes:
        positions: Per partition with records: (offset after its last record, epoch decoded under).
        serials: Per partition with records: our claim serial when it was decoded.
        expected: The deltas of `facts` as if all were new; None once partitions were left out.
        rewind: Partitions claimed while the batch was fetched: seek them back to their stored offset.
    """

    topics: list[str]
    facts: list[FactIn] = field(default_factory=list)
    dead: list[tuple[ConsumerRecord, str]] = field(default_factory=list)
    positions: dict[TopicPartitionKey, Position] = field(default_factory=dict)
    serials: dict[TopicPartitionKey, int] = field(default_factory=dict)
    expected: PartDeltas | None = None
    links: list[Link] = field(default_factory=list)
    rewind: list[tuple[TopicPartition, int]] = field(default_factory=list)
    records: int = 0
    skipped: int = 0
    dropped: int = 0
    prepare_ms: float = 0.0

    def leave_out(self, stale: set[TopicPartitionKey]) -> None:
        """Drop the records of `stale` partitions (their ownership changed since decoding)."""
        if not stale:
            return
        self.dropped += sum(1 for f in self.facts if (f.topic, f.partition) in stale)
        self.facts = [f for f in self.facts if (f.topic, f.partition) not in stale]
        self.dead = [(r, why) for r, why in self.dead if (r.topic, r.partition) not in stale]
        self.positions = {k: v for k, v in self.positions.items() if k not in stale}
        self.expected = None


@dataclass
class ProcessorStats:
    """Running totals of one processor instance."""

    batches: int = 0
    records: int = 0
    facts_new: int = 0
    duplicates: int = 0
    retracted_on_arrival: int = 0
    retractions_applied: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    dropped_lost: int = 0
    months_marked: int = 0

    def add(self, prepared: PreparedBatch, outcome: BatchOutcome, dropped: int) -> dict[str, int]:
        """Count one committed batch; returns its own counts for the batch's log line and span."""
        self.records += prepared.records
        self.facts_new += outcome.facts_new
        self.duplicates += outcome.duplicates
        self.retracted_on_arrival += outcome.retracted_on_arrival
        self.retractions_applied += outcome.retractions_applied
        self.dead_lettered += len(prepared.dead)
        self.skipped += prepared.skipped
        self.dropped_lost += dropped
        self.months_marked += outcome.months_marked
        return {
            "records": prepared.records,
            "new": outcome.facts_new,
            "duplicates": outcome.duplicates,
            "retractions": outcome.retractions_applied + outcome.retractions_pending,
            "dead_lettered": len(prepared.dead),
            "skipped": prepared.skipped,
            "dropped": dropped,
            "months_marked": outcome.months_marked,
        }


class BatchPreparer:
    """Turns fetched records into a `PreparedBatch`.

    Args:
        admission: What the processors admit as facts (plausible times, topics per event type).
        contribute: What an event contributes to the indicators.
    """

    def __init__(self, admission: Admission, contribute: Contribute) -> None:
        self.admission = admission
        self.contribute = contribute

    def prepare(
        self,
        batch: Mapping[TopicPartition, list[ConsumerRecord]],
        ledger: PartitionLedger,
        serials_before: Mapping[TopicPartitionKey, int],
        now: float,
    ) -> PreparedBatch:
        """Decode `batch` against the ledger and advance its read positions.

        Args:
            batch: The records fetched, per partition.
            ledger: The processor's partitions; its read positions move past the decoded records.
            serials_before: `ledger.serials()` taken before the fetch.
            now: The monotonic time, for the grace period of partitions we do not own.
        """
        latest_plausible = self.admission.latest()
        prepared = PreparedBatch(topics=sorted({tp.topic for tp in batch}))
        for tp, records in batch.items():
            key = (tp.topic, tp.partition)
            own = ledger.owned.get(key)
            if own is None:
                # Not ours (any more, or not yet claimed): the next owner, or our own later claim,
                # reads these records again from the offset stored in PostgreSQL.
                ledger.seen_unowned(key, now)
                continue
            if ledger.claimed_during(key, serials_before):
                # Claimed while this batch was being fetched: the records may come from the position
                # before the claim's seek. Seek again to the stored offset and read them anew.
                prepared.rewind.append((tp, ledger.rewind(key)))
                continue
            floor = ledger.read_from(key)
            last = -1
            for record in records:
                if record.offset < floor:
                    prepared.skipped += 1
                    continue
                prepared.records += 1
                last = record.offset
                self._decode(record, prepared, latest_plausible)
            if last >= 0:
                prepared.positions[key] = (last + 1, own[1])
                prepared.serials[key] = ledger.serial(key)
                ledger.decoded(key, last + 1)
        for fact in prepared.facts:
            fact.parts_json = parts_json(fact.parts)
        prepared.expected = expected_deltas(prepared.facts)
        prepared.links = _links(batch)
        return prepared

    def _decode(self, record: ConsumerRecord, prepared: PreparedBatch, latest_plausible: datetime) -> None:
        try:
            event = decode(record.headers, record.value)
        except InvalidEvent as exc:
            prepared.dead.append((record, exc.reason))
            return
        refusal = self.admission.refusal(event, record.topic, latest_plausible)
        if refusal is not None:
            prepared.dead.append((record, refusal))
            return
        retracts = event.retracted_event_id if isinstance(event, EventRetracted) else None
        try:
            parts = [] if retracts is not None else self.contribute(event)
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            # A valid event the indicator code cannot digest: park it rather than stall the partition.
            logger.warning("event %s could not be evaluated: %s", event.event_id, exc)
            reason = f"indicator evaluation failed: {type(exc).__name__}: {exc}"[:300]
            prepared.dead.append((record, reason))
            return
        prepared.facts.append(
            FactIn(
                event_id=event.event_id,
                event_type=event.event_type,
                occurred_at=event.occurred_at,
                subject_key=event.subject_key,
                source=event.source,
                payload=record.value.decode(),
                parts=parts,
                retracts=retracts,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
        )


def _links(batch: Mapping[TopicPartition, list[ConsumerRecord]]) -> list[Link]:
    """Span links to the producers' trace contexts, spread over the partitions of the batch."""
    links = []
    per_partition = _MAX_LINKS // max(1, len(batch))
    for records in batch.values():
        for record in records[:per_partition]:
            context = get_current_span(telemetry.extract_context(record.headers)).get_span_context()
            if context.is_valid:
                links.append(Link(context))
    return links
