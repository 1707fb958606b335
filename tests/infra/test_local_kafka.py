"""The local Apache Kafka broker keeps its log and port, gives idempotent producers, says what it needs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import infra.broker.node
from connectors.publisher import DeadLetter, Publisher
from infra.broker.jars import jars_dir
from infra.kafka import ensure_topics, make_producer, read_topic_to_end
from infra.local import LocalStack, LocalStackError
from infra.processes import free_port
from infra.settings import load_settings
from schemas.topics import TopicCatalogue
from tests.schemas.factories import make_event
from tests.support.processes import python_child

ALCANCE = str(Path(sys.executable).with_name("alcance"))


async def test_topics_records_dead_letters_and_ports_survive_a_restart_of_the_stack(
    stack_state_dir: Path,
) -> None:
    first = LocalStack(stack_state_dir)
    await first.start()
    try:
        settings = first.resolve(load_settings(state_dir=stack_state_dir))
        catalogue = TopicCatalogue.from_settings(settings)
        await ensure_topics(settings.kafka, catalogue.all())
        dead_letters = catalogue.dead_letter(catalogue.training).name
        event = make_event("cvf.enrolment.created")
        producer = make_producer(settings.kafka)
        await producer.start()
        try:
            await Publisher(producer, catalogue).publish(
                [event], [DeadLetter(dead_letters, b'{"kept": true}', "unmappable record", "cvf-lrs")]
            )
        finally:
            await producer.stop()
        addresses = (first.bootstrap_servers, first.dsn)
    finally:
        await first.stop()

    second = LocalStack(stack_state_dir)
    await second.start()
    try:
        # A person's SQL client or Kafka tool keeps working: the same addresses as the first run.
        assert (second.bootstrap_servers, second.dsn) == addresses
        again = second.resolve(load_settings(state_dir=stack_state_dir))
        assert await ensure_topics(again.kafka, catalogue.all()) == set(), "the topics were kept"
        (dead,) = await read_topic_to_end(again.kafka, dead_letters)
        assert dead.value == b'{"kept": true}'
        assert dict(dead.headers)["dlq_reason"] == b"unmappable record"
        (kept,) = await read_topic_to_end(again.kafka, catalogue.training.name)
        assert kept.key == event.subject_key.encode()
    finally:
        await second.stop()


async def test_producers_are_idempotent_on_the_local_broker(stack_state_dir: Path) -> None:
    stack = LocalStack(stack_state_dir, postgres=False)
    await stack.start()
    try:
        settings = stack.resolve(load_settings(state_dir=stack_state_dir))
        assert settings.kafka.enable_idempotence
        catalogue = TopicCatalogue.from_settings(settings)
        await ensure_topics(settings.kafka, [catalogue.finance])
        producer = make_producer(settings.kafka)
        await producer.start()
        try:
            await producer.send_and_wait(catalogue.finance.name, b"x", key=b"k")
            # The broker handed out a producer id (InitProducerId): the idempotent path is in use.
            assert producer._txn_manager is not None
            assert producer._txn_manager.producer_id >= 0
        finally:
            await producer.stop()
    finally:
        await stack.stop()


async def test_missing_broker_jars_are_named_with_the_command_that_fetches_them(
    stack_state_dir: Path, tmp_path: Path
) -> None:
    stack = LocalStack(stack_state_dir, cache_dir=tmp_path, postgres=False)
    with pytest.raises(LocalStackError, match=r"alcance broker fetch"):
        await stack.start()
    assert stack.pids == {}
    env = {"ALCANCE_STATE_DIR": str(stack_state_dir), "ALCANCE_CACHE_DIR": str(tmp_path)}
    async with python_child(command=[ALCANCE, "stack"], env=env) as child:
        assert await child.wait(timeout_s=60) == 6, child.output
    assert "alcance broker fetch" in child.output
    assert str(jars_dir(tmp_path).parent) in child.output
    assert "Traceback" not in child.output


async def test_a_missing_or_old_java_is_named_with_what_to_install(
    stack_state_dir: Path, tmp_path: Path
) -> None:
    old_java = tmp_path / "jdk11" / "bin" / "java"
    old_java.parent.mkdir(parents=True)
    old_java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    old_java.chmod(0o755)
    base = {"ALCANCE_STATE_DIR": str(stack_state_dir)}
    no_java = {**base, "PATH": str(Path(sys.executable).parent), "JAVA_HOME": ""}
    async with python_child(command=[ALCANCE, "stack"], env=no_java) as child:
        assert await child.wait(timeout_s=60) == 6, child.output
    assert "needs Java 17 or newer" in child.output and "no `java` was found" in child.output
    assert "Traceback" not in child.output

    old = {**base, "JAVA_HOME": str(old_java.parent.parent)}
    async with python_child(command=[ALCANCE, "stack"], env=old) as child:
        assert await child.wait(timeout_s=60) == 6, child.output
    assert "is Java 11" in child.output and "Traceback" not in child.output


async def test_the_controller_never_gets_the_remembered_broker_port(
    stack_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = LocalStack(stack_state_dir, postgres=False)
    await first.start()
    remembered = int(first.bootstrap_servers.rsplit(":", 1)[1])
    await first.stop()
    # The remembered port is free until the broker binds it, so a free-port probe may offer it again.
    offers = iter([remembered])
    monkeypatch.setattr(infra.broker.node, "free_port", lambda: next(offers, None) or free_port())
    second = LocalStack(stack_state_dir, postgres=False)
    await second.start()
    try:
        assert second.bootstrap_servers.endswith(f":{remembered}")
        config = (stack_state_dir / "kafka" / "server.properties").read_text()
        assert f"CONTROLLER://127.0.0.1:{remembered}" not in config
    finally:
        await second.stop()
