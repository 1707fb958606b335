"""Moodle connector: enrolments, course completions and certificates through Moodle web services (REST).

Delivery guarantee: at-least-once into Kafka with deterministic event ids (consumers de-duplicate).

Moodle without time filters. Only `mod_customcert_list_issues` filters by time; enrolments
(`core_enrol_get_enrolled_users`) and course completions (`core_completion_get_course_completion_status`)
can only be read whole. The connector therefore works in poll cycles. Each cycle:

1. `core_course_get_courses_by_field` (every course, with `enablecompletion`): 1 call.
2. Per course, the enrolled users in pages of `page_size` (`limitfrom` / `limitnumber`, sorted by user
   id). Pages overlap by `page_overlap` users and are cut at the last user id already read, so a user
   enrolled or removed during the scan neither shifts anyone out of the window nor appears twice; when
   the overlap is not enough (more than `page_overlap` users vanished in between) the window moves
   back and the page is read again. Only users holding a role of option `learner_roles` (default
   `student`) are learners; teachers and managers are left out. The learner pseudonyms of the page are
   compared with the previous
   snapshot of that course, stored in PostgreSQL (`moodle_enrolment_snapshot`, pseudonyms only): a new
   key gives `LearnerRegistered` + `EnrolmentCreated`; at the end of the course, keys not seen in this
   cycle give `EnrolmentWithdrawn`. A learner who comes back after a withdrawal starts a new enrolment
   (new `enrolment_id`).
3. Per enrolment not yet known complete, one `core_completion_get_course_completion_status` call
   (`completion_concurrency` at a time, in `prepare_page`, so that a check that keeps failing is
   dead-lettered by the runtime); a course without completion criteria (`nocriteriaset`) is skipped
   for the rest of the cycle, and a course with completion tracking off is never asked (one INFO line).
   `cannotviewreport` on a course that tracks completion means the service user lacks
   `report/completion:view`: a configuration error that stops the connector. A completion gives
   `EnrolmentCompleted` once.
4. `mod_customcert_list_issues` from the last watermark. That function orders by `timecreated DESC`
   with offset paging, so one sweep reads offsets 0, L, 2L... (L <= 500 - `page_overlap`), drops
   issues newer than the oldest one already read in the sweep (new arrivals: the next sweep reads them)
   and de-duplicates on issue id at the boundary. Like enrolment pages, each page reads back
   `page_overlap` issues and moves further back when none of them had been read (issues deleted during
   the sweep shift the offsets). When the sweep ends the watermark (`timecreatedfrom`, inclusive) moves
   to the newest issue of its first page; issues at that second are read again and dropped by event id.
   Each issue gives `CertificateIssued`; the course of its customcert instance comes from
   `core_course_get_course_module_by_instance`, asked once per instance.

Every call is a POST whose body carries the token (never the URL, which web servers log); the
functions called are `FUNCTIONS_CALLED`, all of Moodle 4.5 / 5.x core or mod_customcert.

Calls per cycle = 1 + sum over courses of ceil(enrolled / page_size) + enrolments not yet complete
(minus courses without criteria) + ceil(new issues / L) + 1. With 50 courses of 200 learners, a page
size of 500 and 30 % complete: 1 + 50 + 7,000 + a few = about 7,060 calls; completion status
dominates, so `poll_interval_s` for Moodle should be minutes, not seconds. The snapshot table holds
one row per (course, learner) ever enrolled. Moodle does not say when an enrolment was created or
withdrawn: `enrolled_at` is when the connector first saw it and `withdrawn_at` when it found it gone
(one cycle late at most). Enrolments already present in the first snapshot of a course (a backfill of
a site's history) are dated at the course's start date when that is earlier, not at the first poll:
otherwise every historical enrolment would fall in the month alcance was installed, with a negative
time to completion. `completed_at` is the latest completion time of the course criteria. A course
deleted from Moodle is not scanned again, so its enrolments are not withdrawn. Errors come back as HTTP
200 with an `exception` body: database and maintenance error codes are retried, every other code stops
the connector.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import asyncpg
from pydantic import Field

from connectors.base import ConnectorOptions, Cursor, Page, PollingConnector
from connectors.exceptions import DeadLetterRecord, FatalSourceError, RetryableError
from schemas.events.base import Audience, Event
from schemas.events.training import (
    CertificateIssued,
    EnrolmentCompleted,
    EnrolmentCreated,
    EnrolmentWithdrawn,
    Gender,
    LearnerRegistered,
)

if TYPE_CHECKING:
    from connectors.context import ConnectorContext

logger = logging.getLogger(__name__)

REST_PATH = "/webservice/rest/server.php"
SITE_COURSE_ID = 1
MAX_ISSUES_PAGE = 500
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
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_PERSONAL_KEYS = frozenset(
    {"username", "firstname", "lastname", "fullname", "email", "idnumber", "institution"}
)


class MoodleOptions(ConnectorOptions):
    """Options of a Moodle source (`options` of its `[[sources]]` entry)."""

    page_overlap: int = Field(default=20, ge=0, le=1_000)
    completion_concurrency: int = Field(default=4, ge=1, le=32)
    certificates: bool = True
    learner_identity: str = Field(default="email", pattern="^(email|id)$")
    audience_field: str = "audience"
    gender_field: str = "gender"
    # Role shortnames whose holders are learners; teachers, managers and other roles are not counted.
    learner_roles: list[str] = Field(default_factory=lambda: ["student"], min_length=1)


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


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _iso(ts: int | float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


class MoodleConnector(PollingConnector[dict[str, Any]]):
    """Pulls a Moodle site through web services; see the module docstring for the costs."""

    kind: ClassVar[str] = "moodle"
    family: ClassVar[str] = "training"
    options_model: ClassVar[type[ConnectorOptions]] = MoodleOptions

    _context: ConnectorContext | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cert_courses: dict[int, int | None] = {}
        self._nocriteria: dict[int, int] = {}
        self._completion_off_logged: set[int] = set()

    @property
    def opts(self) -> MoodleOptions:
        """The validated Moodle options."""
        assert isinstance(self.options, MoodleOptions)  # noqa: S101 - guaranteed by options_model
        return self.options

    async def open(self, context: ConnectorContext) -> None:
        """Keep the context: its pool holds the enrolment snapshots."""
        self._context = context

    # ---- web-service calls -------------------------------------------------------------------

    async def call(self, function: str, **params: Any) -> Any:
        """Call one web-service function and return its decoded result.

        Raises:
            MoodleError: for error codes the caller may handle (the rest are raised as below).
            RetryableError: on transient HTTP failures or a retryable Moodle error code.
            FatalSourceError: on a rejected token or any other Moodle error.
        """
        if function not in FUNCTIONS_CALLED:
            raise FatalSourceError(f"{function} is not among the Moodle functions alcance calls")
        token = self.source.token.get_secret_value() if self.source.token is not None else ""
        # The token travels in the POST body, never in the URL (web servers log URLs).
        form = {"wstoken": token, "wsfunction": function, "moodlewsrestformat": "json", **flatten(params)}
        response = await self.http.post_form_json(self.source.endpoint.rstrip("/") + REST_PATH, form)
        body = response.body
        if isinstance(body, dict) and "exception" in body:
            code = str(body.get("errorcode", ""))
            message = str(body.get("message", ""))[:200]
            if code in RETRYABLE_ERRORCODES:
                raise RetryableError(f"Moodle {function}: {code}")
            raise MoodleError(code, message)
        return body

    async def _call_or_fatal(self, function: str, **params: Any) -> Any:
        try:
            return await self.call(function, **params)
        except MoodleError as exc:
            raise FatalSourceError(f"Moodle {function} failed: {exc}") from exc

    # ---- paging -------------------------------------------------------------------------------

    async def fetch_page(self, cursor: Cursor | None) -> Page[dict[str, Any]]:
        """The next step of the current poll cycle (see the module docstring)."""
        # A snapshot query cut by a store outage is retried by the runtime like any page.
        state: dict[str, Any] = dict(cursor) if cursor else {"cycle": 1, "cert_from": 0}
        if "courses" not in state:
            await self._start_cycle(state)
        if state["course_idx"] < len(state["courses"]):
            return await self._enrolment_page(state)
        return await self._certificate_page(state)

    async def _start_cycle(self, state: dict[str, Any]) -> None:
        # core_course_get_courses_by_field returns `enablecompletion` to any user who can access the
        # course; core_course_get_courses returns it only with moodle/course:update.
        listing = await self._call_or_fatal("core_course_get_courses_by_field")
        courses = listing.get("courses", []) if isinstance(listing, dict) else []
        state["courses"] = [
            [
                int(c["id"]),
                int(c.get("startdate") or 0),
                int(c.get("enddate") or 0),
                str(c.get("idnumber") or ""),
                int(c.get("enablecompletion", 1) or 0),
            ]
            for c in courses
            if int(c["id"]) != SITE_COURSE_ID
        ]
        state.update(course_idx=0, limitfrom=0, after_id=0)

    async def _enrolment_page(self, state: dict[str, Any]) -> Page[dict[str, Any]]:
        course_id, start, end, idnumber, *rest = state["courses"][state["course_idx"]]
        completion_on = bool(rest[0]) if rest else True
        window, complete_course = await self._read_window(state, course_id)
        users = [user for user in window if self._is_learner(user)]
        cycle = int(state["cycle"])
        now = datetime.now(UTC)
        records: list[dict[str, Any]] = []
        course = {"id": course_id, "startdate": start, "enddate": end, "idnumber": idnumber}
        keys = {self._user_key(user): user for user in users}
        rows = await self._upsert_seen(course_id, list(keys), cycle, now)
        to_check: list[tuple[str, dict[str, Any], asyncpg.Record]] = []
        for row in rows:
            user = keys[row["user_key"]]
            if row["first_seen_cycle"] >= cycle:
                records.append(
                    {
                        "kind": "enrolment",
                        "course": course,
                        "user": user,
                        "user_key": row["user_key"],
                        "generation": row["generation"],
                        "seen_at": row["first_seen_at"].isoformat(),
                        "backfill": row["first_seen_cycle"] == 1 and row["generation"] == 0,
                    }
                )
            if row["completed_cycle"] is None or row["completed_cycle"] >= cycle:
                to_check.append((row["user_key"], user, row))
        await self._learner_first_seen(records)
        if not completion_on:
            if course_id not in self._completion_off_logged:
                self._completion_off_logged.add(course_id)
                logger.info(
                    "source %s: course %d has completion tracking off; its completions are skipped",
                    self.name,
                    course_id,
                )
        elif self._nocriteria.get(course_id) != cycle:
            records.extend(
                {
                    "kind": "completion_check",
                    "course": course,
                    "cycle": cycle,
                    "user": user,
                    "user_key": key,
                    "generation": row["generation"],
                }
                for key, user, row in to_check
            )
        if complete_course:
            records.extend(await self._withdrawals(course, cycle, now))
            state.update(course_idx=state["course_idx"] + 1, limitfrom=0, after_id=0)
        return Page(records=records, next_cursor=state, exhausted=False)

    def _is_learner(self, user: dict[str, Any]) -> bool:
        roles = {str(role.get("shortname")) for role in user.get("roles") or [] if isinstance(role, dict)}
        return not roles.isdisjoint(self.opts.learner_roles)

    async def _learner_first_seen(self, records: list[dict[str, Any]]) -> None:
        """Give each new enrolment its learner's first sighting in any course of the source.

        `LearnerRegistered` is emitted with every new enrolment under one event id per learner; taking
        its time from the learner's earliest snapshot row keeps those copies identical.
        """
        keys = sorted({record["user_key"] for record in records})
        if not keys:
            return
        rows = await self._pool().fetch(
            "SELECT user_key, min(first_seen_at) AS first_seen FROM moodle_enrolment_snapshot"
            " WHERE source = $1 AND user_key = ANY($2::text[]) GROUP BY user_key",
            self.name,
            keys,
        )
        first = {row["user_key"]: row["first_seen"].isoformat() for row in rows}
        for record in records:
            record["learner_seen_at"] = first.get(record["user_key"], record["seen_at"])

    async def _read_window(self, state: dict[str, Any], course_id: int) -> tuple[list[dict[str, Any]], bool]:
        """Users after `after_id`, reading back `page_overlap` users so that no one is skipped.

        Returns:
            (users not read before in this cycle, whether the course's list has ended).
        """
        after_id = int(state["after_id"])
        limitfrom = int(state["limitfrom"])
        start = max(0, limitfrom - self.opts.page_overlap)
        while True:
            limitnumber = self.page_size + (limitfrom - start)
            batch = await self._call_or_fatal(
                "core_enrol_get_enrolled_users",
                courseid=course_id,
                options=[
                    {"name": "limitfrom", "value": start},
                    {"name": "limitnumber", "value": limitnumber},
                    {"name": "sortby", "value": "id"},
                ],
            )
            if not isinstance(batch, list):
                raise RetryableError("core_enrol_get_enrolled_users did not return a list")
            ids = [int(user["id"]) for user in batch]
            # The window must begin at or before the last user already read, or users were skipped.
            if start == 0 or after_id == 0 or (ids and ids[0] <= after_id):
                state["limitfrom"] = start + len(batch)
                state["after_id"] = max(ids, default=after_id)
                return [user for user in batch if int(user["id"]) > after_id], len(batch) < limitnumber
            start = max(0, start - self.page_size - self.opts.page_overlap)

    async def prepare_page(self, page: Page[dict[str, Any]]) -> Page[dict[str, Any]]:
        """Resolve the page's completion checks and the courses of its certificates (Moodle calls).

        Raises:
            FatalSourceError: when Moodle says the service user may not read completions of a course
                that tracks completion (the capability `report/completion:view` is missing).
        """
        checks = [r for r in page.records if r.get("kind") == "completion_check"]
        certificates = [
            r for r in page.records if r.get("kind") == "certificate" and r.get("course_id") is None
        ]
        if not checks and not certificates:
            return page
        semaphore = asyncio.Semaphore(self.opts.completion_concurrency)

        async def one(check: dict[str, Any]) -> dict[str, Any] | None:
            course = check["course"]
            if self._nocriteria.get(course["id"]) == check["cycle"]:
                return None
            async with semaphore:
                try:
                    result = await self.call(
                        "core_completion_get_course_completion_status",
                        courseid=course["id"],
                        userid=check["user"]["id"],
                    )
                except MoodleError as exc:
                    self._completion_error(exc, check)
                    return None
            status = result.get("completionstatus", {}) if isinstance(result, dict) else {}
            if not status.get("completed"):
                return None
            times = [int(c.get("timecompleted") or 0) for c in status.get("completions", [])]
            return {**check, "kind": "completion", "completed_at": max(times, default=0)}

        done = [r for r in await asyncio.gather(*(one(check) for check in checks)) if r is not None]
        for record in certificates:
            record["course_id"] = await self._certificate_course(int(record["issue"]["customcertid"]))
            record["generation"] = await self._generation(record["course_id"], record["user_key"])
        by_course: dict[tuple[int, int], list[str]] = {}
        for record in done:
            by_course.setdefault((record["course"]["id"], record["cycle"]), []).append(record["user_key"])
        for (course_id, cycle), keys in by_course.items():
            await self._pool().execute(
                "UPDATE moodle_enrolment_snapshot SET completed_cycle = $4"
                " WHERE source = $1 AND course_id = $2 AND user_key = ANY($3::text[])"
                " AND (completed_cycle IS NULL OR completed_cycle > $4)",
                self.name,
                course_id,
                keys,
                cycle,
            )
        check_ids = {id(record) for record in checks}
        records = [r for r in page.records if id(r) not in check_ids]
        records.extend(done)
        return Page(records, page.next_cursor, page.exhausted, page.newest_at)

    def _completion_error(self, exc: MoodleError, check: dict[str, Any]) -> None:
        """What a completion-status error means: nothing to count, a configuration error, or a retry."""
        course = check["course"]
        if exc.errorcode in {"nocriteriaset", "completionnotenabled"}:
            self._nocriteria[course["id"]] = check["cycle"]
            return None
        if exc.errorcode in {"usernotenroled", "nottracked"}:
            return None
        if exc.errorcode == "cannotviewreport":
            # Moodle answers cannotviewreport both for a course without completion tracking and for a
            # reader without the capability; the course listing said this course tracks completion.
            raise FatalSourceError(
                f"Moodle refuses completions of course {course['id']}, which tracks completion: the service"
                " user needs the capability report/completion:view (configuration error; Moodle says the"
                " same when completion tracking is off for the whole site)"
            ) from exc
        raise RetryableError(f"Moodle core_completion_get_course_completion_status: {exc.errorcode}")

    async def _certificate_course(self, customcertid: int) -> int | None:
        """The course of a customcert instance (core_course_get_course_module_by_instance), cached."""
        if customcertid not in self._cert_courses:
            try:
                found = await self.call(
                    "core_course_get_course_module_by_instance", module="customcert", instance=customcertid
                )
            except MoodleError as exc:
                if exc.errorcode != "invalidrecord":
                    raise RetryableError(
                        f"Moodle core_course_get_course_module_by_instance: {exc.errorcode}"
                    ) from exc
                found = {}
            course = _as_dict(_as_dict(found).get("cm")).get("course")
            self._cert_courses[customcertid] = int(course) if course is not None else None
        return self._cert_courses[customcertid]

    async def _generation(self, course_id: int | None, user_key: str) -> int:
        if course_id is None:
            return 0
        value = await self._pool().fetchval(
            "SELECT generation FROM moodle_enrolment_snapshot"
            " WHERE source = $1 AND course_id = $2 AND user_key = $3",
            self.name,
            course_id,
            user_key,
        )
        return int(value or 0)

    async def _upsert_seen(self, course_id: int, keys: list[str], cycle: int, now: datetime) -> list[Any]:
        if not keys:
            return []
        back = "s.withdrawn_cycle IS NOT NULL AND s.withdrawn_cycle < $3"
        rows: list[Any] = await self._pool().fetch(
            f"""
            INSERT INTO moodle_enrolment_snapshot AS s
                (source, course_id, user_key, generation, first_seen_cycle, first_seen_at, last_seen_cycle)
            SELECT $1, $2, k, 0, $3, $4, $3 FROM unnest($5::text[]) AS k
            ON CONFLICT (source, course_id, user_key) DO UPDATE SET
                generation = CASE WHEN {back} THEN s.generation + 1 ELSE s.generation END,
                first_seen_cycle = CASE WHEN {back} THEN $3 ELSE s.first_seen_cycle END,
                first_seen_at = CASE WHEN {back} THEN $4 ELSE s.first_seen_at END,
                completed_cycle = CASE WHEN {back} THEN NULL ELSE s.completed_cycle END,
                last_seen_cycle = $3, withdrawn_cycle = NULL, withdrawn_at = NULL
            RETURNING user_key, generation, first_seen_cycle, first_seen_at, completed_cycle
            """,  # noqa: S608 - the interpolated text is a constant condition, values are parameters
            self.name,
            course_id,
            cycle,
            now,
            keys,
        )
        return rows

    async def _withdrawals(self, course: dict[str, Any], cycle: int, now: datetime) -> list[dict[str, Any]]:
        rows = await self._pool().fetch(
            """
            UPDATE moodle_enrolment_snapshot
               SET withdrawn_cycle = $3, withdrawn_at = coalesce(withdrawn_at, $4)
             WHERE source = $1 AND course_id = $2 AND last_seen_cycle <> $3
               AND (withdrawn_cycle IS NULL OR withdrawn_cycle >= $3)
            RETURNING user_key, generation, withdrawn_at
            """,
            self.name,
            course["id"],
            cycle,
            now,
        )
        return [
            {
                "kind": "withdrawal",
                "course": course,
                "user_key": row["user_key"],
                "generation": row["generation"],
                "withdrawn_at": row["withdrawn_at"].isoformat(),
            }
            for row in rows
        ]

    async def _certificate_page(self, state: dict[str, Any]) -> Page[dict[str, Any]]:
        if not self.opts.certificates or not state["courses"]:
            return self._next_cycle(state, [])
        overlap = self.opts.page_overlap
        limit = max(1, min(self.page_size, MAX_ISSUES_PAGE - overlap))
        offset = int(state.get("cert_offset", 0))
        floor = state.get("cert_floor")
        floor_ids = set(state.get("cert_floor_ids", []))

        def already_read(item: dict[str, Any]) -> bool:
            # Newer than the oldest issue this sweep has passed: read before, or a new arrival that the
            # next sweep reads (its watermark is the newest issue of this sweep's first page).
            created = int(item["issue"]["timecreated"])
            return floor is not None and (
                created > floor or (created == floor and int(item["issue"]["id"]) in floor_ids)
            )

        # Offsets shift when issues are deleted during a sweep: read back `page_overlap` issues and,
        # when none of them was read before, move further back so that no issue is skipped.
        start = max(0, offset - overlap)
        while True:
            count = min(MAX_ISSUES_PAGE, limit + (offset - start))
            batch = await self._call_or_fatal(
                "mod_customcert_list_issues",
                timecreatedfrom=int(state["cert_from"]),
                limit=count,
                offset=start,
            )
            if not isinstance(batch, list):
                raise RetryableError("mod_customcert_list_issues did not return a list")
            if start == 0 or floor is None or any(already_read(item) for item in batch):
                break
            start = max(0, start - limit - overlap)
        if start == 0 and offset == 0 and batch:
            state["cert_top"] = max(int(item["issue"]["timecreated"]) for item in batch)
        fresh = [item for item in batch if not already_read(item)]
        if fresh:
            new_floor = min(int(item["issue"]["timecreated"]) for item in fresh)
            ids = {int(i["issue"]["id"]) for i in fresh if int(i["issue"]["timecreated"]) == new_floor}
            state["cert_floor_ids"] = sorted(ids | floor_ids) if new_floor == floor else sorted(ids)
            state["cert_floor"] = new_floor
        records = [
            {
                "kind": "certificate",
                "issue": item["issue"],
                "user": item.get("user") or {},
                "user_key": self._user_key(item.get("user") or {}),
                "course_id": None,
                "generation": 0,
            }
            for item in fresh
        ]
        if len(batch) < count:
            if "cert_top" in state:
                state["cert_from"] = state["cert_top"]
            return self._next_cycle(state, records)
        state["cert_offset"] = start + len(batch)
        return Page(records=records, next_cursor=state, exhausted=False)

    def _next_cycle(self, state: dict[str, Any], records: list[dict[str, Any]]) -> Page[dict[str, Any]]:
        following = {"cycle": int(state["cycle"]) + 1, "cert_from": int(state["cert_from"])}
        return Page(records=records, next_cursor=following, exhausted=True)

    # ---- mapping ------------------------------------------------------------------------------

    def _user_key(self, user: dict[str, Any]) -> str:
        email = str(user.get("email") or "").strip()
        if self.opts.learner_identity == "email" and email:
            return self.pseudonyms.person(email)
        return self.pseudonyms.person(f"moodle:{self.source.endpoint}:{user.get('id')}")

    def _pool(self) -> asyncpg.Pool:
        if self._context is None:
            raise RuntimeError("the Moodle connector needs its runtime context (call run())")
        return self._context.pool

    def map_record(self, record: dict[str, Any]) -> list[Event]:
        """The events of one enrolment, completion, withdrawal or certificate record."""
        kind = record.get("kind")
        if kind == "enrolment":
            return self._map_enrolment(record)
        if kind == "completion":
            return [self._map_completion(record)]
        if kind == "withdrawal":
            return [self._map_withdrawal(record)]
        if kind == "certificate":
            return [self._map_certificate(record)]
        raise DeadLetterRecord(f"unknown Moodle record kind {kind!r}")

    def _enrolment_id(self, course_id: int, user_key: str, generation: int) -> str:
        base = f"moodle-{self.name}-c{course_id}-{user_key}"
        return base if generation == 0 else f"{base}-r{generation}"

    def _profile(self, user: dict[str, Any]) -> dict[str, Any]:
        custom = {str(f.get("shortname")): str(f.get("value") or "") for f in user.get("customfields") or []}
        country = str(user.get("country") or "").upper()
        audience = custom.get(self.opts.audience_field, "").upper()
        gender = custom.get(self.opts.gender_field, "").upper()
        institution = str(user.get("institution") or "").strip()
        return {
            "country": country if _COUNTRY.match(country) else None,
            "audience": Audience(audience) if audience in Audience.__members__ else None,
            "gender": Gender(gender) if gender in Gender.__members__ else None,
            "org_key": self.pseudonyms.org(institution) if institution else None,
        }

    def _map_enrolment(self, record: dict[str, Any]) -> list[Event]:
        course, key, gen = record["course"], record["user_key"], int(record["generation"])
        profile = self._profile(record["user"])
        seen = record["seen_at"]
        course_start = _iso(course.get("startdate"))
        if (
            record.get("backfill")
            and course_start is not None
            and datetime.fromisoformat(course_start) < datetime.fromisoformat(seen)
        ):
            seen = course_start
        offering = f"moodle-{self.name}-c{course['id']}"
        idnumber = course.get("idnumber") or ""
        learner = LearnerRegistered.create(
            source=self.name,
            record_identity=f"learner:{key}",
            occurred_at=record.get("learner_seen_at", seen),
            source_ref=f"user:{key}",
            subject_key=key,
            **profile,
        )
        enrolment = EnrolmentCreated.create(
            source=self.name,
            record_identity=f"enrol:{course['id']}:{key}:{gen}:created",
            occurred_at=seen,
            source_ref=f"course:{course['id']}",
            subject_key=key,
            enrolment_id=self._enrolment_id(course["id"], key, gen),
            offering_id=offering,
            course_id=idnumber if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}", idnumber) else offering,
            enrolled_at=seen,
            channel="other",
            offering_starts_at=_iso(course["startdate"]),
            offering_ends_at=_iso(course["enddate"]),
            **profile,
        )
        return [learner, enrolment]

    def _map_completion(self, record: dict[str, Any]) -> Event:
        course, key, gen = record["course"], record["user_key"], int(record["generation"])
        when = _iso(record["completed_at"]) or datetime.now(UTC).isoformat()
        return EnrolmentCompleted.create(
            source=self.name,
            record_identity=f"enrol:{course['id']}:{key}:{gen}:completed",
            occurred_at=when,
            source_ref=f"course:{course['id']}",
            subject_key=key,
            enrolment_id=self._enrolment_id(course["id"], key, gen),
            completed_at=when,
            passed=True,
        )

    def _map_withdrawal(self, record: dict[str, Any]) -> Event:
        course, key, gen = record["course"], record["user_key"], int(record["generation"])
        when = datetime.fromisoformat(record["withdrawn_at"])
        return EnrolmentWithdrawn.create(
            source=self.name,
            record_identity=f"enrol:{course['id']}:{key}:{gen}:withdrawn",
            occurred_at=when,
            source_ref=f"course:{course['id']}",
            subject_key=key,
            enrolment_id=self._enrolment_id(course["id"], key, gen),
            withdrawn_at=when,
            before_start=bool(course["startdate"]) and when.timestamp() < course["startdate"],
        )

    def _map_certificate(self, record: dict[str, Any]) -> Event:
        issue, key = record["issue"], record["user_key"]
        if record["course_id"] is None:
            raise DeadLetterRecord("certificate of a customcert instance outside the site's courses")
        if not issue.get("timecreated"):
            raise DeadLetterRecord("certificate issue without timecreated")
        when = _iso(int(issue["timecreated"]))
        code = str(issue.get("code") or "")
        return CertificateIssued.create(
            source=self.name,
            record_identity=f"cert:{issue['id']}",
            occurred_at=when,
            source_ref=f"customcert-issue:{issue['id']}",
            subject_key=key,
            certificate_id=f"moodle-{self.name}-cert-{issue['id']}",
            enrolment_id=self._enrolment_id(int(record["course_id"]), key, int(record["generation"])),
            issued_at=when,
            verify_hash=hashlib.sha256(code.encode()).hexdigest() if code else None,
        )

    def record_json(self, record: dict[str, Any]) -> bytes:
        """The record for the dead-letter topic, with names, e-mails and Moodle user ids removed."""
        return json.dumps(_scrub(record), default=str, ensure_ascii=False).encode()


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in _PERSONAL_KEYS or (key == "id" and "username" in value):
                out[key] = "<removed>"
            else:
                out[key] = _scrub(item)
        return out
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value
