"""Moodle's REST web services: one POST per function call, errors that come back as HTTP 200 bodies."""

from __future__ import annotations

from typing import Any

from connectors.exceptions import FatalSourceError, RetryableError
from connectors.http import HttpClient
from infra.settings import SourceConfig

REST_PATH = "/webservice/rest/server.php"
# Every web-service function the connector calls; each exists in Moodle 4.5 / 5.x or mod_customcert
# (a test pins this list against the simulator and a committed list of the real functions).
FUNCTIONS_CALLED = frozenset(
    {
        "core_course_get_courses_by_field",
        "core_enrol_get_enrolled_users",
        "core_completion_get_course_completion_status",
        "core_course_get_course_module_by_instance",
        "mod_customcert_list_issues",
    }
)
# Moodle error codes that describe a passing condition; any other code stops the connector.
RETRYABLE_ERRORCODES = frozenset(
    {
        "dmlreadexception",
        "dmlwriteexception",
        "dbconnectionfailed",
        "sitemaintenance",
        "dml_connection_exception",
    }
)


class MoodleError(Exception):
    """Raised when Moodle answered a call with an `exception` body (HTTP 200)."""

    def __init__(self, errorcode: str, message: str) -> None:
        super().__init__(f"{errorcode}: {message}")
        self.errorcode = errorcode


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested parameters the way Moodle's REST server reads them (`a[0][name]=x`)."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        elif isinstance(value, list | tuple):
            flat.update(flatten({str(i): item for i, item in enumerate(value)}, name))
        elif isinstance(value, bool):
            flat[name] = "1" if value else "0"
        else:
            flat[name] = str(value)
    return flat


class MoodleClient:
    """Calls the web-service functions of one Moodle site.

    Args:
        http: the runtime's HTTP client for the source (timeouts, retries of transport failures).
        source: the source (endpoint and token).
    """

    def __init__(self, http: HttpClient, source: SourceConfig) -> None:
        self.http = http
        self._source = source

    async def call(self, function: str, **params: Any) -> Any:
        """Call one web-service function and return its decoded result.

        Raises:
            MoodleError: for error codes the caller may handle (the rest are raised as below).
            RetryableError: on transient HTTP failures or a retryable Moodle error code.
            FatalSourceError: on a rejected token or any other Moodle error.
        """
        if function not in FUNCTIONS_CALLED:
            raise FatalSourceError(f"{function} is not among the Moodle functions alcance calls")
        token = self._source.token.get_secret_value() if self._source.token is not None else ""
        # The token travels in the POST body, never in the URL (web servers log URLs).
        form = {"wstoken": token, "wsfunction": function, "moodlewsrestformat": "json", **flatten(params)}
        response = await self.http.post_form_json(self._source.endpoint.rstrip("/") + REST_PATH, form)
        body = response.body
        if isinstance(body, dict) and "exception" in body:
            code = str(body.get("errorcode", ""))
            message = str(body.get("message", ""))[:200]
            if code in RETRYABLE_ERRORCODES:
                raise RetryableError(f"Moodle {function}: {code}")
            raise MoodleError(code, message)
        return body

    async def call_or_fatal(self, function: str, **params: Any) -> Any:
        """`call`, with every Moodle error code a configuration error that stops the connector."""
        try:
            return await self.call(function, **params)
        except MoodleError as exc:
            raise FatalSourceError(f"Moodle {function} failed: {exc}") from exc
