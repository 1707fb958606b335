"""Generate the JSON Schema files in `schemas/jsonschema/` from the pydantic models.

Run `python -m schemas.jsonschema_gen` after changing a model, and commit the result; with `--check`
it only reports stale files (exit status 1), which is what the test suite does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.events.base import Event
from schemas.indicators import INDICATOR_SCHEMA_ID, INDICATOR_SCHEMA_VERSION, IndicatorValue
from schemas.registry import ALL_EVENT_CLASSES, event_type_of, schema_id, schema_version_of

SCHEMA_DIR = Path(__file__).parent / "jsonschema"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _fix_dict_keys(node: Any) -> Any:
    """Make dict key constraints strict: pydantic emits `patternProperties`, which lets other keys through.

    A single pattern becomes `propertyNames` plus `additionalProperties`, which rejects what the model
    rejects.
    """
    if isinstance(node, list):
        return [_fix_dict_keys(item) for item in node]
    if not isinstance(node, dict):
        return node
    fixed = {key: _fix_dict_keys(value) for key, value in node.items()}
    patterns = fixed.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in fixed:
        ((pattern, value_schema),) = patterns.items()
        del fixed["patternProperties"]
        fixed["propertyNames"] = {"pattern": pattern}
        fixed["additionalProperties"] = value_schema
    return fixed


def _document(model: type[BaseModel], schema_uri: str, extra: dict[str, Any]) -> dict[str, Any]:
    body = _fix_dict_keys(model.model_json_schema(mode="validation"))
    return {
        "$schema": DIALECT,
        "$id": schema_uri,
        "$comment": f"Generated from {model.__module__}.{model.__qualname__} by "
        "`python -m schemas.jsonschema_gen`; do not edit by hand.",
        **extra,
        **body,
    }


def event_schema(cls: type[Event]) -> dict[str, Any]:
    """The JSON Schema document of one event class."""
    event_type = event_type_of(cls)
    extra: dict[str, Any] = {"x-names": dict(cls.names), "x-family": cls.family}
    if cls.subject_field is not None:
        # JSON Schema cannot compare two fields; the model enforces this rule.
        extra["x-subject-key-equals"] = cls.subject_field
    return _document(cls, schema_id(event_type, schema_version_of(cls)), extra)


def file_name(cls: type[Event]) -> str:
    """File name of the schema of an event class: `<event_type>.v<version>.schema.json`."""
    return f"{event_type_of(cls)}.v{schema_version_of(cls)}.schema.json"


INDICATOR_FILE = f"indicator.v{INDICATOR_SCHEMA_VERSION}.schema.json"


def generate() -> dict[str, str]:
    """Every schema file's name and exact text."""
    documents = {file_name(cls): event_schema(cls) for cls in ALL_EVENT_CLASSES}
    documents[INDICATOR_FILE] = _document(IndicatorValue, INDICATOR_SCHEMA_ID, {})
    return {name: json.dumps(doc, indent=2, ensure_ascii=False) + "\n" for name, doc in documents.items()}


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing, different from the models, or no longer generated."""
    expected = generate()
    problems = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file() or (directory / name).read_text(encoding="utf-8") != text
    ]
    problems += sorted(path.name for path in directory.glob("*.schema.json") if path.name not in expected)
    return problems


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Rewrite every schema file (and remove ones no model produces); returns the names written."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = generate()
    for path in directory.glob("*.schema.json"):
        if path.name not in expected:
            path.unlink()
    for name, text in expected.items():
        (directory / name).write_text(text, encoding="utf-8")
    return sorted(expected)


def load(name: str, directory: Path = SCHEMA_DIR) -> dict[str, Any]:
    """Read one committed schema file."""
    document: dict[str, Any] = json.loads((directory / name).read_text(encoding="utf-8"))
    return document


def main(argv: list[str] | None = None) -> int:
    """Command line: rewrite the schema files, or with `--check` list stale ones and fail."""
    parser = argparse.ArgumentParser(prog="python -m schemas.jsonschema_gen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        for name in problems:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if problems else 0
    for name in write():
        print(f"wrote {SCHEMA_DIR / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
