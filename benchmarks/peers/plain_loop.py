"""A hand-written at-least-once consumer computing CVF-01 and CVF-02: aiokafka batches, asyncpg upserts.

Usage, in the peers' virtualenv from the repository root (the DSN comes in `PEER_DSN`, never on the
command line): `python -m benchmarks.peers.plain_loop --bootstrap HOST:PORT --group G --topics A,B,C
--training-topic A --partitions 4 --schema S --index I --processes N`

Process I of N reads partitions I, I + N, ... of every input topic, assigned statically: the learners'
state is held in memory, so a partition must never move to another process during a run (a restart
loses that state, which only an uninterrupted run tolerates). Per batch (up to `--batch` records) it
decodes the training records, applies them to their learners' state, adds the changes up per cell,
writes them in one statement, then commits the batch's offsets to the consumer group. A crash between
the write and the commit repeats the batch: at least once. SIGTERM ends it after the current batch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Any

import asyncpg
import orjson

from benchmarks.peers import static
from benchmarks.peers.cells import Delta, add_up, apply_event, new_state, upsert_sql
from benchmarks.peers.static import aiokafka_consumer


async def run(args: argparse.Namespace) -> None:
    """Consume until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    connection = await asyncpg.connect(os.environ["PEER_DSN"])
    consumer = await aiokafka_consumer(args)
    upsert = upsert_sql(args.schema)
    learners: dict[bytes, dict[str, Any]] = {}
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=args.batch)
            if not batch:
                continue
            deltas: list[Delta] = []
            for tp, records in batch.items():
                if tp.topic != args.training_topic:
                    continue  # the other families count for neither indicator
                for record in records:
                    state = learners.get(record.key)
                    if state is None:
                        state = learners[record.key] = new_state()
                    delta = apply_event(state, orjson.loads(record.value))
                    if delta is not None:
                        deltas.append(delta)
            cells = add_up(deltas)
            if cells:
                countries, months, enrolments, reached = (list(column) for column in zip(*cells, strict=True))
                await connection.execute(upsert, countries, months, enrolments, reached)
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
    finally:
        await consumer.stop()
        await connection.close()


def main() -> None:
    """Parse the arguments and consume until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    static.add_arguments(parser)
    parser.add_argument("--training-topic", required=True)
    parser.add_argument("--schema", required=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
