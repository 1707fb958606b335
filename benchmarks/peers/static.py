"""What the statically assigned consumers share: the plain loop peer and the floors.

Process I of N reads partitions I, I + N, ... of every input topic, assigned statically, so a partition
never moves during a run. The broker login comes from the benchmark in the environment (none on an open
broker): `PEER_SECURITY_PROTOCOL`, `PEER_SASL_MECHANISM`, `PEER_SASL_USERNAME` and `PEER_SASL_PASSWORD`
(`launch.sasl_environment`); the password never travels on a command line.
"""

from __future__ import annotations

import argparse
import os

from aiokafka import AIOKafkaConsumer, TopicPartition


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every statically assigned consumer takes."""
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--topics", required=True, help="every input topic, comma-separated")
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2_000)


def assigned(args: argparse.Namespace) -> list[tuple[str, int]]:
    """This process's (topic, partition) pairs."""
    return [
        (topic, partition)
        for topic in args.topics.split(",")
        for partition in range(args.index, args.partitions, args.processes)
    ]


async def aiokafka_consumer(args: argparse.Namespace) -> AIOKafkaConsumer:
    """A started aiokafka consumer of this process's partitions, its offsets committed by hand."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        **aiokafka_login(),
    )
    await consumer.start()
    consumer.assign([TopicPartition(topic, partition) for topic, partition in assigned(args)])
    return consumer


def aiokafka_login() -> dict[str, str]:
    """aiokafka's login options (empty on an open broker)."""
    if "PEER_SASL_USERNAME" not in os.environ:
        return {}
    return {
        "security_protocol": os.environ["PEER_SECURITY_PROTOCOL"],
        "sasl_mechanism": os.environ["PEER_SASL_MECHANISM"],
        "sasl_plain_username": os.environ["PEER_SASL_USERNAME"],
        "sasl_plain_password": os.environ["PEER_SASL_PASSWORD"],
    }


def librdkafka_login() -> dict[str, str]:
    """The same login as librdkafka (confluent-kafka) configuration properties."""
    if "PEER_SASL_USERNAME" not in os.environ:
        return {}
    return {
        "security.protocol": os.environ["PEER_SECURITY_PROTOCOL"].lower(),
        "sasl.mechanism": os.environ["PEER_SASL_MECHANISM"],
        "sasl.username": os.environ["PEER_SASL_USERNAME"],
        "sasl.password": os.environ["PEER_SASL_PASSWORD"],
    }
