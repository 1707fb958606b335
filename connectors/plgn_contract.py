"""The PLGN feed contract at the edge: checking an item against it, and what a broken item keeps.

The contract is `schemas/feeds/plgn-activity.schema.json` (JSON Schema draft 2020-12). An item that
breaks it is dead-lettered with the first violation as the reason (no input values in it) and a copy
without names, e-mails or free text, its firms' ids as keyed pseudonyms. The directory's consent
ledger checks the same contract, and its sync checks PLGN's directory endpoint against
`schemas/feeds/plgn-directory.schema.json`, which refers to the feed's definitions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache, lru_cache
from importlib.resources import files as resources_files
from typing import Any

import jsonschema
from referencing import Registry, Resource

FEED_SCHEMA_FILE = "plgn-activity.schema.json"
_SCHEMA_BASE = "https://alcance.aladi.org/schemas/feeds/"
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


DIRECTORY_SCHEMA_FILE = "plgn-directory.schema.json"


@lru_cache(maxsize=1)
def _feed_schemas() -> Registry[Any]:
    """The PLGN contracts by their `$id`, so the directory's refers to the feed's definitions."""
    resources = []
    for name in (FEED_SCHEMA_FILE, DIRECTORY_SCHEMA_FILE):
        schema = json.loads(resources_files("schemas").joinpath("feeds", name).read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def _validator(uri: str) -> jsonschema.protocols.Validator:
    """A validator of the (sub)schema at `uri`, built once per process (compiling is the slow part)."""
    registry = _feed_schemas()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": uri}
    cls = jsonschema.validators.validator_for(registry.contents(uri.split("#", 1)[0]))
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(
        schema, registry=registry, format_checker=cls.FORMAT_CHECKER
    )
    return validator


def feed_validator() -> jsonschema.protocols.Validator:
    """The feed-contract validator (one feed item)."""
    return _validator(_SCHEMA_BASE + FEED_SCHEMA_FILE)


def contract_violation(item: Any) -> str | None:
    """The first violation of the feed contract by `item`, as a reason without input values, or None."""
    return _first_violation(feed_validator(), item, "feed contract")


def directory_page_violation(page: Any) -> str | None:
    """The first violation of the directory contract by a page (its items not looked into), or None."""
    return _first_violation(_validator(_SCHEMA_BASE + DIRECTORY_SCHEMA_FILE), page, "directory contract")


def directory_firm_violation(item: Any) -> str | None:
    """The first violation of the directory contract by one firm record of a page, or None."""
    validator = _validator(_SCHEMA_BASE + DIRECTORY_SCHEMA_FILE + "#/$defs/firm")
    return _first_violation(validator, item, "directory contract: firm")


def _first_violation(validator: jsonschema.protocols.Validator, item: Any, contract: str) -> str | None:
    error = jsonschema.exceptions.best_match(validator.iter_errors(item))
    if error is None:
        return None
    where = "/" + "/".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        # The message names the missing property only.
        return f"{contract}: {where}: {error.message}"
    if error.validator in {"enum", "const"}:
        return f"{contract}: {where}: value not allowed"
    return f"{contract}: {where}: fails {error.validator}"


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
