"""The embedded local stack: it starts, answers, stops cleanly, keeps its data, and never leaves orphans."""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import socket
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import infra.processes
from infra.kafka import client_kwargs
from infra.local import (
    PG_SYSTEM_USER,
    LocalStack,
    LocalStackError,
    free_port,
    postgres_bin_dir,
    running_stack,
)
from infra.settings import Settings, load_settings
from schemas.topics import TopicCatalogue
from tests.support.processes import (
    ChildProcess,
    command_line,
    descendants,
    is_running,
    port_is_listening,
    python_child,
    wait_until_closed,
    wait_until_gone,
)

SERVE_STACK = (
    "import asyncio, logging\n"
    "from infra.local import serve_stack\n"
    "from infra.settings import load_settings\n"
    "logging.basicConfig(level=logging.INFO)\n"
    "asyncio.run(serve_stack(load_settings()))\n"
)


def _port(address: str) -> int:
    port = urlsplit(f"//{address.split('@')[-1]}").port
    assert port is not None, address
    return port


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


async def _roundtrip_kafka(stack: LocalStack) -> bytes:
    # The broker admits its SCRAM users only: the admin's login, as the stack resolves it.
    connection = client_kwargs(stack.resolve(load_settings(state_dir=stack.state_dir)).kafka)
    # The broker creates no topic on first use: as in production, topics are created on purpose.
    admin = AIOKafkaAdminClient(**connection)
    await admin.start()
    try:
        if "roundtrip" not in await admin.list_topics():
            await admin.create_topics([NewTopic("roundtrip", 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**connection)
    await producer.start()
    try:
        await producer.send_and_wait("roundtrip", b"hello", partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer("roundtrip", **connection, auto_offset_reset="earliest")
    await consumer.start()
    try:
        record = await consumer.getone()
        value: bytes = record.value
        return value
    finally:
        await consumer.stop()


async def _fetch(dsn: str, sql: str) -> object:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


def _service_processes(parent_pid: int) -> tuple[list[int], list[int]]:
    """(broker pids, postgres pids including backends) below `parent_pid`."""
    argvs = {pid: command_line(pid) or [""] for pid in descendants(parent_pid)}
    programs = {pid: argv[0] for pid, argv in argvs.items()}
    brokers = [pid for pid, argv in argvs.items() if Path(argv[0]).name == "java" and "kafka.Kafka" in argv]
    # Backends rewrite their argv to "postgres: <role>"; the postmaster keeps its binary path.
    postgres = [pid for pid, program in programs.items() if program.split(":")[0].endswith("postgres")]
    return brokers, postgres


async def test_stack_starts_answers_and_stops_leaving_nothing_behind(stack_state_dir: Path) -> None:
    stack = LocalStack(stack_state_dir)
    await stack.start()
    try:
        pids = stack.pids
        ports = {_port(stack.bootstrap_servers), _port(stack.dsn)}
        assert await _roundtrip_kafka(stack) == b"hello"
        assert await _fetch(stack.dsn, "SELECT current_setting('server_version_num')::int / 10000") == 18
        postgres_tree = [pids["postgres"], *descendants(pids["postgres"])]
        if os.geteuid() == 0:
            # PostgreSQL refuses root: the server runs as the dedicated system user.
            assert _uid(pids["postgres"]) == pwd.getpwnam(PG_SYSTEM_USER).pw_uid
    finally:
        await stack.stop()
    assert await wait_until_gone([pids["kafka"], *postgres_tree], timeout_s=5) == set()
    assert await wait_until_closed(ports, timeout_s=5) == set()
    with pytest.raises(LocalStackError):
        _ = stack.dsn


async def test_running_stack_starts_only_what_is_not_configured(stack_state_dir: Path) -> None:
    external_kafka = "kafka.example.invalid:9092"
    settings = load_settings(state_dir=stack_state_dir, kafka={"bootstrap_servers": external_kafka})
    async with running_stack(settings) as resolved:
        assert resolved.kafka.bootstrap_servers == external_kafka
        assert resolved.postgres.dsn is not None
        assert await _fetch(resolved.postgres.dsn.get_secret_value(), "SELECT 1") == 1
        assert not (stack_state_dir / "kafka.log").exists()
        assert not (stack_state_dir / "kafka").exists()
        # Everything else in the settings is carried over untouched.
        assert resolved.model_copy(update={"postgres": settings.postgres}) == settings


async def test_nothing_is_started_when_both_services_are_external(stack_state_dir: Path) -> None:
    settings = load_settings(
        state_dir=stack_state_dir,
        kafka={"bootstrap_servers": "kafka.example.invalid:9092"},
        postgres={"dsn": "postgresql://app@db.example.invalid/alcance"},
    )
    async with running_stack(settings) as resolved:
        assert resolved == settings
    assert not (stack_state_dir / "postgres").exists()


async def test_postgres_data_persists_across_starts(stack_state_dir: Path) -> None:
    state_dir = stack_state_dir
    first = LocalStack(state_dir, broker=False)
    await first.start()
    try:
        connection = await asyncpg.connect(first.dsn)
        await connection.execute("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('still here')")
        await connection.close()
    finally:
        await first.stop()

    # Leave a postmaster.pid naming a live process that is not PostgreSQL, as after a SIGKILL and pid
    # reuse: PostgreSQL alone would refuse to start on it.
    (state_dir / "postgres" / "postmaster.pid").write_text(f"{os.getpid()}\n{state_dir / 'postgres'}\n")
    second = LocalStack(state_dir, broker=False)
    await second.start()
    try:
        assert await _fetch(second.dsn, "SELECT value FROM kept") == "still here"
    finally:
        await second.stop()


async def test_a_second_stack_on_the_same_state_dir_is_refused(stack_state_dir: Path) -> None:
    first = LocalStack(stack_state_dir, broker=False)
    await first.start()
    try:
        second = LocalStack(stack_state_dir)
        with pytest.raises(LocalStackError, match="used by another running local stack"):
            await second.start()
        assert second.pids == {}
        assert await _fetch(first.dsn, "SELECT 1") == 1
    finally:
        await first.stop()


async def test_a_postgres_that_cannot_start_fails_with_its_log(stack_state_dir: Path) -> None:
    stack = LocalStack(stack_state_dir, broker=False, start_timeout_s=20)
    await stack.start()
    await stack.stop()
    (stack_state_dir / "postgres" / "PG_VERSION").write_text("9\n")
    broken = LocalStack(stack_state_dir, broker=False, start_timeout_s=20)
    with pytest.raises(LocalStackError, match=r"(?s)exited with code.*incompatible with server"):
        await broken.start()
    assert broken.pids == {}


async def test_postmaster_left_by_a_dead_run_is_stopped_before_starting(stack_state_dir: Path) -> None:
    state_dir = stack_state_dir
    stack = LocalStack(state_dir, broker=False)
    await stack.start()
    await stack.stop()
    # A server started outside any stack (no lock held, no parent-death signal), as an older or killed
    # launcher would leave it.
    pgdata = state_dir / "postgres"
    port = free_port()
    identity: dict[str, Any] = {}
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        identity = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    argv = [str(postgres_bin_dir() / "postgres"), "-D", str(pgdata), "-h", "127.0.0.1", "-p", str(port)]
    leftover = await asyncio.create_subprocess_exec(
        *argv,
        "-k",
        "",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
        **identity,
    )
    try:
        for _ in range(200):
            if port_is_listening(port):
                break
            await asyncio.sleep(0.05)
        assert port_is_listening(port), "the leftover server did not start"
        restarted = LocalStack(state_dir, broker=False)
        await restarted.start()
        try:
            assert await asyncio.wait_for(leftover.wait(), 5) is not None
            assert await _fetch(restarted.dsn, "SELECT 1") == 1
        finally:
            await restarted.stop()
    finally:
        if leftover.returncode is None:
            leftover.kill()
            await leftover.wait()


async def _served_addresses(child: ChildProcess) -> tuple[str, str]:
    """The bootstrap servers and DSN a `serve_stack` child printed."""
    values = []
    for name in ("ALCANCE_KAFKA__BOOTSTRAP_SERVERS", "ALCANCE_POSTGRES__DSN"):
        line = await child.wait_for_line(partial(_starts_with, f"{name}="))
        values.append(line.split("=", 1)[1])
    return values[0], values[1]


def _starts_with(prefix: str, line: str) -> bool:
    return line.startswith(prefix)


async def test_sigterm_to_alcance_stack_stops_broker_and_postgres(stack_state_dir: Path) -> None:
    async with python_child(SERVE_STACK, env={"ALCANCE_STATE_DIR": str(stack_state_dir)}) as child:
        bootstrap, dsn = await _served_addresses(child)
        ports = {_port(bootstrap), _port(dsn)}
        assert await _fetch(dsn, "SELECT 1") == 1
        brokers, postgres = _service_processes(child.pid)
        assert len(brokers) == 1 and postgres, child.output

        child.send_signal(signal.SIGTERM)
        assert await child.wait(timeout_s=20) == 0, child.output
    assert [pid for pid in [*brokers, *postgres] if is_running(pid)] == []
    assert await wait_until_closed(ports, timeout_s=5) == set()


async def test_sigkill_of_alcance_stack_leaves_no_orphans_and_the_next_start_works(
    stack_state_dir: Path,
) -> None:
    state_dir = stack_state_dir
    async with python_child(SERVE_STACK, env={"ALCANCE_STATE_DIR": str(state_dir)}) as child:
        bootstrap, dsn = await _served_addresses(child)
        ports = {_port(bootstrap), _port(dsn)}
        brokers, postgres = _service_processes(child.pid)
        assert len(brokers) == 1 and postgres, child.output
        if os.geteuid() == 0:
            # The parent-death signal must survive the switch to the PostgreSQL system user.
            assert all(_uid(pid) != 0 for pid in postgres)

        child.kill()
        assert await child.wait(timeout_s=10) == -signal.SIGKILL
    assert await wait_until_gone([*brokers, *postgres], timeout_s=15) == set()
    assert await wait_until_closed(ports, timeout_s=5) == set()

    again = LocalStack(state_dir)
    await again.start()
    try:
        assert await _fetch(again.dsn, "SELECT 1") == 1
    finally:
        await again.stop()


async def test_settings_fixture_gives_each_test_its_own_topics_and_migrated_schema(
    settings: Settings, local_stack: Settings, pg_pool: asyncpg.Pool
) -> None:
    assert settings.kafka.topic_prefix != local_stack.kafka.topic_prefix
    assert settings.postgres.db_schema != local_stack.postgres.db_schema
    assert await pg_pool.fetchval("SELECT current_schema()") == settings.postgres.db_schema
    assert await pg_pool.fetchval("SELECT count(*) FROM schema_migration") > 0
    admin = AIOKafkaAdminClient(**client_kwargs(settings.kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    expected = {spec.name for spec in TopicCatalogue.from_settings(settings).all()}
    assert expected <= existing


async def test_a_port_taken_before_the_service_binds_it_is_replaced(
    stack_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        # Both services are first offered the taken port, as if someone bound it after our probe.
        offers = iter([taken, taken])
        monkeypatch.setattr(infra.processes, "free_port", lambda: next(offers, None) or free_port())
        stack = LocalStack(stack_state_dir)
        await stack.start()
        try:
            assert taken not in {_port(stack.bootstrap_servers), _port(stack.dsn)}
            assert await _fetch(stack.dsn, "SELECT 1") == 1
            assert await _roundtrip_kafka(stack) == b"hello"
        finally:
            await stack.stop()


async def test_alcance_stack_fails_and_stops_postgres_when_the_broker_dies(stack_state_dir: Path) -> None:
    async with python_child(SERVE_STACK, env={"ALCANCE_STATE_DIR": str(stack_state_dir)}) as child:
        _, dsn = await _served_addresses(child)
        brokers, postgres = _service_processes(child.pid)
        os.kill(brokers[0], signal.SIGKILL)
        assert await child.wait(timeout_s=20) != 0
        assert "Kafka broker exited unexpectedly" in child.output
    assert [pid for pid in postgres if is_running(pid)] == []
    assert await wait_until_closed([_port(dsn)], timeout_s=5) == set()
