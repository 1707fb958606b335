"""The Moodle enrolment snapshots in PostgreSQL: who was seen in which course, in which poll cycle.

Moodle does not say when an enrolment began or ended, so the connector compares each cycle's
enrolled users with the previous one: one row per (source, course, learner pseudonym), never a name.
A learner seen again after a withdrawal starts a new generation (a new enrolment). Every statement
is idempotent for a given cycle, so a page fetched again after a failure reads the same rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


class MoodleSnapshots:
    """The snapshot rows of one Moodle source.

    Args:
        pool: the store's pool (from the connector context).
        source: the source's name.
    """

    def __init__(self, pool: asyncpg.Pool, source: str) -> None:
        self._pool = pool
        self._source = source

    async def upsert_seen(self, course_id: int, keys: list[str], cycle: int, now: datetime) -> list[Any]:
        """Record `keys` as enrolled in `course_id` in `cycle`.

        Returns:
            Per key: user_key, generation, first_seen_cycle, first_seen_at, completed_cycle.
        """
        if not keys:
            return []
        back = "s.withdrawn_cycle IS NOT NULL AND s.withdrawn_cycle < $3"
        rows: list[Any] = await self._pool.fetch(
            f"""
            INSERT INTO moodle_enrolment_snapshot AS s
                (source, course_id, user_key, generation, first_seen_cycle, first_seen_at, last_seen_cycle)
            SELECT $1, $2, k, 0, $3, $4, $3 FROM unnest($5::text[]) AS k
            ON CONFLICT (source, course_id, user_key) DO UPDATE SET
                generation = CASE WHEN {back} THEN s.generation + 1 ELSE s.generation END,
                first_seen_cycle = CASE WHEN {back} THEN $3 ELSE s.first_seen_cycle END,
                first_seen_at = CASE WHEN {back} THEN $4 ELSE s.first_seen_at END,
                completed_cycle = CASE WHEN {back} THEN NULL ELSE s.completed_cycle END,
                last_seen_cycle = $3, withdrawn_cycle = NULL, withdrawn_at = NULL
            RETURNING user_key, generation, first_seen_cycle, first_seen_at, completed_cycle
            """,  # noqa: S608 - the interpolated text is a constant condition, values are parameters
            self._source,
            course_id,
            cycle,
            now,
            keys,
        )
        return rows

    async def first_seen(self, keys: list[str]) -> dict[str, str]:
        """Per learner key, when it was first seen in any course of the source (ISO 8601)."""
        rows = await self._pool.fetch(
            "SELECT user_key, min(first_seen_at) AS first_seen FROM moodle_enrolment_snapshot"
            " WHERE source = $1 AND user_key = ANY($2::text[]) GROUP BY user_key",
            self._source,
            keys,
        )
        return {row["user_key"]: row["first_seen"].isoformat() for row in rows}

    async def withdrawals(self, course_id: int, cycle: int, now: datetime) -> list[Any]:
        """Mark as withdrawn the enrolments of `course_id` not seen in `cycle`.

        Returns:
            The withdrawn rows (also those withdrawn by an earlier attempt at the same cycle):
            user_key, generation, withdrawn_at.
        """
        rows: list[Any] = await self._pool.fetch(
            """
            UPDATE moodle_enrolment_snapshot
               SET withdrawn_cycle = $3, withdrawn_at = coalesce(withdrawn_at, $4)
             WHERE source = $1 AND course_id = $2 AND last_seen_cycle <> $3
               AND (withdrawn_cycle IS NULL OR withdrawn_cycle >= $3)
            RETURNING user_key, generation, withdrawn_at
            """,
            self._source,
            course_id,
            cycle,
            now,
        )
        return rows

    async def mark_completed(self, course_id: int, cycle: int, keys: list[str]) -> None:
        """Record that `keys` completed `course_id` in `cycle` (their completion is not asked again)."""
        await self._pool.execute(
            "UPDATE moodle_enrolment_snapshot SET completed_cycle = $4"
            " WHERE source = $1 AND course_id = $2 AND user_key = ANY($3::text[])"
            " AND (completed_cycle IS NULL OR completed_cycle > $4)",
            self._source,
            course_id,
            keys,
            cycle,
        )

    async def generation(self, course_id: int | None, user_key: str) -> int:
        """The current generation of a learner's enrolment in a course (0 when unknown)."""
        if course_id is None:
            return 0
        value = await self._pool.fetchval(
            "SELECT generation FROM moodle_enrolment_snapshot"
            " WHERE source = $1 AND course_id = $2 AND user_key = $3",
            self._source,
            course_id,
            user_key,
        )
        return int(value or 0)
