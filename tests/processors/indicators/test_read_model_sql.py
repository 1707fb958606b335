"""Migration 0150: the read-model views exist, are documented, and the catalogue rows are current."""

from __future__ import annotations

import re
from importlib import resources

import asyncpg

from processors.indicators.catalogue import INDICATORS, definitions_sql


def _migration() -> str:
    return resources.files("infra.migrations").joinpath("0150_read_model.sql").read_text(encoding="utf-8")


def test_generated_catalogue_rows_match_the_catalogue() -> None:
    found = re.search(r"VALUES\n(.*?)-- END GENERATED", _migration(), re.S)
    assert found is not None
    assert found.group(1) == definitions_sql()


async def test_views_are_documented_for_bi_tools(pg_pool: asyncpg.Pool) -> None:
    rows = await pg_pool.fetch(
        "SELECT c.relname, obj_description(c.oid) AS comment FROM pg_class c"
        " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'v'"
    )
    views = {row["relname"]: row["comment"] for row in rows}
    for name in ("indicator_member_live", "indicator_latest", "cvf_enrolment", "cvf_plgn_conversion"):
        assert views.get(name), f"view {name} missing or undocumented"
    ids = {row["id"] for row in await pg_pool.fetch("SELECT id FROM indicator_definition")}
    assert ids == {entry.id for entry in INDICATORS}
