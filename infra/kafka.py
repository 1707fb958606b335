"""Kafka clients built from settings, topic creation from the catalogue, and the identity of the log."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import uuid
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.partitioner import murmur2

from infra.settings import KafkaSettings

if TYPE_CHECKING:
    from schemas.topics import TopicCatalogue, TopicSpec

logger = logging.getLogger(__name__)


class KafkaNotConfiguredError(RuntimeError):
    """Raised when a client is built before the bootstrap servers are known."""


def client_kwargs(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection arguments shared by every aiokafka client."""
    if not kafka.bootstrap_servers:
        raise KafkaNotConfiguredError("kafka.bootstrap_servers is not set and no local broker was started")
    kwargs: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": kafka.request_timeout_ms,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
    if kafka.sasl_mechanism is not None:
        kwargs["sasl_mechanism"] = kafka.sasl_mechanism
        kwargs["sasl_plain_username"] = kafka.sasl_username
        kwargs["sasl_plain_password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password is not None else None
        )
    return kwargs


class KeyHashPartitioner:
    """Kafka's default partitioning (murmur2 of the key, as the Java client), with the hashes memoised.

    aiokafka computes murmur2 in pure Python, a noticeable cost per record for long keys; producers
    here send the same keys again and again (indicator cells, subjects), so a bounded cache pays off.
    Records without a key go to a random available partition, as with the default partitioner.
    """

    def __init__(self, cache_size: int = 100_000) -> None:
        self._hash: Callable[[bytes], int] = lru_cache(maxsize=cache_size)(murmur2)

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        """Pick the partition of `key` among `all_partitions` (sorted by id)."""
        if key is None:
            return random.choice(available or all_partitions)  # noqa: S311  # spreading load, not secrets
        return all_partitions[(self._hash(key) & 0x7FFFFFFF) % len(all_partitions)]


def make_producer(kafka: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """A producer that waits for every in-sync replica, idempotent unless the settings turn it off.

    Idempotence keeps a retried batch from being written twice or out of order; correctness never
    depends on it, because event ids are deterministic and consumers de-duplicate.
    """
    kwargs: dict[str, Any] = {
        **client_kwargs(kafka),
        "acks": "all",
        # Kafka's default, which the local broker's message.max.bytes (1 MiB and 12 bytes of batch
        # overhead) admits; dead letters are bounded well below it (infra.dead_letters).
        "max_request_size": 1_048_576,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "enable_idempotence": kafka.enable_idempotence,
        "partitioner": KeyHashPartitioner(),
    }
    kwargs.update(overrides)
    return AIOKafkaProducer(**kwargs)


def make_consumer(kafka: KafkaSettings, group_id: str | None, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer whose offsets are managed by the application, never auto-committed."""
    kwargs: dict[str, Any] = {
        **client_kwargs(kafka),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "session_timeout_ms": kafka.session_timeout_ms,
        "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
        "fetch_max_wait_ms": kafka.fetch_max_wait_ms,
    }
    kwargs.update(overrides)
    return AIOKafkaConsumer(**kwargs)


class TopicCreationError(RuntimeError):
    """Raised when the cluster refuses to create a topic of the catalogue (e.g. a config it rejects)."""


async def ensure_topics(kafka: KafkaSettings, specs: Iterable[TopicSpec]) -> set[str]:
    """Create the topics of the catalogue that do not exist yet, in one request.

    Returns:
        The names of the topics this call created.

    Raises:
        TopicCreationError: when the cluster refuses a topic, with the cluster's reason.
    """
    admin = AIOKafkaAdminClient(**client_kwargs(kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [_new_topic(kafka, spec) for spec in specs if spec.name not in existing]
        if not missing:
            return set()
        response = await admin.create_topics(missing)
        created: set[str] = set()
        for name, code, *message in response.topic_errors:
            if code == 0:
                created.add(name)
            elif code != TopicAlreadyExistsError.errno:
                # Another process creating it between the listing and now is fine; anything else is not.
                reason = message[0] if message and message[0] else for_code(code).__name__
                raise TopicCreationError(f"the Kafka cluster refused to create topic {name}: {reason}")
        await _wait_until_served(admin, created)
    finally:
        await admin.close()
    if created:
        logger.info("created %d topics: %s", len(created), ", ".join(sorted(created)))
    return created


async def _wait_until_served(admin: AIOKafkaAdminClient, names: set[str], timeout_s: float = 30.0) -> None:
    """Wait until the brokers' metadata shows every partition of `names` with a leader.

    The controller answers CreateTopics once the topic is committed; the brokers learn of it a moment
    later, and a client asking in between would be told the topic does not exist.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = set(names)
    while pending:
        for described in await admin.describe_topics(sorted(pending)):
            partitions = described["partitions"]
            if described["error_code"] == 0 and partitions and all(p["leader"] >= 0 for p in partitions):
                pending.discard(described["topic"])
        if pending:
            if loop.time() >= deadline:
                raise TopicCreationError(
                    f"created topics not served after {timeout_s:.0f} s: {sorted(pending)}"
                )
            await asyncio.sleep(0.05)


def _new_topic(kafka: KafkaSettings, spec: TopicSpec) -> NewTopic:
    config: dict[str, str] = {"cleanup.policy": spec.cleanup_policy}
    if spec.retention_ms is not None:
        config["retention.ms"] = str(spec.retention_ms)
    return NewTopic(
        name=spec.name,
        num_partitions=spec.partitions,
        replication_factor=kafka.replication_factor,
        topic_configs=config,
    )


async def read_log_identity(kafka: KafkaSettings, catalogue: TopicCatalogue, timeout_s: float = 15.0) -> str:
    """The identity of the broker's log: a UUID stored at offset 0 of the log-identity topic.

    A broker whose log is new (a wiped or rebuilt cluster, a deleted local state directory) has a new
    identity, so Kafka offsets stored elsewhere are trusted only for the identity they were recorded
    under. The record is written by whoever finds the topic empty; if two processes race, both read
    offset 0 and agree on the first record.
    """
    spec = catalogue.log_identity
    await ensure_topics(kafka, [spec])
    partition = TopicPartition(spec.name, 0)
    identity = await _read_first_record(kafka, partition, timeout_s=1.0)
    if identity is None:
        producer = make_producer(kafka)
        await producer.start()
        try:
            await producer.send_and_wait(spec.name, str(uuid.uuid4()).encode(), partition=0)
        finally:
            await producer.stop()
        identity = await _read_first_record(kafka, partition, timeout_s=timeout_s)
    if identity is None:
        raise TimeoutError(f"could not read the log identity from {spec.name}")
    return identity


async def _read_first_record(kafka: KafkaSettings, partition: TopicPartition, timeout_s: float) -> str | None:
    consumer = make_consumer(kafka, group_id=None, isolation_level="read_uncommitted")
    await consumer.start()
    try:
        consumer.assign([partition])
        consumer.seek(partition, 0)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(partition, timeout_ms=200, max_records=1)
            for record in batches.get(partition, []):
                value: bytes = record.value
                return value.decode()
        return None
    finally:
        await consumer.stop()


async def topic_partitions(kafka: KafkaSettings, topic: str) -> list[TopicPartition]:
    """The partitions of `topic`, sorted; empty when the topic does not exist."""
    admin = AIOKafkaAdminClient(**client_kwargs(kafka))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0:
        return []
    return sorted(TopicPartition(topic, p["partition"]) for p in described["partitions"])


async def read_topic_to_end(
    kafka: KafkaSettings, topic: str, *, at_least: int = 0, timeout_s: float = 20.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` from its beginning to its end offsets, in offset order per partition.

    End offsets are read again whenever the reader reaches them, so records still arriving count until
    at least `at_least` were read; after `timeout_s` whatever was read is returned.
    """
    partitions: list[TopicPartition] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not partitions and loop.time() < deadline:
        partitions = await topic_partitions(kafka, topic)
        if not partitions:
            await asyncio.sleep(0.1)
    records: list[ConsumerRecord[bytes, bytes]] = []
    if not partitions:
        return records
    consumer = make_consumer(kafka, None, isolation_level="read_uncommitted")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while loop.time() < deadline:
            ends = await consumer.end_offsets(partitions)
            positions = {tp: await consumer.position(tp) for tp in partitions}
            if all(positions[tp] >= ends[tp] for tp in partitions) and len(records) >= at_least:
                break
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def topic_config(kafka: KafkaSettings, topic: str) -> dict[str, str]:
    """The effective configuration of `topic` as the cluster reports it (name -> value)."""
    admin = AIOKafkaAdminClient(**client_kwargs(kafka))
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    (resource,) = response.resources
    error_code, error_message, _type, _name, entries = resource
    if error_code != 0:
        raise KafkaError(f"cannot describe topic {topic}: {error_message or for_code(error_code).__name__}")
    return {entry[0]: entry[1] for entry in entries}
