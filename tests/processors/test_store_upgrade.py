"""Upgrading a store written before parts were kept per month only (migration 0160) loses no cell."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import asyncpg
import pytest

from infra import postgres
from infra.settings import Settings
from processors.cells import cell_parts

APRIL, MAY, Q2, YEAR = date(2026, 4, 1), date(2026, 5, 1), date(2026, 4, 1), date(2026, 1, 1)
DIMS = '{"country":"UY"}'


@pytest.fixture
async def old_store(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[asyncpg.Pool]:
    """A schema migrated up to, not including, 0160; every migration applies when the test migrates."""
    pg = settings.postgres.model_copy(update={"db_schema": f"{settings.postgres.db_schema}_old"})
    pool = await postgres.create_pool(pg)
    earlier = [(name, sql) for name, sql in postgres.migration_files() if name < "0160"]
    with monkeypatch.context() as patch:
        patch.setattr(postgres, "migration_files", lambda: earlier)
        await postgres.migrate(pool)
    try:
        yield pool
    finally:
        await pool.execute(f'DROP SCHEMA "{pg.db_schema}" CASCADE')
        await pool.close()


async def test_the_upgrade_keeps_each_quarter_and_year_as_the_merge_of_its_months(
    old_store: asyncpg.Pool,
) -> None:
    deal_april, deal_may = uuid.uuid4(), uuid.uuid4()
    # As the store wrote them before: each part in its month, and again in its quarter and year.
    for kind, start in (("month", APRIL), ("month", MAY), ("quarter", Q2), ("year", YEAR)):
        merged = kind != "month"
        await old_store.execute(
            "INSERT INTO indicator_part VALUES ('T-01', $1, $2, $3, 'total', 'sum', $4, $5)",
            kind,
            start,
            DIMS,
            Decimal(10) if merged else Decimal(4 if start == APRIL else 6),
            2 if merged else 1,
        )
        await old_store.execute(
            "INSERT INTO indicator_member VALUES ('T-02', $1, $2, $3, 'learners', 'a', $4)",
            kind,
            start,
            DIMS,
            2 if merged else 1,
        )
        for event_id, month, order_key, amount in ((deal_april, APRIL, "2", 4), (deal_may, MAY, "1", 6)):
            if merged or start == month:
                await old_store.execute(
                    "INSERT INTO indicator_report VALUES ('T-03', $1, $2, $3, 'deals', 'd', $4, $5, $6)",
                    kind,
                    start,
                    DIMS,
                    event_id,
                    order_key,
                    Decimal(amount),
                )
    await old_store.execute(
        "INSERT INTO indicator_outbox (indicator, period_kind, period_start, dims)"
        " VALUES ('T-01', 'year', $1, $2)",
        YEAR,
        DIMS,
    )

    applied = await postgres.migrate(old_store)

    assert applied[0].startswith("0160")
    for table in ("indicator_part", "indicator_member", "indicator_report"):
        kinds = await old_store.fetch(f"SELECT DISTINCT period_kind FROM {table}")  # noqa: S608  # fixed names
        assert [row[0] for row in kinds] == ["month"]
    values: dict[tuple[str, str, date], tuple[Decimal, int]] = {
        (key[0], key[1], key[2]): (value, count)
        for key, (_, value, count) in (await cell_parts(old_store)).items()
    }
    for kind, start in (("quarter", Q2), ("year", YEAR)):
        assert values[("T-01", kind, start)] == (Decimal(10), 2)
        assert values[("T-02", kind, start)] == (Decimal(1), 2)
        # The report ordered last (April's "2") wins across the months; both reports back it.
        assert values[("T-03", kind, start)] == (Decimal(4), 2)
    assert values[("T-03", "month", MAY)] == (Decimal(6), 1)
    # A mark left by the old relay for a year cell is still there to publish.
    assert await old_store.fetchval("SELECT count(*) FROM indicator_outbox WHERE period_kind = 'year'") == 1
