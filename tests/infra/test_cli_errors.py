"""One error style: each expected mistake ends with a short stderr message, the valid choices and its code."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from alcance.cli import main
from alcance.cli_errors import ExitCode
from infra.processes import STATE_DIR_LOCK

pytestmark = pytest.mark.usefixtures("restore_logging")


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip()


def test_an_unknown_indicator_lists_the_valid_ids(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _fails(["indicators", "--json", "--indicator", "NOPE"], capsys)
    assert code == ExitCode.UNKNOWN_CHOICE == 4
    assert err.startswith("alcance: unknown indicator 'NOPE'; valid: CVF-01, CVF-02,")
    assert "PLGN-16" in err and len(err.splitlines()) == 1


def test_indicator_ids_are_case_insensitive() -> None:
    from alcance.cli_errors import resolve_indicator

    assert resolve_indicator("cvf-01") == "CVF-01"
    assert resolve_indicator(" Plgn-16 ") == "PLGN-16"


def test_a_near_miss_indicator_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _fails(["indicators", "--indicator", "CVF-99"], capsys)
    assert code == 4
    assert err.startswith("alcance: unknown indicator 'CVF-99' (did you mean CVF-19?); valid: ")


def test_a_dimension_the_indicator_lacks_is_named_with_its_dimensions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _fails(["indicators", "--indicator", "plgn-16", "--by", "nonsense"], capsys)
    assert code == 4
    assert err == "alcance: PLGN-16 has no dimension 'nonsense'; its dimensions: country, recipient"


def test_a_dimension_no_indicator_has_lists_every_dimension(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _fails(["indicators", "--by", "countri"], capsys)
    assert code == 4
    assert err.startswith(
        "alcance: no indicator has the dimension 'countri' (did you mean country?); dimensions: activity,"
    )


def test_a_dimension_without_an_indicator_says_which_indicators_it_leaves_out(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from alcance import cli
    from processors.indicators.catalogue import INDICATORS

    async def read_nothing(args: object, settings: object) -> int:
        return 0

    # Only the note is under test here, not the read of the store.
    monkeypatch.setattr(cli, "_dispatch", read_nothing)
    assert main(["indicators", "--json", "--by", "Country"]) == 0
    lacking = [entry.id for entry in INDICATORS if "country" not in entry.dimensions]
    assert "ACT-01" in lacking and "PLGN-16" not in lacking
    note = f"alcance: {len(lacking)} indicators lack dimension(s) country and are left out: "
    note += ", ".join(lacking)
    assert note in capsys.readouterr().err.splitlines()


def test_an_unknown_connector_kind_lists_the_installed_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "kind.toml"
    config.write_text('[[sources]]\nname = "lrs"\nkind = "xapy"\nendpoint = "http://x/"\n')
    code, err = _fails(["run", "--config", str(config)], capsys)
    assert code == ExitCode.CONFIGURATION == 3
    assert err == (
        "alcance: source 'lrs': unknown connector kind 'xapy' (did you mean xapi?); "
        "installed kinds: costs, moodle, plgn, xapi"
    )


def test_an_unknown_source_option_is_named_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "options.toml"
    config.write_text(
        '[[sources]]\nname = "lrs"\nkind = "xapi"\nendpoint = "http://x/"\n'
        '[sources.options]\nversoin = "2.0"\n'
    )
    code, err = _fails(["run", "--config", str(config)], capsys)
    assert code == 3
    assert err == (
        "alcance: invalid configuration ([sources.options] of source 'lrs'): "
        "versoin: Extra inputs are not permitted"
    )


def test_a_toml_syntax_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[processor\nsmall_cell_threshold = 3\n")
    code, err = _fails(["catalogue", "--config", str(config)], capsys)
    assert code == 3
    assert err.startswith(f"alcance: {config} is not valid TOML: ") and "(at line 1, column" in err


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "indicators", "--indicator", "NOPE"]) == 4
    assert "Traceback" in capsys.readouterr().err


def test_indicators_while_a_stack_holds_the_state_directory_is_a_clean_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    # The lock `alcance stack` holds on its state directory while it runs.
    with (state_dir / STATE_DIR_LOCK).open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4242\n")
        lock.flush()
        monkeypatch.setenv("ALCANCE_STATE_DIR", str(state_dir))
        monkeypatch.delenv("ALCANCE_POSTGRES__DSN", raising=False)
        code, err = _fails(["indicators", "--json"], capsys)
    assert code == ExitCode.STATE_DIR_BUSY == 5
    lines = err.splitlines()
    assert lines[-2] == (
        f"alcance: {state_dir} is used by another running local stack (process 4242); "
        "stop it or choose another state_dir"
    )
    assert lines[-1] == (
        "set ALCANCE_POSTGRES__DSN to the store `alcance stack` printed, or use another state_dir"
    )


@pytest.mark.parametrize("exists", [False, True], ids=["missing", "without-store"])
def test_a_new_or_empty_state_directory_is_named(
    exists: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from alcance.cli_errors import note_state_directory
    from infra.settings import load_settings

    state_dir = tmp_path / "elsewhere"
    if exists:
        state_dir.mkdir()
    note_state_directory(load_settings(environ={}, state_dir=state_dir))
    expected = "holds no store yet: one is created" if exists else "does not exist: a new store is created"
    assert capsys.readouterr().err == f"alcance: state directory {state_dir} {expected}\n"
    (state_dir / "postgres").mkdir(parents=True)
    note_state_directory(load_settings(environ={}, state_dir=state_dir))
    assert capsys.readouterr().err == ""


def test_a_local_stack_that_fails_on_its_own_is_not_called_busy(tmp_path: Path) -> None:
    from alcance.cli_errors import local_stack_mistake
    from infra.local import LocalStackError
    from infra.settings import load_settings

    settings = load_settings(environ={}, state_dir=tmp_path)
    error = LocalStackError("the local PostgreSQL exited with code 1; its log (x):\nFATAL: something")
    mistake = local_stack_mistake(settings, error)
    assert mistake.code == ExitCode.LOCAL_STACK_FAILED == 6
    assert str(mistake) == (
        f"the local PostgreSQL exited with code 1; its log (x): (logs in {tmp_path}; --debug for more)"
    )
