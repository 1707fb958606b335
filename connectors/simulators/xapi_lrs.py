"""An xAPI LRS simulator serving the generated world's statements: paging, `since`, voiding, auth, faults.

What it implements of the xAPI 1.0.3 / 2.0 statement resource (GET only):

* `since` (exclusive, on `stored`), `until` (inclusive), `limit` (capped at `max_limit`), `ascending`,
  `format` (statements are always returned as stored), `statementId`, `voidedStatementId`;
* paging through `more`, a relative IRL (path and query only) that re-runs the query after the last
  statement served, as the spec allows;
* voided statements are hidden from queries but still returned by `voidedStatementId`; voiding
  statements are returned;
* `X-Experience-API-Version` is required (1.0.x or 2.0.x) and echoed; `X-Experience-API-Consistent-Through`
  is the newest `stored` minus `consistent_lag_s`;
* HTTP Basic authentication; the `Faults` middleware.

Each behaviour mirrors a real LRS. By default it is the xAPI 1.0.3 / 2.0 statement resource (Data
Retrieval, GET /statements). With `like_ralph=True` it answers single-statement queries the way Ralph
5.1.0 (`ralph-malph` on PyPI, `ralph/api/routers/statements.py`) does: `voidedStatementId` is ignored (an
ordinary StatementResult page of other statements comes back) and `statementId` returns a
StatementResult holding the one statement, or an empty one, never a bare Statement or a 404.

`statements_from_world` turns a generated `World` into statements the way a CVF LRS would receive them
(mbox or account actors, alcance's context extensions, replayed duplicates, a few verbs alcance does not
measure) and `ground_truth` says what a correct connector must publish.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDict, MultiMapping

from connectors.simulators.faults import Faults
from connectors.simulators.generator import World

VERB_REGISTERED = "http://adlnet.gov/expapi/verbs/registered"
VERB_EDLM_ENROLLED = "https://xapi.edlm/profiles/edlm-lms/concepts/verbs/enrolled"
VERB_UNREGISTERED = "http://id.tincanapi.com/verb/unregistered"
VERB_PROGRESSED = "http://adlnet.gov/expapi/verbs/progressed"
VERB_PASSED = "http://adlnet.gov/expapi/verbs/passed"
VERB_FAILED = "http://adlnet.gov/expapi/verbs/failed"
VERB_COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
VERB_ACHIEVED = "https://w3id.org/xapi/tla/verbs/achieved"
VERB_EARNED = "http://id.tincanapi.com/verb/earned"
VERB_VOIDED = "http://adlnet.gov/expapi/verbs/voided"
VERB_LAUNCHED = "http://adlnet.gov/expapi/verbs/launched"

EXT = "https://w3id.org/alcance/xapi/extensions/"
LMS_STARTING = "https://w3id.org/xapi/lms/extensions/starting-date"
LMS_ENDING = "https://w3id.org/xapi/lms/extensions/ending-date"
CMI5_PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"
COURSE_TYPE = "http://adlnet.gov/expapi/activities/course"
MODULE_TYPE = "http://adlnet.gov/expapi/activities/module"
CVF = "https://cvf.aladi.org"

_EVENT_OF_VERB = {
    VERB_REGISTERED: "cvf.enrolment.created",
    VERB_EDLM_ENROLLED: "cvf.enrolment.created",
    VERB_UNREGISTERED: "cvf.enrolment.withdrawn",
    VERB_PROGRESSED: "cvf.progress.recorded",
    VERB_PASSED: "cvf.assessment.submitted",
    VERB_FAILED: "cvf.assessment.submitted",
    VERB_COMPLETED: "cvf.enrolment.completed",
    VERB_ACHIEVED: "cvf.certificate.issued",
    VERB_EARNED: "cvf.certificate.issued",
}


def iso(instant: datetime) -> str:
    """RFC 3339 UTC with microseconds and a `Z`, as LRSs write `stored`."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    """Parse an xAPI timestamp (assumed UTC when it carries no offset)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class StatementTruth:
    """What one source statement must become.

    Attributes:
        statement_id: the LRS id.
        expected: (event_type, enrolment_id, occurred_at ISO) of the event it maps to; None when alcance
            does not measure its verb.
        duplicate_of: id of the earlier statement with the same content (a replay), if any.
    """

    statement_id: str
    expected: tuple[str, str, str] | None
    duplicate_of: str | None = None


def statements_from_world(
    world: World,
    *,
    seed: int = 0,
    duplicate_rate: float = 0.02,
    noise_rate: float = 0.05,
) -> tuple[list[dict[str, Any]], list[StatementTruth]]:
    """The statements a CVF LRS holds for `world`, in `stored` order, and their ground truth.

    Args:
        world: the generated world.
        seed: seed of the statement-level choices (actor form, verbs, ids, delays).
        duplicate_rate: share of statements replayed with a new LRS id (as Moodle's logstore does).
        noise_rate: share of enrolments with an extra `launched` statement (not measured).
    """
    rng = random.Random(seed)
    drafts: list[tuple[datetime, dict[str, Any], tuple[str, str, str] | None]] = []
    courses = {course.course_id: course for course in world.courses}
    for enrolment in world.enrolments:
        learner = world.learner(enrolment.learner_id)
        offering = world.offering(enrolment.offering_id)
        course = courses[offering.course_id]
        actor: dict[str, Any] = {"objectType": "Agent", "name": learner.name}
        if learner.learner_id % 3 == 0:
            actor["account"] = {"homePage": CVF, "name": str(learner.learner_id)}
        else:
            actor["mbox"] = f"mailto:{learner.email}"
        extensions: dict[str, Any] = {
            EXT + "country": learner.country,
            EXT + "audience": learner.audience,
            EXT + "gender": learner.gender,
            EXT + "offering": offering.offering_id,
            EXT + "course": course.course_id,
            LMS_STARTING: iso(offering.starts_at),
            LMS_ENDING: iso(offering.ends_at),
        }
        if learner.org_id is not None:
            extensions[EXT + "organisation"] = learner.org_id
        registration = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{CVF}/enrolment/{enrolment.enrolment_id}"))
        course_activity = {
            "objectType": "Activity",
            "id": f"{CVF}/course/{course.course_id}",
            "definition": {"type": COURSE_TYPE, "name": {"es": course.title}},
        }
        context = {
            "registration": registration,
            "platform": "CVF",
            "contextActivities": {"category": [{"id": "https://w3id.org/xapi/lms"}]},
            "extensions": extensions,
        }

        def add(
            verb: str,
            at: datetime,
            obj: dict[str, Any] | None = None,
            result: dict[str, Any] | None = None,
            *,
            _actor: dict[str, Any] = actor,
            _context: dict[str, Any] = context,
            _course: dict[str, Any] = course_activity,
            _registration: str = registration,
        ) -> None:
            statement: dict[str, Any] = {
                "actor": _actor,
                "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
                "object": obj or _course,
                "context": _context,
                "timestamp": iso(at),
            }
            if result is not None:
                statement["result"] = result
            event_type = _EVENT_OF_VERB.get(verb)
            drafts.append((at, statement, (event_type, _registration, iso(at)) if event_type else None))

        enrol_verb = VERB_EDLM_ENROLLED if rng.random() < 0.3 else VERB_REGISTERED
        add(enrol_verb, enrolment.enrolled_at)
        if rng.random() < noise_rate:
            add(VERB_LAUNCHED, enrolment.enrolled_at + timedelta(minutes=5))
        if enrolment.withdrawn_at is not None:
            add(VERB_UNREGISTERED, enrolment.withdrawn_at)
        for n, (at, pct) in enumerate(enrolment.progress):
            module = {
                "objectType": "Activity",
                "id": f"{CVF}/course/{course.course_id}/module/{n + 1}",
                "definition": {"type": MODULE_TYPE},
            }
            add(
                VERB_PROGRESSED,
                at,
                module,
                {"extensions": {CMI5_PROGRESS: round(pct * 100)}, "duration": "PT25M"},
            )
        for role, test in (("PRE", enrolment.pre_test), ("POST", enrolment.post_test)):
            if test is None:
                continue
            at, score = test
            test_passed = score >= offering.pass_mark
            add(
                VERB_PASSED if test_passed else VERB_FAILED,
                at,
                {
                    "objectType": "Activity",
                    "id": f"{CVF}/course/{course.course_id}/{role.lower()}-test",
                    "definition": {"type": "http://adlnet.gov/expapi/activities/assessment"},
                },
                {"score": {"scaled": score}, "success": test_passed},
                _context={**context, "extensions": {**extensions, EXT + "assessment": role}},
            )
        if enrolment.assessment is not None:
            at, score, passed = enrolment.assessment
            exam = {
                "objectType": "Activity",
                "id": f"{CVF}/course/{course.course_id}/final-exam",
                "definition": {"type": "http://adlnet.gov/expapi/activities/assessment"},
            }
            add(
                VERB_PASSED if passed else VERB_FAILED,
                at,
                exam,
                {"score": {"scaled": score}, "success": passed},
            )
        if enrolment.completed_at is not None:
            add(VERB_COMPLETED, enrolment.completed_at, None, {"completion": True, "success": True})
        if enrolment.certificate is not None:
            cert_id, issued = enrolment.certificate
            add(
                VERB_ACHIEVED if rng.random() < 0.5 else VERB_EARNED,
                issued,
                None,
                {"extensions": {EXT + "certificate": cert_id, EXT + "hours": course.hours}},
            )

    statements: list[dict[str, Any]] = []
    truths: list[StatementTruth] = []
    drafts.sort(key=lambda draft: draft[0])
    for at, statement, expected in drafts:
        stored = at + timedelta(seconds=rng.randint(0, 90))
        # Whole seconds: several statements share one `stored`, as on busy LRSs.
        stored = stored.replace(microsecond=0)
        copies = 2 if rng.random() < duplicate_rate else 1
        first_id: str | None = None
        for copy in range(copies):
            sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            stamped = {"id": sid, **statement, "stored": iso(stored + timedelta(seconds=copy * 30))}
            stamped["version"] = "1.0.0"
            stamped["authority"] = {"objectType": "Agent", "account": {"homePage": CVF, "name": "cvf-lms"}}
            statements.append(stamped)
            truths.append(StatementTruth(sid, expected, duplicate_of=first_id))
            first_id = first_id or sid
    statements.sort(key=lambda s: s["stored"])
    return statements, truths


@dataclass
class XapiLrs:
    """The LRS: an aiohttp application over an ordered statement list.

    Args:
        statements: initial statements (each with `id` and `stored`).
        username: Basic auth user.
        password: Basic auth password.
        faults: fault middleware (disabled by default).
        consistent_lag_s: how far `Consistent-Through` trails the newest `stored`.
        max_limit: the server's maximum page size (also used for `limit=0`).
        base_path: path prefix of the xAPI resources; `more` links include it.
        like_ralph: answer single-statement queries as Ralph 5.1.0 does (see the module docstring).
        broken: ids of statements that make every page holding them fail with HTTP 500.
    """

    statements: list[dict[str, Any]]
    username: str = "cvf"
    password: str = "secret"  # noqa: S105 - a simulator's well-known test credential
    faults: Faults = field(default_factory=Faults)
    consistent_lag_s: float = 0.0
    max_limit: int = 500
    base_path: str = "/xapi"
    like_ralph: bool = False
    broken: set[str] = field(default_factory=set)
    requests: int = 0
    last_version: str | None = None
    _keys: list[tuple[str, int]] = field(default_factory=list, init=False, repr=False)
    _by_id: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    _raw: list[bytes] = field(default_factory=list, init=False, repr=False)
    _voided: set[str] = field(default_factory=set, init=False, repr=False)
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _seq: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        initial, self.statements = self.statements, []
        for statement in sorted(initial, key=lambda s: s["stored"]):
            self.add(statement)

    def add(self, statement: dict[str, Any]) -> None:
        """Store a statement (its `stored` must not be older than the newest one already stored)."""
        self._seq += 1
        key = (statement["stored"], self._seq)
        if self._keys and key < self._keys[-1]:
            raise ValueError("statements must be added in stored order")
        self._keys.append(key)
        self.statements.append(statement)
        # Serialised once: pages are served by joining these, which keeps the simulator fast.
        self._raw.append(json.dumps(statement, separators=(",", ":")).encode())
        self._by_id[statement["id"]] = statement
        obj = statement.get("object", {})
        if statement["verb"]["id"] == VERB_VOIDED and obj.get("objectType") == "StatementRef":
            self._voided.add(obj["id"])

    def newest_stored(self) -> datetime:
        """`stored` of the newest statement (the simulated clock)."""
        return parse_iso(self._keys[-1][0]) if self._keys else datetime(2025, 1, 1, tzinfo=UTC)

    def void(self, statement_id: str, *, seed: int = 0) -> dict[str, Any]:
        """Void a statement after the fact: a voiding statement is stored after every existing one."""
        target = self._by_id[statement_id]
        at = self.newest_stored() + timedelta(seconds=1)
        voiding = {
            "id": str(uuid.UUID(int=random.Random(f"{seed}:{statement_id}").getrandbits(128), version=4)),
            "actor": {"objectType": "Agent", "account": {"homePage": CVF, "name": "cvf-admin"}},
            "verb": {"id": VERB_VOIDED, "display": {"en-US": "voided"}},
            "object": {"objectType": "StatementRef", "id": target["id"]},
            "timestamp": iso(at),
            "stored": iso(at),
            "version": "1.0.0",
        }
        self.add(voiding)
        return voiding

    def is_voided(self, statement_id: str) -> bool:
        """Whether a voiding statement targets `statement_id`."""
        return statement_id in self._voided

    @property
    def app(self) -> web.Application:
        """A fresh aiohttp application serving this LRS (with the fault middleware)."""
        app = web.Application(middlewares=[self.faults])
        app.router.add_get(f"{self.base_path}/statements", self._get_statements)
        app.router.add_get(f"{self.base_path}/about", self._about)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host:port` (0 = any free port); returns the endpoint URL (ends with `/`)."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # aiohttp exposes the bound port only through the server's sockets.
        server: Any = site._server
        bound_port = int(server.sockets[0].getsockname()[1])
        return f"http://{host}:{bound_port}{self.base_path}/"

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _check(self, request: web.Request) -> web.Response | None:
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "unauthorised"}, status=401)
        version = request.headers.get("X-Experience-API-Version", "")
        self.last_version = version or None
        if not (version.startswith("1.0") or version.startswith("2.0")):
            return web.json_response({"error": "X-Experience-API-Version missing or unsupported"}, status=400)
        return None

    def _headers(self, request: web.Request) -> dict[str, str]:
        consistent = self.newest_stored() - timedelta(seconds=self.consistent_lag_s)
        return {
            "X-Experience-API-Version": request.headers.get("X-Experience-API-Version", "1.0.3"),
            "X-Experience-API-Consistent-Through": iso(consistent),
        }

    async def _about(self, request: web.Request) -> web.Response:
        return web.json_response({"version": ["1.0.3", "2.0.0"]})

    async def _get_statements(self, request: web.Request) -> web.Response:
        self.requests += 1
        rejected = self._check(request)
        if rejected is not None:
            return rejected
        query: MultiMapping[str] = request.query
        headers = self._headers(request)
        if "statementId" in query and "voidedStatementId" in query:
            return web.json_response({"error": "statementId with voidedStatementId"}, status=400)
        if self.like_ralph and "statementId" in query:
            found = self._by_id.get(query["statementId"])
            return web.json_response({"statements": [found] if found else []}, headers=headers)
        if self.like_ralph and "voidedStatementId" in query:
            query = MultiDict((k, v) for k, v in query.items() if k != "voidedStatementId")
            query.setdefault("ascending", "true")
        elif "statementId" in query or "voidedStatementId" in query:
            sid = query.get("statementId") or query["voidedStatementId"]
            found = self._by_id.get(sid)
            voided_wanted = "voidedStatementId" in query
            if found is None or (sid in self._voided) != voided_wanted:
                return web.json_response({"error": "not found"}, status=404, headers=headers)
            return web.json_response(found, headers=headers)
        try:
            since = iso(parse_iso(query["since"])) if "since" in query else None
            until = iso(parse_iso(query["until"])) if "until" in query else None
            limit = int(query.get("limit", "0"))
        except ValueError:
            return web.json_response({"error": "bad parameter"}, status=400, headers=headers)
        limit = self.max_limit if limit <= 0 else min(limit, self.max_limit)
        ascending = query.get("ascending", "false") == "true"
        if not ascending:
            return web.json_response({"error": "this simulator serves ascending=true only"}, status=400)
        after: tuple[str, int] | None = None
        if "after" in query:
            stored, seq = json.loads(base64.urlsafe_b64decode(query["after"]))
            after = (stored, seq)
        start = 0
        if after is not None:
            start = bisect.bisect_right(self._keys, after)
        elif since is not None:
            # `since` is exclusive: skip every statement stored at or before it.
            start = bisect.bisect_right(self._keys, (since, 1 << 62))
        page: list[bytes] = []
        last_key: tuple[str, int] | None = None
        index = start
        while index < len(self._keys) and len(page) < limit:
            key = self._keys[index]
            if until is not None and key[0] > until:
                break
            if self.statements[index]["id"] in self.broken:
                # A row the LRS cannot serialise: every page that holds it fails.
                return web.json_response({"error": "internal error"}, status=500)
            if self.statements[index]["id"] not in self._voided:
                page.append(self._raw[index])
            last_key = key
            index += 1
        more = ""
        remaining = index < len(self._keys) and (until is None or self._keys[index][0] <= until)
        if remaining and last_key is not None:
            token = base64.urlsafe_b64encode(json.dumps(list(last_key)).encode()).decode()
            params = {k: v for k, v in query.items() if k != "after"}
            params["after"] = token
            more = f"{self.base_path}/statements?{urlencode(params)}"
        body = b'{"statements":[' + b",".join(page) + b'],"more":' + json.dumps(more).encode() + b"}"
        return web.Response(body=body, headers=headers, content_type="application/json")


def content_digest(statement: dict[str, Any]) -> str:
    """A short digest of a statement's content (ignoring LRS-assigned fields), for test diagnostics."""
    content = {k: v for k, v in statement.items() if k not in ("id", "stored", "authority", "version")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
