"""Withdrawal notices (art. 8): the member states that received a firm's record are told what to delete.

When an authorisation ends (a withdrawal through the API or the feed, an expiry, a firm PLGN no longer
lists), every member state the access log shows received the firm gets a notice, in the same
transaction, of the fields it may have received and may no longer see (a page's log row names the
fields of all its firms, so this errs towards more fields). A state reads its own notices and
acknowledges each once it has deleted its copies; the time between is GOV-02.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from directory.schema import sql

PAGE_MAX = 50

# Per firm and member state, each field delivered by a granted read, with the last read that delivered
# it; a field noticed since that read is left out (noticed once per delivery).
_UNNOTICED = """
WITH delivered AS (
    SELECT o.org_ref, l.member_state, f AS field, max(l.seq) AS last_seq
      FROM unnest($1::text[]) AS o(org_ref)
      JOIN {s}.access_log AS l ON l.org_refs @> ARRAY[o.org_ref]
     CROSS JOIN LATERAL unnest(l.fields) AS f
     WHERE l.outcome = 'granted' AND l.member_state IS NOT NULL
     GROUP BY 1, 2, 3
)
SELECT d.org_ref, d.member_state, array_agg(d.field ORDER BY d.field) AS fields, max(d.last_seq) AS through
  FROM delivered AS d
 WHERE NOT EXISTS (
        SELECT 1 FROM {s}.withdrawal_notice AS n
         WHERE n.org_ref = d.org_ref AND n.member_state = d.member_state AND d.field = ANY (n.fields)
           AND n.through_seq >= d.last_seq)
 GROUP BY 1, 2
 ORDER BY 1, 2
"""
# What `member_state` may see of the firm now, by the rule in force (the view `firm_shared` under the
# state set for the transaction).
_VISIBLE = "SELECT fields FROM {s}.firm_shared WHERE org_ref = $1"
_SET_STATE = "SELECT set_config('alcance.member_state', $1, true)"
_LOCK_FIRMS = """
SELECT pg_advisory_xact_lock(hashtext('alcance.directory.notice:' || o.r))
  FROM (SELECT r FROM unnest($1::text[]) AS r ORDER BY r) AS o
"""
_NOTICE = """
INSERT INTO {s}.withdrawal_notice (member_state, org_ref, fields, whole_record, through_seq)
VALUES ($1, $2, $3, $4, $5)
"""


async def notify_recipients(connection: asyncpg.Connection, schema: str, org_refs: Iterable[str]) -> int:
    """Notice every member state that received `org_refs` of the fields it may no longer see.

    Runs in the caller's transaction, as the directory's writer, after the firm rows were deleted or
    blanked. Returns how many notices were written.
    """
    refs = sorted(set(org_refs))
    if not refs:
        return 0
    # One transaction at a time per firm (an API withdrawal and the feed's copy may reconcile it at once):
    # each sees the other's notices once it has the lock, so none is written twice. Sorted: no deadlock.
    await connection.execute(_LOCK_FIRMS, refs)
    written = 0
    for org_ref, state, received, through in await connection.fetch(sql(_UNNOTICED, schema), refs):
        await connection.execute(_SET_STATE, state)
        visible = await connection.fetchval(sql(_VISIBLE, schema), org_ref) or []
        gone = [field for field in received if field not in visible]
        if gone:
            await connection.execute(sql(_NOTICE, schema), state, org_ref, gone, not visible, through)
            written += 1
    await connection.execute(_SET_STATE, "")
    return written


_LIST = """
SELECT id, org_ref, fields, whole_record, noticed_at, acknowledged_at
  FROM {s}.withdrawal_notice WHERE id > $1 ORDER BY id LIMIT $2
"""
_ACKNOWLEDGE = """
UPDATE {s}.withdrawal_notice SET acknowledged_at = clock_timestamp(), acknowledged_by = $2
 WHERE id = $1 AND acknowledged_at IS NULL
"""
_FOUND = "SELECT true FROM {s}.withdrawal_notice WHERE id = $1"


async def own_notices(
    connection: asyncpg.Connection, schema: str, after: int, limit: int
) -> list[dict[str, Any]]:
    """The notices of the state set for the caller's transaction (row-level security), after `after`."""
    rows = await connection.fetch(sql(_LIST, schema), after, min(max(limit, 1), PAGE_MAX))
    return [
        {
            "id": row["id"],
            "ref": row["org_ref"],
            "fields": list(row["fields"]),
            "delete": "record" if row["whole_record"] else "fields",
            "noticed_at": row["noticed_at"].isoformat(),
            "acknowledged_at": row["acknowledged_at"].isoformat() if row["acknowledged_at"] else None,
        }
        for row in rows
    ]


async def acknowledge(connection: asyncpg.Connection, schema: str, notice_id: int, client_id: str) -> bool:
    """Acknowledge one of the state's own notices (idempotent); False when the state has no such notice."""
    await connection.execute(sql(_ACKNOWLEDGE, schema), notice_id, client_id)
    return await connection.fetchval(sql(_FOUND, schema), notice_id) is not None
