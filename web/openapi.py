"""The OpenAPI 3.1 document of the query API, generated from the route table and the pydantic models.

pydantic emits JSON Schema 2020-12, which is what OpenAPI 3.1 Schema Objects are; the models' shared
definitions become `components.schemas`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from processors.indicators import catalogue
from schemas import generated
from web.api import endpoints
from web.api.base import PREFIX, Endpoint
from web.api.models import Health
from web.directory_openapi import directory_paths
from web.problems import PROBLEM_TYPE, Problem

REF_TEMPLATE = "#/components/schemas/{model}"
_ERRORS = {
    "400": "A parameter is wrong; `detail` names it and what is valid",
    "401": "No identity: send a bearer token or a session cookie",
    "403": "The caller's role may not read this table",
    "404": "No such resource",
}


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _path_schema(name: str) -> dict[str, Any]:
    if name == "indicator_id":
        # Any case is accepted; the document lists the catalogue's spelling.
        return {"type": "string", "enum": [entry.id for entry in catalogue.INDICATORS]}
    return {"type": "string", "minLength": 1, "maxLength": 200}


def _parameters(endpoint: Endpoint, definitions: dict[str, Any]) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "description": text, "schema": _path_schema(name)}
        for name, text in endpoint.path_params.items()
    ]
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema(by_alias=True, ref_template=REF_TEMPLATE)
        for name, prop in schema.get("properties", {}).items():
            described = {key: value for key, value in prop.items() if key not in {"title", "description"}}
            parameter = {"name": name, "in": "query", "required": name in schema.get("required", ())}
            if "description" in prop:
                parameter["description"] = prop["description"]
            parameters.append({**parameter, "schema": described})
        definitions.update(schema.get("$defs", {}))
    return parameters


def _operation(endpoint: Endpoint, definitions: dict[str, Any]) -> dict[str, Any]:
    if endpoint.response is not None:
        content = {endpoint.media_type: {"schema": _schema_of(endpoint.response)}}
    else:
        content = {endpoint.media_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    problem = {PROBLEM_TYPE: {"schema": _schema_of(Problem)}}
    for status, text in _ERRORS.items():
        if status == "400" and endpoint.query is None and not endpoint.path_params:
            continue
        responses[status] = {"description": text, "content": problem}
    operation: dict[str, Any] = {
        "operationId": endpoint.path.removeprefix(PREFIX + "/")
        .replace("/", "_")
        .replace("{", "")
        .replace("}", ""),
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint, definitions),
        "responses": responses,
    }
    return operation


@cache
def openapi_document() -> dict[str, Any]:
    """The document: every endpoint, its parameters, responses and the shared schemas."""
    listed = endpoints()
    models: set[type[BaseModel]] = {Problem, Health, *(e.response for e in listed if e.response is not None)}
    _, top = models_json_schema(
        [(model, "serialization") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF_TEMPLATE,
        by_alias=True,
    )
    definitions: dict[str, Any] = dict(top.get("$defs", {}))
    paths: dict[str, Any] = {}
    for endpoint in listed:
        paths[endpoint.path] = {"get": _operation(endpoint, definitions)}
    paths.update(directory_paths())
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness (no identity needed)",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": _schema_of(Health)}}}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "alcance query API",
            "version": "1",
            "description": "Indicators of ALADI's training and trade-promotion programmes (Resolution 503). "
            "Errors are application/problem+json (RFC 9457). Generated from web/api/ by "
            "`python -m web.openapi`; do not edit web/openapi.json by hand.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "alcance token create"},
                "session": {"type": "apiKey", "in": "cookie", "name": "alcance_session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


async def openapi_handler(_request: web.Request) -> web.StreamResponse:
    """Serve the document."""
    return web.json_response(openapi_document())


OPENAPI_FILE = Path(__file__).parent / "openapi.json"


def render() -> str:
    """The exact text of the committed `web/openapi.json`, for dashboard developers and client generators."""
    return generated.document_text(openapi_document())


def is_stale(path: Path = OPENAPI_FILE) -> bool:
    """Whether the committed document differs from what the route table and models produce now."""
    return generated.is_stale(path, render())


def main(argv: list[str] | None = None) -> int:
    """Command line: rewrite `web/openapi.json`, or with `--check` fail when it is stale."""
    return generated.rewrite_or_check(
        argv, prog="python -m web.openapi", description=__doc__, path=OPENAPI_FILE, render=render
    )


if __name__ == "__main__":
    raise SystemExit(main())
