"""A floor with confluent-kafka (librdkafka, Quix Streams' client): read every record, compute nothing.

Usage, in the peers' virtualenv from the repository root: `python -m benchmarks.peers.read_floor
--bootstrap HOST:PORT --group G --topics A,B,C --partitions 4 [--index I --processes N]`

The same work as `benchmarks.processors.floor` without `--decode` (partitions I, I + N, ... of every
input topic assigned statically; each record's value taken; each batch's offsets committed to the
consumer group), with the other client: set beside the aiokafka floor, it shows what the choice of
Kafka client costs per event. SIGTERM ends it after the current batch.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from benchmarks.peers import static
from benchmarks.peers.static import librdkafka_login


def run(args: argparse.Namespace) -> None:
    """Consume until SIGTERM."""
    stopping = False

    def stop(_signal: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
            **librdkafka_login(),
        }
    )
    consumer.assign(
        [TopicPartition(topic, partition, OFFSET_BEGINNING) for topic, partition in static.assigned(args)]
    )
    size = 0
    try:
        while not stopping:
            messages = consumer.consume(num_messages=args.batch, timeout=0.2)
            for message in messages:
                if message.error() is None:
                    size += len(message.value() or b"")
            if messages:
                # Asynchronous, as librdkafka's own auto-commit is: a synchronous commit per batch would
                # measure the round trip, not the client (the benchmark waits for the offsets to land).
                consumer.commit(asynchronous=True)
    finally:
        consumer.close()
    # What was read, so the work above cannot be optimised away unseen (and a broken stream shows).
    print(f"floor: {size} bytes read", file=sys.stderr, flush=True)


def main() -> None:
    """Parse the arguments and consume until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    static.add_arguments(parser)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
