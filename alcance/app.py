"""The pipeline as one command: local stack, topics, migrations, connectors and processors, and their stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg

from connectors.base import Connector, Health
from connectors.context import ConnectorContext
from connectors.health import summary_lines
from connectors.registry import available_kinds, load_connector_class
from connectors.runtime import run_connectors
from infra.child_settings import spawn_with_settings
from infra.kafka import ensure_topics, make_consumer, topic_partitions
from infra.kafka_acls import ensure_acls
from infra.local import running_stack
from infra.postgres import create_pool, migrate
from infra.roles import PROCESSOR, store_settings_for
from infra.settings import ReachTargetConfig, Settings
from infra.signals import on_stop_signals
from infra.stack_file import remove_stack_file, store_settings, write_stack_file
from infra.targets import apply_configured_targets, list_targets, set_targets
from infra.telemetry import setup_telemetry, shutdown_telemetry
from processors.runtime import IndicatorProcessor
from schemas.topics import TopicCatalogue

if TYPE_CHECKING:
    from processors.read import ReadResults

logger = logging.getLogger(__name__)

IDLE_CHECK_INTERVAL_S = 0.5
# Processors spawned beside the in-process one get this long to finish their batch on stop.
WORKER_STOP_TIMEOUT_S = 30.0


async def run_pipeline(settings: Settings, *, until_idle: bool = False) -> int:
    """Run connectors and processors until SIGTERM/SIGINT or, with `until_idle`, until all is processed.

    Returns:
        0 on a clean stop; 1 when a source failed or a processor stopped on an error.
    """
    setup_telemetry(settings.telemetry)
    stop = asyncio.Event()
    started = time.monotonic()
    try:
        with on_stop_signals(stop.set):
            async with running_stack(settings) as resolved, AsyncExitStack() as stack:
                write_stack_file(settings, resolved)
                stack.callback(remove_stack_file, resolved)
                return await _run_resolved(resolved, stack, stop, until_idle=until_idle, started=started)
    finally:
        shutdown_telemetry()


async def _run_resolved(
    settings: Settings, stack: AsyncExitStack, stop: asyncio.Event, *, until_idle: bool, started: float
) -> int:
    # Setup as the owner (migrations) and the settings' Kafka user (topics, ACLs); the work that
    # follows runs as the processor role and each component's own principal (infra.roles).
    owner_pool = await create_pool(settings.postgres)
    try:
        await migrate(owner_pool)
        await apply_configured_targets(owner_pool, settings)
    finally:
        await owner_pool.close()
    pool = await create_pool(store_settings_for(settings.postgres, PROCESSOR))
    stack.push_async_callback(pool.close)
    catalogue = TopicCatalogue.from_settings(settings)
    await ensure_topics(settings.kafka, catalogue.all())
    await ensure_acls(settings.kafka, catalogue)

    sources = settings.sources
    simulated = None
    if not sources:
        from connectors.simulators.sources import simulated_sources

        simulated = await stack.enter_async_context(simulated_sources(settings))
        sources = simulated.sources
        logger.info("no sources configured: pulling from %d simulated sources", len(sources))
    connectors: list[Connector] = [load_connector_class(source.kind)(source, settings) for source in sources]
    directory_task = _start_directory_sync(settings, simulated if not settings.sources else None, until_idle)

    context = await stack.enter_async_context(ConnectorContext.open(settings, pool=pool))
    if settings.intake.enabled:
        from connectors.intake import serving_intake

        await stack.enter_async_context(serving_intake(context))
    if settings.web.enabled:
        from web.app import serving_web_beside

        await stack.enter_async_context(serving_web_beside(settings))
    workers = await stack.enter_async_context(_processor_workers(settings, settings.processor.processes - 1))
    if settings.processor.snapshots:
        # The snapshot refresher computes for seconds at a time: a process of its own, off the batches' loop.
        workers.append(await spawn_with_settings(settings, "processors.snapshots"))
    processor = IndicatorProcessor(settings, pool=pool)
    processor_task = asyncio.create_task(processor.run(), name="processor")
    connectors_task = asyncio.create_task(
        run_connectors(context, connectors, until_idle=until_idle), name="connectors"
    )
    stop_task = asyncio.create_task(stop.wait(), name="stop-signal")
    waits: set[asyncio.Task[Any]] = {stop_task, processor_task}
    if until_idle:
        waits.add(
            asyncio.create_task(
                _wait_until_idle(settings, pool, context, connectors_task, catalogue), name="idle-detection"
            )
        )
    else:
        waits.add(connectors_task)
    _done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        if task is not processor_task and task is not connectors_task:
            task.cancel()

    # Stop intake first (each connector commits the page in hand), then let the processor finish.
    connectors_task.cancel()
    await asyncio.gather(connectors_task, return_exceptions=True)
    processor.request_stop()
    processor_failed = False
    try:
        await processor_task
    except Exception:
        logger.exception("the processor stopped on an error")
        processor_failed = True
    failed_workers = await _stop_workers(workers)
    if directory_task is not None:
        # A finished run has synced the directory once; a continuous one stops its next round.
        if not until_idle:
            directory_task.cancel()
        await asyncio.gather(directory_task, return_exceptions=True)

    failed_sources = [c.name for c in connectors if c.health() == Health.FAILED]
    stats = processor.stats
    logger.info(
        "stopped after %.1f s: %d events published by %d sources, %d records processed here "
        "(%d new facts, %d duplicates, %d dead-lettered)%s",
        time.monotonic() - started,
        sum(c.stats.events_published for c in connectors),
        len(connectors),
        stats.records,
        stats.facts_new,
        stats.duplicates,
        stats.dead_lettered,
        f"; failed sources: {', '.join(failed_sources)}" if failed_sources else "",
    )
    for connector, line in zip(connectors, summary_lines(connectors), strict=True):
        (logger.error if connector.health() == Health.FAILED else logger.info)(line)
    return 1 if failed_sources or processor_failed or failed_workers else 0


def _start_directory_sync(settings: Settings, simulated: Any, until_idle: bool) -> asyncio.Task[Any] | None:
    """The directory sync's task: against the configured PLGN, else the simulated one, else none."""
    from directory.runner import configured_source, run_directory_sync
    from directory.sync import DirectorySource

    source = configured_source(settings)
    if source is None and simulated is not None and simulated.plgn_directory_endpoint:
        token = simulated.plgn_token.get_secret_value() if simulated.plgn_token else None
        source = DirectorySource(simulated.plgn_feed_endpoint, simulated.plgn_directory_endpoint, token)
    if source is None:
        return None
    return asyncio.create_task(run_directory_sync(settings, source, until_idle=until_idle), name="directory")


async def _wait_until_idle(
    settings: Settings,
    pool: asyncpg.Pool,
    context: ConnectorContext,
    connectors_task: asyncio.Task[None],
    catalogue: TopicCatalogue,
) -> None:
    """Return once every connector has stopped and every input record is processed and relayed.

    Once the connectors are done, the input topics' end offsets (which Kafka reports exactly) are
    compared with the offsets the processors committed in PostgreSQL under this log's identity, so
    records an earlier, interrupted run left in the log are waited for too.
    """
    group = catalogue.indicators_group
    partitions = [
        partition
        for spec in catalogue.input_topics()
        for partition in await topic_partitions(settings.kafka, spec.name)
    ]
    consumer = make_consumer(settings.kafka, None)
    await consumer.start()
    try:
        while True:
            if connectors_task.done():
                ends = await consumer.end_offsets(partitions)
                async with pool.acquire() as connection:
                    rows = await connection.fetch(
                        "SELECT topic, partition, next_offset FROM kafka_offset"
                        " WHERE log_identity = $1 AND consumer_group = $2",
                        context.log_identity,
                        group,
                    )
                    outbox_left = await connection.fetchval("SELECT count(*) FROM indicator_outbox")
                committed = {(row["topic"], row["partition"]): row["next_offset"] for row in rows}
                behind = [tp for tp, end in ends.items() if committed.get((tp.topic, tp.partition), 0) < end]
                if not behind and outbox_left == 0:
                    logger.info("idle: every source is exhausted and every input record is processed")
                    return
            await asyncio.sleep(IDLE_CHECK_INTERVAL_S)
    finally:
        await consumer.stop()


@asynccontextmanager
async def _processor_workers(
    settings: Settings, count: int
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Start `count` extra processor processes in the indicators group; they die with this process.

    They get the settings over a pipe (`infra.child_settings`), so no secret sits in their environment.
    """
    workers: list[asyncio.subprocess.Process] = []
    if count > 0:
        for _ in range(count):
            workers.append(await spawn_with_settings(settings, "processors.runtime"))
        logger.info("started %d more processor processes", count)
    try:
        yield workers
    finally:
        await _stop_workers(workers)


async def _stop_workers(workers: Sequence[asyncio.subprocess.Process]) -> bool:
    """SIGTERM the processor processes and wait for them; returns whether any failed."""
    failed = False
    for worker in workers:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            code = await asyncio.wait_for(worker.wait(), WORKER_STOP_TIMEOUT_S)
        except TimeoutError:
            worker.kill()
            code = await worker.wait()
        failed = failed or code not in (0, -signal.SIGTERM)
    return failed


async def read_indicators(
    settings: Settings,
    *,
    indicator: str | None,
    period: str,
    by: Sequence[str],
    external: bool,
    fresh: bool = False,
) -> ReadResults:
    """Current indicator values, one object per period and combination of the `by` dimensions.

    Served from the snapshots when recent enough (exact as of their instant, which the results carry),
    unless `fresh`.
    """
    from processors import read

    async with store_settings(settings) as resolved:
        pool = await create_pool(resolved.postgres)
        try:
            await apply_configured_targets(pool, resolved)
            return await read.read_indicators(
                pool,
                indicator=indicator,
                period=period,  # type: ignore[arg-type]
                by=list(by),
                audience="external" if external else "internal",
                settings=resolved,
                fresh=fresh,
            )
        finally:
            await pool.close()


async def status(settings: Settings) -> dict[str, Any]:
    """Sources' health and processors' committed offsets, from the store (`alcance status`)."""
    from infra.status import read_status

    async with store_settings(settings) as resolved:
        pool = await create_pool(resolved.postgres)
        try:
            return await read_status(pool)
        finally:
            await pool.close()


async def targets(settings: Settings, new: Sequence[ReachTargetConfig] = ()) -> list[ReachTargetConfig]:
    """Write the configured and the `new` CVF-16 targets, then every stored one (`alcance targets`)."""
    async with store_settings(settings) as resolved:
        pool = await create_pool(resolved.postgres)
        try:
            await apply_configured_targets(pool, resolved)
            await set_targets(pool, list(new))
            return await list_targets(pool)
        finally:
            await pool.close()


async def recompute(settings: Settings) -> None:
    """Rebuild every indicator from the stored facts (`alcance recompute`)."""
    from processors.recompute import recompute as recompute_store

    async with store_settings(settings) as resolved:
        await recompute_store(resolved, progress=True)


def catalogue_as_data() -> list[dict[str, Any]]:
    """The indicator catalogue as JSON-ready objects (`alcance catalogue`)."""
    from processors.indicators import catalogue

    return [
        {
            "id": entry.id,
            "names": entry.names,
            "article": entry.article,
            "definition": entry.definition,
            "formula": entry.formula,
            "unit": str(entry.unit),
            "dimensions": list(entry.dimensions),
        }
        for entry in catalogue.INDICATORS
    ]


def list_connectors() -> list[tuple[str, str]]:
    """Installed connector kinds and the class each names (`alcance connectors list`)."""
    kinds = []
    for kind in available_kinds():
        cls = load_connector_class(kind)
        kinds.append((kind, f"{cls.__module__}:{cls.__qualname__}"))
    return kinds
