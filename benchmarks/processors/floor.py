"""A floor of the processors' cost: an aiokafka consumer that reads every record and computes nothing.

Usage, in alcance's virtualenv from the repository root: `python -m benchmarks.processors.floor
--bootstrap HOST:PORT --group G --topics A,B,C --partitions 4 [--index I --processes N] [--decode]`

Process I of N reads partitions I, I + N, ... of every input topic (assigned statically, as the plain
loop peer does), takes each record's value, and commits the batch's offsets to the consumer group so the
benchmark can follow it. With `--decode` it also decodes and validates each record as alcance's
processors do (`schemas.cloudevents.decode`, the event contract), counting the invalid ones. Nothing
is stored: its CPU per event is what the Kafka client (and the contract's validation) cost before any
indicator, de-duplication or write, the part of the processors' cost no storage design removes.
SIGTERM ends it after the current batch.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from benchmarks.peers import static
from benchmarks.peers.static import aiokafka_consumer


async def run(args: argparse.Namespace) -> None:
    """Consume until SIGTERM."""
    from schemas.cloudevents import InvalidEvent, decode

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    consumer = await aiokafka_consumer(args)
    size = invalid = 0
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=args.batch)
            for records in batch.values():
                for record in records:
                    if args.decode:
                        try:
                            decode(record.headers, record.value)
                        except InvalidEvent:
                            invalid += 1
                    else:
                        size += len(record.value or b"")
            if batch:
                await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
    finally:
        await consumer.stop()
    # What was read, so the work above cannot be optimised away unseen (and a broken stream shows).
    read = f"{invalid} invalid records" if args.decode else f"{size} bytes read"
    print(f"floor: {read}", file=sys.stderr, flush=True)


def main() -> None:
    """Parse the arguments and consume until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    static.add_arguments(parser)
    parser.add_argument("--decode", action="store_true", help="also decode and validate every record")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
