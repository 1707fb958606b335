"""Migration 0150: the read-model views exist, are documented, and the catalogue rows are current."""

from __future__ import annotations

import re
from importlib import resources

import asyncpg

from processors.indicators.catalogue import INDICATORS


def _migration(name: str) -> str:
    return resources.files("infra.migrations").joinpath(name).read_text(encoding="utf-8")


def test_the_first_catalogue_block_holds_no_indicator_the_catalogue_dropped() -> None:
    found = re.search(r"VALUES\n(.*?)-- END GENERATED", _migration("0150_read_model.sql"), re.S)
    assert found is not None
    first = set(re.findall(r"^    \('([A-Z]+-\d+)'", found.group(1), re.M))
    assert "CVF-01" in first
    assert first <= {entry.id for entry in INDICATORS}


async def test_a_migrated_store_describes_exactly_the_catalogues_indicators(pg_pool: asyncpg.Pool) -> None:
    rows = await pg_pool.fetch(
        "SELECT id, family, article, name_es, name_pt, name_en, unit, dimensions, cumulative, formula,"
        " definition FROM indicator_definition"
    )
    stored = {row["id"]: tuple(row.values())[1:] for row in rows}
    expected = {
        entry.id: (
            entry.family,
            entry.article,
            entry.name_es,
            entry.name_pt,
            entry.name_en,
            entry.unit,
            list(entry.dimensions),
            entry.cumulative,
            entry.formula,
            entry.definition,
        )
        for entry in INDICATORS
    }
    assert stored == expected


async def test_views_are_documented_for_bi_tools(pg_pool: asyncpg.Pool) -> None:
    rows = await pg_pool.fetch(
        "SELECT c.relname, obj_description(c.oid) AS comment FROM pg_class c"
        " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'v'"
    )
    views = {row["relname"]: row["comment"] for row in rows}
    documented = ("indicator_member_live", "indicator_latest", "cvf_enrolment", "cvf_plgn_conversion")
    for name in (*documented, "indicator_snapshot_value"):
        assert views.get(name), f"view {name} missing or undocumented"
