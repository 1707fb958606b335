"""Cost entries of promotion activities and course offerings (the ROI denominators).

Every finance event is keyed by `activity_id` (`subject_key`), so the entries of one activity stay in
order on one partition and a correction is always seen after the entry it corrects.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from schemas.events.base import Event, EventRetracted, Ident, Money, full_match


class ActivityType(StrEnum):
    """Kind of promotion activity a cost belongs to (a course offering is one too)."""

    BUSINESS_ROUND = "BUSINESS_ROUND"
    MACRO_ROUND_EXPO = "MACRO_ROUND_EXPO"
    TRADE_FAIR = "TRADE_FAIR"
    TRADE_MISSION = "TRADE_MISSION"
    WEBINAR = "WEBINAR"
    COURSE_OFFERING = "COURSE_OFFERING"
    NETWORK_EVENT = "NETWORK_EVENT"
    CAMPAIGN = "CAMPAIGN"


class CostCategory(StrEnum):
    """What the money was spent on."""

    STAFF = "STAFF"
    VENUE = "VENUE"
    PLATFORM = "PLATFORM"
    TRAVEL = "TRAVEL"
    MARKETING = "MARKETING"
    CONTENT = "CONTENT"
    TUTORS = "TUTORS"
    IN_KIND = "IN_KIND"
    OTHER = "OTHER"


class Payer(StrEnum):
    """Who bore the cost."""

    ALADI = "ALADI"
    HOST = "HOST"
    PARTNER = "PARTNER"


class FinanceEvent(Event):
    """Base of finance events: `subject_key` is the activity id (the Kafka key)."""

    family: ClassVar[str] = "finance"

    subject_key: Ident


class CostRecorded(FinanceEvent):
    """A cost entry of an activity or course offering (ACT-01, CVF-20). Key: `activity_id`.

    For a course offering, `activity_type` is COURSE_OFFERING and `activity_id` the offering id.
    """

    names: ClassVar[dict[str, str]] = {
        "es": "Costo registrado",
        "pt": "Custo registrado",
        "en": "Cost recorded",
    }
    subject_field: ClassVar[str | None] = "activity_id"

    event_type: Literal["finance.cost.recorded"] = "finance.cost.recorded"
    schema_version: Literal[1] = 1
    cost_id: Ident
    activity_id: Ident
    activity_type: ActivityType
    category: CostCategory
    payer: Payer = Payer.ALADI
    money: Money
    campaign: Annotated[str, full_match("[A-Za-z0-9._-]{1,64}")] | None = None


class FinanceEventRetracted(EventRetracted):
    """A cost entry was withdrawn at the source. Key: the retracted entry's `activity_id` when known."""

    family: ClassVar[str] = "finance"
    names: ClassVar[dict[str, str]] = {
        "es": "Costo retirado",
        "pt": "Custo retirado",
        "en": "Cost entry retracted",
    }

    event_type: Literal["finance.event.retracted"] = "finance.event.retracted"
    schema_version: Literal[1] = 1
    subject_key: Ident


FINANCE_EVENTS: tuple[type[Event], ...] = (CostRecorded, FinanceEventRetracted)
