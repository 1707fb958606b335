"""CVF-16 targets are set from the TOML file or the command line, never by hand-written SQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from alcance.cli import main
from infra.config_check import ConfigurationError
from infra.settings import Settings, load_settings
from infra.targets import apply_configured_targets, list_targets

pytestmark = pytest.mark.usefixtures("restore_logging")

TARGETS_TOML = """
[[reach_targets]]
audience = "MSME"
year = 2026
target = 120
source = "Programa de Actividades 2026"

[[reach_targets]]
audience = "TPO_AUTHORITY"
year = 2026
target = 30
"""


async def test_targets_of_the_toml_file_reach_the_store(tmp_path: Path, pg_pool: asyncpg.Pool) -> None:
    config = tmp_path / "alcance.toml"
    config.write_text(TARGETS_TOML, encoding="utf-8")
    await apply_configured_targets(pg_pool, load_settings(config, environ={}))
    stored = [(t.year, t.audience, t.target, t.source) for t in await list_targets(pg_pool)]
    assert stored == [
        (2026, "MSME", 120, "Programa de Actividades 2026"),
        (2026, "TPO_AUTHORITY", 30, "Programa de Actividades"),
    ]
    # Applying the file again replaces, it does not add.
    await apply_configured_targets(pg_pool, load_settings(config, environ={}))
    assert len(await list_targets(pg_pool)) == 2


def test_a_target_for_an_audience_outside_art_7_names_the_valid_ones(tmp_path: Path) -> None:
    config = tmp_path / "alcance.toml"
    config.write_text('[[reach_targets]]\naudience = "ACADEMIA"\nyear = 2026\ntarget = 5\n', encoding="utf-8")
    with pytest.raises(ConfigurationError) as failure:
        load_settings(config, environ={})
    message = str(failure.value)
    assert "reach_targets.0.audience: Input should be 'TPO_AUTHORITY', 'BUSINESS_CHAMBER'" in message


def _point_at(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    assert settings.postgres.dsn is not None
    monkeypatch.setenv("ALCANCE_POSTGRES__DSN", settings.postgres.dsn.get_secret_value())
    monkeypatch.setenv("ALCANCE_POSTGRES__DB_SCHEMA", settings.postgres.db_schema)


async def test_targets_set_from_the_command_line_are_listed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _point_at(monkeypatch, settings)
    argv = ["targets", "set", "--audience", "msme", "--year", "2027", "--target", "80"]
    argv += ["--source", "Plan 2027"]
    # `main` runs its own event loop: run it outside this test's loop.
    assert await asyncio.to_thread(main, argv) == 0
    assert await asyncio.to_thread(main, ["targets", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "2027\tMSME\t80\tPlan 2027"


def test_targets_set_without_its_values_says_which_are_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets", "set", "--audience", "MSME"]) == 2
    assert capsys.readouterr().err.strip() == "alcance: targets set needs --year, --target"


def test_targets_set_with_a_non_positive_target_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets", "set", "--audience", "MSME", "--year", "2026", "--target", "0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "alcance: invalid configuration (the command line): target: Input should be greater than 0"
    )
