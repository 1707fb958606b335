"""Durable connector cursors and the per-source lease, in PostgreSQL (tables of migration 0010)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from connectors.base import Cursor
from connectors.exceptions import LeaseLost

logger = logging.getLogger(__name__)

TopicPartitionOffsets = Mapping[tuple[str, int], int]

# Checkpoint rows kept per source; older ones are only needed to rewind after the broker lost its log,
# and a rewind never needs to go further back than what the processors have not consumed yet.
HISTORY_KEPT = 2_000
_PRUNE_EVERY = 200


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One committed position of a source.

    Attributes:
        seq: sequence number (increasing per source).
        cursor: the cursor to resume from (None: the beginning).
        log_identity: identity of the broker log the events up to here were published to.
        produced: highest offset produced per (topic, partition) up to and including this checkpoint.
    """

    seq: int
    cursor: Cursor | None
    log_identity: str
    produced: dict[tuple[str, int], int]


def _encode_offsets(offsets: TopicPartitionOffsets) -> str:
    nested: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in offsets.items():
        nested.setdefault(topic, {})[str(partition)] = offset
    return json.dumps(nested, sort_keys=True)


def _decode_offsets(raw: str | None) -> dict[tuple[str, int], int]:
    nested: dict[str, dict[str, int]] = json.loads(raw) if raw else {}
    return {(topic, int(part)): int(off) for topic, parts in nested.items() for part, off in parts.items()}


def _row_to_checkpoint(row: asyncpg.Record) -> Checkpoint:
    cursor: Any = json.loads(row["cursor_state"]) if row["cursor_state"] is not None else None
    return Checkpoint(
        seq=row["seq"],
        cursor=cursor,
        log_identity=row["log_identity"],
        produced=_decode_offsets(row["produced_offsets"]),
    )


class CheckpointStore:
    """Checkpoints and lease of one source, for one connector instance.

    The lease makes one instance the puller of a source: `acquire` takes it when it is free or
    expired, `renew` extends it, and `commit` checks it in the same transaction that writes the
    checkpoint, so a stale instance whose lease was taken over can never move the cursor.

    Args:
        pool: pool on the store's schema.
        source: source name.
        lease_ttl_s: how long a lease lives without renewal.
    """

    def __init__(self, pool: asyncpg.Pool, source: str, *, lease_ttl_s: float) -> None:
        self._pool = pool
        self.source = source
        self.lease_ttl_s = lease_ttl_s
        self.holder = uuid.uuid4()
        self.epoch: int | None = None
        self._commits = 0

    async def try_acquire(self) -> bool:
        """Take the lease if nobody holds an unexpired one; True when this instance now holds it."""
        epoch = await self._pool.fetchval(
            """
            INSERT INTO connector_lease (source, holder, epoch, expires_at)
            VALUES ($1, $2, 1, now() + make_interval(secs => $3))
            ON CONFLICT (source) DO UPDATE
               SET holder = EXCLUDED.holder, epoch = connector_lease.epoch + 1,
                   acquired_at = now(), expires_at = EXCLUDED.expires_at
             WHERE connector_lease.expires_at < now() OR connector_lease.holder = EXCLUDED.holder
            RETURNING epoch
            """,
            self.source,
            self.holder,
            self.lease_ttl_s,
        )
        if epoch is None:
            return False
        self.epoch = int(epoch)
        logger.info("source %s: lease acquired (epoch %d)", self.source, self.epoch)
        return True

    async def renew(self) -> None:
        """Extend the lease.

        Raises:
            LeaseLost: when another instance holds it now.
        """
        ok = await self._pool.fetchval(
            """
            UPDATE connector_lease SET expires_at = now() + make_interval(secs => $4)
             WHERE source = $1 AND holder = $2 AND epoch = $3
            RETURNING true
            """,
            self.source,
            self.holder,
            self.epoch,
            self.lease_ttl_s,
        )
        if not ok:
            raise LeaseLost(f"source {self.source}: lease taken by another instance")

    async def release(self) -> None:
        """Give the lease up so that a successor need not wait for it to expire."""
        if self.epoch is None:
            return
        await self._pool.execute(
            "UPDATE connector_lease SET expires_at = now() - interval '1 second'"
            " WHERE source = $1 AND holder = $2 AND epoch = $3",
            self.source,
            self.holder,
            self.epoch,
        )

    async def latest(self) -> Checkpoint | None:
        """The newest checkpoint of the source, or None when it never committed."""
        row = await self._pool.fetchrow(
            "SELECT seq, cursor_state::text AS cursor_state, log_identity, produced_offsets::text AS"
            " produced_offsets FROM connector_checkpoint WHERE source = $1 ORDER BY seq DESC LIMIT 1",
            self.source,
        )
        return _row_to_checkpoint(row) if row is not None else None

    async def resume_cursor(self, log_identity: str, consumer_group: str) -> Cursor | None:
        """The cursor to start from, rewound when the broker's log is no longer the one published to.

        If the newest checkpoint was recorded under another log identity, the events published after
        what `consumer_group` had consumed (its `kafka_offset` rows of that identity) are gone with the
        old log: resume from the newest checkpoint whose produced offsets are all below the consumed
        offsets, or from the beginning. The decision is stored as a checkpoint under the new identity.
        """
        newest = await self.latest()
        if newest is None:
            return None
        if newest.log_identity == log_identity:
            return newest.cursor
        consumed = {
            (row["topic"], row["partition"]): row["next_offset"]
            for row in await self._pool.fetch(
                "SELECT topic, partition, next_offset FROM kafka_offset"
                " WHERE log_identity = $1 AND consumer_group = $2",
                newest.log_identity,
                consumer_group,
            )
        }
        rows = await self._pool.fetch(
            "SELECT seq, cursor_state::text AS cursor_state, log_identity, produced_offsets::text AS"
            " produced_offsets FROM connector_checkpoint WHERE source = $1 AND log_identity = $2"
            " ORDER BY seq DESC",
            self.source,
            newest.log_identity,
        )
        cursor: Cursor | None = None
        for row in rows:
            candidate = _row_to_checkpoint(row)
            if all(offset < consumed.get(tp, 0) for tp, offset in candidate.produced.items()):
                cursor = candidate.cursor
                break
        logger.warning(
            "source %s: broker log changed (%s -> %s); rewinding to %s",
            self.source,
            newest.log_identity,
            log_identity,
            "the beginning" if cursor is None else "the last consumed checkpoint",
        )
        await self.commit(cursor, log_identity=log_identity, page_offsets={}, records=0)
        return cursor

    async def commit(
        self,
        cursor: Cursor | None,
        *,
        log_identity: str,
        page_offsets: TopicPartitionOffsets,
        records: int,
    ) -> int:
        """Store `cursor` as the source's position, after the page's events were acked by the broker.

        Also renews the lease. Produced offsets accumulate per log identity.

        Returns:
            The new checkpoint's sequence number.

        Raises:
            LeaseLost: when this instance no longer holds the lease (nothing is written).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            # Row lock: a concurrent take-over waits for this commit or makes it fail.
            holder = await conn.fetchrow(
                "SELECT holder, epoch FROM connector_lease WHERE source = $1 FOR UPDATE", self.source
            )
            if holder is None or holder["holder"] != self.holder or holder["epoch"] != self.epoch:
                raise LeaseLost(f"source {self.source}: lease lost, checkpoint not written")
            previous = await conn.fetchrow(
                "SELECT seq, log_identity, produced_offsets::text AS produced_offsets"
                " FROM connector_checkpoint WHERE source = $1 ORDER BY seq DESC LIMIT 1",
                self.source,
            )
            produced: dict[tuple[str, int], int] = {}
            seq = 1
            if previous is not None:
                seq = previous["seq"] + 1
                if previous["log_identity"] == log_identity:
                    produced = _decode_offsets(previous["produced_offsets"])
            for tp, offset in page_offsets.items():
                produced[tp] = max(offset, produced.get(tp, -1))
            await conn.execute(
                "INSERT INTO connector_checkpoint"
                " (source, seq, cursor_state, log_identity, produced_offsets, records)"
                " VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, $6)",
                self.source,
                seq,
                json.dumps(cursor) if cursor is not None else None,
                log_identity,
                _encode_offsets(produced),
                records,
            )
            await conn.execute(
                "UPDATE connector_lease SET expires_at = now() + make_interval(secs => $2) WHERE source = $1",
                self.source,
                self.lease_ttl_s,
            )
            self._commits += 1
            if self._commits % _PRUNE_EVERY == 0:
                await conn.execute(
                    "DELETE FROM connector_checkpoint WHERE source = $1 AND seq <= $2",
                    self.source,
                    seq - HISTORY_KEPT,
                )
        return seq
