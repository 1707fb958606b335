"""What the push intake accepts as a request body: size, media type, JSON and timestamps, checked strictly.

Every check raises `BadRequest` (or a subclass carrying its HTTP status) with a one-line message, so
no input reaches the handlers in a shape that could make them fail.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

# Deeper JSON than this is no statement: xAPI's deepest standard paths (context.contextActivities,
# result.extensions values) stay far below it, and it keeps every later walk shallow.
MAX_JSON_DEPTH = 32
_READ_CHUNK_BYTES = 64 * 1024

# ISO 8601 / RFC 3339 date-time with a time zone (xAPI 2.0 9274.1.1: timestamps carry an offset; a
# date alone or a naive time is refused). `-00:00` means "unknown offset" in RFC 3339 and is refused.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|z|[+-][0-9]{2}:[0-9]{2})"
)
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadRequest(Exception):
    """Raised when a request is malformed; answered with `status` (400 unless said) and the message."""

    status = 400


class PayloadTooLarge(BadRequest):
    """Raised when a body exceeds the intake's size limit."""

    status = 413


class UnsupportedMediaType(BadRequest):
    """Raised when a body is not `application/json`."""

    status = 415


def require_json_media_type(request: web.Request) -> None:
    """Refuse bodies that are not `application/json` (attachments in multipart/mixed are not taken).

    Raises:
        UnsupportedMediaType: naming the type received and the one accepted.
    """
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {request.content_type or 'none'!r}"[:200]
        )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, read in chunks and refused as soon as it passes `limit` bytes.

    A declared `Content-Length` over the limit is refused before anything is read, so an oversized
    body never occupies memory.

    Raises:
        PayloadTooLarge: when the body is larger than `limit`.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_READ_CHUNK_BYTES)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a JSON number; numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest(f"number {text[:40]} is out of range; numbers must be finite")
    return value


def parse_json(body: bytes) -> Any:
    """Parse a body as strict JSON: UTF-8, finite numbers, no lone surrogates, at most `MAX_JSON_DEPTH` deep.

    Raises:
        BadRequest: naming what is wrong.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {str(exc)[:120]}") from None
    _check_tree(value)
    return value


def _check_tree(root: Any) -> None:
    """Walk the parsed value without recursion: depth and lone surrogates (JSON escapes allow them)."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                raise BadRequest("a string holds a lone UTF-16 surrogate; text must be valid Unicode")
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, dict):
            for key, item in node.items():
                if _SURROGATE.search(key):
                    raise BadRequest("a key holds a lone UTF-16 surrogate; text must be valid Unicode")
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in node)


def check_timestamp(value: Any, what: str) -> datetime:
    """`value` as an aware UTC instant, if it is an ISO 8601 date-time with a time zone.

    Raises:
        BadRequest: for a non-string, a date without time, a time without zone, `-00:00`, or an instant
            that falls outside years 1-9999 once converted to UTC (e.g. year 1 at +14:00).
    """
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise BadRequest(f"{what} must be an ISO 8601 date-time with a time zone, e.g. 2026-02-01T10:00:00Z")
    if value.endswith("-00:00"):
        raise BadRequest(f"{what} has the unknown offset -00:00; give Z or a real offset")
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadRequest(f"{what} is not a valid instant between years 1 and 9999 in UTC") from None
