"""Events of the PLGN business platform: firms, authorisations, opportunities, contacts, rounds, meetings.

Expected and realised business are reported on meetings and deals. Every PLGN event is keyed by an
organisation pseudonym (`subject_key`, `o-...`), so the events of one firm stay in order on one
partition. Which organisation, for events that involve two, is stated on each class (and enforced:
`subject_key` must equal that field).

Declarative: enumerations and models only, no logic; it grows with the contract, so the bound on the
length of hand-written modules does not apply to it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from schemas.events.base import (
    CountryCode,
    Event,
    EventIdKey,
    EventRetracted,
    Ident,
    Money,
    OrgKey,
    Timestamp,
    full_match,
)


class OrgType(StrEnum):
    """Kind of organisation."""

    FIRM = "FIRM"
    TPO_AGENCY = "TPO_AGENCY"
    CHAMBER = "CHAMBER"
    SECTOR_ASSOC = "SECTOR_ASSOC"
    GOVT = "GOVT"
    ACADEMIA = "ACADEMIA"
    OTHER = "OTHER"


class SizeBand(StrEnum):
    """Firm size under the national MSME definition (or the basis in `size_basis`)."""

    MICRO = "MICRO"
    SMALL = "SMALL"
    MEDIUM = "MEDIUM"
    LARGE = "LARGE"
    UNKNOWN = "UNKNOWN"


class SizeBasis(StrEnum):
    """How `size_band` was determined (MSME definitions differ by country)."""

    NATIONAL_DEFINITION = "NATIONAL_DEFINITION"
    EMPLOYEE_BAND = "EMPLOYEE_BAND"
    SELF_DECLARED = "SELF_DECLARED"


class EmployeesBand(StrEnum):
    """Harmonised employee band, comparable across countries."""

    FROM_1_TO_9 = "1-9"
    FROM_10_TO_49 = "10-49"
    FROM_50_TO_249 = "50-249"
    FROM_250 = "250+"
    UNKNOWN = "UNKNOWN"


class ExporterStatus(StrEnum):
    """Export experience of a firm (new-exporter share, PLGN-14)."""

    NON_EXPORTER = "NON_EXPORTER"
    OCCASIONAL = "OCCASIONAL"
    REGULAR = "REGULAR"
    UNKNOWN = "UNKNOWN"


class OpportunityKind(StrEnum):
    """An offer to sell or a demand to buy."""

    OFFER = "OFFER"
    DEMAND = "DEMAND"


class RoundRole(StrEnum):
    """Role of a firm in a business round."""

    BUYER = "BUYER"
    SELLER = "SELLER"
    BOTH = "BOTH"


class MeetingModality(StrEnum):
    """How a business meeting takes place."""

    IN_PERSON = "IN_PERSON"
    VIRTUAL = "VIRTUAL"
    HYBRID = "HYBRID"


class Horizon(StrEnum):
    """When the business expected from a meeting should materialise."""

    IMMEDIATE = "IMMEDIATE"
    M3 = "M3"
    M6 = "M6"
    M12 = "M12"


class Wave(StrEnum):
    """Follow-up wave of a deal report (months after the activity)."""

    M3 = "M3"
    M6 = "M6"
    M12 = "M12"


class Additionality(StrEnum):
    """Would the deal have happened without the activity? (ACT-09)."""

    NONE = "NONE"
    PARTIAL_SCALE = "PARTIAL_SCALE"
    PARTIAL_TIMING = "PARTIAL_TIMING"
    FULL = "FULL"


HsCode = Annotated[str, full_match("[0-9]{2}(?:[0-9]{2}(?:[0-9]{2}(?:[0-9]{2})?)?)?")]
"""HS / NALADISA code, 2 to 8 digits."""

HsChapter = Annotated[str, full_match("[0-9]{2}")]
"""HS / NALADISA chapter (2 digits)."""

IsicDivision = Annotated[str, full_match("[0-9]{2}")]
"""ISIC Rev.4 division (2 digits)."""

FieldName = Annotated[str, full_match("[A-Za-z][A-Za-z0-9_]{0,63}")]
"""Name of a profile field (never its value)."""

Recipient = Annotated[str, full_match("[A-Z]{2}|ALL_MEMBERS")]
"""A member state (ISO alpha-2) allowed to see a directory record, or ALL_MEMBERS."""

Pct = Annotated[float, Field(ge=0, le=100)]
"""A percentage, 0 to 100."""

UtmCampaign = Annotated[str, full_match("[A-Za-z0-9._-]{1,64}")]
"""Campaign tag of the sign-up link (utm_campaign)."""


class PlgnEvent(Event):
    """Base of PLGN events: `subject_key` is an organisation pseudonym (the Kafka key)."""

    family: ClassVar[str] = "plgn"

    subject_key: OrgKey


class OrganisationRegistered(PlgnEvent):
    """A firm or institution registered on PLGN. Key: `org_key`. `country` is the firm's country."""

    names: ClassVar[dict[str, str]] = {
        "es": "Empresa registrada",
        "pt": "Empresa registrada",
        "en": "Organisation registered",
    }
    subject_field: ClassVar[str | None] = "org_key"

    event_type: Literal["plgn.org.registered"] = "plgn.org.registered"
    schema_version: Literal[1] = 1
    org_key: OrgKey
    org_type: OrgType
    size_band: SizeBand = SizeBand.UNKNOWN
    size_basis: SizeBasis | None = None
    employees_band: EmployeesBand | None = None
    isic_rev4: IsicDivision | None = None
    hs_chapters: list[HsChapter] = Field(default_factory=list, max_length=100)
    exporter_status: ExporterStatus = ExporterStatus.UNKNOWN
    women_led: bool | None = None
    registered_at: Timestamp
    utm_campaign: UtmCampaign | None = None


class OrganisationUpdated(PlgnEvent):
    """A firm updated its profile. Key: `org_key`.

    Carries the new profile completeness and the names of the changed fields; attributes used as
    dimensions are repeated when they changed (None means unchanged).
    """

    names: ClassVar[dict[str, str]] = {
        "es": "Perfil de empresa actualizado",
        "pt": "Perfil de empresa atualizado",
        "en": "Organisation profile updated",
    }
    subject_field: ClassVar[str | None] = "org_key"

    event_type: Literal["plgn.org.profile_updated"] = "plgn.org.profile_updated"
    schema_version: Literal[1] = 1
    org_key: OrgKey
    completeness_pct: Pct
    changed_field_names: list[FieldName] = Field(default_factory=list, max_length=100)
    org_type: OrgType | None = None
    size_band: SizeBand | None = None
    employees_band: EmployeesBand | None = None
    isic_rev4: IsicDivision | None = None
    hs_chapters: list[HsChapter] | None = Field(default=None, max_length=100)
    exporter_status: ExporterStatus | None = None
    women_led: bool | None = None


class DirectoryAuthorisationGranted(PlgnEvent):
    """A firm authorised sharing its directory record with member states (art. 8). Key: `org_key`.

    The authorisation holds from `starts_at` (its publication when absent) until `expires_at` (never when
    absent), as the directory's consent ledger reads it.
    """

    names: ClassVar[dict[str, str]] = {
        "es": "Autorización de directorio otorgada",
        "pt": "Autorização de diretório concedida",
        "en": "Directory authorisation granted",
    }
    subject_field: ClassVar[str | None] = "org_key"

    event_type: Literal["plgn.directory_authorisation.granted"] = "plgn.directory_authorisation.granted"
    schema_version: Literal[1] = 1
    consent_id: Ident
    org_key: OrgKey
    recipients: list[Recipient] = Field(min_length=1, max_length=20)
    fields: list[FieldName] = Field(default_factory=list, max_length=100)
    purpose: Literal["DIRECTORY_SHARING"] = "DIRECTORY_SHARING"
    notice_version: str = Field(min_length=1, max_length=40)
    granted_by_role: str | None = Field(default=None, max_length=60)
    evidence_ref: str | None = Field(default=None, max_length=200)
    starts_at: Timestamp | None = None
    expires_at: Timestamp | None = None


class DirectoryAuthorisationWithdrawn(PlgnEvent):
    """A firm withdrew a directory authorisation. Key: `org_key`.

    `recipients` lists the member states that lose access; empty means the whole consent.
    """

    names: ClassVar[dict[str, str]] = {
        "es": "Autorización de directorio revocada",
        "pt": "Autorização de diretório revogada",
        "en": "Directory authorisation withdrawn",
    }
    subject_field: ClassVar[str | None] = "org_key"

    event_type: Literal["plgn.directory_authorisation.withdrawn"] = "plgn.directory_authorisation.withdrawn"
    schema_version: Literal[1] = 1
    consent_id: Ident
    org_key: OrgKey
    recipients: list[Recipient] = Field(default_factory=list, max_length=20)
    purpose: Literal["DIRECTORY_SHARING"] = "DIRECTORY_SHARING"


class OpportunityPublished(PlgnEvent):
    """A firm published a business opportunity (offer or demand). Key: `org_key` (the publisher)."""

    names: ClassVar[dict[str, str]] = {
        "es": "Oportunidad publicada",
        "pt": "Oportunidade publicada",
        "en": "Opportunity published",
    }
    subject_field: ClassVar[str | None] = "org_key"

    event_type: Literal["plgn.opportunity.published"] = "plgn.opportunity.published"
    schema_version: Literal[1] = 1
    opp_id: Ident
    org_key: OrgKey
    kind: OpportunityKind
    hs_code: HsCode
    target_countries: list[CountryCode] = Field(default_factory=list, max_length=50)
    expires_at: Timestamp | None = None


class ContactRequested(PlgnEvent):
    """A firm asked another for contact. Key: `from_org_key` (the requester), so the answer follows it."""

    names: ClassVar[dict[str, str]] = {
        "es": "Contacto solicitado",
        "pt": "Contato solicitado",
        "en": "Contact requested",
    }
    subject_field: ClassVar[str | None] = "from_org_key"

    event_type: Literal["plgn.contact.requested"] = "plgn.contact.requested"
    schema_version: Literal[1] = 1
    request_id: Ident
    from_org_key: OrgKey
    to_org_key: OrgKey
    opp_id: Ident | None = None


class ContactResponded(PlgnEvent):
    """The asked firm answered a contact request. Key: `from_org_key` (the requester, as the request)."""

    names: ClassVar[dict[str, str]] = {
        "es": "Contacto respondido",
        "pt": "Contato respondido",
        "en": "Contact responded",
    }
    subject_field: ClassVar[str | None] = "from_org_key"

    event_type: Literal["plgn.contact.responded"] = "plgn.contact.responded"
    schema_version: Literal[1] = 1
    request_id: Ident
    from_org_key: OrgKey
    to_org_key: OrgKey
    opp_id: Ident | None = None
    accepted: bool = True
    responded_at: Timestamp


class RoundRegistered(PlgnEvent):
    """A firm registered for a business round (promotion activity). Key: `org_key`."""

    names: ClassVar[dict[str, str]] = {
        "es": "Inscripción en rueda de negocios",
        "pt": "Inscrição em rodada de negócios",
        "en": "Business round registration",
    }
    subject_field: ClassVar[str | None] = "org_key"

    event_type: Literal["plgn.round.registered"] = "plgn.round.registered"
    schema_version: Literal[1] = 1
    activity_id: Ident
    org_key: OrgKey
    role: RoundRole
    interests: list[HsCode] = Field(default_factory=list, max_length=100)


class MeetingEvent(PlgnEvent):
    """Fields of every meeting event. Key: `org_a_key`, the first party, for the whole meeting's life."""

    subject_field: ClassVar[str | None] = "org_a_key"

    meeting_id: Ident
    activity_id: Ident
    org_a_key: OrgKey
    org_b_key: OrgKey
    slot_at: Timestamp
    modality: MeetingModality | None = None


class MeetingScheduled(MeetingEvent):
    """A business meeting between two firms was scheduled. Key: `org_a_key`."""

    names: ClassVar[dict[str, str]] = {
        "es": "Reunión agendada",
        "pt": "Reunião agendada",
        "en": "Meeting scheduled",
    }

    event_type: Literal["plgn.meeting.scheduled"] = "plgn.meeting.scheduled"
    schema_version: Literal[1] = 1


class MeetingHeld(MeetingEvent):
    """A scheduled meeting took place. Key: `org_a_key`."""

    names: ClassVar[dict[str, str]] = {
        "es": "Reunión realizada",
        "pt": "Reunião realizada",
        "en": "Meeting held",
    }

    event_type: Literal["plgn.meeting.held"] = "plgn.meeting.held"
    schema_version: Literal[1] = 1


class MeetingNoShow(MeetingEvent):
    """A scheduled meeting did not take place because a party did not attend. Key: `org_a_key`."""

    names: ClassVar[dict[str, str]] = {
        "es": "Reunión con inasistencia",
        "pt": "Reunião com ausência",
        "en": "Meeting no-show",
    }

    event_type: Literal["plgn.meeting.no_show"] = "plgn.meeting.no_show"
    schema_version: Literal[1] = 1
    absent_org_key: OrgKey | None = None


class MeetingCancelled(MeetingEvent):
    """A scheduled meeting was cancelled before its slot. Key: `org_a_key`."""

    names: ClassVar[dict[str, str]] = {
        "es": "Reunión cancelada",
        "pt": "Reunião cancelada",
        "en": "Meeting cancelled",
    }

    event_type: Literal["plgn.meeting.cancelled"] = "plgn.meeting.cancelled"
    schema_version: Literal[1] = 1


class MeetingOutcomeReported(PlgnEvent):
    """A firm reported the business it expects from a meeting (PLGN-09). Key: `reporter_org_key`."""

    names: ClassVar[dict[str, str]] = {
        "es": "Expectativa de negocios informada",
        "pt": "Expectativa de negócios informada",
        "en": "Expected business reported",
    }
    subject_field: ClassVar[str | None] = "reporter_org_key"

    event_type: Literal["plgn.meeting.outcome_reported"] = "plgn.meeting.outcome_reported"
    schema_version: Literal[1] = 1
    meeting_id: Ident
    activity_id: Ident | None = None
    reporter_org_key: OrgKey
    interest_level: int = Field(ge=1, le=5)
    expected_value: Money
    horizon: Horizon
    hs_code: HsCode | None = None


class DealReported(PlgnEvent):
    """A firm reported business realised so far from an activity, at a follow-up wave (PLGN-10).

    Key: `org_key` (the reporting firm). `realised_value_cumulative` is cumulative to date: a later
    wave replaces earlier ones, never adds to them.
    """

    names: ClassVar[dict[str, str]] = {
        "es": "Negocio concretado informado",
        "pt": "Negócio concretizado informado",
        "en": "Deal reported",
    }
    subject_field: ClassVar[str | None] = "org_key"

    event_type: Literal["plgn.deal.reported"] = "plgn.deal.reported"
    schema_version: Literal[1] = 1
    deal_id: Ident
    meeting_id: Ident | None = None
    activity_id: Ident
    org_key: OrgKey
    reporter_role: RoundRole | None = None
    counterpart_org_key: OrgKey | None = None
    counterpart_country: CountryCode
    hs_code: HsCode | None = None
    wave: Wave
    realised_value_cumulative: Money
    attribution_pct: Pct
    confidence_pct: Pct
    additionality: Additionality


class PlgnEventRetracted(EventRetracted):
    """A PLGN event was withdrawn at the source (e.g. Undo, Delete). Key: the retracted event's org."""

    family: ClassVar[str] = "plgn"
    names: ClassVar[dict[str, str]] = {
        "es": "Evento de PLGN retirado",
        "pt": "Evento da PLGN retirado",
        "en": "PLGN event retracted",
    }

    event_type: Literal["plgn.event.retracted"] = "plgn.event.retracted"
    schema_version: Literal[1] = 1
    subject_key: OrgKey | EventIdKey


PLGN_EVENTS: tuple[type[Event], ...] = (
    OrganisationRegistered,
    OrganisationUpdated,
    DirectoryAuthorisationGranted,
    DirectoryAuthorisationWithdrawn,
    OpportunityPublished,
    ContactRequested,
    ContactResponded,
    RoundRegistered,
    MeetingScheduled,
    MeetingHeld,
    MeetingNoShow,
    MeetingCancelled,
    MeetingOutcomeReported,
    DealReported,
    PlgnEventRetracted,
)
