"""Starting the peers and reading what they did, from alcance's environment (the benchmark, the tests).

A peer run gets its own consumer group (its committed offsets say how far it is) and its own
PostgreSQL schema holding one table, `cvf_monthly`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from benchmarks.peers.cells import create_sql, select_sql
from benchmarks.peers.environment import peers_python
from benchmarks.peers.reference import Cells
from benchmarks.venvs import REPO_ROOT

#: Peer name -> its module, run with `python -m` in the peers' virtualenv.
PEERS = {"quix": "benchmarks.peers.quix_app", "plain": "benchmarks.peers.plain_loop"}

#: Floors, run like the peers but computing nothing: every record read (`floor_decode`: also decoded and
#: validated by alcance's contract) and its offset committed. Name -> module and its extra arguments;
#: `floor_confluent` runs in the peers' virtualenv (confluent-kafka is not alcance's), the others in
#: alcance's own, since they use its client and its contract.
FLOORS = {
    "floor_confluent": ("benchmarks.peers.read_floor",),
    "floor_aiokafka": ("benchmarks.processors.floor",),
    "floor_decode": ("benchmarks.processors.floor", "--decode"),
}
_IN_ALCANCE_VENV = ("floor_aiokafka", "floor_decode")

#: Systems that read their partitions statically, so each process needs its share of them.
_STATIC = ("plain", *FLOORS)


async def spawn_peer(
    peer: str,
    processes: int,
    *,
    settings: Any,
    group: str,
    schema: str,
    stderr: int | None = None,
) -> list[asyncio.subprocess.Process]:
    """Start `processes` processes of `peer` on the input topics of `settings`, into a fresh `schema`
    (a floor writes nothing, so it gets none)."""
    from schemas.topics import TopicCatalogue

    dsn = settings.postgres.dsn.get_secret_value()
    if peer in PEERS:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(create_sql(schema))
        finally:
            await connection.close()
    python = Path(sys.executable) if peer in _IN_ALCANCE_VENV else await asyncio.to_thread(peers_python)
    module, *arguments = FLOORS.get(peer) or (PEERS[peer],)
    catalogue = TopicCatalogue.from_settings(settings)
    common = [
        "--bootstrap",
        settings.kafka.bootstrap_servers,
        "--group",
        group,
        "--topics",
        ",".join(spec.name for spec in catalogue.input_topics()),
    ]
    if peer in PEERS:  # the floors compute and write nothing
        common += ["--training-topic", catalogue.training.name, "--schema", schema]
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
            if peer in _STATIC
            else []
        )
        started.append(
            await asyncio.create_subprocess_exec(
                str(python),
                "-m",
                module,
                *common,
                *extra,
                *arguments,
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
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except GroupCoordinatorNotAvailableError:
        # A new broker creates its offsets topic at the first group's first request: nothing committed yet.
        return 0
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
