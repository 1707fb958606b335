"""Conformance kit: pytest tests every connector must pass: resume after crash, idempotent ids, DLQ, shutdown.

Any connector, including one in a separate package, proves the runtime contract by subclassing
`ConnectorConformance` in its own test suite::

    class TestMyConnector(ConnectorConformance):
        connector_kind = "mysource"          # or override make_connector()

        @pytest.fixture
        async def simulated_source(self):
            async with serve_my_simulator() as url:
                yield SimulatedSource(endpoint=url, expected_dead_letters=2)

The tests need a `settings` fixture giving resolved settings (a reachable broker and PostgreSQL) with a
topic prefix and a database schema of their own, topics created and migrations applied, like alcance's
`tests/conftest.py`. The simulator must serve a finite dataset of at least a few pages, including at
least `expected_dead_letters` records the connector cannot map.

What is checked, against the real broker and PostgreSQL:

* idempotent event ids: pulling the same data twice from scratch publishes the same set of event ids;
* resume after a crash: a run killed after a page was published but before its checkpoint was
  committed, restarted again and again, loses no event and re-reads at most that page (and the one
  prefetched meanwhile) each time;
* dead-lettering: unmappable records reach the family's dead-letter topic with a `dlq_reason`;
* graceful shutdown: cancelling a running connector returns promptly, commits what was published,
  leaves it STOPPED and releases the source lease.
"""

# A pytest module: assertions are its checks, and the crash points come from seeded test randomness.
# ruff: noqa: S101, S311

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

import pytest
from pydantic import SecretStr

from connectors.base import Connector, Health
from connectors.checkpoints import CheckpointStore
from connectors.context import ConnectorContext
from connectors.registry import load_connector_class
from connectors.runtime import pull
from infra.kafka import read_topic_to_end
from infra.settings import Settings, SourceConfig
from schemas.topics import TopicCatalogue

__all__ = [
    "ConnectorConformance",
    "RunResult",
    "SimulatedCrash",
    "SimulatedSource",
    "read_topic",
    "run_connector",
]


class SimulatedCrash(BaseException):
    """Raised inside a run to stop it the way a crash would: after publishing, before committing."""


@dataclass(frozen=True)
class SimulatedSource:
    """A running simulator that a connector under test pulls from.

    Attributes:
        endpoint: the source endpoint (the `endpoint` of its source entry).
        token: the credential, if the simulator wants one.
        username: Basic-auth user, if the simulator wants one.
        password: Basic-auth password.
        options: the source's kind-specific options.
        page_size: records per page (small, so that the dataset spans several pages).
        expected_dead_letters: how many records of the dataset the connector must dead-letter.
    """

    endpoint: str
    token: str | None = None
    username: str | None = None
    password: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    page_size: int = 5
    expected_dead_letters: int = 0


@dataclass
class RunResult:
    """What one connector run published and fetched.

    Attributes:
        event_ids: ids of the events handed to the publisher, in order (duplicates kept).
        dead_letters: dead letters handed to the publisher.
        fetches: calls of `fetch_page`.
        crashed: whether the run ended by a simulated crash.
        health: the connector's health at the end.
    """

    event_ids: list[UUID] = field(default_factory=list)
    dead_letters: int = 0
    fetches: int = 0
    crashed: bool = False
    health: Health | None = None


async def run_connector(
    settings: Settings,
    connector: Connector,
    *,
    until_idle: bool = True,
    crash_after_publishes: int | None = None,
    stop_after_pages: int | None = None,
    timeout_s: float = 60.0,
) -> RunResult:
    """Run `connector` in this process against the real broker and PostgreSQL, recording what it does.

    Args:
        settings: resolved settings.
        connector: a fresh connector instance.
        until_idle: stop once the source is caught up.
        crash_after_publishes: raise `SimulatedCrash` right after that many pages were published
            (before their checkpoint is committed).
        stop_after_pages: cancel the run (a graceful stop) once that many pages were published.
        timeout_s: bound of the whole run.
    """
    result = RunResult()
    async with ConnectorContext.open(settings) as context:
        publisher = context.publisher
        real_publish = publisher.publish
        published_pages = 0
        stop = asyncio.Event()

        async def publish(
            events: Sequence[Any], dead_letters: Sequence[Any] = ()
        ) -> dict[tuple[str, int], int]:
            nonlocal published_pages
            offsets = await real_publish(events, dead_letters)
            result.event_ids.extend(event.event_id for event in events)
            result.dead_letters += len(dead_letters)
            published_pages += 1
            if crash_after_publishes is not None and published_pages >= crash_after_publishes:
                raise SimulatedCrash(f"simulated crash after {published_pages} published pages")
            if stop_after_pages is not None and published_pages >= stop_after_pages:
                stop.set()
            return offsets

        setattr(publisher, "publish", publish)  # noqa: B010 - instrumenting one instance on purpose
        fetch = getattr(connector, "fetch_page", None)
        if fetch is not None:

            async def counted_fetch(cursor: Any) -> Any:
                result.fetches += 1
                return await fetch(cursor)

            setattr(connector, "fetch_page", counted_fetch)  # noqa: B010 - same
        task = asyncio.ensure_future(pull(connector, context, until_idle=until_idle))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            done, _ = await asyncio.wait(
                {task, stopper}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
            if task not in done:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout_s)
        except SimulatedCrash:
            result.crashed = True
        finally:
            stopper.cancel()
        result.health = connector.health()
    return result


async def read_topic(
    settings: Settings, topic: str, *, expect_at_least: int = 0, timeout_s: float = 20.0
) -> list[Any]:
    """Every record of `topic` from the beginning to its end offsets (aiokafka `ConsumerRecord`s).

    Waits for at least `expect_at_least` records, or until `timeout_s`.
    """
    return await read_topic_to_end(settings.kafka, topic, at_least=expect_at_least, timeout_s=timeout_s)


async def forget_checkpoints(settings: Settings, source: str) -> None:
    """Delete a source's checkpoints so that its next run starts from the beginning."""
    from infra.postgres import create_pool

    pool = await create_pool(settings.postgres)
    try:
        await pool.execute("DELETE FROM connector_checkpoint WHERE source = $1", source)
    finally:
        await pool.close()


class ConnectorConformance:
    """Base class of the conformance tests; subclass it in a test module (see the module docstring)."""

    connector_kind: ClassVar[str | None] = None
    """Kind registered under the `alcance.connectors` entry points; or override `make_connector`."""
    source_name: ClassVar[str] = "conformance-source"
    crash_seed: ClassVar[int] = 503

    def make_connector(self, source: SourceConfig, settings: Settings) -> Connector:
        """A fresh connector for `source` (default: the class registered for `connector_kind`)."""
        if self.connector_kind is None:
            raise NotImplementedError("set connector_kind or override make_connector")
        return load_connector_class(self.connector_kind)(source, settings)

    @pytest.fixture
    async def simulated_source(self) -> AsyncIterator[SimulatedSource]:
        """The running simulator; subclasses must override this fixture."""
        raise NotImplementedError("override the simulated_source fixture")
        yield  # pragma: no cover - makes this an async generator like the overrides

    def _source(self, simulated: SimulatedSource) -> SourceConfig:
        return SourceConfig(
            name=self.source_name,
            kind=self.connector_kind or "custom",
            endpoint=simulated.endpoint,
            token=SecretStr(simulated.token) if simulated.token is not None else None,
            username=simulated.username,
            password=SecretStr(simulated.password) if simulated.password is not None else None,
            page_size=simulated.page_size,
            options=simulated.options,
        )

    @staticmethod
    def _fast(settings: Settings) -> Settings:
        connector = settings.connector.model_copy(
            update={
                "poll_interval_s": 0.05,
                "backoff_base_s": 0.01,
                "backoff_max_s": 0.2,
                "request_timeout_s": 5.0,
            }
        )
        return settings.model_copy(update={"connector": connector})

    async def _run(self, settings: Settings, simulated: SimulatedSource, **kwargs: Any) -> RunResult:
        connector = self.make_connector(self._source(simulated), settings)
        return await run_connector(settings, connector, **kwargs)

    async def test_event_ids_are_idempotent(
        self, settings: Settings, simulated_source: SimulatedSource
    ) -> None:
        """Pulling the same data twice from scratch yields the same set of event ids."""
        fast = self._fast(settings)
        first = await self._run(fast, simulated_source)
        assert first.event_ids, "the simulator served no mappable record"
        await forget_checkpoints(fast, self.source_name)
        second = await self._run(fast, simulated_source)
        assert set(second.event_ids) == set(first.event_ids)

    async def test_resumes_after_crash(self, settings: Settings, simulated_source: SimulatedSource) -> None:
        """Crashes between publish and commit lose nothing and re-read at most the uncommitted page."""
        fast = self._fast(settings)
        reference = await self._run(fast, simulated_source)
        assert reference.fetches >= 3, "the dataset must span at least three pages"
        await forget_checkpoints(fast, self.source_name)
        rng = random.Random(self.crash_seed)
        seen: set[UUID] = set()
        fetches = crashes = 0
        for _ in range(50):
            run = await self._run(fast, simulated_source, crash_after_publishes=rng.randint(1, 3))
            seen.update(run.event_ids)
            fetches += run.fetches
            if not run.crashed:
                break
            crashes += 1
        else:
            pytest.fail("the connector never finished between simulated crashes")
        assert crashes >= 1
        assert seen == set(reference.event_ids)
        # Each restart resumes from the last committed page: a crash costs at most the uncommitted page
        # and the page the runtime was prefetching meanwhile, never a restart from the beginning.
        assert fetches <= reference.fetches + 2 * crashes, (fetches, reference.fetches, crashes)

    async def test_dead_letters_unmappable_records(
        self, settings: Settings, simulated_source: SimulatedSource
    ) -> None:
        """Records the connector cannot map reach the dead-letter topic with their reason."""
        if simulated_source.expected_dead_letters == 0:
            pytest.skip("the simulator serves no unmappable record")
        fast = self._fast(settings)
        connector = self.make_connector(self._source(simulated_source), fast)
        result = await run_connector(fast, connector)
        # A connector may read an overlap window twice, so a bad record can be dead-lettered twice.
        assert result.dead_letters >= simulated_source.expected_dead_letters
        catalogue = TopicCatalogue.from_settings(fast)
        topic = catalogue.dead_letter(getattr(catalogue, connector.family)).name
        records = await read_topic(fast, topic, expect_at_least=simulated_source.expected_dead_letters)
        assert len({record.value for record in records}) == simulated_source.expected_dead_letters
        for record in records:
            headers = dict(record.headers)
            assert headers["dlq_reason"].decode().strip()
            assert headers["dlq_source"].decode() == self.source_name

    async def test_graceful_shutdown(self, settings: Settings, simulated_source: SimulatedSource) -> None:
        """Cancelling a running connector commits the published pages, stops it and frees the lease."""
        fast = self._fast(settings)
        started = time.monotonic()
        result = await self._run(fast, simulated_source, until_idle=False, stop_after_pages=2)
        assert time.monotonic() - started < 30
        assert result.health == Health.STOPPED
        from infra.postgres import create_pool

        pool = await create_pool(fast.postgres)
        try:
            store = CheckpointStore(pool, self.source_name, lease_ttl_s=fast.connector.lease_ttl_s)
            latest = await store.latest()
            assert latest is not None, "no checkpoint was committed before the stop"
            assert await store.try_acquire(), "the stopped connector kept its lease"
            await store.release()
        finally:
            await pool.close()
