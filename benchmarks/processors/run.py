"""Throughput, latency and memory of the indicator processors beside two peer baselines, on one stack.

Usage: `.venv/bin/python -m benchmarks.processors [--events N] [--processes 1,2] [--repeats 3]
[--peers quix,plain[,floor_confluent,floor_aiokafka,floor_decode]] [--snapshots setting|off|on|both]
[--rate 5000] [--seconds 20]`

1. A stream of N distinct events (a realistic mix: enrolments, completions, certificates, progress,
   costs, deal reports, meetings; 1 % retractions, 2 % duplicates) is generated and encoded up front
   and produced to the input topics before anything consumes them.
2. Throughput, for each process count, `--repeats` times, alternating the systems run after run
   (alcance, quix, plain, alcance, ...), each over the whole stream on a fresh PostgreSQL schema:
   - alcance: the processor processes (`python -m processors.runtime`, relay off) and the outbox
     relay in a process of its own (`python -m processors.outbox`), every indicator, exactly once in
     effect; progress read from `kafka_offset`; with snapshots on (`--snapshots`, by default as
     ``ALCANCE_PROCESSOR__SNAPSHOTS`` says), also the snapshot refresher (`python -m processors.snapshots`),
     its CPU counted under the role "snapshots"; `--snapshots both` alternates runs without and with it
     (systems "alcance" and "alcance_snapshots");
   - the peers (`benchmarks/peers/`): a Quix Streams application and a plain aiokafka + asyncpg
     loop computing only CVF-01 and CVF-02 per country and month, at least once, in a virtualenv of
     their own; progress read from their consumer group's committed offsets;
   - the floors, only when named in `--peers`: consumers that read every record and compute nothing,
     with confluent-kafka (`floor_confluent`, the client Quix Streams uses) or aiokafka
     (`floor_aiokafka`, alcance's), and aiokafka decoding and validating each record as alcance's
     processors do (`floor_decode`): what the client and the event contract cost before any indicator.
   Each run reports its sustained events/s from the first committed records until every record is
   committed, the CPU time each role spent per event over that window (processors, relay, PostgreSQL,
   broker, this benchmark; read from /proc for the processes it started and their descendants),
   memory, and whether its CVF-01 and CVF-02 per country and month equal the naive reference
   computed from the generated events.
3. Latency of alcance at a fixed lower rate (default 5,000 ev/s) on fresh topics: each record's
   publish time against the moment its offset is committed in `kafka_offset`; p50/p99.

The JSON document goes to stdout; the side-by-side tables (medians, the ratio alcance/peer, CPU per
event by role) to stderr. Broker, PostgreSQL, the processes under test and the load generator share
the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.peers.launch import FLOORS, PEERS
from benchmarks.peers.reference import reference_cells
from benchmarks.processors import alcance, peer_runs
from benchmarks.processors.alcance import produce
from benchmarks.processors.latency import latency
from benchmarks.processors.report import summarise, tables
from benchmarks.processors.stream import FUTURE_ALLOWANCE_S, generate


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from infra.kafka import ensure_topics
    from infra.local import running_stack
    from infra.settings import load_settings
    from schemas.cloudevents import encode
    from schemas.topics import TopicCatalogue

    began = time.monotonic()
    events = generate(args.events, args.seed)
    generated_s = time.monotonic() - began
    expected = reference_cells(events)
    with tempfile.TemporaryDirectory(prefix="alcance-bench-") as state:
        base = load_settings(state_dir=Path(state))
        async with running_stack(base) as resolved:
            settings = resolved.model_copy(
                update={
                    "kafka": resolved.kafka.model_copy(
                        update={
                            "topic_prefix": "bench.",
                            "session_timeout_ms": 3000,
                            "heartbeat_interval_ms": 500,
                        }
                    ),
                    "processor": resolved.processor.model_copy(
                        # The stream's dates are fixed (2025 and 2026, as in every earlier measurement):
                        # the plausible window must admit all of them, whatever today's date.
                        update={"batch_max_records": args.batch, "future_allowance_s": FUTURE_ALLOWANCE_S}
                    ),
                    "log": resolved.log.model_copy(update={"level": args.log_level}),
                }
            )
            catalogue = TopicCatalogue.from_settings(settings)
            await ensure_topics(settings.kafka, catalogue.all())
            began = time.monotonic()
            records = [(catalogue.topic_for(e).name, encode(e)) for e in events]
            encoded_s = time.monotonic() - began
            began = time.monotonic()
            for start in range(0, len(records), 100_000):
                await produce(settings, records[start : start + 100_000])
            produced_s = time.monotonic() - began
            runs: list[dict[str, Any]] = []
            for repeat in range(args.repeats):
                for processes in args.processes:
                    systems = [*(f"alcance{mode}" for mode in SNAPSHOT_MODES[args.snapshots]), *args.peers]
                    for system in systems:
                        run = f"{system}_p{processes}_r{repeat}"
                        if system.startswith("alcance"):
                            # With snapshots on, the snapshot refresher runs beside the relay.
                            on = system.endswith("_snapshots") or (
                                args.snapshots == "setting" and settings.processor.snapshots
                            )
                            result = await alcance.throughput(
                                _with_snapshots(settings, on),
                                processes,
                                len(records),
                                run=run,
                                expected=expected,
                            )
                            result["system"] = system
                        else:
                            result = await peer_runs.throughput(
                                settings, system, processes, len(records), run=run, expected=expected
                            )
                        runs.append({"repeat": repeat, **result})
                        correct = result["cvf01_cvf02_correct"]
                        print(
                            f"{run}: {result['events_per_s']} events/s, correct: {correct}", file=sys.stderr
                        )
            latencies = (
                []
                if args.seconds <= 0
                else [
                    await latency(
                        settings,
                        n,
                        generate(int(args.rate * args.seconds), args.seed + 1),
                        args.rate,
                        args.seconds,
                    )
                    for n in args.processes
                ]
            )
    return {
        "benchmark": "processors",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_after": os.getloadavg(),
        },
        "events": args.events,
        "records": len(records),
        "batch_max_records": args.batch,
        "repeats": args.repeats,
        "generate_s": round(generated_s, 1),
        "encode_s": round(encoded_s, 1),
        "produce_s": round(produced_s, 1),
        "summary": summarise(runs),
        # alcance's runs keep the key they always had; the peers' runs have their own.
        "throughput": [run for run in runs if run["system"] == "alcance"],
        "peers": [run for run in runs if run["system"] != "alcance"],
        "latency": latencies,
    }


# alcance's runs per `--snapshots`: the settings' choice, without, with, or both alternating run after run.
SNAPSHOT_MODES = {"setting": [""], "off": [""], "on": ["_snapshots"], "both": ["", "_snapshots"]}


def _with_snapshots(settings: Any, on: bool) -> Any:
    """`settings` with the indicator snapshots (and so the refresher process) on or off."""
    return settings.model_copy(update={"processor": settings.processor.model_copy(update={"snapshots": on})})


def _peers(text: str) -> list[str]:
    names = [name for name in text.split(",") if name and name != "none"]
    unknown = [name for name in names if name not in PEERS and name not in FLOORS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown peer {', '.join(unknown)}: valid are {', '.join([*PEERS, *FLOORS])}, none"
        )
    return names


def main() -> None:
    """Parse the arguments, run the benchmark, print the JSON to stdout and the tables to stderr."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.processors", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--processes", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each system per process count")
    parser.add_argument(
        "--peers",
        type=_peers,
        default=list(PEERS),
        help="peer baselines to run beside alcance (none: only alcance); also the floors"
        f" {', '.join(FLOORS)}: consumers that read (floor_decode: and validate) every record,"
        " computing nothing",
    )
    parser.add_argument(
        "--snapshots",
        choices=sorted(SNAPSHOT_MODES),
        default="setting",
        help="alcance without the snapshot refresher (off; the system is named alcance), with it"
        " (on: alcance_snapshots), both alternating, or as ALCANCE_PROCESSOR__SNAPSHOTS says (setting)",
    )
    parser.add_argument("--rate", type=int, default=5_000, help="events/s of the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run (0: skip it)")
    parser.add_argument("--batch", type=int, default=2_000, help="processor batch_max_records")
    parser.add_argument("--seed", type=int, default=503)
    parser.add_argument("--log-level", default="WARNING", help="log level of the processors (on stderr)")
    args = parser.parse_args()
    result = asyncio.run(_run(args))
    print(tables(result["summary"]), file=sys.stderr)
    print(json.dumps(result, indent=2))
