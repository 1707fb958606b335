"""CVF-16 reach targets: the activity plan's annual targets per art. 7 audience, set without SQL.

Targets come from `[[reach_targets]]` tables of the TOML file (written to the store when a command
opens it) or from `alcance targets set`; both write table `reach_target`, which the reads use.
"""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from infra.settings import ReachTargetConfig, Settings

_UPSERT = """
INSERT INTO reach_target (indicator, audience, year, target, source) VALUES ('CVF-16', $1, $2, $3, $4)
ON CONFLICT (indicator, audience, year) DO UPDATE SET target = EXCLUDED.target, source = EXCLUDED.source
"""


async def set_targets(pool: asyncpg.Pool, targets: list[ReachTargetConfig]) -> None:
    """Write `targets`, replacing any earlier target of the same audience and year."""
    if not targets:
        return
    async with pool.acquire() as connection, connection.transaction():
        await connection.executemany(
            _UPSERT,
            [(target.audience, target.year, Decimal(target.target), target.source) for target in targets],
        )


async def apply_configured_targets(pool: asyncpg.Pool, settings: Settings) -> None:
    """Write the TOML file's `[[reach_targets]]` to the store (a no-op without any)."""
    await set_targets(pool, settings.reach_targets)


async def list_targets(pool: asyncpg.Pool) -> list[ReachTargetConfig]:
    """Every CVF-16 target in the store, by year then audience."""
    rows = await pool.fetch(
        "SELECT audience, year, target, source FROM reach_target WHERE indicator = 'CVF-16'"
        " ORDER BY year, audience"
    )
    return [ReachTargetConfig.model_validate(dict(row)) for row in rows]
