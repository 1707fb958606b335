"""The redacted copy of a dead-lettered statement, pulled or pushed: enough to diagnose, nothing personal.

An allow-list, not a deny-list: only the fields below survive, so a platform's new field never leaks.
The actor becomes its keyed person pseudonym, the organisation extension its keyed organisation
pseudonym; names, e-mails, accounts, instructor, team, authority, free-text responses and activity
descriptions are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.xapi_extensions import EXTENSION_BASE

ORGANISATION_EXTENSION = EXTENSION_BASE + "organisation"
# Values alcance itself reads and that name no person: kept so the reason can be checked.
_KEPT_EXTENSIONS = frozenset(
    EXTENSION_BASE + name
    for name in ("country", "audience", "course", "offering", "enrolment", "assessment", "hours")
) | {
    "https://w3id.org/xapi/lms/extensions/starting-date",
    "https://w3id.org/xapi/lms/extensions/ending-date",
    "https://w3id.org/xapi/cmi5/result/extensions/progress",
}
_KEPT_RESULT = ("success", "completion", "duration", "score")
_KEPT_SCORE = ("scaled", "raw", "min", "max")
_SHORT_TEXT = 200


def _short_scalar(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return value[:_SHORT_TEXT]
    return "<removed: not a scalar>"


def _ids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(item["id"])[:_SHORT_TEXT] for item in items if isinstance(item, dict) and "id" in item]


def redact_statement(
    statement: dict[str, Any],
    person: Callable[[Any], str | None],
    organisation: Callable[[str], str],
) -> dict[str, Any]:
    """The statement reduced to non-personal fields.

    Args:
        statement: a statement that passed the intake's structural checks.
        person: the actor's keyed pseudonym (None when it has no identifier).
        organisation: the keyed pseudonym of a native organisation id.
    """
    redacted: dict[str, Any] = {"actor": {"pseudonym": person(statement.get("actor"))}}
    for key in ("id", "timestamp", "version"):
        if key in statement:
            redacted[key] = _short_scalar(statement[key])
    verb = statement.get("verb")
    if isinstance(verb, dict):
        redacted["verb"] = {"id": _short_scalar(verb.get("id"))}
    obj = statement.get("object")
    if isinstance(obj, dict):
        kind = obj.get("objectType", "Activity")
        if kind in ("Agent", "Group"):
            redacted["object"] = {"objectType": kind, "pseudonym": person(obj)}
        else:
            redacted["object"] = {"objectType": _short_scalar(kind), "id": _short_scalar(obj.get("id"))}
    context = statement.get("context")
    if isinstance(context, dict):
        kept: dict[str, Any] = {}
        if "registration" in context:
            kept["registration"] = _short_scalar(context["registration"])
        activities = context.get("contextActivities")
        if isinstance(activities, dict):
            kept["contextActivities"] = {str(kind)[:40]: _ids(value) for kind, value in activities.items()}
        kept["extensions"] = _extensions(context.get("extensions"), organisation)
        redacted["context"] = kept
    result = statement.get("result")
    if isinstance(result, dict):
        kept_result = {k: result[k] for k in _KEPT_RESULT if k in result and k != "score"}
        kept_result = {k: _short_scalar(v) for k, v in kept_result.items()}
        score = result.get("score")
        if isinstance(score, dict):
            kept_result["score"] = {k: _short_scalar(score[k]) for k in _KEPT_SCORE if k in score}
        kept_result["extensions"] = _extensions(result.get("extensions"), organisation)
        redacted["result"] = kept_result
    return redacted


def _extensions(extensions: Any, organisation: Callable[[str], str]) -> dict[str, Any]:
    if not isinstance(extensions, dict):
        return {}
    kept: dict[str, Any] = {}
    for key, value in extensions.items():
        if key == ORGANISATION_EXTENSION and isinstance(value, str | int):
            kept[key] = organisation(str(value))
        elif key in _KEPT_EXTENSIONS:
            kept[key] = _short_scalar(value)
    return kept
