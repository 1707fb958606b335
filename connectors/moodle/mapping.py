"""What each Moodle record kind means as events, and the learner pseudonym a Moodle user gets.

Records are what the connector's pages hold: dicts with a `kind` (`enrolment`, `completion`,
`withdrawal`, `certificate`). Event ids come from the record's identity (course, learner, generation,
issue), so a record read again maps to the same events.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from connectors.exceptions import DeadLetterRecord
from connectors.moodle.options import MoodleOptions
from connectors.pseudonym import Pseudonymiser
from schemas.events.base import Audience, Event
from schemas.events.training import (
    CertificateIssued,
    EnrolmentCompleted,
    EnrolmentCreated,
    EnrolmentWithdrawn,
    Gender,
    LearnerRegistered,
)

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_PERSONAL_KEYS = frozenset(
    {"username", "firstname", "lastname", "fullname", "email", "idnumber", "institution"}
)


def iso(ts: int | float | None) -> str | None:
    """A Moodle timestamp (seconds, 0 for none) as ISO 8601 in UTC, or None."""
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


class MoodleMapping:
    """Maps the records of one Moodle source to events.

    Args:
        source: the source's name (part of every event id).
        endpoint: the site's address (identifies users by id when they have no e-mail).
        pseudonyms: the keyed pseudonymiser of learners and organisations.
        options: the source's options (learner identity, profile fields).
    """

    def __init__(self, source: str, endpoint: str, pseudonyms: Pseudonymiser, options: MoodleOptions) -> None:
        self._source = source
        self._endpoint = endpoint
        self._pseudonyms = pseudonyms
        self._options = options
        self._by_kind: dict[str, Callable[[dict[str, Any]], list[Event]]] = {
            "enrolment": self.enrolment,
            "completion": self.completion,
            "withdrawal": self.withdrawal,
            "certificate": self.certificate,
        }

    def user_key(self, user: dict[str, Any]) -> str:
        """The learner pseudonym of a Moodle user: of the e-mail, or of the site and user id."""
        email = str(user.get("email") or "").strip()
        if self._options.learner_identity == "email" and email:
            return self._pseudonyms.person(email)
        return self._pseudonyms.person(f"moodle:{self._endpoint}:{user.get('id')}")

    def events(self, record: dict[str, Any]) -> list[Event]:
        """The events of one enrolment, completion, withdrawal or certificate record.

        Raises:
            DeadLetterRecord: for an unknown kind or a record that cannot be mapped.
        """
        kind = record.get("kind")
        mapper = self._by_kind.get(kind) if isinstance(kind, str) else None
        if mapper is None:
            raise DeadLetterRecord(f"unknown Moodle record kind {kind!r}")
        return mapper(record)

    def enrolment_id(self, course_id: int, user_key: str, generation: int) -> str:
        """The enrolment's id: course and learner, and the generation once the learner came back."""
        base = f"moodle-{self._source}-c{course_id}-{user_key}"
        return base if generation == 0 else f"{base}-r{generation}"

    def profile(self, user: dict[str, Any]) -> dict[str, Any]:
        """The learner's country, audience, gender and organisation pseudonym, where Moodle has them."""
        custom = {str(f.get("shortname")): str(f.get("value") or "") for f in user.get("customfields") or []}
        country = str(user.get("country") or "").upper()
        audience = custom.get(self._options.audience_field, "").upper()
        gender = custom.get(self._options.gender_field, "").upper()
        institution = str(user.get("institution") or "").strip()
        return {
            "country": country if _COUNTRY.match(country) else None,
            "audience": Audience(audience) if audience in Audience.__members__ else None,
            "gender": Gender(gender) if gender in Gender.__members__ else None,
            "org_key": self._pseudonyms.org(institution) if institution else None,
        }

    def enrolment(self, record: dict[str, Any]) -> list[Event]:
        """`LearnerRegistered` and `EnrolmentCreated` of a new enrolment."""
        course, key, gen = record["course"], record["user_key"], int(record["generation"])
        profile = self.profile(record["user"])
        seen = record["seen_at"]
        course_start = iso(course.get("startdate"))
        if (
            record.get("backfill")
            and course_start is not None
            and datetime.fromisoformat(course_start) < datetime.fromisoformat(seen)
        ):
            seen = course_start
        offering = f"moodle-{self._source}-c{course['id']}"
        idnumber = course.get("idnumber") or ""
        learner = LearnerRegistered.create(
            source=self._source,
            record_identity=f"learner:{key}",
            occurred_at=record.get("learner_seen_at", seen),
            source_ref=f"user:{key}",
            subject_key=key,
            **profile,
        )
        enrolment = EnrolmentCreated.create(
            source=self._source,
            record_identity=f"enrol:{course['id']}:{key}:{gen}:created",
            occurred_at=seen,
            source_ref=f"course:{course['id']}",
            subject_key=key,
            enrolment_id=self.enrolment_id(course["id"], key, gen),
            offering_id=offering,
            course_id=idnumber if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}", idnumber) else offering,
            enrolled_at=seen,
            channel="other",
            offering_starts_at=iso(course["startdate"]),
            offering_ends_at=iso(course["enddate"]),
            **profile,
        )
        return [learner, enrolment]

    def completion(self, record: dict[str, Any]) -> list[Event]:
        """`EnrolmentCompleted` of a completion found by a status check."""
        course, key, gen = record["course"], record["user_key"], int(record["generation"])
        when = iso(record["completed_at"]) or datetime.now(UTC).isoformat()
        return [
            EnrolmentCompleted.create(
                source=self._source,
                record_identity=f"enrol:{course['id']}:{key}:{gen}:completed",
                occurred_at=when,
                source_ref=f"course:{course['id']}",
                subject_key=key,
                enrolment_id=self.enrolment_id(course["id"], key, gen),
                completed_at=when,
                passed=True,
            )
        ]

    def withdrawal(self, record: dict[str, Any]) -> list[Event]:
        """`EnrolmentWithdrawn` of an enrolment missing from a cycle."""
        course, key, gen = record["course"], record["user_key"], int(record["generation"])
        when = datetime.fromisoformat(record["withdrawn_at"])
        return [
            EnrolmentWithdrawn.create(
                source=self._source,
                record_identity=f"enrol:{course['id']}:{key}:{gen}:withdrawn",
                occurred_at=when,
                source_ref=f"course:{course['id']}",
                subject_key=key,
                enrolment_id=self.enrolment_id(course["id"], key, gen),
                withdrawn_at=when,
                before_start=bool(course["startdate"]) and when.timestamp() < course["startdate"],
            )
        ]

    def certificate(self, record: dict[str, Any]) -> list[Event]:
        """`CertificateIssued` of a customcert issue."""
        issue, key = record["issue"], record["user_key"]
        if record["course_id"] is None:
            raise DeadLetterRecord("certificate of a customcert instance outside the site's courses")
        if not issue.get("timecreated"):
            raise DeadLetterRecord("certificate issue without timecreated")
        when = iso(int(issue["timecreated"]))
        code = str(issue.get("code") or "")
        return [
            CertificateIssued.create(
                source=self._source,
                record_identity=f"cert:{issue['id']}",
                occurred_at=when,
                source_ref=f"customcert-issue:{issue['id']}",
                subject_key=key,
                certificate_id=f"moodle-{self._source}-cert-{issue['id']}",
                enrolment_id=self.enrolment_id(int(record["course_id"]), key, int(record["generation"])),
                issued_at=when,
                verify_hash=hashlib.sha256(code.encode()).hexdigest() if code else None,
            )
        ]

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
