"""A Quix Streams application computing CVF-01 and CVF-02 at least once, into PostgreSQL.

Usage, in the peers' virtualenv from the repository root (the DSN comes in `PEER_DSN`, never on the
command line): `python -m benchmarks.peers.quix_app --bootstrap HOST:PORT --group G --topics A,B,C
--training-topic A --schema S`

The training topic is read as JSON; each record is applied to its learner's state in Quix's state store
(RocksDB, keyed by the record key, the learner's pseudonym, with a changelog topic so that partitions
can move between processes), and the changes it makes to a cell go to a batching sink that adds them
up and writes them to PostgreSQL when Quix commits its checkpoint (every `--commit-interval` seconds):
sink first, then the consumer offsets, so a crash between the two repeats the checkpoint's records,
at least once. The other input topics are consumed and dropped, so the application reads the whole
stream as alcance does. Several processes share the consumer group; SIGTERM ends it after a last
checkpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from typing import Any

import asyncpg
from quixstreams import Application, State
from quixstreams.sinks import BatchingSink, SinkBatch

from benchmarks.peers.cells import COUNTED, Delta, add_up, apply_event, new_state, upsert_sql


class CellsSink(BatchingSink):
    """Adds up the deltas of a checkpoint's records per cell and upserts them in one statement."""

    def __init__(self, dsn: str, schema: str) -> None:
        super().__init__()
        self._dsn = dsn
        self._upsert = upsert_sql(schema)
        # Quix Streams is synchronous: the asyncpg connection gets a private event loop.
        self._loop = asyncio.new_event_loop()
        self._connection: Any = None

    def setup(self) -> None:
        """Connect once, when the application starts."""
        self._connection = self._loop.run_until_complete(asyncpg.connect(self._dsn))

    def write(self, batch: SinkBatch) -> None:
        """Write one partition's deltas of the checkpoint; a failure aborts the checkpoint."""
        cells = add_up([item.value for item in batch])
        if cells:
            columns = [list(column) for column in zip(*cells, strict=True)]
            self._loop.run_until_complete(self._connection.execute(self._upsert, *columns))


def _learner_step(event: dict[str, Any], state: State) -> Delta | None:
    if event["event_type"] not in COUNTED:
        return None  # no need to read or write the state
    learner = state.get("learner") or new_state()
    delta = apply_event(learner, event)
    state.set("learner", learner)
    return delta


def main() -> None:
    """Parse the arguments and run the application until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--topics", required=True, help="every input topic, comma-separated")
    parser.add_argument("--training-topic", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--commit-interval", type=float, default=1.0, help="seconds between checkpoints")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="peer-quix-state-") as state_dir:
        app = Application(
            broker_address=args.bootstrap,
            consumer_group=args.group,
            auto_offset_reset="earliest",
            commit_interval=args.commit_interval,
            processing_guarantee="at-least-once",
            state_dir=state_dir,
            loglevel="WARNING",
        )
        training = app.dataframe(app.topic(args.training_topic, value_deserializer="json"))
        training = training.apply(_learner_step, stateful=True).filter(lambda delta: delta is not None)
        training.sink(CellsSink(os.environ["PEER_DSN"], args.schema))
        for name in args.topics.split(","):
            if name != args.training_topic:
                # Consumed (and committed) like the training topic, but neither indicator counts them.
                app.dataframe(app.topic(name, value_deserializer="bytes")).filter(lambda _: False)
        app.run()


if __name__ == "__main__":
    main()
