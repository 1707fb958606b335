"""Each component picks its own identity from the settings, and the role design grants least privilege."""

from __future__ import annotations

import pytest

from alcance.cli import main
from alcance.cli_errors import ExitCode
from infra.config_check import ConfigurationError
from infra.roles import (
    ADMIN,
    OWNER,
    PROCESSOR,
    PROCESSOR_PRINCIPAL,
    READER,
    READER_PRINCIPAL,
    RELAY_PRINCIPAL,
    WEB,
    AclRule,
    StoreRole,
    acl_rules,
    check_identity_keys,
    connector_principal,
    kafka_settings_for,
    store_settings_for,
)
from infra.settings import load_settings
from infra.store_grants import privileges_of, roles_script
from schemas.topics import FAMILIES, TopicCatalogue


def test_components_use_their_own_logins_from_the_environment_and_fall_back_to_the_shared_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCANCE_KAFKA__SASL_USERNAME", "shared")
    monkeypatch.setenv("ALCANCE_KAFKA__SASL_PASSWORD", "shared-secret")
    monkeypatch.setenv("ALCANCE_KAFKA__LOGINS", '{"processor": {"username": "proc", "password": "canary-1"}}')
    monkeypatch.setenv("ALCANCE_POSTGRES__DSN", "postgresql://owner:canary-2@db/alcance")
    monkeypatch.setenv("ALCANCE_POSTGRES__ROLE_DSNS", '{"web": "postgresql://web:canary-3@db/alcance"}')
    settings = load_settings()
    processor = kafka_settings_for(settings.kafka, PROCESSOR_PRINCIPAL)
    assert processor.sasl_username == "proc"
    assert processor.sasl_password is not None and processor.sasl_password.get_secret_value() == "canary-1"
    assert kafka_settings_for(settings.kafka, RELAY_PRINCIPAL).sasl_username == "shared"
    web = store_settings_for(settings.postgres, WEB).dsn
    assert web is not None and web.get_secret_value() == "postgresql://web:canary-3@db/alcance"
    assert store_settings_for(settings.postgres, PROCESSOR).dsn == settings.postgres.dsn
    assert "canary" not in repr(settings) and "canary" not in str(settings)


def _allowed(rules: list[AclRule], principal_key: str, operation: str) -> set[str]:
    return {
        r.name
        for r in rules
        if r.principal.key == principal_key and r.operation == operation and r.resource == "topic"
    }


def test_acl_rules_give_each_principal_only_its_topics() -> None:
    catalogue = TopicCatalogue("p.")
    rules = acl_rules(catalogue)
    assert all(rule.principal is not ADMIN for rule in rules), "the admin is a super user"
    inputs = {spec.name for spec in catalogue.input_topics()}
    dead_letters = {catalogue.dead_letter(spec).name for spec in catalogue.input_topics()}
    for family in FAMILIES:
        spec = catalogue.family_topic(family)
        key = connector_principal(family).key
        assert _allowed(rules, key, "WRITE") == {spec.name, catalogue.dead_letter(spec).name}
        assert _allowed(rules, key, "READ") == {catalogue.log_identity.name}
    assert _allowed(rules, "processor", "READ") == inputs | {catalogue.log_identity.name}
    assert {(r.principal.key, r.name) for r in rules if r.resource == "group"} == {
        ("processor", catalogue.consumer_group("indicators"))
    }
    assert _allowed(rules, "processor", "WRITE") == dead_letters | {catalogue.indicators.name}
    assert _allowed(rules, RELAY_PRINCIPAL.key, "WRITE") == {catalogue.indicators.name}
    assert _allowed(rules, READER_PRINCIPAL.key, "WRITE") == set()
    assert _allowed(rules, READER_PRINCIPAL.key, "READ") == {
        catalogue.indicators.name,
        catalogue.log_identity.name,
    }


@pytest.mark.parametrize(
    ("role", "name", "kind", "expected"),
    [
        (PROCESSOR, "fact", "r", "SELECT, INSERT, UPDATE, DELETE"),
        (PROCESSOR, "schema_migration", "r", None),
        (PROCESSOR, "web_session", "r", None),
        (PROCESSOR, "indicator_latest", "v", "SELECT"),
        (PROCESSOR, "indicator_outbox_seq", "S", "USAGE, SELECT, UPDATE"),
        (READER, "fact", "r", None),
        (READER, "indicator_part", "r", None),
        (READER, "cvf_enrolment", "v", "SELECT"),
        (READER, "web_session_id_seq", "S", None),
        (WEB, "indicator_part", "r", "SELECT"),
        (WEB, "fact", "r", None),
        (WEB, "kafka_offset", "r", "SELECT"),
        (WEB, "connector_lease", "r", None),
        (WEB, "web_session", "r", "SELECT, INSERT, UPDATE, DELETE"),
        (WEB, "web_session_id_seq", "S", "USAGE, SELECT, UPDATE"),
        (WEB, "indicator_outbox_seq", "S", None),
    ],
)
def test_each_role_gets_only_the_privileges_it_needs(
    role: StoreRole, name: str, kind: str, expected: str | None
) -> None:
    assert privileges_of(role, name, kind) == expected


def test_the_roles_script_creates_every_login_without_writing_a_password() -> None:
    script = roles_script("alcance")
    for login in (OWNER.login, PROCESSOR.login, READER.login, WEB.login):
        assert f"\\password {login}" in script
    assert "PASSWORD" not in script
    assert 'GRANT CONNECT, CREATE ON DATABASE "alcance" TO alcance_owner;' in script


def test_a_misspelt_login_or_role_key_is_a_configuration_error_naming_the_valid_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALCANCE_KAFKA__LOGINS", '{"procesor": {"username": "p", "password": "canary-4"}}')
    monkeypatch.setenv("ALCANCE_POSTGRES__ROLE_DSNS", '{"webb": "postgresql://w:canary-5@db/alcance"}')
    settings = load_settings()
    with pytest.raises(ConfigurationError) as raised:
        check_identity_keys(settings.kafka, settings.postgres)
    message = str(raised.value)
    assert "'procesor' in kafka.logins" in message and "processor" in message.split("procesor", 1)[1]
    assert "'webb' in postgres.role_dsns (valid: processor, reader, web)" in message
    assert "canary" not in message


def test_the_cli_refuses_a_misspelt_key_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALCANCE_POSTGRES__ROLE_DSNS", '{"procesor": "postgresql://p:canary-6@db/alcance"}')
    assert main(["db", "roles"]) == ExitCode.CONFIGURATION
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown key 'procesor' in postgres.role_dsns" in captured.err and "canary" not in captured.err
