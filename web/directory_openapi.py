"""The directory's routes in the OpenAPI document (hand-written: they answer plain JSON, not table models)."""

from __future__ import annotations

from typing import Any

from web.api.base import PREFIX

_PROBLEM = {"application/problem+json": {"schema": {"type": "object"}}}


def _responses(ok: str, ok_schema: dict[str, Any], *errors: tuple[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {
        "200": {"description": ok, "content": {"application/json": {"schema": ok_schema}}}
    }
    for status, description in (("401", "No or an invalid token"), *errors):
        found[status] = {"description": description, "content": _PROBLEM}
    return found


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_FIRM = {
    "type": "object",
    "required": ["ref"],
    "description": "A firm's authorised fields only (legalName, country, sector, hsChapters, sizeBand, ...).",
    "properties": {"ref": {"type": "string"}},
    "additionalProperties": True,
}
_DENIED = ("403", "Not a member state's identity (the denial is logged)")
_NOT_A_STATE = ("403", "Not a member state's identity")
_ROW_NUMBER = {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999}
_NOTICE = {
    "type": "object",
    "required": ["id", "ref", "fields", "delete", "noticed_at", "acknowledged_at"],
    "description": "A firm's record, or some of its fields, the state received and may no longer hold.",
    "properties": {
        "id": {"type": "integer"},
        "ref": {"type": "string"},
        "fields": {"type": "array", "items": {"type": "string"}},
        "delete": {"enum": ["record", "fields"]},
        "noticed_at": {"type": "string", "format": "date-time"},
        "acknowledged_at": {"type": ["string", "null"], "format": "date-time"},
    },
}


def directory_paths() -> dict[str, Any]:
    """The path items of the directory's routes."""
    two_digits = {"type": "string", "pattern": "^[0-9]{2}$"}
    return {
        f"{PREFIX}/directory/firms": {
            "get": {
                "operationId": "listDirectoryFirms",
                "summary": "Firms authorised for the caller's member state (one page, at most 50)",
                "tags": ["directory"],
                "parameters": [
                    _query("sector", "ISIC Rev.4 division", two_digits),
                    _query("hs_chapter", "HS chapter", two_digits),
                    _query("country", "ISO 3166-1 alpha-2", {"type": "string", "pattern": "^[A-Z]{2}$"}),
                    _query("size", "size band", {"enum": ["MICRO", "SMALL", "MEDIUM", "LARGE", "UNKNOWN"]}),
                    _query("after", "the last reference of the previous page", {"type": "string"}),
                    _query("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 50}),
                ],
                "responses": _responses(
                    "One page",
                    {
                        "type": "object",
                        "properties": {
                            "firms": {"type": "array", "items": _FIRM},
                            "next_after": {"type": ["string", "null"]},
                        },
                    },
                    ("400", "A filter is not valid"),
                    _DENIED,
                ),
            }
        },
        f"{PREFIX}/directory/firms/{{ref}}": {
            "get": {
                "operationId": "getDirectoryFirm",
                "summary": "One firm's fields authorised for the caller's member state",
                "tags": ["directory"],
                "parameters": [{"name": "ref", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": _responses(
                    "The firm", _FIRM, ("400", "Not a firm reference"), _DENIED, ("404", "Not shared")
                ),
            }
        },
        f"{PREFIX}/directory/access-log": {
            "get": {
                "operationId": "getDirectoryAccessLog",
                "summary": "Directory reads and denials, for coordinators",
                "tags": ["directory"],
                "parameters": [_query("after", "row number", _ROW_NUMBER)],
                "responses": _responses(
                    "Rows after `after`",
                    {
                        "type": "object",
                        "properties": {"rows": {"type": "array", "items": {"type": "object"}}},
                    },
                    ("400", "`after` is not a row number"),
                    ("403", "Not a coordinator"),
                ),
            }
        },
        f"{PREFIX}/directory/notices": {
            "get": {
                "operationId": "listWithdrawalNotices",
                "summary": "Withdrawal notices to the caller's member state: what it received, to delete",
                "tags": ["directory"],
                "parameters": [
                    _query("after", "the last notice id of the previous page", _ROW_NUMBER),
                    _query("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 50}),
                ],
                "responses": _responses(
                    "One page, oldest first",
                    {
                        "type": "object",
                        "properties": {
                            "notices": {"type": "array", "items": _NOTICE},
                            "next_after": {"type": ["integer", "null"]},
                        },
                    },
                    ("400", "A parameter is not valid"),
                    _NOT_A_STATE,
                ),
            }
        },
        f"{PREFIX}/directory/notices/{{id}}/acknowledgement": {
            "post": {
                "operationId": "acknowledgeWithdrawalNotice",
                "summary": "Acknowledge a withdrawal notice once the copies it names are deleted",
                "tags": ["directory"],
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "description": "The notice id",
                        "schema": {"type": "string", "pattern": "^[0-9]{1,15}$"},
                    }
                ],
                "responses": _responses(
                    "Acknowledged",
                    {"type": "object", "properties": {"acknowledged": {"type": "boolean"}}},
                    ("400", "Not a notice id"),
                    _NOT_A_STATE,
                    ("404", "No such notice for the caller's member state"),
                ),
            }
        },
        f"{PREFIX}/consents/{{id}}/withdrawal": {
            "post": {
                "operationId": "withdrawConsent",
                "summary": "Withdraw a consent (PLGN's client); effective for the next query",
                "tags": ["directory"],
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "description": "PLGN's consent id, URL-encoded",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": _responses(
                    "Withdrawn",
                    {"type": "object", "properties": {"withdrawn": {"type": "boolean"}}},
                    ("403", "Not PLGN's client"),
                    ("404", "No such consent"),
                ),
            }
        },
    }
