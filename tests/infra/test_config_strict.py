"""Strict configuration: unknown keys and variables are errors with a suggestion; no error shows a secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.config_check import ConfigurationError
from infra.settings import load_settings
from tests.support.processes import REPO_ROOT

CANARY = "CANARY-S3CRET-7f1c9e"


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alcance.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_misspelt_toml_key_names_the_key_its_table_and_the_closest_name(tmp_path: Path) -> None:
    config = _toml(tmp_path, "[processor]\nsmall_cel_threshold = 3\n")
    with pytest.raises(ConfigurationError) as failure:
        load_settings(config, environ={})
    assert str(failure.value) == (
        f"{config}: unknown key 'small_cel_threshold' in [processor] (did you mean small_cell_threshold?)"
    )


def test_a_misspelt_key_of_a_source_table_is_an_error_that_does_not_quote_the_secret(tmp_path: Path) -> None:
    config = _toml(
        tmp_path, f'[[sources]]\nname = "lrs"\nkind = "xapi"\nendpoint = "http://x/"\npasword = "{CANARY}"\n'
    )
    with pytest.raises(ConfigurationError) as failure:
        load_settings(config, environ={})
    assert "unknown key 'pasword' in [sources[0]] (did you mean password?)" in str(failure.value)
    assert CANARY not in str(failure.value)


def test_a_misspelt_environment_variable_is_an_error_with_the_closest_name() -> None:
    with pytest.raises(ConfigurationError) as failure:
        load_settings(environ={"ALCANCE_KAFKA__BOOTSTRAP_SERVER": "broker:9093"})
    assert str(failure.value) == (
        "unknown environment variable ALCANCE_KAFKA__BOOTSTRAP_SERVER "
        "(did you mean ALCANCE_KAFKA__BOOTSTRAP_SERVERS?)"
    )


def test_whole_sections_as_json_variables_stay_valid() -> None:
    # The form `settings_as_environment` gives child processes.
    environ = {"ALCANCE_KAFKA": "{}", "ALCANCE_SOURCES": "[]", "alcance_state_dir": "x"}
    load_settings(environ=environ)


def test_an_unknown_environment_variable_far_from_every_setting_points_to_the_list() -> None:
    with pytest.raises(ConfigurationError, match=r"ALCANCE_ZZZ \(\.env\.example lists every setting\)"):
        load_settings(environ={"ALCANCE_ZZZ": "1"})


def test_a_toml_syntax_error_gives_the_file_line_and_column(tmp_path: Path) -> None:
    config = _toml(tmp_path, f'[[sources]\nname = "a"\ntoken = "{CANARY}"\n')
    with pytest.raises(ConfigurationError) as failure:
        load_settings(config, environ={})
    assert str(failure.value).startswith(f"{config} is not valid TOML: ")
    assert "line 1, column" in str(failure.value)


def test_a_secret_of_the_wrong_type_is_reported_without_its_value(tmp_path: Path) -> None:
    # The case: a table missing a field printed the whole table, password included.
    config = _toml(tmp_path, f'[[sources]]\nname = "lrs"\nkind = "xapi"\ntoken = "{CANARY}"\npassword = 7\n')
    with pytest.raises(ConfigurationError) as failure:
        load_settings(config, environ={})
    message = str(failure.value)
    assert "sources.0.endpoint: Field required" in message
    assert "sources.0.password: Input should be a valid string" in message
    assert CANARY not in message and "7" not in message.split("environment")[-1]
    # Nothing chained: a traceback would show pydantic's text, which quotes the input.
    assert failure.value.__cause__ is None and failure.value.__suppress_context__


FAILING_CONFIGS = {
    "misspelt key": f'[[sources]]\nname = "a"\nkind = "xapi"\nendpoint = "http://x/"\ntokn = "{CANARY}"\n',
    "missing field": f'[[sources]]\nname = "a"\nkind = "xapi"\ntoken = "{CANARY}"\n',
    "bad name": (
        f'[[sources]]\nname = "Not Valid"\nkind = "xapi"\nendpoint = "http://x/"\npassword = "{CANARY}"\n'
    ),
    "repeated name": (
        f'[[sources]]\nname = "a"\nkind = "xapi"\nendpoint = "http://x/"\ntoken = "{CANARY}"\n'
        f'[[sources]]\nname = "a"\nkind = "plgn"\nendpoint = "http://y/"\npassword = "{CANARY}"\n'
    ),
    "unknown kind": f'[[sources]]\nname = "a"\nkind = "xapy"\nendpoint = "http://x/"\ntoken = "{CANARY}"\n',
    "syntax error": f'[[sources]]\nname = "a"\ntoken = "{CANARY}"\nkind = \n',
}


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize("mistake", sorted(FAILING_CONFIGS))
def test_a_canary_secret_never_appears_in_any_output_of_a_failing_run(
    mistake: str, debug: bool, tmp_path: Path
) -> None:
    config = _toml(tmp_path, FAILING_CONFIGS[mistake])
    argv = [
        sys.executable,
        "-m",
        "alcance.cli",
        *(["--debug"] if debug else []),
        "run",
        "--config",
        str(config),
    ]
    environment = {
        "PATH": "/usr/bin:/bin",
        "ALCANCE_STATE_DIR": str(tmp_path / "state"),
        "ALCANCE_LOG__LEVEL": "DEBUG",
    }
    done = subprocess.run(
        argv, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 3, done.stderr
    assert CANARY not in done.stdout + done.stderr
    if not debug:
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) <= 2, done.stderr
    else:
        assert "Traceback" in done.stderr


def test_an_openid_role_claim_with_spaces_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match=r"web\.oidc_role_claim: String should match pattern"):
        load_settings(environ={}, web={"oidc_role_claim": "realm roles"})
