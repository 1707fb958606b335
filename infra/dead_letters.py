"""Dead letters that always fit: a record too large to re-send whole is replaced by a bounded summary."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from schemas import deadletter

# Every producer's `max_request_size` and the broker's `message.max.bytes` admit about 1 MiB; a dead
# letter carries its reason and source headers on top of the rejected record. Anything larger than this
# is summarised, so that no single record can make its own dead letter fail and stall a partition.
DEAD_LETTER_MAX_BYTES = 512 * 1024
# Headers an attacker may have inflated; the record's own headers are kept only up to this size.
KEPT_HEADERS_MAX_BYTES = 16 * 1024
# Keys longer than this are replaced by their SHA-256 (hex).
KEY_MAX_BYTES = 1024


@dataclass(frozen=True)
class BoundedRecord:
    """A record ready to be dead-lettered: value, key and headers within the limits above."""

    value: bytes | None
    key: bytes | None
    headers: list[tuple[str, bytes]]


def bound_dead_letter(
    value: bytes | None,
    key: bytes | None,
    own_headers: list[tuple[str, bytes]],
    dlq_headers: list[tuple[str, bytes]],
) -> BoundedRecord:
    """The dead letter of a record: whole when it fits, otherwise a summary of what was rejected.

    A summary value is JSON naming the original size and SHA-256, so the record can be found and
    matched at its source; header `dlq_value` says `summary` (else `record`).
    """
    headers = list(dlq_headers)
    own_size = sum(len(name) + len(item) for name, item in own_headers)
    if own_size <= KEPT_HEADERS_MAX_BYTES:
        headers = [*own_headers, *headers]
    else:
        headers.append((deadletter.HEADERS_DROPPED, str(own_size).encode()))
    if key is not None and len(key) > KEY_MAX_BYTES:
        key = hashlib.sha256(key).hexdigest().encode()
    if value is not None and len(value) > DEAD_LETTER_MAX_BYTES:
        summary = {"size_bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()}
        return BoundedRecord(json.dumps(summary).encode(), key, [*headers, (deadletter.VALUE, b"summary")])
    return BoundedRecord(value, key, [*headers, (deadletter.VALUE, b"record")])
