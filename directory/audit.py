"""The access log's hash chain, checked row by row: `alcance directory verify-log`."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from directory.schema import sql

# The chain as the insert trigger computes it, recomputed here from each stored row.
_CHAIN = """
SELECT seq, prev_hash, hash,
       sha256(prev_hash || convert_to({s}.access_row_text(l), 'UTF8')) AS recomputed,
       lag(hash) OVER (ORDER BY seq) AS previous,
       lag(seq) OVER (ORDER BY seq) AS previous_seq
  FROM {s}.access_log l
 ORDER BY seq
"""


@dataclass(frozen=True)
class ChainReport:
    """The outcome of a check: rows checked and the first broken row with the reason, if any."""

    rows: int
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every row's hash and link hold."""
        return self.broken_seq is None


async def verify_log(connection: asyncpg.Connection, schema: str) -> ChainReport:
    """Check every access-log row: its hash over its content, its link to the row before, no gap."""
    rows = await connection.fetch(sql(_CHAIN, schema))
    for index, row in enumerate(rows):
        expected_prev = row["previous"] if index else b""
        if row["seq"] != index + 1:
            return ChainReport(index, row["seq"], f"row {row['seq']}: a row is missing before it")
        if bytes(row["prev_hash"]) != bytes(expected_prev):
            return ChainReport(index, row["seq"], f"row {row['seq']}: does not link to the row before")
        if bytes(row["hash"]) != bytes(row["recomputed"]):
            return ChainReport(index, row["seq"], f"row {row['seq']}: content does not match its hash")
    return ChainReport(len(rows))
