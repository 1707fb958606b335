"""Starting the peers and reading what they did, from alcance's environment (the benchmark, the tests).

A peer run gets its own consumer group (its committed offsets say how far it is) and its own
PostgreSQL schema holding one table, `cvf_monthly`.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.peers.cells import create_sql, select_sql
from benchmarks.peers.environment import peers_python
from benchmarks.peers.reference import Cells
from benchmarks.venvs import REPO_ROOT

#: Peer name -> its module, run with `python -m` in the peers' virtualenv.
PEERS = {"quix": "benchmarks.peers.quix_app", "plain": "benchmarks.peers.plain_loop"}


async def spawn_peer(
    peer: str,
    processes: int,
    *,
    settings: Any,
    group: str,
    schema: str,
    stderr: int | None = None,
) -> list[asyncio.subprocess.Process]:
    """Start `processes` processes of `peer` on the input topics of `settings`, into a fresh `schema`."""
    from schemas.topics import TopicCatalogue

    dsn = settings.postgres.dsn.get_secret_value()
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(create_sql(schema))
    finally:
        await connection.close()
    python = await asyncio.to_thread(peers_python)
    catalogue = TopicCatalogue.from_settings(settings)
    common = [
        "--bootstrap",
        settings.kafka.bootstrap_servers,
        "--group",
        group,
        "--topics",
        ",".join(spec.name for spec in catalogue.input_topics()),
        "--training-topic",
        catalogue.training.name,
        "--schema",
        schema,
    ]
    # Only what the peer needs: the DSN travels in the environment, never on a command line.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PEER_DSN": dsn,
        **sasl_environment(settings),
        "PYTHONPATH": str(REPO_ROOT),
    }
    started = []
    for index in range(processes):
        extra = (
            [
                "--partitions",
                str(settings.kafka.partitions),
                "--index",
                str(index),
                "--processes",
                str(processes),
            ]
            if peer == "plain"
            else []
        )
        started.append(
            await asyncio.create_subprocess_exec(
                str(python),
                "-m",
                PEERS[peer],
                *common,
                *extra,
                cwd=REPO_ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        )
    return started


async def stop_processes(processes: list[asyncio.subprocess.Process], timeout_s: float = 60) -> None:
    """SIGTERM each process, then wait for it (SIGKILL after `timeout_s`)."""
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()


def sasl_environment(settings: Any) -> dict[str, str]:
    """The broker login the peers use (the settings' own, the local broker's admin), for their environment.

    The peers are baselines, not components of alcance, so they get no principal of their own.
    """
    kafka = settings.kafka
    if kafka.sasl_mechanism is None or kafka.sasl_username is None or kafka.sasl_password is None:
        return {}
    return {
        "PEER_SECURITY_PROTOCOL": kafka.security_protocol,
        "PEER_SASL_MECHANISM": kafka.sasl_mechanism,
        "PEER_SASL_USERNAME": kafka.sasl_username,
        "PEER_SASL_PASSWORD": kafka.sasl_password.get_secret_value(),
    }


async def committed_records(admin: AIOKafkaAdminClient, group: str) -> int:
    """Records the consumer group has committed, over every partition (the topics start at offset 0)."""
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(max(0, meta.offset) for meta in offsets.values())


async def read_cells(dsn: str, schema: str) -> Cells:
    """What a peer wrote: (country, month) -> (CVF-01, CVF-02)."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(select_sql(schema))
    finally:
        await connection.close()
    return {
        (country, month): (int(enrolments), int(learners)) for country, month, enrolments, learners in rows
    }
