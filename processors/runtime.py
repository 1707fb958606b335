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
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from opentelemetry.trace import SpanKind

from infra import telemetry
from infra.collector import settle_collector
from infra.errors import TRANSIENT_PG_ERRORS
from infra.kafka import make_consumer, make_producer, read_log_identity
from infra.kafka_acls import ensure_acls
from infra.postgres import create_pool
from infra.retry import Backoff, retrying
from infra.roles import PROCESSOR, PROCESSOR_PRINCIPAL, kafka_settings_for, store_settings_for
from infra.settings import Settings
from infra.signals import on_stop_signals
from processors.admission import Admission
from processors.base import TopicPartitionKey
from processors.batch import BatchPreparer, Contribute, PreparedBatch, ProcessorStats
from processors.dead_letters import send_dead_letters
from processors.outbox import OutboxRelay
from processors.ownership import PartitionLedger
from processors.store import Store
from schemas.topics import TopicCatalogue

logger = logging.getLogger(__name__)

_Client = TypeVar("_Client", AIOKafkaConsumer, AIOKafkaProducer)

# How long a batch keeps retrying while PostgreSQL is unreachable before the processor gives up.
_DB_OUTAGE_LIMIT_S = 300.0
_DB_OUTAGE_BACKOFF = Backoff(base_s=0.1, max_s=5.0)


def default_contribute() -> Contribute:
    """The catalogue's dispatch over every indicator family (imported late: it is a large module)."""
    from processors.indicators import contributions

    return contributions


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
                self.processor.ledger.revoked((tp.topic, tp.partition))
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
        self.stats = ProcessorStats()
        self.ledger = PartitionLedger()
        self.batch_lock = asyncio.Lock()
        self._preparer = BatchPreparer(Admission.from_settings(settings), contribute or default_contribute())
        self._pool = pool
        self._own_pool = pool is None
        self._relay_enabled = relay
        self._stop = asyncio.Event()
        self._store: Store | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
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
        # Setup as the settings' own Kafka user: the log identity and (where alcance manages them) the
        # ACLs this processor's principal needs.
        log_identity = await read_log_identity(self.settings.kafka, self.catalogue)
        await ensure_acls(self.settings.kafka, self.catalogue)
        if self._pool is None:
            self._pool = await create_pool(store_settings_for(self.settings.postgres, PROCESSOR))
        self._store = Store(
            self._pool,
            log_identity=log_identity,
            consumer_group=self.group,
            rollups=self.settings.processor.rollups,
            cell_values=self.settings.processor.cell_values,
        )
        # Its own principal: reads the inputs, writes dead letters and indicators, nothing else.
        kafka = kafka_settings_for(self.settings.kafka, PROCESSOR_PRINCIPAL)
        producer = make_producer(kafka)
        consumer = make_consumer(kafka, self.group)
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
                if max_batches is not None and self.stats.batches + (committing is not None) >= max_batches:
                    return
                if until is not None and until():
                    return
                serials = self.ledger.serials()
                batch = await consumer.getmany(
                    timeout_ms=settings.batch_timeout_ms, max_records=settings.batch_max_records
                )
                prepared = self._prepare(consumer, batch, serials) if batch else None
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
            next_offset, epoch = claims[(tp.topic, tp.partition)]
            self.ledger.claimed((tp.topic, tp.partition), next_offset, epoch)
            consumer.seek(tp, next_offset)
        logger.info(
            "partitions claimed: %s",
            ", ".join(f"{t}[{p}]@{claims[(t, p)][0]}#{claims[(t, p)][1]}" for t, p in sorted(claims)),
        )

    async def _reclaim_orphans(self, consumer: AIOKafkaConsumer) -> None:
        """Claim partitions the group still assigns to us but that we do not own in PostgreSQL.

        That happens when PostgreSQL was unreachable during the rebalance, or when a batch found
        our epoch superseded (see `PartitionLedger.due_for_claim` for the grace period).
        """
        assigned = {(tp.topic, tp.partition): tp for tp in consumer.assignment()}
        grace_s = self.settings.kafka.session_timeout_ms / 1000
        due_keys = self.ledger.due_for_claim(assigned, time.monotonic(), grace_s)
        if not due_keys:
            return
        async with self.batch_lock:
            due = [assigned[key] for key in due_keys if key not in self.ledger.owned]
            try:
                await self.claim(due)
            except TRANSIENT_PG_ERRORS:
                logger.warning("could not claim %s yet", _names(due))

    def _prepare(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord]],
        serials: dict[TopicPartitionKey, int],
    ) -> PreparedBatch:
        """Decode a fetched batch (no await: it runs while the previous batch commits)."""
        started = time.perf_counter()
        prepared = self._preparer.prepare(batch, self.ledger, serials, time.monotonic())
        for tp, offset in prepared.rewind:
            consumer.seek(tp, offset)
        prepared.prepare_ms = (time.perf_counter() - started) * 1000
        return prepared

    async def _commit(self, prepared: PreparedBatch) -> None:
        """Dead-letter the invalid records, then commit the batch in one transaction."""
        async with self.batch_lock:
            started = time.perf_counter()
            prepared.leave_out(self.ledger.stale(prepared.positions, prepared.serials))
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

    async def _commit_locked(self, prepared: PreparedBatch) -> dict[str, int]:
        if prepared.dead:
            await send_dead_letters(self._require(self._producer), self._dead_letter_topics, prepared.dead)
        positions, facts = prepared.positions, prepared.facts
        outcome = await self._with_db_retries(
            lambda: self.store.commit_batch(positions, facts, prepared.expected)
        )
        dropped = prepared.dropped
        now = time.monotonic()
        for key in outcome.lost:
            self.ledger.lost(key, now)
            dropped += sum(1 for fact in facts if (fact.topic, fact.partition) == key)
        for key, position in positions.items():
            if key not in outcome.lost:
                self.ledger.committed(key, position)
        if outcome.lost:
            logger.warning(
                "partitions lost to another consumer, batch records dropped: %s", sorted(outcome.lost)
            )
        return self.stats.add(prepared, outcome, dropped)

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
    with on_stop_signals(processor.request_stop):
        return await processor.run()


def main() -> None:
    """Entry point of ``python -m processors.runtime``; logs on stderr.

    Settings come from the environment or, with ``--settings-from-stdin``, from the parent over a pipe.
    """
    from infra.child_settings import settings_of_this_process
    from infra.logs import setup_logging

    settings = settings_of_this_process()
    setup_logging(settings.log)
    telemetry.setup_telemetry(settings.telemetry)
    default_contribute()  # imports the indicator catalogue before the collector freezes start-up objects
    settle_collector()
    asyncio.run(run_processor(settings, relay=settings.processor.relay))


if __name__ == "__main__":
    main()
