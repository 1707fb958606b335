"""The `alcance` command line: arguments, configuration errors, light commands."""

import json
from pathlib import Path

import pytest

from alcance.cli import main

pytestmark = pytest.mark.usefixtures("restore_logging")


def test_connectors_list_names_every_installed_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connectors", "list"]) == 0
    kinds = {line.split("\t")[0] for line in capsys.readouterr().out.splitlines()}
    assert {"xapi", "moodle", "plgn", "costs"} <= kinds


def test_catalogue_gives_names_in_spanish_portuguese_and_english(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalogue"]) == 0
    entries = json.loads(capsys.readouterr().out)
    ids = {entry["id"] for entry in entries}
    assert {"CVF-01", "CVF-02", "PLGN-16", "ACT-07", "ACT-13"} <= ids
    for entry in entries:
        assert set(entry["names"]) == {"es", "pt", "en"} and all(entry["names"].values())
        assert entry["article"] and entry["formula"]


@pytest.mark.parametrize("position", ["before", "after"])
def test_a_missing_config_file_is_reported_wherever_the_option_stands(
    position: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "absent.toml")
    argv = ["--config", missing, "catalogue"] if position == "before" else ["catalogue", "--config", missing]
    assert main(argv) == 3
    assert "configuration file not found" in capsys.readouterr().err


def test_an_invalid_config_value_is_reported_without_its_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[[sources]]\nname = "Not A Valid Name"\nkind = "xapi"\n'
        'endpoint = "http://x/"\npassword = "hunter2-secret"\n'
    )
    assert main(["run", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "sources.0.name" in err
    assert "hunter2-secret" not in err
