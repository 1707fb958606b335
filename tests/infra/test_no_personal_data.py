"""Nothing personal leaves the edge: a complete run leaves no e-mail, name, tax id or native organisation
id of the simulated world in any topic (dead letters included), any table of the store, or its logs; the
PLGN directory's fields (names, e-mails, phones, websites, tax ids) live in its own schema only."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from connectors.simulators.generator import generate
from connectors.simulators.plgn_directory import directory_from_world
from infra.kafka import client_kwargs, read_topic_to_end
from infra.local import LocalStack
from infra.settings import load_settings
from tests.conftest import make_state_dir
from tests.infra.test_run_pipeline import SEED, _run_until_idle


def personal_patterns() -> re.Pattern[str]:
    """Every e-mail, name and tax id of the simulated world, and its native organisation ids."""
    world = generate(SEED)
    literals = {learner.email for learner in world.learners} | {learner.name for learner in world.learners}
    literals |= {firm.name for firm in world.firms} | {firm.tax_id for firm in world.firms}
    literals |= directory_literals()
    org_ids = {firm.org_id for firm in world.firms}
    alternatives = [re.escape(text) for text in sorted(literals, key=len, reverse=True)]
    # A native id is found whole, not as part of a longer one (firm-1 in firm-12).
    alternatives += [
        rf"(?<!\w){re.escape(org_id)}(?!\w)" for org_id in sorted(org_ids, key=len, reverse=True)
    ]
    return re.compile("|".join(alternatives))


def directory_literals() -> set[str]:
    """Every value PLGN's directory endpoint serves that names or reaches a firm or a person."""
    found: set[str] = set()
    for record in directory_from_world(generate(SEED)):
        contact = record["contact"]
        found |= {record["legalName"], record["taxId"], record["website"]}
        found |= {contact["name"], contact["email"], contact["telephone"]}
    return found


@pytest.fixture(scope="module")
async def finished_run() -> AsyncIterator[tuple[Path, str]]:
    state_dir = make_state_dir()
    try:
        output = await _run_until_idle(state_dir)
        yield state_dir, output
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


async def _everything_stored(state_dir: Path, schema: str = "alcance") -> list[tuple[str, str]]:
    """(where, text) of every record of every topic and every row of every table of `schema` of the run."""
    found: list[tuple[str, str]] = []
    stack = LocalStack(state_dir)
    await stack.start()
    try:
        settings = stack.resolve(load_settings(state_dir=state_dir))
        admin = AIOKafkaAdminClient(**client_kwargs(settings.kafka))
        await admin.start()
        try:
            topics = [name for name in await admin.list_topics() if name.startswith("alcance.")]
        finally:
            await admin.close()
        for topic in topics:
            for record in await read_topic_to_end(settings.kafka, topic):
                headers = " ".join(f"{name}={value!r}" for name, value in record.headers)
                text = f"{record.key!r} {record.value!r} {headers}"
                found.append(
                    (f"topic {topic}@{record.offset}", text.encode().decode("unicode_escape", "replace"))
                )
        connection = await asyncpg.connect(stack.dsn)
        try:
            tables = await connection.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
                schema,
            )
            for table in tables:
                name = table["table_name"]
                # The names come from the store's own catalogue.
                query = f'SELECT t::text AS row FROM "{schema}"."{name}" t'  # noqa: S608
                for row in await connection.fetch(query):
                    found.append((f"table {name}", row["row"]))
        finally:
            await connection.close()
    finally:
        await stack.stop()
    return found


async def test_no_topic_table_or_log_holds_personal_data_of_the_sources(
    finished_run: tuple[Path, str],
) -> None:
    state_dir, output = finished_run
    pattern = personal_patterns()
    stored = await _everything_stored(state_dir)
    assert len(stored) > 1_000, "the run stored records and rows to scan"
    logs = [
        ("run output", output),
        *((f"log {p.name}", p.read_text(errors="replace")) for p in state_dir.glob("*.log")),
    ]
    leaks = [(where, match.group(0)) for where, text in [*stored, *logs] for match in pattern.finditer(text)]
    assert leaks == [], f"{len(leaks)} leaks, first: {leaks[:10]}"


async def test_the_directory_fields_are_in_the_directory_schema_only(finished_run: tuple[Path, str]) -> None:
    state_dir, _ = finished_run
    pattern = re.compile(
        "|".join(re.escape(text) for text in sorted(directory_literals(), key=len, reverse=True))
    )
    # The run synced the directory: its own schema holds authorised names, e-mails and websites...
    rows = [text for where, text in await _everything_stored(state_dir, "directory") if where == "table firm"]
    assert rows and all(pattern.search(text) for text in rows)
    # ...and neither a topic nor the evaluation store's schema holds any of them.
    stored = await _everything_stored(state_dir)
    leaks = [(where, match.group(0)) for where, text in stored for match in pattern.finditer(text)]
    assert leaks == [], f"{len(leaks)} leaks, first: {leaks[:10]}"
