"""Events of the Virtual Training Centre (CVF): learners, enrolments, progress, assessments, certificates.

Every training event is keyed by the learner's pseudonym (`subject_key`, `p-...`), so all events of
one learner, across enrolments, stay in order on one partition: an enrolment is always seen before its
progress, completion and certificate.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from schemas.events.base import (
    Event,
    EventIdKey,
    EventRetracted,
    Ident,
    OrgKey,
    PersonKey,
    Timestamp,
    full_match,
)


class Gender(StrEnum):
    """Self-declared gender of a learner (optional; used only in aggregates)."""

    F = "F"
    M = "M"
    OTHER = "OTHER"
    NOT_STATED = "NOT_STATED"


class AgeBand(StrEnum):
    """Age band of a learner; no birth date is ever carried."""

    UNDER_25 = "UNDER_25"
    FROM_25_TO_34 = "25_34"
    FROM_35_TO_44 = "35_44"
    FROM_45_TO_54 = "45_54"
    FROM_55 = "55_PLUS"
    NOT_STATED = "NOT_STATED"


class Modality(StrEnum):
    """How a course offering is delivered."""

    SELF_PACED = "SELF_PACED"
    TUTORED = "TUTORED"


class AssessmentKind(StrEnum):
    """Role of an assessment: pre/post tests measure learning gain, FINAL decides the pass."""

    PRE = "PRE"
    QUIZ = "QUIZ"
    FINAL = "FINAL"
    POST = "POST"


Channel = Literal["self", "manual", "invitation", "cohort", "api", "other"]
"""How the learner was enrolled (Moodle enrol method or equivalent)."""

UtmCampaign = Annotated[str, full_match("[A-Za-z0-9._-]{1,64}")]
"""Campaign tag of the sign-up link (utm_campaign), for attributed sign-ups (COM-03)."""


class TrainingEvent(Event):
    """Base of CVF events: `subject_key` is the learner's pseudonym (the Kafka key)."""

    family: ClassVar[str] = "training"

    subject_key: PersonKey

    @property
    def learner_key(self) -> str:
        """The learner's pseudonym (alias of `subject_key`)."""
        return self.subject_key


class LearnerProfile(TrainingEvent):
    """Learner attributes needed for dimensions; `country` and `audience` are in the envelope."""

    org_key: OrgKey | None = None
    gender: Gender | None = None


class LearnerRegistered(LearnerProfile):
    """A learner account was created on the campus.

    Key: learner pseudonym. `country` is the country of residence, `audience` the audience segment.
    """

    names: ClassVar[dict[str, str]] = {
        "es": "Participante registrado",
        "pt": "Participante registrado",
        "en": "Learner registered",
    }

    event_type: Literal["cvf.learner.registered"] = "cvf.learner.registered"
    schema_version: Literal[1] = 1
    age_band: AgeBand | None = None
    utm_campaign: UtmCampaign | None = None


class EnrolmentCreated(LearnerProfile):
    """A learner enrolled in a course offering (cohort).

    Key: learner pseudonym. Learner attributes (`country`, `audience`, `org_key`, `gender`) are
    denormalised here when the connector knows them. `offering_starts_at`/`offering_ends_at` let
    processors close the cohort.
    """

    names: ClassVar[dict[str, str]] = {
        "es": "Inscripción creada",
        "pt": "Inscrição criada",
        "en": "Enrolment created",
    }

    event_type: Literal["cvf.enrolment.created"] = "cvf.enrolment.created"
    schema_version: Literal[1] = 1
    enrolment_id: Ident
    offering_id: Ident
    course_id: Ident
    enrolled_at: Timestamp
    channel: Channel = "other"
    modality: Modality | None = None
    offering_starts_at: Timestamp | None = None
    offering_ends_at: Timestamp | None = None
    utm_campaign: UtmCampaign | None = None


class EnrolmentWithdrawn(TrainingEvent):
    """A learner left (or was removed from) an offering. Key: learner pseudonym."""

    names: ClassVar[dict[str, str]] = {
        "es": "Inscripción anulada",
        "pt": "Inscrição cancelada",
        "en": "Enrolment withdrawn",
    }

    event_type: Literal["cvf.enrolment.withdrawn"] = "cvf.enrolment.withdrawn"
    schema_version: Literal[1] = 1
    enrolment_id: Ident
    withdrawn_at: Timestamp
    before_start: bool
    reason_code: Annotated[str, full_match("[A-Z0-9_]{1,32}")] | None = None


class ProgressRecorded(TrainingEvent):
    """Daily roll-up of a learner's progress in one module (not raw clickstream). Key: learner pseudonym."""

    names: ClassVar[dict[str, str]] = {
        "es": "Avance registrado",
        "pt": "Progresso registrado",
        "en": "Progress recorded",
    }

    event_type: Literal["cvf.progress.recorded"] = "cvf.progress.recorded"
    schema_version: Literal[1] = 1
    enrolment_id: Ident
    module_id: Ident
    progress_pct: float = Field(ge=0, le=100)
    time_spent_s: int = Field(default=0, ge=0)


class AssessmentSubmitted(TrainingEvent):
    """A learner submitted an assessment attempt. Key: learner pseudonym."""

    names: ClassVar[dict[str, str]] = {
        "es": "Evaluación enviada",
        "pt": "Avaliação enviada",
        "en": "Assessment submitted",
    }

    event_type: Literal["cvf.assessment.submitted"] = "cvf.assessment.submitted"
    schema_version: Literal[1] = 1
    enrolment_id: Ident
    assessment_id: Ident
    kind: AssessmentKind
    score_scaled: float = Field(ge=0, le=1)
    passed: bool | None = None
    attempt_no: int = Field(default=1, ge=1)


class EnrolmentCompleted(TrainingEvent):
    """A learner completed an offering. Key: learner pseudonym."""

    names: ClassVar[dict[str, str]] = {
        "es": "Curso finalizado",
        "pt": "Curso concluído",
        "en": "Enrolment completed",
    }

    event_type: Literal["cvf.enrolment.completed"] = "cvf.enrolment.completed"
    schema_version: Literal[1] = 1
    enrolment_id: Ident
    completed_at: Timestamp
    final_score_scaled: float | None = Field(default=None, ge=0, le=1)
    passed: bool


class CertificateIssued(TrainingEvent):
    """A certificate was issued for an enrolment. Key: learner pseudonym."""

    names: ClassVar[dict[str, str]] = {
        "es": "Certificado emitido",
        "pt": "Certificado emitido",
        "en": "Certificate issued",
    }

    event_type: Literal["cvf.certificate.issued"] = "cvf.certificate.issued"
    schema_version: Literal[1] = 1
    certificate_id: Ident
    enrolment_id: Ident
    issued_at: Timestamp
    hours: float | None = Field(default=None, ge=0, le=10_000)
    verify_hash: Annotated[str, full_match("[0-9a-f]{16,128}")] | None = None


class CertificateRevoked(TrainingEvent):
    """A previously issued certificate was revoked. Key: learner pseudonym."""

    names: ClassVar[dict[str, str]] = {
        "es": "Certificado revocado",
        "pt": "Certificado revogado",
        "en": "Certificate revoked",
    }

    event_type: Literal["cvf.certificate.revoked"] = "cvf.certificate.revoked"
    schema_version: Literal[1] = 1
    certificate_id: Ident
    enrolment_id: Ident
    revoked_at: Timestamp
    reason_code: Annotated[str, full_match("[A-Z0-9_]{1,32}")] | None = None


class TrainingEventRetracted(EventRetracted):
    """A CVF event was withdrawn at the source. Key: the retracted event's learner pseudonym when known."""

    family: ClassVar[str] = "training"
    names: ClassVar[dict[str, str]] = {
        "es": "Evento de formación retirado",
        "pt": "Evento de formação retirado",
        "en": "Training event retracted",
    }

    event_type: Literal["cvf.event.retracted"] = "cvf.event.retracted"
    schema_version: Literal[1] = 1
    subject_key: PersonKey | EventIdKey


TRAINING_EVENTS: tuple[type[Event], ...] = (
    LearnerRegistered,
    EnrolmentCreated,
    EnrolmentWithdrawn,
    ProgressRecorded,
    AssessmentSubmitted,
    EnrolmentCompleted,
    CertificateIssued,
    CertificateRevoked,
    TrainingEventRetracted,
)
