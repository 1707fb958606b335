"""The PLGN feed contract at the edge: checking an item against it, and what a broken item keeps.

The contract is `schemas/feeds/plgn-activity.schema.json` (JSON Schema draft 2020-12). An item that
breaks it is dead-lettered with the first violation as the reason (no input values in it) and a copy
without names, e-mails or free text, its firms' ids as keyed pseudonyms. The directory's consent
ledger checks the same contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

FEED_SCHEMA_FILE = "plgn-activity.schema.json"
# Properties whose values may be personal or free text: removed from dead-lettered copies.
# Dead letters keep these references only as keyed organisation pseudonyms (see `scrubbed`).
_FIRM_REFERENCES = frozenset({"actor", "object", "target", "attributedTo"})
# Properties that may hold an embedded organisation (`{"id": ..., "country": ...}`), typed or not.
_EMBEDDED_FIRMS = frozenset({"actor", "attributedTo", "audience", "absentee"})
_FIRM_OBJECTS = frozenset({"Organization", "DirectoryAuthorisation"})
_PERSONAL_KEYS = frozenset(
    {"name", "nameMap", "email", "content", "contentMap", "summary", "summaryMap", "preferredUsername",
     "contact", "telephone", "taxId", "url", "icon", "image"}
)  # fmt: skip


@lru_cache(maxsize=1)
def feed_validator() -> jsonschema.protocols.Validator:
    """The feed-contract validator, built once per process (compiling the schema is the slow part)."""
    text = resources.files("schemas").joinpath("feeds", FEED_SCHEMA_FILE).read_text(encoding="utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return validator


def contract_violation(item: Any) -> str | None:
    """The first violation of the feed contract by `item`, as a reason without input values, or None."""
    error = jsonschema.exceptions.best_match(feed_validator().iter_errors(item))
    if error is None:
        return None
    where = "/" + "/".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        # The message names the missing property only.
        return f"feed contract: {where}: {error.message}"
    if error.validator in {"enum", "const"}:
        return f"feed contract: {where}: value not allowed"
    return f"feed contract: {where}: fails {error.validator}"


def scrubbed(value: Any, org: Callable[[str], str]) -> Any:
    """`value` with names, e-mails and free text removed and every firm id replaced by `org(id)`."""
    if isinstance(value, list):
        return [scrubbed(item, org) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if key in _PERSONAL_KEYS:
            kept[key] = "<removed>"
        elif key in _FIRM_REFERENCES and isinstance(item, str):
            # An actor is always a firm; a bare object or target may be one: never its native id.
            kept[key] = org(item)
        elif key in _EMBEDDED_FIRMS and isinstance(item, dict) and isinstance(item.get("id"), str):
            # An embedded firm (`{"id": ..., "country": ...}`), typed or not: its id as a pseudonym.
            kept[key] = {**scrubbed(item, org), "id": org(item["id"])}
        elif key == "id" and value.get("type") in _FIRM_OBJECTS and isinstance(item, str):
            kept[key] = org(item)
        else:
            kept[key] = scrubbed(item, org)
    return kept
