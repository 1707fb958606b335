"""xAPI statements as CVF training events: verbs to targets, the learner pseudonym, content identities.

Shared by the pull connector (`connectors.xapi`) and the push intake (`connectors.intake`); see the
pull connector's module docstring for the verb table and the context extensions read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.exceptions import DeadLetterRecord, SkipRecord
from connectors.pseudonym import Pseudonymiser
from connectors.xapi_extensions import (
    CMI5_PROGRESS,
    EXT_ASSESSMENT,
    EXT_AUDIENCE,
    EXT_CERTIFICATE,
    EXT_COUNTRY,
    EXT_COURSE,
    EXT_ENROLMENT,
    EXT_GENDER,
    EXT_HOURS,
    EXT_OFFERING,
    EXT_ORGANISATION,
    LMS_ENDING_DATE,
    LMS_STARTING_DATE,
    MODULE_TYPES,
    VERB_VOIDED,
    Target,
)
from schemas.events.base import Audience, Event
from schemas.events.training import (
    AssessmentKind,
    AssessmentSubmitted,
    CertificateIssued,
    EnrolmentCompleted,
    EnrolmentCreated,
    EnrolmentWithdrawn,
    Gender,
    ProgressRecorded,
    TrainingEventRetracted,
)

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_IDENT_UNSAFE = re.compile(r"[^A-Za-z0-9._:/#?=&%~+@-]")


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (statements are read tolerantly)."""
    return value if isinstance(value, dict) else {}


def parse_time(value: Any, what: str) -> datetime:
    """An xAPI timestamp in UTC (naive ones are taken as UTC).

    Raises:
        DeadLetterRecord: when `value` is missing or not ISO 8601 (`what` names it).
    """
    if not isinstance(value, str):
        raise DeadLetterRecord(f"{what} missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise DeadLetterRecord(f"{what} is not an ISO 8601 timestamp") from exc
    return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def ident(value: Any) -> str:
    """A source id usable as an `Ident` (no whitespace, at most 256 characters)."""
    text = _IDENT_UNSAFE.sub("_", str(value)).lstrip("._:/#?=&%~+@-")
    if not text:
        raise DeadLetterRecord("empty identifier")
    if len(text) > 256:
        text = text[:200] + "~" + hashlib.sha256(text.encode()).hexdigest()[:32]
    return text


def seconds(duration: Any) -> int:
    """Whole seconds of an ISO 8601 duration (`PT1H30M`); 0 when absent or unreadable."""
    if not isinstance(duration, str):
        return 0
    match = _DURATION.match(duration)
    if match is None:
        return 0
    days, hours, minutes, secs = match.groups()
    return int(int(days or 0) * 86_400 + int(hours or 0) * 3_600 + int(minutes or 0) * 60 + float(secs or 0))


def voided_id(statement: Any) -> str | None:
    """The id of the statement a voiding statement voids; None for any other statement."""
    statement = as_dict(statement)
    if as_dict(statement.get("verb")).get("id") != VERB_VOIDED:
        return None
    obj = as_dict(statement.get("object"))
    target = obj.get("id")
    return target if obj.get("objectType") == "StatementRef" and isinstance(target, str) else None


def event_rows(events: list[Event]) -> list[dict[str, Any]]:
    """What a retraction needs of each event (id, learner pseudonym, country, audience): no personal data."""
    return [
        {
            "event_id": str(event.event_id),
            "subject_key": event.subject_key,
            "country": event.country,
            "audience": event.audience.value if event.audience is not None else None,
        }
        for event in events
        if not isinstance(event, TrainingEventRetracted)
    ]


@dataclass(frozen=True, slots=True)
class _Parsed:
    """What every target reads of a statement, parsed once."""

    target: Target
    verb: str
    occurred: datetime
    identity: str
    course_id: str
    enrolment_id: str
    common: dict[str, Any]
    obj: dict[str, Any]
    obj_type: Any
    ext: dict[str, Any]
    result: dict[str, Any]
    result_ext: dict[str, Any]
    score: Any


class StatementMapper:
    """Maps the xAPI statements of one source to events.

    Args:
        source: the source's name (part of every event id).
        pseudonyms: the keyed pseudonymiser of learners and organisations.
        verbs: verb IRI -> target (`DEFAULT_VERBS`, extended by a source's option `verbs`).
    """

    def __init__(self, source: str, pseudonyms: Pseudonymiser, verbs: Mapping[str, Target]) -> None:
        self.source = source
        self.pseudonyms = pseudonyms
        self.verbs = dict(verbs)
        self._by_target: dict[Target, Callable[[_Parsed], list[Event]]] = {
            "enrolled": self._enrolled,
            "withdrawn": self._withdrawn,
            "progressed": self._progressed,
            "completed": self._completed,
            "assessed": self._assessed,
            "certified": self._certified,
        }

    def person_key(self, actor: Any) -> str:
        """The actor's pseudonym: of the e-mail of `mbox`, `mbox_sha1sum`, `openid` or `account`.

        Raises:
            DeadLetterRecord: when the actor has none of them.
        """
        actor = as_dict(actor)
        if isinstance(actor.get("mbox"), str):
            return self.pseudonyms.person(actor["mbox"].removeprefix("mailto:"))
        if isinstance(actor.get("mbox_sha1sum"), str):
            return self.pseudonyms.person("sha1:" + actor["mbox_sha1sum"])
        if isinstance(actor.get("openid"), str):
            return self.pseudonyms.person(actor["openid"])
        account = as_dict(actor.get("account"))
        if isinstance(account.get("name"), str) and isinstance(account.get("homePage"), str):
            return self.pseudonyms.person(f"{account['homePage']}|{account['name']}")
        raise DeadLetterRecord("actor has no inverse functional identifier (mbox, account, ...)")

    def person_or_none(self, actor: Any) -> str | None:
        """The actor's pseudonym, or None when it has no identifier (redaction needs no error)."""
        try:
            return self.person_key(actor)
        except DeadLetterRecord:
            return None

    def identity(
        self, statement: dict[str, Any], person: str | None = None, occurred: datetime | None = None
    ) -> str:
        """Content identity of a statement: equal for replays of the same statement under new LRS ids.

        `person` and `occurred` may be passed when already computed (they are the actor's pseudonym and
        the parsed timestamp).
        """
        if person is None and statement.get("actor"):
            person = self.person_key(statement.get("actor"))
        if occurred is None and statement.get("timestamp"):
            occurred = parse_time(statement.get("timestamp"), "timestamp")
        content = "\x1f".join(
            (
                person or "",
                str(as_dict(statement.get("verb")).get("id")),
                str(as_dict(statement.get("object")).get("id")),
                occurred.isoformat() if occurred is not None else "",
                str(as_dict(statement.get("context")).get("registration")),
            )
        )
        return f"xapi:{hashlib.sha256(content.encode()).hexdigest()[:40]}"

    def events(self, statement: dict[str, Any]) -> list[Event]:
        """The events of a statement that is not a voiding statement.

        Raises:
            SkipRecord: for a verb outside the verb table.
            DeadLetterRecord: for a statement that breaks what its target needs.
        """
        parsed = self._parse(statement)
        return self._by_target[parsed.target](parsed)

    def retractions(self, statement: dict[str, Any], retracts: list[dict[str, Any]]) -> list[Event]:
        """The retractions a voiding statement makes of the events (`event_rows`) of its target."""
        occurred = parse_time(statement.get("timestamp") or statement.get("stored"), "timestamp")
        identity = self.identity(statement)
        return [
            TrainingEventRetracted.create(
                source=self.source,
                record_identity=f"{identity}:retracts:{original['event_id']}",
                occurred_at=occurred,
                source_ref=ident(statement.get("id") or identity),
                subject_key=original["subject_key"],
                country=original.get("country"),
                audience=original.get("audience"),
                retracted_event_id=original["event_id"],
                reason="xapi statement voided",
            )
            for original in retracts
        ]

    def _parse(self, statement: dict[str, Any]) -> _Parsed:
        verb = as_dict(statement.get("verb")).get("id")
        if not isinstance(verb, str):
            raise DeadLetterRecord("statement without a verb id")
        target = self.verbs.get(verb)
        if target is None:
            raise SkipRecord(f"verb {verb}")
        person = self.person_key(statement.get("actor"))
        occurred = parse_time(statement.get("timestamp"), "timestamp")
        identity = self.identity(statement, person, occurred)
        obj = as_dict(statement.get("object"))
        context = as_dict(statement.get("context"))
        ext = as_dict(context.get("extensions"))
        result = as_dict(statement.get("result"))
        obj_type = as_dict(obj.get("definition")).get("type")
        parents = as_dict(context.get("contextActivities")).get("parent")
        course = ext.get(EXT_COURSE)
        if course is None:
            if obj_type in MODULE_TYPES and isinstance(parents, list) and parents:
                course = as_dict(parents[0]).get("id")
            else:
                course = obj.get("id")
        if not course:
            raise DeadLetterRecord("no course: neither a course extension nor an object activity id")
        course_id = ident(course)
        enrolment = ext.get(EXT_ENROLMENT) or context.get("registration") or f"{person}:{course_id}"
        enrolment_id = ident(enrolment)
        country = ext.get(EXT_COUNTRY)
        audience_raw = ext.get(EXT_AUDIENCE)
        try:
            audience = Audience(audience_raw) if audience_raw is not None else None
        except ValueError as exc:
            raise DeadLetterRecord(f"unknown audience in {EXT_AUDIENCE}") from exc
        common: dict[str, Any] = {
            "source": self.source,
            "record_identity": f"{identity}:{target}",
            "occurred_at": occurred,
            "source_ref": ident(statement.get("id") or identity),
            "subject_key": person,
            "country": country.upper() if isinstance(country, str) else country,
            "audience": audience,
        }
        return _Parsed(
            target=target,
            verb=verb,
            occurred=occurred,
            identity=identity,
            course_id=course_id,
            enrolment_id=enrolment_id,
            common=common,
            obj=obj,
            obj_type=obj_type,
            ext=ext,
            result=result,
            result_ext=as_dict(result.get("extensions")),
            score=as_dict(result.get("score")).get("scaled"),
        )

    def _enrolled(self, p: _Parsed) -> list[Event]:
        org = p.ext.get(EXT_ORGANISATION)
        gender_raw = p.ext.get(EXT_GENDER)
        try:
            gender = Gender(gender_raw) if gender_raw is not None else None
        except ValueError as exc:
            raise DeadLetterRecord(f"unknown gender in {EXT_GENDER}") from exc
        starts = p.ext.get(LMS_STARTING_DATE)
        ends = p.ext.get(LMS_ENDING_DATE)
        return [
            EnrolmentCreated.create(
                **p.common,
                enrolment_id=p.enrolment_id,
                offering_id=ident(p.ext.get(EXT_OFFERING) or p.course_id),
                course_id=p.course_id,
                enrolled_at=p.occurred,
                org_key=self.pseudonyms.org(str(org)) if org is not None else None,
                gender=gender,
                offering_starts_at=parse_time(starts, "starting-date") if starts else None,
                offering_ends_at=parse_time(ends, "ending-date") if ends else None,
            )
        ]

    def _withdrawn(self, p: _Parsed) -> list[Event]:
        starts = p.ext.get(LMS_STARTING_DATE)
        before_start = bool(starts) and p.occurred < parse_time(starts, "starting-date")
        return [
            EnrolmentWithdrawn.create(
                **p.common, enrolment_id=p.enrolment_id, withdrawn_at=p.occurred, before_start=before_start
            )
        ]

    def _progressed(self, p: _Parsed) -> list[Event]:
        progress = p.result_ext.get(CMI5_PROGRESS)
        if progress is None:
            progress = (
                100
                if p.target == "completed"
                else (p.score * 100 if isinstance(p.score, int | float) else None)
            )
        if not isinstance(progress, int | float):
            raise DeadLetterRecord("progressed statement without a progress value")
        return [
            ProgressRecorded.create(
                **p.common,
                enrolment_id=p.enrolment_id,
                module_id=ident(p.obj.get("id") or p.course_id),
                progress_pct=float(progress),
                time_spent_s=seconds(p.result.get("duration")),
            )
        ]

    def _completed(self, p: _Parsed) -> list[Event]:
        if p.obj_type in MODULE_TYPES:
            # A module completed is progress (100 %) on the course, not the course's completion.
            return self._progressed(p)
        success = p.result.get("success")
        return [
            EnrolmentCompleted.create(
                **p.common,
                enrolment_id=p.enrolment_id,
                completed_at=p.occurred,
                final_score_scaled=p.score if isinstance(p.score, int | float) else None,
                # Completion without a success flag means the completion criteria were met.
                passed=success if isinstance(success, bool) else True,
            )
        ]

    def _assessed(self, p: _Parsed) -> list[Event]:
        if not isinstance(p.score, int | float):
            raise DeadLetterRecord("passed/failed statement without result.score.scaled")
        success = p.result.get("success")
        kind_raw = p.ext.get(EXT_ASSESSMENT, AssessmentKind.FINAL.value)
        try:
            kind = AssessmentKind(kind_raw)
        except ValueError as exc:
            raise DeadLetterRecord(f"unknown assessment kind in {EXT_ASSESSMENT}") from exc
        return [
            AssessmentSubmitted.create(
                **p.common,
                enrolment_id=p.enrolment_id,
                assessment_id=ident(p.obj.get("id") or p.course_id),
                kind=kind,
                score_scaled=p.score,
                passed=success if isinstance(success, bool) else p.verb.endswith("/passed"),
            )
        ]

    def _certified(self, p: _Parsed) -> list[Event]:
        certificate = p.result_ext.get(EXT_CERTIFICATE) or p.identity
        hours = p.result_ext.get(EXT_HOURS)
        return [
            CertificateIssued.create(
                **p.common,
                certificate_id=ident(certificate),
                enrolment_id=p.enrolment_id,
                issued_at=p.occurred,
                hours=hours if isinstance(hours, int | float) else None,
            )
        ]
