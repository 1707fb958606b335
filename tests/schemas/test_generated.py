"""A generated document's command line rewrites its committed file, or with `--check` only judges it."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.generated import document_text, is_stale, rewrite_or_check


def _run(path: Path, document: dict[str, object], *argv: str) -> int:
    return rewrite_or_check(
        list(argv), prog="gen", description=None, path=path, render=lambda: document_text(document)
    )


def test_the_text_is_indented_json_with_its_own_letters_and_a_final_newline() -> None:
    assert document_text({"título": "Año", "n": [1]}) == '{\n  "título": "Año",\n  "n": [\n    1\n  ]\n}\n'


def test_check_fails_on_a_missing_or_different_file_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "doc.json"
    assert _run(path, {"v": 1}, "--check") == 1
    assert not path.exists()
    path.write_text(document_text({"v": 0}), encoding="utf-8")
    assert _run(path, {"v": 1}, "--check") == 1
    assert f"stale: {path}" in capsys.readouterr().err
    assert is_stale(path, document_text({"v": 1}))


def test_without_check_the_file_is_rewritten_and_then_current(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text("old", encoding="utf-8")
    assert _run(path, {"v": 2}) == 0
    assert path.read_text(encoding="utf-8") == document_text({"v": 2})
    assert _run(path, {"v": 2}, "--check") == 0
    assert not is_stale(path, document_text({"v": 2}))
