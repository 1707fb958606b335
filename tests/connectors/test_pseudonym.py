"""Pseudonyms: stable, keyed, separate for people and organisations, local keys created once with 0600."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.pseudonym import KEYS_FILE_NAME, Pseudonymiser
from infra.settings import PseudonymSettings, load_settings


def test_same_identifier_same_pseudonym_after_normalisation() -> None:
    p = Pseudonymiser(b"k" * 32, b"o" * 32)
    assert p.person("Ana@Example.org ") == p.person("ana@example.org")
    assert p.person("ana@example.org") != p.person("luis@example.org")
    assert p.person("ana@example.org").startswith("p-") and len(p.person("x")) == 34


def test_person_and_org_keys_are_separate_and_keyed() -> None:
    a = Pseudonymiser(b"k" * 32, b"o" * 32)
    b = Pseudonymiser(b"K" * 32, b"o" * 32)
    assert a.person("123") != b.person("123")
    assert a.org("123") == b.org("123")
    assert a.person("123")[2:] != a.org("123")[2:]


def test_missing_keys_are_created_once_with_owner_only_permissions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = load_settings(state_dir=tmp_path)
    first = Pseudonymiser.from_settings(settings)
    keys = tmp_path / KEYS_FILE_NAME
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    again = Pseudonymiser.from_settings(settings)
    assert first.person("ana@example.org") == again.person("ana@example.org")
    content = keys.read_text()
    assert content not in caplog.text and "keys hidden" in repr(first)


def test_configured_keys_win_over_the_local_file(tmp_path: Path) -> None:
    configured = load_settings(
        state_dir=tmp_path,
        pseudonym=PseudonymSettings(person_key=SecretStr("p" * 20), org_key=SecretStr("o" * 20)),
    )
    assert Pseudonymiser.from_settings(configured).person("x") == Pseudonymiser(b"p" * 20, b"o" * 20).person(
        "x"
    )
    assert not (tmp_path / KEYS_FILE_NAME).exists()


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymiser(b"short", b"o" * 32)
