"""The generated world's learning as xAPI statements, the way a CVF LRS would receive them.

`statements_from_world` writes mbox or account actors, alcance's context extensions, replayed
duplicates and a few verbs alcance does not measure; its `StatementTruth` list says what a correct
connector must publish for each statement.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
