"""Throughput, latency and memory of the indicator processors on the local broker and PostgreSQL, as JSON.

Usage: `.venv/bin/python -m benchmarks.processors [--events N] [--processes 1,2] [--rate 5000]`

1. A stream of N distinct events (a realistic mix: enrolments, completions, certificates, progress,
   costs, deal reports, meetings; 1 % retractions, 2 % duplicates) is generated and encoded up front
   and produced to the input topics before any processor starts.
2. Throughput, for 1 and for 2 processor processes (`python -m processors.runtime`, relay off) and the
   outbox relay in a process of its own (`python -m processors.outbox`), on a fresh PostgreSQL schema:
   sustained events/s from the first committed batch until every record is committed
   (`kafka_offset`), sampled RSS of each process (the relay's last), and the indicator versions the
   relay had drawn by then (cell states published or in flight), and the CPU time each role spent
   per event over the same window (processors, relay, PostgreSQL, broker, this benchmark), read
   from /proc for the processes this benchmark started and their descendants.
3. Latency at a fixed lower rate (default 5,000 ev/s) on fresh topics: each record's publish time
   (the `send` call) against the moment the benchmark sees its offset committed in `kafka_offset`
   (polled every 5 ms, so figures are up to ~5 ms late); p50/p99 reported.

Broker, PostgreSQL, the processors and the load generator share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2025, 1, 1, tzinfo=UTC)
FUTURE_ALLOWANCE_S = 5 * 365 * 86_400


def generate(count: int, seed: int) -> list[Any]:
    """`count` distinct events plus ~1 % retractions and ~2 % duplicates, in a shuffled-in-time order."""
    from schemas.events.base import Event
    from schemas.events.plgn import Wave
    from tests.schemas.factories import (
        make_certificate_issued,
        make_cost_recorded,
        make_deal_reported,
        make_enrolment_completed,
        make_enrolment_created,
        make_meeting_held,
        make_progress_recorded,
        make_training_event_retracted,
        money,
        org_key,
        person_key,
    )

    rng = random.Random(seed)
    learners = [person_key(f"l{i}") for i in range(max(100, count // 10))]
    firms = [org_key(f"f{i}") for i in range(max(20, count // 200))]
    countries = ("AR", "BO", "BR", "CL", "CO", "MX", "PE", "UY")
    enrolments: list[tuple[str, str]] = []
    stream: list[Any] = []
    for i in range(count):
        at = START + timedelta(days=rng.randrange(720), seconds=rng.randrange(86_400))
        kind = rng.random()
        rid = f"b{i}"
        event: Event
        if kind < 0.30 or not enrolments:
            learner = rng.choice(learners)
            offering = rng.randrange(120)
            enrolments.append((f"e{i}", learner))
            event = make_enrolment_created(
                record_identity=rid,
                occurred_at=at,
                enrolled_at=at,
                subject_key=learner,
                enrolment_id=f"e{i}",
                # 120 offerings (cohorts) of 40 courses: each offering belongs to one course.
                course_id=f"course-{offering % 40}",
                offering_id=f"offering-{offering}",
                country=rng.choice(countries),
            )
        elif kind < 0.42:
            enrolment, learner = rng.choice(enrolments)
            event = make_enrolment_completed(
                record_identity=rid,
                occurred_at=at,
                completed_at=at,
                subject_key=learner,
                enrolment_id=enrolment,
            )
        elif kind < 0.50:
            enrolment, learner = rng.choice(enrolments)
            event = make_certificate_issued(
                record_identity=rid,
                occurred_at=at,
                issued_at=at,
                subject_key=learner,
                enrolment_id=enrolment,
                certificate_id=f"c-{enrolment}",
            )
        elif kind < 0.70:
            enrolment, learner = rng.choice(enrolments)
            event = make_progress_recorded(
                record_identity=rid, occurred_at=at, subject_key=learner, enrolment_id=enrolment
            )
        elif kind < 0.80:
            event = make_cost_recorded(
                record_identity=rid,
                occurred_at=at,
                cost_id=f"cost-{i}",
                activity_id=f"round-{rng.randrange(30)}",
                money=money(f"{rng.randrange(1, 50_000)}.00"),
            )
        elif kind < 0.90:
            deal = rng.randrange(max(50, count // 50))
            event = make_deal_reported(
                record_identity=rid,
                occurred_at=at,
                deal_id=f"deal-{deal}",
                org_key=firms[deal % len(firms)],
                wave=rng.choice(list(Wave)),
                realised_value_cumulative=money(f"{rng.randrange(1, 90_000)}.00"),
            )
        else:
            event = make_meeting_held(
                record_identity=rid,
                occurred_at=at,
                slot_at=at,
                meeting_id=f"m{i}",
                activity_id=f"round-{rng.randrange(30)}",
                org_a_key=rng.choice(firms),
                org_b_key=rng.choice(firms),
                country=rng.choice(countries),
            )
        stream.append(event)
        if rng.random() < 0.01 and event.family == "training":
            stream.append(
                make_training_event_retracted(
                    record_identity=f"x{i}",
                    source=event.source,
                    source_ref=f"{event.source_ref}-deleted",
                    subject_key=event.subject_key,
                    retracted_event_id=event.event_id,
                    occurred_at=at,
                )
            )
        if rng.random() < 0.02:
            stream.append(rng.choice(stream))
    return stream


def _rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def _process_table() -> dict[int, tuple[int, str, int]]:
    """Every visible process: pid -> (parent pid, command name, CPU ticks).

    The ticks are user + system time of the process and of its children that it has reaped, so the
    time of a process that exited is still counted, in its parent.
    """
    table: dict[int, tuple[int, str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        # The command name is parenthesised and may itself hold spaces or parentheses.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), name, sum(int(ticks) for ticks in fields[11:15]))
    return table


def cpu_ticks_by_role(roles: dict[int, str]) -> dict[str, int]:
    """CPU ticks used so far by this process and its descendants, summed per role.

    Args:
        roles: Role of some child processes by pid (their descendants share it). Other
            descendants are named by command: "postgres" and "java" (the local stack's servers);
            anything else counts as "benchmark", like this process.
    """
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    ticks: dict[str, int] = {}
    pending = [(os.getpid(), "benchmark")]
    while pending:
        pid, inherited = pending.pop()
        if pid not in table:
            continue
        name = table[pid][1]
        role = roles.get(pid) or {"postgres": "postgres", "java": "broker"}.get(name, inherited)
        ticks[role] = ticks.get(role, 0) + table[pid][2]
        pending.extend((child, role) for child in children.get(pid, []))
    return ticks


def cpu_us_per_event(before: dict[str, int], after: dict[str, int], events: int) -> dict[str, float]:
    """Microseconds of CPU per event spent by each role between two `cpu_ticks_by_role` samples."""
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    return {
        role: round((after[role] - before.get(role, 0)) * tick_us / events, 1)
        for role in sorted(after, key=lambda role: before.get(role, 0) - after[role])
        if events > 0
    }


async def _spawn(settings: Any, count: int) -> list[asyncio.subprocess.Process]:
    """Start `count` processors and, last in the list, the outbox relay as its own process.

    Their logs go to this benchmark's stderr (level: --log-level).
    """
    from infra.settings import settings_as_environment

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALCANCE_")}
    # The processors leave publication to the relay process.
    env.update(
        settings_as_environment(
            settings.model_copy(update={"processor": settings.processor.model_copy(update={"relay": False})})
        )
    )
    return [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, env=env, stdin=asyncio.subprocess.DEVNULL
        )
        for module in ["processors.runtime"] * count + ["processors.outbox"]
    ]


async def _stop(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _fresh_schema(settings: Any, name: str) -> Any:
    from infra.postgres import create_pool, migrate

    fresh = settings.model_copy(update={"postgres": settings.postgres.model_copy(update={"db_schema": name})})
    pool = await create_pool(fresh.postgres)
    await migrate(pool)
    return fresh, pool


async def _produce(settings: Any, records: list[tuple[str, Any]]) -> list[Any]:
    from infra.kafka import make_producer

    producer = make_producer(settings.kafka, linger_ms=20)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=r.key, value=r.value, headers=r.headers) for topic, r in records
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def _throughput(settings: Any, processes: int, total: int) -> dict[str, Any]:
    fresh, pool = await _fresh_schema(settings, f"bench_p{processes}")
    children = await _spawn(fresh, processes)
    rss_samples: list[list[int]] = []
    started: float | None = None
    first_done = 0
    roles = {child.pid: "processors" for child in children[:-1]} | {children[-1].pid: "relay"}
    cpu_before: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 3600
        while True:
            done = int(await pool.fetchval("SELECT coalesce(sum(next_offset), 0) FROM kafka_offset"))
            now = time.monotonic()
            if done > 0 and started is None:
                started, first_done = now, done
                cpu_before = cpu_ticks_by_role(roles)
            rss_samples.append([_rss_kib(child.pid)[0] for child in children if child.returncode is None])
            if done >= total:
                cpu_after = cpu_ticks_by_role(roles)
                break
            if now > deadline or any(child.returncode is not None for child in children):
                raise RuntimeError(f"processors stopped or stalled at {done}/{total}")
            await asyncio.sleep(0.25)
        elapsed = time.monotonic() - (started or time.monotonic())
        peaks = [_rss_kib(child.pid)[1] for child in children]
        published = await pool.fetchval("SELECT last_value FROM indicator_version_seq")
        facts = await pool.fetchval("SELECT count(*) FROM fact")
        rows = {
            table: await pool.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608  # fixed names
            for table in (
                "indicator_part",
                "indicator_member",
                "indicator_report",
                "indicator_rollup",
                "indicator_rollup_member",
            )
        }
    finally:
        await _stop(children)
        await pool.close()
    quarter = max(1, len(rss_samples) // 4)
    return {
        "processes": processes,
        "records": total,
        "facts": facts,
        "stored_rows": rows,
        "seconds": round(elapsed, 2),
        "events_per_s": round((total - first_done) / elapsed) if elapsed > 0 else None,
        # The CPU the machine spends per event, by role: what bounds events/s on shared cores.
        "cpu_us_per_event": cpu_us_per_event(cpu_before, cpu_after, total - first_done),
        "cores_busy": round(
            (sum(cpu_after.values()) - sum(cpu_before.values())) / os.sysconf("SC_CLK_TCK") / elapsed, 2
        )
        if elapsed > 0
        else None,
        "peak_rss_mib": [round(peak / 1024, 1) for peak in peaks[:-1]],
        "relay_peak_rss_mib": round(peaks[-1] / 1024, 1),
        "relay_versions_drawn": published,
        "rss_mib_at_quartiles": [
            [round(kib / 1024, 1) for kib in rss_samples[min(i * quarter, len(rss_samples) - 1)]]
            for i in range(4)
        ]
        + [[round(kib / 1024, 1) for kib in rss_samples[-1]]],
    }


async def _latency(
    settings: Any, processes: int, events: list[Any], rate: int, seconds: float
) -> dict[str, Any]:
    from infra.kafka import ensure_topics, make_producer
    from schemas.cloudevents import encode
    from schemas.topics import TopicCatalogue

    prefix = f"lat{processes}."
    lat_settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"topic_prefix": prefix})}
    )
    catalogue = TopicCatalogue.from_settings(lat_settings)
    await ensure_topics(lat_settings.kafka, catalogue.all())
    fresh, pool = await _fresh_schema(lat_settings, f"bench_lat{processes}")
    count = int(rate * seconds)
    records = [(catalogue.topic_for(e).name, encode(e)) for e in events[:count]]
    children = await _spawn(fresh, processes)
    producer = make_producer(fresh.kafka, linger_ms=2)
    await producer.start()
    sent: list[tuple[float, Any]] = []
    seen: dict[tuple[str, int], list[tuple[float, int]]] = {}
    stop_polling = asyncio.Event()

    async def poll() -> None:
        while not stop_polling.is_set():
            rows = await pool.fetch("SELECT topic, partition, next_offset FROM kafka_offset")
            now = time.monotonic()
            for topic, partition, next_offset in rows:
                history = seen.setdefault((topic, partition), [])
                if not history or history[-1][1] != next_offset:
                    history.append((now, next_offset))
            await asyncio.sleep(0.005)

    try:
        # Wait until every partition is claimed, so the group's join is not measured as latency.
        expected = len(catalogue.input_topics()) * fresh.kafka.partitions
        claimed = 0
        while claimed < expected:
            await asyncio.sleep(0.1)
            claimed = await pool.fetchval("SELECT count(*) FROM kafka_offset")
        await asyncio.sleep(2 * fresh.kafka.session_timeout_ms / 1000)
        poller = asyncio.create_task(poll())
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        begin = time.monotonic()
        for start in range(0, len(records), per_tick):
            target = begin + (start // per_tick) * tick
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for topic, record in records[start : start + per_tick]:
                future = await producer.send(
                    topic, key=record.key, value=record.value, headers=record.headers
                )
                sent.append((time.monotonic(), future))
        achieved = len(records) / (time.monotonic() - begin)
        metadata = [(t, await future) for t, future in sent]
        deadline = time.monotonic() + 120
        while True:
            done = int(await pool.fetchval("SELECT coalesce(sum(next_offset), 0) FROM kafka_offset"))
            if done >= len(records) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)
        stop_polling.set()
        await poller
    finally:
        await producer.stop()
        await _stop(children)
        await pool.close()
    latencies = []
    for published, meta in metadata:
        history = seen.get((meta.topic, meta.partition), [])
        committed = next((t for t, next_offset in history if next_offset > meta.offset), None)
        if committed is not None:
            latencies.append((committed - published) * 1000)
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

    return {
        "processes": processes,
        "target_rate": rate,
        "achieved_rate": round(achieved),
        "records": len(records),
        "measured": len(latencies),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1], 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from infra.kafka import ensure_topics
    from infra.local import running_stack
    from infra.settings import load_settings
    from schemas.cloudevents import encode
    from schemas.topics import TopicCatalogue

    began = time.monotonic()
    events = generate(args.events, args.seed)
    generated_s = time.monotonic() - began
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
                await _produce(settings, records[start : start + 100_000])
            produced_s = time.monotonic() - began
            throughput = [await _throughput(settings, n, len(records)) for n in args.processes]
            latency = (
                []
                if args.seconds <= 0
                else [
                    await _latency(
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
        },
        "events": args.events,
        "records": len(records),
        "batch_max_records": args.batch,
        "generate_s": round(generated_s, 1),
        "encode_s": round(encoded_s, 1),
        "produce_s": round(produced_s, 1),
        "throughput": throughput,
        "latency": latency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--processes", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2])
    parser.add_argument("--rate", type=int, default=5_000, help="events/s of the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run (0: skip it)")
    parser.add_argument("--batch", type=int, default=2_000, help="processor batch_max_records")
    parser.add_argument("--seed", type=int, default=503)
    parser.add_argument("--log-level", default="WARNING", help="log level of the processors (on stderr)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_run(args)), indent=2))


if __name__ == "__main__":
    main()
