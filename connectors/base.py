"""The connector contract: a `Connector` publishes events; a `PollingConnector` pulls pages of records.

A concrete polling connector writes two methods:

* `async fetch_page(cursor) -> Page`: one page of raw records after `cursor` (None = the beginning),
  the cursor that follows it, and whether the source had nothing more right now (`exhausted`);
* `map_record(record) -> list[Event]`: the events of one raw record, raising `DeadLetterRecord` for a
  record that cannot be mapped or `SkipRecord` for one that carries nothing to measure.

Everything else (HTTP session with retries, paging, checkpoints and the source lease in PostgreSQL,
publishing with broker acks, dead letters, backoff, shutdown, metrics) is the runtime's
(`connectors.runtime`). Connectors outside this package register under the entry-point group
`alcance.connectors` (`connectors.registry`).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from connectors.http import auth_headers
from connectors.pseudonym import Pseudonymiser
from infra.settings import SourceConfig

if TYPE_CHECKING:
    from connectors.context import ConnectorContext
    from connectors.http import HttpClient
    from infra.settings import Settings
    from schemas.events.base import Event

logger = logging.getLogger(__name__)

Cursor = dict[str, Any]
"""A position in the source, JSON-serialisable (it is stored as jsonb); None means "from the start"."""

RecordT = TypeVar("RecordT")


class ConnectorOptions(BaseModel):
    """Kind-specific options of a source (the `options` table of its `[[sources]]` entry).

    Subclasses declare their fields; unknown keys are rejected so that typos fail at start-up.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class Health(enum.StrEnum):
    """What a connector is doing, as reported by `Connector.health()`."""

    STARTING = "starting"
    PULLING = "pulling"
    CAUGHT_UP = "caught_up"
    RETRYING = "retrying"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass
class ConnectorStats:
    """Counters of one connector instance since it started (also exported as OpenTelemetry metrics)."""

    pages: int = 0
    records_pulled: int = 0
    events_published: int = 0
    dead_lettered: int = 0
    retries: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    seconds_behind: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[RecordT]):
    """One page of raw source records.

    Attributes:
        records: the raw records, in source order.
        next_cursor: where the next page starts; committed once this page's events are acked.
        exhausted: True when the source had nothing after this page at the time of the request.
        newest_at: source time of the newest record on the page, for the seconds-behind metric.
    """

    records: Sequence[RecordT]
    next_cursor: Cursor | None
    exhausted: bool
    newest_at: datetime | None = None


class Connector(ABC):
    """A source of events: one instance per configured source.

    Subclasses set `kind` (the `kind` of the source entry and the entry-point name), `family` (the
    topic family whose dead-letter topic receives its rejected records) and `options_model`.
    Construction validates the options and does no network I/O (without configured pseudonym keys
    it reads, or creates once, the local keys file).

    Delivery guarantee of every connector built on this runtime: at-least-once into Kafka with
    deterministic event ids, so consumers de-duplicate to exactly-once in effect.

    Args:
        source: the source entry (name, endpoint, credentials, options).
        settings: the resolved settings of the process.
        pseudonymiser: pseudonym keys; defaults to those of `settings` (creating local keys if needed).
    """

    kind: ClassVar[str]
    family: ClassVar[str] = "training"
    options_model: ClassVar[type[ConnectorOptions]] = ConnectorOptions

    def __init__(
        self,
        source: SourceConfig,
        settings: Settings,
        *,
        pseudonymiser: Pseudonymiser | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.options = self.options_model.model_validate(source.options)
        self.pseudonyms = pseudonymiser or Pseudonymiser.from_settings(settings)
        self.stats = ConnectorStats()
        self.exhausted = asyncio.Event()
        self._health = Health.STARTING

    @property
    def name(self) -> str:
        """The source instance name (`source` attribute of every event)."""
        return self.source.name

    def health(self) -> Health:
        """The current state of the connector, for status endpoints and logs."""
        return self._health

    def set_health(self, health: Health) -> None:
        """Record a state change (called by the runtime)."""
        if health != self._health:
            logger.debug("source %s: %s -> %s", self.name, self._health, health)
        self._health = health

    async def open(self, context: ConnectorContext) -> None:
        """Called by the runtime once, before the first page, with what the process shares.

        A connector that keeps state in the store (snapshots, lookups) takes the pool from `context`
        here. The default keeps nothing. An error stops the connector before it reads anything.
        """
        return


class PollingConnector(Connector, Generic[RecordT]):
    """A connector that pulls pages of records over HTTP; subclasses write `fetch_page` and `map_record`.

    While running, `self.http` is an `HttpClient` bound to the runtime's aiohttp session, with
    bounded timeouts, retries (exponential backoff with full jitter, `Retry-After` honoured) and the
    source's credentials applied by `auth_headers`.
    """

    http: HttpClient
    page_limit: int | None = None
    """Set by the runtime while pages are read smaller because a full page kept failing (None: no limit)."""

    @property
    def page_size(self) -> int:
        """Records per page: the source's own `page_size`, else `settings.connector.page_size`.

        While the runtime splits pages that keep failing (`page_limit`), at most that many.
        """
        size = self.source.page_size or self.settings.connector.page_size
        return size if self.page_limit is None else max(1, min(size, self.page_limit))

    def auth_headers(self) -> dict[str, str]:
        """Credentials sent with every request: Bearer `token` if set, else Basic username/password."""
        return auth_headers(self.source)

    def default_headers(self) -> dict[str, str]:
        """Headers sent with every request besides the credentials (e.g. a protocol version header)."""
        return {}

    def overlap(self, instant: datetime) -> datetime:
        """`instant` moved back by `settings.connector.cursor_overlap_s`, for re-reading timestamp cursors.

        Sources that filter on an exclusive "since" time can hold several records with the same
        timestamp; re-reading a small window loses none of them, and deterministic event ids make the
        re-read records harmless.
        """
        return instant - timedelta(seconds=self.settings.connector.cursor_overlap_s)

    @abstractmethod
    async def fetch_page(self, cursor: Cursor | None) -> Page[RecordT]:
        """Fetch the page that follows `cursor` (None: the source's beginning).

        Runs only after the previous page was published and committed. Must not advance the cursor
        beyond what the source guarantees to be complete (e.g. a consistency watermark).

        Raises:
            RetryableError: on a failure that may pass (the runtime waits and retries the same cursor).
            FatalSourceError: when retrying cannot help (the connector stops).
        """

    @abstractmethod
    def map_record(self, record: RecordT) -> list[Event]:
        """The events of one raw record; an empty list is allowed.

        Raises:
            DeadLetterRecord: when the record cannot be mapped (it goes to the dead-letter topic).
            SkipRecord: when the record is valid but not measured (it is counted and dropped).
        """

    async def prepare_page(self, page: Page[RecordT]) -> Page[RecordT]:
        """Hook run once per page before mapping, for lookups `map_record` cannot do synchronously.

        The default returns the page unchanged. It may drop records or replace them with resolved
        ones. It must work on any subset of a page's records: when it fails
        `connector.record_max_attempts` times in a row the runtime calls it again on each half of the
        page, down to single records, and dead-letters a record that still fails (with the error as
        the reason) so that one unresolvable record never stalls the source. `FatalSourceError`
        stops the connector instead; failures of the store are retried without bound.
        """
        return page

    def record_json(self, record: RecordT) -> bytes:
        """The raw record as JSON bytes, the value of its dead-letter record."""
        return json.dumps(record, default=str, ensure_ascii=False).encode()
