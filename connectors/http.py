"""HTTP for pulling connectors: JSON GETs with bounded timeouts, jittered retries and `Retry-After`."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy

from connectors.exceptions import FatalSourceError, RetryableError
from infra.retry import Backoff, retrying
from infra.settings import ConnectorSettings, SourceConfig

logger = logging.getLogger(__name__)

# Longest wait we accept from a Retry-After header; a source asking for more is treated as down.
MAX_RETRY_AFTER_S = 600.0


@dataclass(frozen=True, slots=True)
class JsonResponse:
    """A decoded JSON response.

    Attributes:
        status: the HTTP status.
        body: the decoded JSON (None for a status returned through `accept_statuses` without a body).
        headers: the response headers.
        url: the final URL.
    """

    status: int
    body: Any
    headers: CIMultiDictProxy[str]
    url: str


def auth_headers(source: SourceConfig) -> dict[str, str]:
    """The Authorization header for a source: Bearer `token`, else Basic `username`/`password`, else none."""
    if source.token is not None:
        return {"Authorization": f"Bearer {source.token.get_secret_value()}"}
    if source.username is not None:
        password = source.password.get_secret_value() if source.password is not None else ""
        pair = base64.b64encode(f"{source.username}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    return {}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def source_host(source: SourceConfig) -> str:
    """The host (and port) of a source's endpoint, never its credentials or path."""
    parts = urlsplit(source.endpoint)
    if not parts.hostname:
        # A file source (the cost ledger) or an endpoint without a scheme: its name is all we show.
        return "local file" if not parts.netloc else "unknown host"
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def _retry_after_s(exc: BaseException) -> float | None:
    """The wait a `Retry-After` asked for, bounded by `MAX_RETRY_AFTER_S`."""
    if isinstance(exc, RetryableError) and exc.retry_after_s is not None:
        return min(exc.retry_after_s, MAX_RETRY_AFTER_S)
    return None


class HttpClient:
    """GETs JSON from one source, retrying what may pass.

    Retried: timeouts, connection errors, 5xx, 429 (waiting `Retry-After` when given), truncated
    bodies and bodies that are not valid JSON. After `max_attempts` the last failure is raised as
    `RetryableError` (the runtime backs off and tries the page again later). Other 4xx statuses raise
    `FatalSourceError` unless listed in `accept_statuses`.

    Args:
        session: the aiohttp session owned by the runtime.
        source: the source (name for logs, credentials).
        settings: timeouts, attempts and backoff bounds.
        on_retry: called once per retry (the runtime counts them).
        default_headers: sent with every request (e.g. a protocol version header).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        source: SourceConfig,
        settings: ConnectorSettings,
        *,
        on_retry: Callable[[str], None] | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._session = session
        self._source = source
        self._settings = settings
        self._on_retry = on_retry
        self._headers = {"Accept": "application/json", **auth_headers(source), **(default_headers or {})}
        self._timeout = aiohttp.ClientTimeout(total=settings.request_timeout_s)
        self._backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s)
        # Every failure names the host (never the credentials), so a dead endpoint is found from the log.
        self._host = source_host(source)

    async def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        accept_statuses: Collection[int] = (),
        form: Mapping[str, str] | None = None,
    ) -> JsonResponse:
        """GET `url` (POST `form` when given) and decode its JSON body, retrying transient failures.

        Args:
            url: absolute URL.
            params: query parameters.
            headers: extra headers for this request.
            accept_statuses: non-2xx statuses returned to the caller instead of raising (body may be None).
            form: when given, the request is a POST of this form body instead of a GET.

        Raises:
            RetryableError: when every attempt failed transiently.
            FatalSourceError: on a 4xx status (other than 429) not in `accept_statuses`.
        """
        merged = {**self._headers, **(headers or {})}
        method = "POST" if form is not None else "GET"
        return await retrying(
            lambda: self._get_once(url, params, merged, accept_statuses, form),
            what=f"source {self._source.name} ({self._host}): {method} {urlsplit(url).path}",
            backoff=self._backoff,
            retry_on=lambda exc: isinstance(exc, RetryableError),
            max_attempts=self._settings.max_attempts,
            on_retry=self._retried,
            wait_at_least_s=_retry_after_s,
        )

    def _retried(self, exc: BaseException) -> None:
        if self._on_retry is not None:
            self._on_retry(str(exc))

    async def post_form_json(self, url: str, form: Mapping[str, str]) -> JsonResponse:
        """POST `form` (application/x-www-form-urlencoded) to `url` and decode the JSON answer.

        Retried like `get_json`; for calls that only read (Moodle's REST server reads its token and
        arguments from the body, which keeps the token out of URLs and access logs).
        """
        return await self.get_json(url, form=form)

    async def _get_once(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        accept_statuses: Collection[int],
        form: Mapping[str, str] | None = None,
    ) -> JsonResponse:
        host = self._host
        try:
            request = (
                self._session.post(url, data=dict(form), headers=headers, timeout=self._timeout)
                if form is not None
                else self._session.get(url, params=params, headers=headers, timeout=self._timeout)
            )
            async with request as resp:
                status = resp.status
                if status == 429 or status >= 500:
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    where = f"{host}{resp.url.path}"
                    raise RetryableError(f"HTTP {status} from {where}", retry_after_s=retry_after)
                if status >= 400 and status not in accept_statuses:
                    raise FatalSourceError(f"HTTP {status} from {host}{resp.url.path}", status=status)
                raw = await resp.read()
                body: Any = None
                if raw or status < 300:
                    try:
                        body = json.loads(raw)
                    except ValueError as exc:
                        if status >= 300:
                            body = None
                        else:
                            raise RetryableError(f"invalid JSON body from {host}{resp.url.path}") from exc
                return JsonResponse(status=status, body=body, headers=resp.headers, url=str(resp.url))
        except TimeoutError as exc:
            raise RetryableError(f"timeout after {self._settings.request_timeout_s}s from {host}") from exc
        except aiohttp.ClientPayloadError as exc:
            raise RetryableError(f"truncated body from {host}: {type(exc).__name__}") from exc
        except aiohttp.ClientConnectionError as exc:
            raise RetryableError(f"connection error to {host}: {type(exc).__name__}") from exc
        except aiohttp.ClientResponseError as exc:
            raise RetryableError(f"bad response from {host}: {exc.status}") from exc
