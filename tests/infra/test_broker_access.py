"""The local broker admits only its SCRAM users, and each principal may do only its own work (ACLs)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from infra.kafka import ensure_topics, make_consumer, make_producer
from infra.kafka_acls import ensure_acls
from infra.local import LocalStack
from infra.roles import (
    ADMIN,
    KAFKA_PRINCIPALS,
    PROCESSOR_PRINCIPAL,
    READER_PRINCIPAL,
    RELAY_PRINCIPAL,
    KafkaPrincipal,
    connector_principal,
    kafka_settings_for,
)
from infra.settings import KafkaSettings, Settings, load_settings
from schemas.topics import TopicCatalogue

TRAINING_CONNECTOR = connector_principal("training")


def _as(settings: Settings, principal: KafkaPrincipal) -> KafkaSettings:
    kafka = kafka_settings_for(settings.kafka, principal)
    assert kafka.sasl_username != settings.kafka.sasl_username, "the principal has a login of its own"
    return kafka


async def _writes(kafka: KafkaSettings, topic: str) -> bool:
    """Whether `kafka`'s user may write `topic` (the broker acknowledges a record)."""
    producer = make_producer(kafka)
    try:
        await producer.start()
        await asyncio.wait_for(producer.send_and_wait(topic, b"probe", key=b"probe"), 20)
    except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
        # A principal that may write no topic at all is refused an idempotent producer id already.
        return False
    finally:
        await producer.stop()
    return True


async def _reads(kafka: KafkaSettings, topic: str, timeout_s: float = 5.0) -> bool:
    """Whether `kafka`'s user reads the record `_seeded` put at the start of `topic` (no consumer group).

    A principal refused the topic gets an authorization error, or (without the right to describe it)
    metadata that never names it: either way no record within `timeout_s`.
    """
    consumer: AIOKafkaConsumer = make_consumer(kafka, None, isolation_level="read_uncommitted")
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if (await consumer.getmany(partition, timeout_ms=200)).get(partition):
                return True
    except TopicAuthorizationFailedError:
        return False
    finally:
        await consumer.stop()
    return False


async def _seeded(settings: Settings, *topics: str) -> None:
    """A record at the start of each topic (partition 0), written by the admin."""
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        for topic in topics:
            await producer.send_and_wait(topic, b"seed", key=b"seed", partition=0)
    finally:
        await producer.stop()


async def test_clients_without_credentials_or_with_a_wrong_password_are_refused(settings: Settings) -> None:
    kafka = settings.kafka
    anonymous = kafka.model_copy(update={"security_protocol": "PLAINTEXT", "sasl_mechanism": None})
    wrong = kafka_settings_for(kafka, PROCESSOR_PRINCIPAL).model_copy(
        update={"sasl_password": SecretStr("not-the-password")}
    )
    for refused in (anonymous, wrong):
        producer = make_producer(refused.model_copy(update={"request_timeout_ms": 5_000}))
        with pytest.raises(KafkaConnectionError):
            await producer.start()
        await producer.stop()
    indicators = TopicCatalogue.from_settings(settings).indicators.name
    assert await _writes(kafka_settings_for(kafka, PROCESSOR_PRINCIPAL), indicators), (
        "the right password works"
    )


async def test_a_connector_writes_its_family_topic_only_and_reads_no_dead_letters(settings: Settings) -> None:
    catalogue = TopicCatalogue.from_settings(settings)
    await _seeded(settings, catalogue.dead_letter(catalogue.training).name, catalogue.training.name)
    connector = _as(settings, TRAINING_CONNECTOR)
    assert await _writes(connector, catalogue.training.name)
    assert await _writes(connector, catalogue.dead_letter(catalogue.training).name)
    assert not await _writes(connector, catalogue.plgn.name)
    assert not await _writes(connector, catalogue.dead_letter(catalogue.finance).name)
    assert not await _writes(connector, catalogue.indicators.name)
    assert not await _reads(connector, catalogue.dead_letter(catalogue.training).name)
    assert not await _reads(connector, catalogue.training.name)


async def test_the_processor_reads_inputs_and_writes_dead_letters_and_indicators_only(
    settings: Settings,
) -> None:
    catalogue = TopicCatalogue.from_settings(settings)
    await _seeded(settings, catalogue.plgn.name, catalogue.dead_letter(catalogue.plgn).name)
    processor = _as(settings, PROCESSOR_PRINCIPAL)
    assert await _reads(processor, catalogue.plgn.name)
    assert await _writes(processor, catalogue.dead_letter(catalogue.plgn).name)
    assert await _writes(processor, catalogue.indicators.name)
    assert not await _writes(processor, catalogue.plgn.name), "events come from connectors only"
    assert not await _reads(processor, catalogue.dead_letter(catalogue.plgn).name)


async def test_readers_read_the_indicators_topic_only_and_the_relay_only_writes_it(
    settings: Settings,
) -> None:
    catalogue = TopicCatalogue.from_settings(settings)
    training_dead_letters = catalogue.dead_letter(catalogue.training).name
    await _seeded(settings, catalogue.indicators.name, catalogue.training.name, training_dead_letters)
    reader = _as(settings, READER_PRINCIPAL)
    assert await _reads(reader, catalogue.indicators.name)
    assert not await _writes(reader, catalogue.indicators.name)
    assert not await _reads(reader, catalogue.training.name)
    assert not await _reads(reader, training_dead_letters)
    relay = _as(settings, RELAY_PRINCIPAL)
    assert await _writes(relay, catalogue.indicators.name)
    assert not await _reads(relay, catalogue.training.name)
    assert not await _writes(relay, catalogue.finance.name)


async def test_a_principal_may_not_use_another_prefix_s_topics(settings: Settings) -> None:
    """ACLs name each topic literally: the rights on one catalogue give none on another's topics."""
    other = TopicCatalogue.from_settings(
        settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"topic_prefix": "other."})})
    )
    assert not await _writes(_as(settings, TRAINING_CONNECTOR), other.training.name)


async def test_a_log_without_our_scram_users_gets_them_at_start_and_secrets_stay_private(
    stack_state_dir: Path,
) -> None:
    """A broker log whose cluster lacks the principals' users (an older version formatted it without
    any, or a principal was added since) gets them through the controller at the next start."""
    first = LocalStack(stack_state_dir, postgres=False)
    await first.start()
    await first.stop()
    credentials = stack_state_dir / "kafka" / "credentials"
    old_admin_password = (credentials / "admin.password").read_text()
    # Nothing recorded and new passwords: the cluster knows none of them, the admin's included.
    shutil.rmtree(credentials)
    second = LocalStack(stack_state_dir, postgres=False)
    await second.start()
    try:
        assert second.kafka_password(ADMIN) != old_admin_password
        settings = second.resolve(load_settings(state_dir=stack_state_dir))
        catalogue = TopicCatalogue.from_settings(settings)
        await ensure_topics(settings.kafka, [catalogue.indicators])
        await ensure_acls(settings.kafka, catalogue)
        await _seeded(settings, catalogue.indicators.name)
        assert await _reads(_as(settings, READER_PRINCIPAL), catalogue.indicators.name)
    finally:
        await second.stop()
    recorded = set((credentials / "scram-users").read_text().split())
    assert recorded == {principal.username for principal in KAFKA_PRINCIPALS}
    private = [*credentials.iterdir(), stack_state_dir / "kafka" / "server.properties"]
    assert [path.name for path in private if path.stat().st_mode & 0o077] == []
    log = (stack_state_dir / "kafka.log").read_text()
    secrets = [path.read_text().strip() for path in credentials.glob("*.password")]
    assert [secret for secret in secrets if secret in log] == [], "no password in the broker's log"
