"""The settings tree: environment, TOML file, secrets."""

from pathlib import Path

import pytest

from infra.config_check import ConfigurationError
from infra.settings import load_settings

EXAMPLE_TOML = Path(__file__).resolve().parents[2] / "alcance.example.toml"


def test_nested_environment_variables_reach_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALCANCE_KAFKA__BOOTSTRAP_SERVERS", "broker-1:9093")
    monkeypatch.setenv("ALCANCE_PROCESSOR__BATCH_MAX_RECORDS", "750")
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "broker-1:9093"
    assert settings.processor.batch_max_records == 750


def test_example_toml_lists_its_sources_and_keeps_secrets_hidden() -> None:
    settings = load_settings(EXAMPLE_TOML)
    assert [(source.name, source.kind) for source in settings.sources] == [
        ("cvf-lrs", "xapi"),
        ("cvf-moodle", "moodle"),
        ("plgn", "plgn"),
    ]
    lrs = settings.sources[0]
    assert lrs.password is not None and lrs.password.get_secret_value() == "change-me"
    assert "change-me" not in repr(settings)
    assert "change-me" not in str(settings.model_dump())


def test_environment_wins_over_the_toml_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALCANCE_KAFKA__TOPIC_PREFIX", "prod.")
    assert load_settings(EXAMPLE_TOML).kafka.topic_prefix == "prod."


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="configuration file not found"):
        load_settings(tmp_path / "absent.toml")


def test_repeated_source_names_are_rejected_without_echoing_secrets(tmp_path: Path) -> None:
    config = tmp_path / "dup.toml"
    config.write_text(
        '[[sources]]\nname = "a"\nkind = "xapi"\nendpoint = "http://x/"\npassword = "s3cr3t-value"\n'
        '[[sources]]\nname = "a"\nkind = "plgn"\nendpoint = "http://y/"\n'
    )
    with pytest.raises(ConfigurationError) as failure:
        load_settings(config)
    assert "source names must be unique, repeated: a" in str(failure.value)
    assert "s3cr3t-value" not in str(failure.value)


def test_invalid_schema_names_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALCANCE_POSTGRES__DB_SCHEMA", "drop table; --")
    with pytest.raises(ConfigurationError):
        load_settings()


def test_settings_survive_the_trip_to_a_child_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from infra.settings_export import settings_as_environment

    original = load_settings(EXAMPLE_TOML, state_dir=tmp_path)
    original = original.model_copy(
        update={"kafka": original.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:9999"})}
    )
    for name, value in settings_as_environment(original).items():
        monkeypatch.setenv(name, value)
    child = load_settings()
    assert child.kafka.bootstrap_servers == "127.0.0.1:9999"
    assert child.state_dir == tmp_path
    assert child.sources[0].password is not None
    assert child.sources[0].password.get_secret_value() == "change-me"
    assert child.model_dump() == original.model_dump()
