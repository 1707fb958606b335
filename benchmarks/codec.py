"""Encode/decode rate of the CloudEvents codec (one core, no I/O), as JSON.

Usage: `.venv/bin/python -m benchmarks.codec [--events N] [--runs R]`

Events of every type (from the test factories, in equal shares) are encoded with
`schemas.cloudevents.encode` and decoded with `decode` (pydantic union adapter, strict, plus
header/body checks). For comparison, the same values are validated with the committed JSON Schemas
(`jsonschema`, one reused Draft202012Validator per type) after `json.loads`: the path decode avoids.
Figures are records per second, median of the runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds) if seconds > 0 else float("inf")


def main() -> None:
    """Run the benchmark and print one JSON object."""
    from jsonschema import Draft202012Validator

    from schemas import jsonschema_gen
    from schemas.cloudevents import decode, encode
    from schemas.registry import EVENT_TYPES
    from tests.schemas.factories import FACTORIES

    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=52_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    kinds = sorted(FACTORIES)
    events = [
        FACTORIES[kinds[i % len(kinds)]](record_identity=f"r{i}", source_ref=f"r{i}")
        for i in range(args.events)
    ]
    validators = {
        name: Draft202012Validator(jsonschema_gen.load(jsonschema_gen.file_name(cls)))
        for name, cls in EVENT_TYPES.items()
    }
    encode_rates: list[float] = []
    decode_rates: list[float] = []
    jsonschema_rates: list[float] = []
    for _ in range(args.runs):
        started = time.perf_counter()
        records = [encode(event) for event in events]
        encode_rates.append(_rate(len(records), time.perf_counter() - started))

        started = time.perf_counter()
        for record in records:
            decode(record.headers, record.value)
        decode_rates.append(_rate(len(records), time.perf_counter() - started))

        started = time.perf_counter()
        for record, event in zip(records, events, strict=True):
            document: Any = json.loads(record.value)
            validators[event.event_type].validate(document)
        jsonschema_rates.append(_rate(len(records), time.perf_counter() - started))

    print(
        json.dumps(
            {
                "benchmark": "cloudevents codec",
                "events": args.events,
                "event_types": len(kinds),
                "runs": args.runs,
                "encode_per_s": statistics.median(encode_rates),
                "decode_per_s": statistics.median(decode_rates),
                "jsonschema_validate_per_s": statistics.median(jsonschema_rates),
                "python": platform.python_version(),
                "machine": platform.machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
