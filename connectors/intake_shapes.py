"""The shapes the push intake takes: xAPI statement structure and the Caliper 1.2 events it translates.

Checks raise `BadRequest` naming the first problem, so a statement that passes has the types every later
step (pseudonym, digest, mapping, redaction) relies on.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from connectors.intake_body import BadRequest, check_timestamp

CALIPER_V1P2 = "http://purl.imsglobal.org/ctx/caliper/v1p2"
_CALIPER_VERBS = {
    "Activated": "http://adlnet.gov/expapi/verbs/registered",
    "Deactivated": "http://id.tincanapi.com/verb/unregistered",
    "Completed": "http://adlnet.gov/expapi/verbs/completed",
}
_IFI = ("mbox", "mbox_sha1sum", "openid", "account")
_OBJECT_TYPES = ("Activity", "Agent", "Group", "StatementRef", "SubStatement")
# Longest IRI or identifier taken: events keep at most 512 characters of an identifier.
_MAX_IRI_CHARS = 2048


def parse_statement_id(value: Any) -> uuid.UUID:
    """`value` as a statement UUID.

    Raises:
        BadRequest: when it is not a UUID string.
    """
    if not isinstance(value, str):
        raise BadRequest("a statement id must be a UUID string")
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise BadRequest("a statement id is not a UUID") from None
    return parsed


def _iri(value: Any, what: str) -> str:
    if not isinstance(value, str) or ":" not in value or len(value) > _MAX_IRI_CHARS:
        raise BadRequest(f"{what} must be an IRI of at most {_MAX_IRI_CHARS} characters")
    return value


def _check_agent(agent: Any, what: str) -> None:
    """An Agent or identified Group with exactly the xAPI types of its inverse functional identifier."""
    if not isinstance(agent, dict):
        raise BadRequest(f"{what} must be an Agent object")
    found = [key for key in _IFI if key in agent]
    if len(found) != 1:
        raise BadRequest(f"{what} needs exactly one of {', '.join(_IFI)}")
    value = agent[found[0]]
    if found[0] == "mbox" and not (isinstance(value, str) and value.startswith("mailto:")):
        raise BadRequest(f"{what}.mbox must be a mailto: IRI")
    if found[0] in ("mbox_sha1sum", "openid") and not isinstance(value, str):
        raise BadRequest(f"{what}.{found[0]} must be a string")
    if found[0] == "account" and not (
        isinstance(value, dict)
        and isinstance(value.get("homePage"), str)
        and isinstance(value.get("name"), str)
    ):
        raise BadRequest(f"{what}.account needs string homePage and name")


def check_statement(statement: Any) -> None:
    """Reject what is not an xAPI statement (structure and types; alcance's mapping comes later).

    Raises:
        BadRequest: naming the first problem found.
    """
    if not isinstance(statement, dict):
        raise BadRequest("a statement must be a JSON object")
    _check_agent(statement.get("actor"), "actor")
    verb = statement.get("verb")
    if not isinstance(verb, dict):
        raise BadRequest("verb must be an object with an id")
    _iri(verb.get("id"), "verb.id")
    obj = statement.get("object")
    if not isinstance(obj, dict):
        raise BadRequest("object must be an object")
    kind = obj.get("objectType", "Activity")
    if kind not in _OBJECT_TYPES:
        raise BadRequest(f"object.objectType must be one of {', '.join(_OBJECT_TYPES)}")
    if kind == "StatementRef":
        parse_statement_id(obj.get("id"))
    elif kind == "Activity":
        _iri(obj.get("id"), "object.id")
    elif kind in ("Agent", "Group"):
        _check_agent(obj, "object")
    if "id" in statement:
        parse_statement_id(statement["id"])
    if "timestamp" in statement:
        check_timestamp(statement["timestamp"], "timestamp")
    context = statement.get("context", {})
    if not isinstance(context, dict):
        raise BadRequest("context must be an object")
    if "registration" in context:
        try:
            parse_statement_id(context["registration"])
        except BadRequest:
            raise BadRequest("context.registration must be a UUID") from None
    for where, holder in (("context", context), ("result", statement.get("result", {}))):
        if not isinstance(holder, dict):
            raise BadRequest(f"{where} must be an object")
        if not isinstance(holder.get("extensions", {}), dict):
            raise BadRequest(f"{where}.extensions must be an object")
    score = statement.get("result", {}).get("score", {})
    if not isinstance(score, dict) or any(
        isinstance(v, bool) or not isinstance(v, int | float) for v in score.values()
    ):
        raise BadRequest("result.score must be an object of numbers")


def _caliper_id(value: Any, what: str) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Caliper {what} needs a string id")
    return _iri(value, f"Caliper {what} id")


def _caliper_score(generated: Any) -> float | None:
    """The scaled score of a Caliper Score entity, None when there is none to compute."""
    if not isinstance(generated, dict) or "scoreGiven" not in generated:
        return None
    given, maximum = generated["scoreGiven"], generated.get("maxScore")
    for value in (given, maximum):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BadRequest("Caliper scoreGiven and maxScore must be numbers")
    if given is None or not maximum:
        return None
    try:
        return float(given) / float(maximum)
    except OverflowError:
        raise BadRequest("Caliper scoreGiven and maxScore must be finite numbers") from None


def caliper_to_statement(item: Any) -> dict[str, Any] | None:
    """The xAPI statement equivalent of one Caliper event, or None for entities and unmapped actions.

    Raises:
        BadRequest: when the item is not a valid Caliper event or entity.
    """
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("id"), str)
        or not isinstance(item.get("type"), str)
    ):
        raise BadRequest("every data item needs a string id and a string type")
    if "action" not in item:
        return None  # an entity description ("describe"): nothing to measure
    for key in ("actor", "object", "eventTime"):
        if key not in item:
            raise BadRequest(f"Caliper event without {key}")
    event_id = item["id"]
    if not event_id.startswith("urn:uuid:"):
        raise BadRequest("Caliper event id must be a urn:uuid")
    statement_id = parse_statement_id(event_id.removeprefix("urn:uuid:"))
    if not isinstance(item["action"], str):
        raise BadRequest("Caliper action must be a string")
    verb = _CALIPER_VERBS.get(item["action"])
    if verb is None:
        return None
    actor_id = _caliper_id(item["actor"], "actor")
    object_id = _caliper_id(item["object"], "object")
    check_timestamp(item["eventTime"], "Caliper eventTime")
    extensions = item.get("extensions") or {}
    if not isinstance(extensions, dict):
        raise BadRequest("Caliper extensions must be an object")
    home, _, name = actor_id.rpartition("/")
    statement: dict[str, Any] = {
        "id": str(statement_id),
        "actor": {"objectType": "Agent", "account": {"homePage": home or actor_id, "name": name or actor_id}},
        "verb": {"id": verb},
        "object": {"objectType": "Activity", "id": object_id},
        "timestamp": item["eventTime"],
        "context": {"extensions": dict(extensions)},
    }
    scaled = _caliper_score(item.get("generated"))
    if scaled is not None:
        if not math.isfinite(scaled):
            raise BadRequest("Caliper score is not a finite number")
        statement["result"] = {"score": {"scaled": scaled}}
    return statement
