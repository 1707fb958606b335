"""The Moodle connector's poll cycle: courses, enrolment windows, completion checks, certificate sweeps.

See the package docstring (`connectors.moodle`) for the cycle, its calls and its costs.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import asyncpg

from connectors.base import ConnectorOptions, Cursor, Page, PollingConnector
from connectors.exceptions import FatalSourceError, RetryableError
from connectors.moodle.client import MoodleClient, MoodleError
from connectors.moodle.cursor import next_course, next_cycle, resume, start_cycle
from connectors.moodle.mapping import MoodleMapping
from connectors.moodle.options import MoodleOptions
from connectors.moodle.snapshots import MoodleSnapshots
from schemas.events.base import Event

if TYPE_CHECKING:
    from connectors.context import ConnectorContext

logger = logging.getLogger(__name__)

SITE_COURSE_ID = 1
MAX_ISSUES_PAGE = 500


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class MoodleConnector(PollingConnector[dict[str, Any]]):
    """Pulls a Moodle site through web services; see the module docstring for the costs."""

    kind: ClassVar[str] = "moodle"
    family: ClassVar[str] = "training"
    options_model: ClassVar[type[ConnectorOptions]] = MoodleOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cert_courses: dict[int, int | None] = {}
        self._nocriteria: dict[int, int] = {}
        self._completion_off_logged: set[int] = set()
        self._client: MoodleClient | None = None
        self._snapshots: MoodleSnapshots | None = None
        self.mapping = MoodleMapping(self.name, self.source.endpoint, self.pseudonyms, self.opts)

    @property
    def opts(self) -> MoodleOptions:
        """The validated Moodle options."""
        assert isinstance(self.options, MoodleOptions)  # noqa: S101 - guaranteed by options_model
        return self.options

    async def open(self, context: ConnectorContext) -> None:
        """Runs before the first fetch: the enrolment snapshots live in the context's store."""
        self._snapshots = MoodleSnapshots(context.pool, self.name)

    @property
    def snapshots(self) -> MoodleSnapshots:
        """The source's enrolment snapshots (available once `open` ran)."""
        if self._snapshots is None:
            raise RuntimeError("the Moodle connector reads its snapshots only once opened (open(context))")
        return self._snapshots

    # ---- web-service calls -------------------------------------------------------------------

    @property
    def client(self) -> MoodleClient:
        """The web-service client, over the HTTP client the runtime gave the connector."""
        if self._client is None or self._client.http is not self.http:
            self._client = MoodleClient(self.http, self.source)
        return self._client

    async def call(self, function: str, **params: Any) -> Any:
        """Call one web-service function (see `MoodleClient.call`)."""
        return await self.client.call(function, **params)

    # ---- paging -------------------------------------------------------------------------------

    async def fetch_page(self, cursor: Cursor | None) -> Page[dict[str, Any]]:
        """The next step of the current poll cycle (see the module docstring)."""
        # A snapshot query cut by a store outage is retried by the runtime like any page.
        state = resume(cursor)
        if "courses" not in state:
            await self._start_cycle(state)
        if state["course_idx"] < len(state["courses"]):
            return await self._enrolment_page(state)
        return await self._certificate_page(state)

    async def _start_cycle(self, state: dict[str, Any]) -> None:
        # core_course_get_courses_by_field returns `enablecompletion` to any user who can access the
        # course; core_course_get_courses returns it only with moodle/course:update.
        listing = await self.client.call_or_fatal("core_course_get_courses_by_field")
        courses = listing.get("courses", []) if isinstance(listing, dict) else []
        courses_of_cycle = [
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
        start_cycle(state, courses_of_cycle)

    async def _enrolment_page(self, state: dict[str, Any]) -> Page[dict[str, Any]]:
        course_id, start, end, idnumber, *rest = state["courses"][state["course_idx"]]
        completion_on = bool(rest[0]) if rest else True
        window, complete_course = await self._read_window(state, course_id)
        users = [user for user in window if self._is_learner(user)]
        cycle = int(state["cycle"])
        now = datetime.now(UTC)
        records: list[dict[str, Any]] = []
        course = {"id": course_id, "startdate": start, "enddate": end, "idnumber": idnumber}
        keys = {self.mapping.user_key(user): user for user in users}
        rows = await self.snapshots.upsert_seen(course_id, list(keys), cycle, now)
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
            next_course(state)
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
        first = await self.snapshots.first_seen(keys)
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
            batch = await self.client.call_or_fatal(
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
            record["generation"] = await self.snapshots.generation(record["course_id"], record["user_key"])
        by_course: dict[tuple[int, int], list[str]] = {}
        for record in done:
            by_course.setdefault((record["course"]["id"], record["cycle"]), []).append(record["user_key"])
        for (course_id, cycle), keys in by_course.items():
            await self.snapshots.mark_completed(course_id, cycle, keys)
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

    async def _withdrawals(self, course: dict[str, Any], cycle: int, now: datetime) -> list[dict[str, Any]]:
        rows = await self.snapshots.withdrawals(course["id"], cycle, now)
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
            batch = await self.client.call_or_fatal(
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
                "user_key": self.mapping.user_key(item.get("user") or {}),
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
        return Page(records=records, next_cursor=next_cycle(state), exhausted=True)

    # ---- mapping ------------------------------------------------------------------------------

    def map_record(self, record: dict[str, Any]) -> list[Event]:
        """The events of one enrolment, completion, withdrawal or certificate record."""
        return self.mapping.events(record)

    def record_json(self, record: dict[str, Any]) -> bytes:
        """The record for the dead-letter topic, with names, e-mails and Moodle user ids removed."""
        return self.mapping.record_json(record)
