"""The indicator processor: consume events in batches, write each batch exactly once into PostgreSQL.

Delivery guarantee: exactly-once effects. Each batch's facts (de-duplicated by event id), indicator
part deltas, outbox rows and next offsets commit in one PostgreSQL transaction; offsets live only in
PostgreSQL (``kafka_offset``), and an epoch per partition, bumped on every assignment, stops a
consumer that lost its partitions from committing. Invalid records go to the dead-letter topic,
acknowledged by the broker before the batch commits, and the partition keeps moving.

Run it alone with ``python -m processors.runtime`` (settings from the environment).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from opentelemetry.trace import Link, SpanKind, get_current_span

from infra import telemetry
from infra.dead_letters import bound_dead_letter
from infra.errors import TRANSIENT_PG_ERRORS
from infra.kafka import make_consumer, make_producer, read_log_identity
from infra.postgres import create_pool
from infra.retry import Backoff, retrying
from infra.settings import Settings
from processors.admission import Admission
from processors.base import FactIn
from processors.indicators.base import Part
from processors.outbox import OutboxRelay
from processors.store import (
    PartDeltas,
    Store,
    TopicPartitionKey,
    expected_deltas,
    parts_json,
)
from schemas import deadletter
from schemas.cloudevents import InvalidEvent, decode
from schemas.events.base import Event, EventRetracted
from schemas.topics import TopicCatalogue

logger = logging.getLogger(__name__)

Contribute = Callable[[Event], list[Part]]
_Client = TypeVar("_Client", AIOKafkaConsumer, AIOKafkaProducer)

# The SDK keeps at most 128 links per span; extracting more trace contexts would be wasted work.
_MAX_LINKS = 128
# How long a batch keeps retrying while PostgreSQL is unreachable before the processor gives up.
_DB_OUTAGE_LIMIT_S = 300.0
_DB_OUTAGE_BACKOFF = Backoff(base_s=0.1, max_s=5.0)


def default_contribute() -> Contribute:
    """The catalogue's dispatch over every indicator family (imported late: it is a large module)."""
    from processors.indicators import contributions

    return contributions


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


@dataclass
class _Prepared:
    """A fetched batch, decoded and evaluated, waiting for its transaction."""

    topics: list[str]
    facts: list[FactIn] = field(default_factory=list)
    dead: list[tuple[ConsumerRecord, str]] = field(default_factory=list)
    positions: dict[TopicPartitionKey, tuple[int, int]] = field(default_factory=dict)
    serials: dict[TopicPartitionKey, int] = field(default_factory=dict)
    expected: PartDeltas | None = None
    links: list[Link] = field(default_factory=list)
    records: int = 0
    skipped: int = 0
    dropped: int = 0
    prepare_ms: float = 0.0


async def _finish(work: asyncio.Future[None]) -> None:
    """Wait for a batch commit; a cancellation of the waiter lets it complete first."""
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        await work
        raise


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Claims partitions in PostgreSQL on assignment; waits for the batch in hand on revocation."""

    def __init__(self, processor: IndicatorProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Runs before the group rebalances: let the batch in hand commit, then forget the partitions.

        A failure here only delays the rebalance; the epoch check keeps correctness either way.
        """
        async with self.processor.batch_lock:
            for tp in revoked:
                self.processor.owned.pop((tp.topic, tp.partition), None)
                self.processor.forget(tp)
        logger.info("partitions revoked: %s", _names(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Runs after the rebalance: bump each partition's epoch and seek to its stored offset.

        If PostgreSQL cannot be reached the partitions stay unclaimed; the batch loop claims them
        later and, until then, drops their records.
        """
        try:
            await self.processor.claim(assigned)
        except TRANSIENT_PG_ERRORS:
            logger.warning("could not claim %s now; will claim before processing them", _names(assigned))


def _names(partitions: Sequence[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions)) or "none"


class IndicatorProcessor:
    """One member of the indicators consumer group.

    Args:
        settings: Resolved settings (broker and store addresses known).
        pool: A pool on the store's schema; created (and closed) by the processor when omitted.
        contribute: What an event contributes; the indicator catalogue's dispatch by default.
        relay: Also run the outbox relay that publishes indicator changes.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        pool: asyncpg.Pool | None = None,
        contribute: Contribute | None = None,
        relay: bool = True,
    ) -> None:
        self.settings = settings
        self.catalogue = TopicCatalogue.from_settings(settings)
        self.group = self.catalogue.indicators_group
        self.contribute = contribute or default_contribute()
        self.stats = ProcessorStats()
        self.owned: dict[TopicPartitionKey, tuple[int, int]] = {}
        self.batch_lock = asyncio.Lock()
        # Per partition: how many times we claimed it, and since when we hold it unclaimed.
        self._claim_serial: dict[TopicPartitionKey, int] = {}
        self._unowned_since: dict[TopicPartitionKey, float] = {}
        # Per partition: the offset after the last record decoded (ahead of the committed offset).
        self._prepared_next: dict[TopicPartitionKey, int] = {}
        self._pool = pool
        self._own_pool = pool is None
        self._relay_enabled = relay
        self._stop = asyncio.Event()
        self._store: Store | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._admission = Admission.from_settings(settings)
        self._latest_plausible = self._admission.latest()
        self._dead_letter_topics = {
            spec.name: self.catalogue.dead_letter(spec).name for spec in self.catalogue.input_topics()
        }

    def request_stop(self) -> None:
        """Ask the loop to stop after the batch in hand (safe from a signal handler)."""
        self._stop.set()

    @property
    def store(self) -> Store:
        """The store, once `run` has started."""
        if self._store is None:
            raise RuntimeError("the processor is not running")
        return self._store

    async def run(
        self, *, max_batches: int | None = None, until: Callable[[], bool] | None = None
    ) -> ProcessorStats:
        """Consume and process batches until stopped, cancelled, `max_batches` or `until()`.

        On cancellation or `request_stop` the batch in hand still commits; then the consumer
        leaves the group and the relay publishes what is pending.

        Returns:
            The running totals.
        """
        log_identity = await read_log_identity(self.settings.kafka, self.catalogue)
        if self._pool is None:
            self._pool = await create_pool(self.settings.postgres)
        self._store = Store(self._pool, log_identity=log_identity, consumer_group=self.group)
        producer = make_producer(self.settings.kafka)
        consumer = make_consumer(self.settings.kafka, self.group)
        self._producer, self._consumer = producer, consumer
        relay_task: asyncio.Task[None] | None = None
        await producer.start()
        try:
            await consumer.start()
            consumer.subscribe(
                topics=[spec.name for spec in self.catalogue.input_topics()], listener=_Rebalance(self)
            )
            if self._relay_enabled:
                relay = OutboxRelay(self.settings, self._pool, producer=producer)
                relay_task = asyncio.create_task(relay.run(self._stop), name="outbox-relay")
                relay_task.add_done_callback(self._on_relay_end)
            await self._loop(consumer, max_batches, until)
        finally:
            self._stop.set()
            await consumer.stop()
            relay_error = None
            if relay_task is not None:
                (relay_error,) = await asyncio.gather(relay_task, return_exceptions=True)
            await producer.stop()
            if self._own_pool:
                await self._pool.close()
                self._pool = None
            logger.info(
                "processor stopped after %d batches: %d records, %d new facts, %d duplicates, "
                "%d dead-lettered",
                self.stats.batches,
                self.stats.records,
                self.stats.facts_new,
                self.stats.duplicates,
                self.stats.dead_lettered,
            )
        if isinstance(relay_error, Exception):
            raise RuntimeError("the outbox relay failed; the processor stopped") from relay_error
        return self.stats

    def _on_relay_end(self, task: asyncio.Task[None]) -> None:
        """Stop when the relay ends on an error (it retries transient ones itself).

        Processing on would store indicator changes that nobody publishes: failing makes the
        supervisor (systemd, `alcance run`) restart the processor and its relay instead.
        """
        if not task.cancelled() and task.exception() is not None:
            logger.error("the outbox relay stopped on an error", exc_info=task.exception())
            self._stop.set()

    async def _loop(
        self, consumer: AIOKafkaConsumer, max_batches: int | None, until: Callable[[], bool] | None
    ) -> None:
        """Fetch and decode the next batch while the previous one commits (CPU and SQL overlap)."""
        settings = self.settings.processor
        committing: asyncio.Future[None] | None = None
        try:
            while not self._stop.is_set():
                fetched = self.stats.batches + (committing is not None)
                if max_batches is not None and fetched >= max_batches:
                    return
                if until is not None and until():
                    return
                claims_before = dict(self._claim_serial)
                batch = await consumer.getmany(
                    timeout_ms=settings.batch_timeout_ms, max_records=settings.batch_max_records
                )
                prepared = self._prepare(consumer, batch, claims_before) if batch else None
                if committing is not None:
                    await _finish(committing)
                    committing = None
                await self._reclaim_orphans(consumer)
                if prepared is not None:
                    committing = asyncio.ensure_future(self._commit(prepared))
        finally:
            # On cancellation or an error elsewhere, the batch in hand still commits.
            if committing is not None:
                await _finish(committing)

    async def claim(self, partitions: Sequence[TopicPartition]) -> None:
        """Own `partitions`: bump their epochs in PostgreSQL and seek to the offsets stored there."""
        if not partitions:
            return
        claims = await self.store.claim_partitions((tp.topic, tp.partition) for tp in partitions)
        consumer = self._require(self._consumer)
        for tp in partitions:
            key = (tp.topic, tp.partition)
            next_offset, epoch = claims[key]
            self.owned[key] = (next_offset, epoch)
            self._claim_serial[key] = self._claim_serial.get(key, 0) + 1
            self._unowned_since.pop(key, None)
            self._prepared_next[key] = next_offset
            consumer.seek(tp, next_offset)
        logger.info(
            "partitions claimed: %s",
            ", ".join(f"{t}[{p}]@{claims[(t, p)][0]}#{claims[(t, p)][1]}" for t, p in sorted(claims)),
        )

    async def _reclaim_orphans(self, consumer: AIOKafkaConsumer) -> None:
        """Claim partitions the group still assigns to us but that we do not own in PostgreSQL.

        That happens when PostgreSQL was unreachable during the rebalance, or when a batch found
        our epoch superseded. A grace period of one session timeout lets a real rebalance, which
        would take the partition away from us, happen first.
        """
        now = time.monotonic()
        grace_s = self.settings.kafka.session_timeout_ms / 1000
        due: list[TopicPartition] = []
        for tp in consumer.assignment():
            key = (tp.topic, tp.partition)
            if key in self.owned:
                continue
            if now - self._unowned_since.setdefault(key, now) >= grace_s:
                due.append(tp)
        if not due:
            return
        async with self.batch_lock:
            due = [tp for tp in due if (tp.topic, tp.partition) not in self.owned]
            try:
                await self.claim(due)
            except TRANSIENT_PG_ERRORS:
                logger.warning("could not claim %s yet", _names(due))

    def _prepare(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord]],
        claims_before: dict[TopicPartitionKey, int],
    ) -> _Prepared:
        """Decode a fetched batch and compute what it contributes; no I/O, so no await."""
        started = time.perf_counter()
        self._latest_plausible = self._admission.latest()
        prepared = _Prepared(topics=sorted({tp.topic for tp in batch}))
        for tp, records in batch.items():
            key = (tp.topic, tp.partition)
            own = self.owned.get(key)
            if own is None:
                # Not ours (any more, or not yet claimed): the next owner, or our own later claim,
                # reads these records again from the offset stored in PostgreSQL.
                self._unowned_since.setdefault(key, time.monotonic())
                continue
            if self._claim_serial.get(key) != claims_before.get(key):
                # Claimed while this batch was being fetched: the records may come from the position
                # before the claim's seek. Seek again to the stored offset and read them anew.
                consumer.seek(tp, own[0])
                self._prepared_next[key] = own[0]
                continue
            floor = max(own[0], self._prepared_next.get(key, own[0]))
            last = -1
            for record in records:
                if record.offset < floor:
                    prepared.skipped += 1
                    continue
                prepared.records += 1
                last = record.offset
                self._decode(record, prepared.facts, prepared.dead)
            if last >= 0:
                prepared.positions[key] = (last + 1, own[1])
                prepared.serials[key] = self._claim_serial.get(key, 0)
                self._prepared_next[key] = last + 1
        for fact in prepared.facts:
            fact.parts_json = parts_json(fact.parts)
        prepared.expected = expected_deltas(prepared.facts)
        per_partition = _MAX_LINKS // max(1, len(batch))
        for records in batch.values():
            for record in records[:per_partition]:
                context = get_current_span(telemetry.extract_context(record.headers)).get_span_context()
                if context.is_valid:
                    prepared.links.append(Link(context))
        prepared.prepare_ms = (time.perf_counter() - started) * 1000
        return prepared

    async def _commit(self, prepared: _Prepared) -> None:
        """Dead-letter the invalid records, then commit the batch in one transaction."""
        async with self.batch_lock:
            started = time.perf_counter()
            self._drop_superseded(prepared)
            topics = prepared.topics
            with telemetry.tracer().start_as_current_span(
                f"process {topics[0]}" if len(topics) == 1 else "process",
                kind=SpanKind.CONSUMER,
                links=prepared.links,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.consumer.group.name": self.group,
                    "messaging.destination.name": ",".join(topics),
                    "messaging.batch.message_count": prepared.records,
                },
            ) as span:
                counts = await self._commit_locked(prepared)
                span.set_attributes({f"alcance.{key}": value for key, value in counts.items()})
            self.stats.batches += 1
            logger.info(
                "batch %d: %d records, %d new, %d duplicate, %d retracted, %d dead-lettered, "
                "%d skipped, %d dropped (lost), %d month cells changed in %.1f ms (+%.1f ms decoding)",
                self.stats.batches,
                counts["records"],
                counts["new"],
                counts["duplicates"],
                counts["retractions"],
                counts["dead_lettered"],
                counts["skipped"],
                counts["dropped"],
                counts["months_marked"],
                (time.perf_counter() - started) * 1000,
                prepared.prepare_ms,
            )

    def _drop_superseded(self, prepared: _Prepared) -> None:
        """Leave out partitions whose ownership changed since the batch was decoded.

        A claim in between re-read the stored offset and seeked there, so those records come again;
        a lost partition is read by its new owner.
        """
        stale = {
            key
            for key, (_, epoch) in prepared.positions.items()
            if (own := self.owned.get(key)) is None
            or own[1] != epoch
            or self._claim_serial.get(key) != prepared.serials.get(key)
        }
        if not stale:
            return
        prepared.dropped += sum(1 for f in prepared.facts if (f.topic, f.partition) in stale)
        prepared.facts = [f for f in prepared.facts if (f.topic, f.partition) not in stale]
        prepared.dead = [(r, why) for r, why in prepared.dead if (r.topic, r.partition) not in stale]
        prepared.positions = {k: v for k, v in prepared.positions.items() if k not in stale}
        prepared.expected = None

    async def _commit_locked(self, prepared: _Prepared) -> dict[str, int]:
        if prepared.dead:
            await self._dead_letter(prepared.dead)
        positions, facts = prepared.positions, prepared.facts
        outcome = await self._with_db_retries(
            lambda: self.store.commit_batch(positions, facts, prepared.expected)
        )
        dropped = prepared.dropped
        for key in outcome.lost:
            self.owned.pop(key, None)
            self._prepared_next.pop(key, None)
            self._unowned_since[key] = time.monotonic()
            dropped += sum(1 for fact in facts if (fact.topic, fact.partition) == key)
        for key, position in positions.items():
            if key not in outcome.lost and key in self.owned:
                self.owned[key] = position
        if outcome.lost:
            logger.warning(
                "partitions lost to another consumer, batch records dropped: %s", sorted(outcome.lost)
            )
        stats = self.stats
        stats.records += prepared.records
        stats.facts_new += outcome.facts_new
        stats.duplicates += outcome.duplicates
        stats.retracted_on_arrival += outcome.retracted_on_arrival
        stats.retractions_applied += outcome.retractions_applied
        stats.dead_lettered += len(prepared.dead)
        stats.skipped += prepared.skipped
        stats.dropped_lost += dropped
        stats.months_marked += outcome.months_marked
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

    def _decode(
        self, record: ConsumerRecord, facts: list[FactIn], dead: list[tuple[ConsumerRecord, str]]
    ) -> None:
        try:
            event = decode(record.headers, record.value)
        except InvalidEvent as exc:
            dead.append((record, exc.reason))
            return
        refusal = self._admission.refusal(event, record.topic, self._latest_plausible)
        if refusal is not None:
            dead.append((record, refusal))
            return
        retracts = event.retracted_event_id if isinstance(event, EventRetracted) else None
        try:
            parts = [] if retracts is not None else self.contribute(event)
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            # A valid event the indicator code cannot digest: park it rather than stall the partition.
            logger.warning("event %s could not be evaluated: %s", event.event_id, exc)
            dead.append((record, f"indicator evaluation failed: {type(exc).__name__}: {exc}"[:300]))
            return
        facts.append(
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

    async def _dead_letter(self, dead: list[tuple[ConsumerRecord, str]]) -> None:
        """Produce rejected records to their dead-letter topics and wait for the broker's acks."""
        producer = self._require(self._producer)
        deliveries = []
        for record, reason in dead:
            letter = bound_dead_letter(
                record.value,
                record.key,
                [(k, v) for k, v in (record.headers or ()) if v is not None],
                deadletter.for_consumer_record(reason, record.topic, record.partition, record.offset),
            )
            deliveries.append(
                await producer.send(
                    self._dead_letter_topics[record.topic],
                    value=letter.value,
                    key=letter.key,
                    headers=letter.headers,
                )
            )
            logger.warning(
                "dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason
            )
        await asyncio.gather(*deliveries)

    def forget(self, tp: TopicPartition) -> None:
        """Drop what is known about a partition that is no longer ours."""
        self._prepared_next.pop((tp.topic, tp.partition), None)

    @staticmethod
    def _require(client: _Client | None) -> _Client:
        if client is None:
            raise RuntimeError("the processor is not running")
        return client

    async def _with_db_retries(self, operation: Callable[[], Any]) -> Any:
        """Run a store operation, retrying while PostgreSQL is unreachable (a restart, a failover)."""
        return await retrying(
            operation,
            what="a store operation",
            backoff=_DB_OUTAGE_BACKOFF,
            give_up_after_s=_DB_OUTAGE_LIMIT_S,
        )


async def run_processor(settings: Settings, *, relay: bool = True) -> ProcessorStats:
    """Run one processor until SIGTERM or SIGINT, then finish the batch in hand and stop."""
    processor = IndicatorProcessor(settings, relay=relay)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, processor.request_stop)
    try:
        return await processor.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def main() -> None:
    """Entry point of ``python -m processors.runtime``; logs on stderr.

    Settings come from the environment or, with ``--settings-from-stdin``, from the parent over a pipe.
    """
    from infra.child_settings import settings_of_this_process
    from infra.logs import setup_logging

    settings = settings_of_this_process()
    setup_logging(settings.log)
    telemetry.setup_telemetry(settings.telemetry)
    asyncio.run(run_processor(settings, relay=settings.processor.relay))


if __name__ == "__main__":
    main()
