"""The partition ledger: which input partitions a processor owns, under which epoch, and how far it read.

Pure bookkeeping, no I/O, so its rules are tested without a broker. The processor asks PostgreSQL for
a claim (next offset and a new epoch) and records it here; a batch is decoded against the ledger and
committed only for partitions still owned under the same claim. Three numbers per partition:

* the *epoch*, stored in PostgreSQL, bumped by every claim by any member: a batch commits its offsets
  only under the epoch it was decoded with, so a member that lost a partition cannot commit;
* the *claim serial*, local, bumped by each of our own claims: a batch fetched across one of our claims
  may hold records from before the claim's seek, so it is left out and read again;
* the *read position* (offset after the last record decoded), ahead of the committed offset while a
  batch commits, so the next batch does not decode the same records twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from processors.base import TopicPartitionKey

Position = tuple[int, int]
"""(next offset to process, epoch under which it is ours)."""


@dataclass
class PartitionLedger:
    """Claims, epochs and positions of the partitions one processor holds.

    Attributes:
        owned: Per owned partition: (committed next offset, epoch).
    """

    owned: dict[TopicPartitionKey, Position] = field(default_factory=dict)
    _serial: dict[TopicPartitionKey, int] = field(default_factory=dict)
    _unowned_since: dict[TopicPartitionKey, float] = field(default_factory=dict)
    _read_up_to: dict[TopicPartitionKey, int] = field(default_factory=dict)

    def claimed(self, key: TopicPartitionKey, next_offset: int, epoch: int) -> None:
        """Record a claim made in PostgreSQL; the consumer seeks to `next_offset` next."""
        self.owned[key] = (next_offset, epoch)
        self._serial[key] = self._serial.get(key, 0) + 1
        self._unowned_since.pop(key, None)
        self._read_up_to[key] = next_offset

    def revoked(self, key: TopicPartitionKey) -> None:
        """The group took the partition away in a rebalance."""
        self.owned.pop(key, None)
        self._read_up_to.pop(key, None)

    def lost(self, key: TopicPartitionKey, now: float) -> None:
        """A commit found another member's epoch: the partition is no longer ours since `now`."""
        self.owned.pop(key, None)
        self._read_up_to.pop(key, None)
        self._unowned_since[key] = now

    def serials(self) -> dict[TopicPartitionKey, int]:
        """A snapshot of the claim serials, taken before a fetch (see `claimed_during`)."""
        return dict(self._serial)

    def serial(self, key: TopicPartitionKey) -> int:
        """How many times this processor claimed the partition."""
        return self._serial.get(key, 0)

    def claimed_during(self, key: TopicPartitionKey, before: Mapping[TopicPartitionKey, int]) -> bool:
        """Whether we claimed the partition since the snapshot `before` was taken."""
        return self._serial.get(key) != before.get(key)

    def seen_unowned(self, key: TopicPartitionKey, now: float) -> None:
        """Records arrived for a partition we do not own; start its grace period if not started."""
        self._unowned_since.setdefault(key, now)

    def due_for_claim(
        self, assigned: Iterable[TopicPartitionKey], now: float, grace_s: float
    ) -> list[TopicPartitionKey]:
        """Assigned partitions we have not owned for `grace_s` (a claim failed, or an epoch moved on).

        The grace period lets a real rebalance, which would take the partition away, happen first.
        """
        due = []
        for key in assigned:
            if key in self.owned:
                continue
            if now - self._unowned_since.setdefault(key, now) >= grace_s:
                due.append(key)
        return due

    def read_from(self, key: TopicPartitionKey) -> int:
        """The first offset not decoded yet (records below it are skipped). Requires ownership."""
        committed = self.owned[key][0]
        return max(committed, self._read_up_to.get(key, committed))

    def rewind(self, key: TopicPartitionKey) -> int:
        """Forget what was decoded past the committed offset; returns that offset to seek to."""
        committed = self.owned[key][0]
        self._read_up_to[key] = committed
        return committed

    def decoded(self, key: TopicPartitionKey, next_offset: int) -> None:
        """Records up to `next_offset` are decoded and on their way to a commit."""
        self._read_up_to[key] = next_offset

    def stale(
        self, positions: Mapping[TopicPartitionKey, Position], serials: Mapping[TopicPartitionKey, int]
    ) -> set[TopicPartitionKey]:
        """Partitions of a decoded batch whose ownership changed since it was decoded.

        A claim in between re-read the stored offset and seeked there, so those records come again;
        a lost partition is read by its new owner.
        """
        return {
            key
            for key, (_, epoch) in positions.items()
            if (own := self.owned.get(key)) is None
            or own[1] != epoch
            or self._serial.get(key) != serials.get(key)
        }

    def committed(self, key: TopicPartitionKey, position: Position) -> None:
        """A batch committed `position` for a partition; recorded if it is still ours."""
        if key in self.owned:
            self.owned[key] = position
