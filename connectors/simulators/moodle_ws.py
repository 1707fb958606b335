"""A Moodle web-service (REST) simulator: wstoken auth, the functions alcance calls, errors as HTTP 200.

It answers `/webservice/rest/server.php` like Moodle 4.5 / 5.x does (`webservice/rest/locallib.php`:
parameters from the query string merged with the form body, token included): arrays flattened
(`options[0][name]=limitfrom&options[0][value]=0`), every failure as HTTP 200 with
`{"exception", "errorcode", "message"}`. Each function mirrors a real one (`FUNCTIONS` says which one
and the versions that define it); an unknown function answers like Moodle does when a function is not
in `external_functions`: `dml_missing_record_exception` / `invalidrecord`.

The state is a plain `MoodleState` that tests mutate between polls (withdraw, complete, issue). Its
courses may have completion tracking off (`cannotviewreport`, as `completion_can_view_data` decides),
its users hold roles (students, teachers, managers), and the service user's capabilities can be taken
away (`capabilities`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from connectors.simulators.moodle_state import (
    CertIssue,
    MoodleCourse,
    MoodleEnrolment,
    MoodleState,
    MoodleUser,
    state_from_world,
)

__all__ = [
    "CertIssue",
    "MoodleCourse",
    "MoodleEnrolment",
    "MoodleSimulator",
    "MoodleState",
    "MoodleUser",
    "state_from_world",
    "unflatten",
]
logger = logging.getLogger(__name__)

SITE_COURSE_ID = 1
MAX_ISSUES_LIMIT = 500

FUNCTIONS: dict[str, str] = {
    "core_course_get_courses": "core_course_external::get_courses, Moodle 2.0+ (course/externallib.php)",
    "core_course_get_courses_by_field": (
        "core_course_external::get_courses_by_field, Moodle 3.2+; enablecompletion for any reader"
    ),
    "core_course_get_course_module_by_instance": (
        "core_course_external::get_course_module_by_instance, Moodle 3.0+; MUST_EXIST: invalidrecord"
    ),
    "core_enrol_get_enrolled_users": "core_enrol_external::get_enrolled_users, Moodle 2.1+ (with roles)",
    "core_completion_get_course_completion_status": (
        "core_completion_external::get_course_completion_status, Moodle 2.9+; cannotviewreport, "
        "usernotenroled, nocriteriaset"
    ),
    "mod_customcert_list_issues": (
        "mod_customcert\\external::list_issues, mod_customcert 4.4.7+ / 5.0.1+; capability "
        "mod/customcert:viewallcertificates"
    ),
}
"""The real function each simulated one mirrors, with the versions that define it (Moodle 4.5 / 5.x)."""


class MoodleError(Exception):
    """Raised inside a handler to answer with Moodle's error body (HTTP 200)."""

    def __init__(self, errorcode: str, message: str, exception: str = "moodle_exception") -> None:
        super().__init__(message)
        self.errorcode = errorcode
        self.exception = exception


_FLAT = re.compile(r"^([a-z_]+)((?:\[[^\]]*\])*)$")


def unflatten(params: Mapping[str, str]) -> dict[str, Any]:
    """Rebuild nested parameters from Moodle's flattened form (`a[0][name]=x` -> `{"a": [{"name": "x"}]}`)."""
    root: dict[str, Any] = {}
    for key, value in params.items():
        match = _FLAT.match(key)
        if match is None:
            raise MoodleError("invalidparameter", f"Invalid parameter value detected ({key})")
        parts = [match.group(1), *re.findall(r"\[([^\]]*)\]", match.group(2))]
        node: dict[str, Any] = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return {key: _listify(value) for key, value in root.items()}


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        if value and all(key.isdigit() for key in value):
            return [_listify(value[key]) for key in sorted(value, key=int)]
        return {key: _listify(item) for key, item in value.items()}
    return value


def _int(params: Mapping[str, Any], name: str, default: int | None = None) -> int:
    raw = params.get(name)
    if raw is None:
        if default is None:
            raise MoodleError(
                "invalidparameter", f"Invalid parameter value detected (Missing required key: {name})"
            )
        return default
    try:
        return int(raw)
    except (TypeError, ValueError) as exc:
        raise MoodleError("invalidparameter", f"Invalid parameter value detected ({name})") from exc


ROLE_IDS = {"manager": 1, "coursecreator": 2, "editingteacher": 3, "teacher": 4, "student": 5}


def _user_json(user: MoodleUser, course_id: int, role: str = "student") -> dict[str, Any]:
    custom = [
        {"type": "text", "value": user.audience, "name": "Audience", "shortname": "audience"},
        {"type": "menu", "value": user.gender, "name": "Gender", "shortname": "gender"},
    ]
    return {
        "id": user.id,
        "username": user.username,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "fullname": f"{user.firstname} {user.lastname}",
        "email": user.email,
        "country": user.country,
        "institution": user.institution,
        "firstaccess": 0,
        "lastaccess": 0,
        "lastcourseaccess": 0,
        "customfields": [field for field in custom if field["value"]],
        "roles": [{"roleid": ROLE_IDS.get(role, 9), "name": "", "shortname": role, "sortorder": 0}],
        "enrolledcourses": [{"id": course_id, "fullname": "", "shortname": ""}],
    }


class MoodleSimulator:
    """The aiohttp application of the simulated Moodle web services.

    Args:
        state: the site to serve (mutable while serving).
        token: the accepted `wstoken`.
    """

    def __init__(self, state: MoodleState, token: str) -> None:
        self.state = state
        self.token = token
        self._functions: dict[str, Callable[[dict[str, Any]], Any]] = {
            "core_course_get_courses": self._courses,
            "core_course_get_courses_by_field": self._courses_by_field,
            "core_course_get_course_module_by_instance": self._module_by_instance,
            "core_enrol_get_enrolled_users": self._enrolled_users,
            "core_completion_get_course_completion_status": self._completion_status,
            "mod_customcert_list_issues": self._list_issues,
        }

    @property
    def functions(self) -> frozenset[str]:
        """The web-service functions this simulator answers."""
        return frozenset(self._functions)

    def app(self, *, middlewares: list[Any] | None = None) -> web.Application:
        """The aiohttp application; `middlewares` may add faults (see `connectors.simulators.faults`)."""
        application = web.Application(middlewares=middlewares or [])
        application.router.add_route("*", "/webservice/rest/server.php", self._handle)
        return application

    async def _handle(self, request: web.Request) -> web.Response:
        params: dict[str, str] = dict(request.query)
        if "wstoken" in params:
            self.state.token_in_url += 1
        if request.method == "POST":
            params.update({key: str(value) for key, value in (await request.post()).items()})
        try:
            body = self._dispatch(params)
        except MoodleError as exc:
            body = {"exception": exc.exception, "errorcode": exc.errorcode, "message": str(exc)}
        return web.json_response(body)

    def _dispatch(self, params: dict[str, str]) -> Any:
        if params.pop("wstoken", None) != self.token:
            raise MoodleError("invalidtoken", "Invalid token - token not found")
        function = params.pop("wsfunction", "")
        if params.pop("moodlewsrestformat", "xml") != "json":
            raise MoodleError("invalidparameter", "only the json format is simulated")
        handler = self._functions.get(function)
        if handler is None:
            raise MoodleError(
                "invalidrecord",
                "Can't find data record in database table external_functions.",
                exception="dml_missing_record_exception",
            )
        self.state.calls[function] = self.state.calls.get(function, 0) + 1
        if self.state.fail_next:
            code = self.state.fail_next.pop(0)
            raise MoodleError(code, f"simulated {code}", exception="dml_read_exception")
        return handler(unflatten(params))

    def _courses(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        wanted = {int(value) for value in params.get("options", {}).get("ids", [])}
        site = {"id": SITE_COURSE_ID, "shortname": "site", "fullname": "CVF", "format": "site"}
        courses = [site] + [
            {
                "id": course.id,
                "shortname": course.shortname,
                "fullname": course.fullname,
                "categoryid": 1,
                "format": "topics",
                "startdate": course.startdate,
                "enddate": course.enddate,
                "enablecompletion": 1 if course.has_completion_criteria else 0,
            }
            for course in sorted(self.state.courses.values(), key=lambda course: course.id)
        ]
        return [course for course in courses if not wanted or course["id"] in wanted]

    def _courses_by_field(self, params: dict[str, Any]) -> dict[str, Any]:
        # Moodle returns `enablecompletion` to any user who can access the course, `idnumber` only to
        # those who may update it (a read-only service user does not get it).
        courses = [
            {
                "id": course.id,
                "shortname": course.shortname,
                "fullname": course.fullname,
                "categoryid": 1,
                "format": "topics",
                "startdate": course.startdate,
                "enddate": course.enddate,
                "enablecompletion": 1 if course.enablecompletion else 0,
            }
            for course in sorted(self.state.courses.values(), key=lambda course: course.id)
        ]
        return {"courses": courses, "warnings": []}

    def _module_by_instance(self, params: dict[str, Any]) -> dict[str, Any]:
        instance = _int(params, "instance")
        course_id = self.state.customcerts.get(instance) if params.get("module") == "customcert" else None
        if course_id is None:
            # get_coursemodule_from_instance(..., MUST_EXIST) on a missing row.
            raise MoodleError(
                "invalidrecord",
                "Can't find data record in database table course_modules.",
                exception="dml_missing_record_exception",
            )
        cm = {"id": 1_000 + instance, "course": course_id, "modname": "customcert", "instance": instance}
        return {"cm": {**cm, "module": 30, "name": "Certificado", "visible": 1}, "warnings": []}

    def _enrolled_users(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        course_id = _int(params, "courseid")
        if course_id not in self.state.courses and course_id != SITE_COURSE_ID:
            raise MoodleError("invalidrecord", "Can't find data record in database table course.")
        options = {str(option.get("name")): option.get("value") for option in params.get("options", [])}
        limitfrom = _int(options, "limitfrom", 0)
        limitnumber = _int(options, "limitnumber", 0)
        # Moodle sorts by user id by default ("sortby" = "id").
        user_ids = sorted(user for course, user in self.state.enrolments if course == course_id)
        chosen = user_ids[limitfrom : limitfrom + limitnumber] if limitnumber else user_ids[limitfrom:]
        return [
            _user_json(self.state.users[user_id], course_id, self.state.enrolments[(course_id, user_id)].role)
            for user_id in chosen
        ]

    def _completion_status(self, params: dict[str, Any]) -> dict[str, Any]:
        course_id = _int(params, "courseid")
        user_id = _int(params, "userid")
        course = self.state.courses.get(course_id)
        if course is None:
            raise MoodleError("invalidrecord", "Can't find data record in database table course.")
        # completion_can_view_data(): completion off for the course, or no report/completion:view.
        if not course.enablecompletion or "report/completion:view" not in self.state.capabilities:
            raise MoodleError("cannotviewreport", "You cannot view this report")
        if user_id in self.state.fail_completion_of:
            raise MoodleError(
                "dmlreadexception", "Error reading from database", exception="dml_read_exception"
            )
        if not course.has_completion_criteria:
            raise MoodleError("nocriteriaset", "No criteria set for this course")
        enrolment = self.state.enrolments.get((course_id, user_id))
        if enrolment is None:
            raise MoodleError("usernotenroled", "User is not enrolled in this course")
        done = enrolment.completed_at is not None
        return {
            "completionstatus": {
                "completed": done,
                "aggregation": 1,
                "completions": [
                    {
                        "type": 4,
                        "title": "Activity completion",
                        "status": "Complete" if done else "Not complete",
                        "complete": done,
                        "timecompleted": enrolment.completed_at,
                        "details": {"type": "Activity completion", "criteria": "Final quiz"},
                    }
                ],
            },
            "warnings": [],
        }

    def _list_issues(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        since = _int(params, "timecreatedfrom", 0)
        limit = _int(params, "limit", 100)
        offset = _int(params, "offset", 0)
        if limit < 1 or limit > MAX_ISSUES_LIMIT:
            raise MoodleError(
                "invalidparameter", f"Invalid parameter value detected (limit must be 1..{MAX_ISSUES_LIMIT})"
            )
        if "mod/customcert:viewallcertificates" not in self.state.capabilities:
            raise MoodleError(
                "nopermissions",
                "Sorry, but you do not currently have permissions to do that (View all certificates).",
                exception="required_capability_exception",
            )
        # customcert orders by timecreated DESC only: ties come back in an unspecified order.
        rows = [issue for issue in self.state.issues.values() if issue.timecreated >= since]
        rows.sort(key=lambda issue: (-issue.timecreated, hash((issue.id, 7)) % 1_000))
        out = []
        for issue in rows[offset : offset + limit]:
            user = self.state.users[issue.user_id]
            out.append(
                {
                    "issue": {
                        "id": issue.id,
                        "customcertid": issue.customcertid,
                        "code": issue.code,
                        "emailed": False,
                        "timecreated": issue.timecreated,
                    },
                    "user": {
                        "id": user.id,
                        "fullname": f"{user.firstname} {user.lastname}",
                        "username": user.username,
                        "email": user.email,
                    },
                    "template": {"id": issue.customcertid, "name": "Certificado", "contextid": 0},
                }
            )
        return out
