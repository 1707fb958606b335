"""The records of a generated world: CVF training, PLGN firms and their activity, cost entries.

Plain data: `connectors.simulators.generator` fills them from a seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass
class Course:
    """A CVF course."""

    course_id: str
    title: str
    tool_area: str
    hours: int
    certified: bool


@dataclass
class Offering:
    """A cohort of a course, with its dates."""

    offering_id: str
    course_id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    pass_mark: float
    modality: str


@dataclass
class Learner:
    """A learner account (personal data)."""

    learner_id: int
    email: str
    name: str
    country: str
    audience: str
    gender: str
    org_id: str | None


@dataclass
class Enrolment:
    """A learner in an offering and what happened to them."""

    enrolment_id: str
    learner_id: int
    offering_id: str
    enrolled_at: datetime
    progress: list[tuple[datetime, float]] = field(default_factory=list)
    assessment: tuple[datetime, float, bool] | None = None
    """(submitted_at, score_scaled, passed) of the final assessment."""
    pre_test: tuple[datetime, float] | None = None
    """(submitted_at, score_scaled) of the pre-test, in courses that measure learning gain."""
    post_test: tuple[datetime, float] | None = None
    """(submitted_at, score_scaled) of the post-test, taken before the final."""
    completed_at: datetime | None = None
    certificate: tuple[str, datetime] | None = None
    """(certificate_id, issued_at)."""
    withdrawn_at: datetime | None = None


@dataclass
class Firm:
    """An organisation on PLGN (personal data: name and tax id)."""

    org_id: str
    tax_id: str
    name: str
    country: str
    org_type: str
    size_band: str
    isic_rev4: str
    hs_chapters: list[str]
    exporter_status: str
    women_led: bool | None
    registered_at: datetime


@dataclass
class Authorisation:
    """A firm's authorisation to share its directory profile with member states."""

    consent_id: str
    org_id: str
    recipients: list[str]
    granted_at: datetime
    withdrawn_at: datetime | None


@dataclass
class Opportunity:
    """An offer or demand published by a firm."""

    opp_id: str
    org_id: str
    kind: str
    hs_code: str
    target_countries: list[str]
    published_at: datetime


@dataclass
class Contact:
    """A contact request between firms, possibly answered."""

    request_id: str
    from_org: str
    to_org: str
    opp_id: str | None
    requested_at: datetime
    responded_at: datetime | None


@dataclass
class Activity:
    """A promotion activity (business round, fair, mission)."""

    activity_id: str
    kind: str
    host_country: str
    starts_at: datetime
    ends_at: datetime
    participants: list[tuple[str, str]] = field(default_factory=list)
    """(org_id, role) registrations."""


@dataclass
class Meeting:
    """A scheduled B2B meeting of a round, and how it went."""

    meeting_id: str
    activity_id: str
    org_a: str
    org_b: str
    slot_at: datetime
    status: str
    """SCHEDULED, HELD or NO_SHOW."""
    expected_usd: Decimal | None = None
    horizon: str | None = None


@dataclass
class Deal:
    """A realised deal reported in a follow-up wave."""

    deal_id: str
    meeting_id: str | None
    activity_id: str
    org_id: str
    counterpart_country: str
    hs_code: str
    wave: str
    amount: Decimal
    currency: str
    usd_amount: Decimal
    attribution_pct: int
    confidence_pct: int
    additionality: str
    reported_at: datetime


@dataclass
class Cost:
    """A cost entry of an activity or an offering."""

    cost_id: str
    activity_id: str | None
    offering_id: str | None
    category: str
    amount: Decimal
    currency: str
    usd_amount: Decimal
    recorded_at: datetime


@dataclass
class World:
    """Everything generated from one seed."""

    seed: int
    courses: list[Course]
    offerings: list[Offering]
    learners: list[Learner]
    enrolments: list[Enrolment]
    firms: list[Firm]
    authorisations: list[Authorisation]
    opportunities: list[Opportunity]
    contacts: list[Contact]
    activities: list[Activity]
    meetings: list[Meeting]
    deals: list[Deal]
    costs: list[Cost]
    _learners: dict[int, Learner] = field(init=False, repr=False)
    _offerings: dict[str, Offering] = field(init=False, repr=False)

    def learner(self, learner_id: int) -> Learner:
        """The learner with that id."""
        return self._learners[learner_id]

    def offering(self, offering_id: str) -> Offering:
        """The offering with that id."""
        return self._offerings[offering_id]

    def __post_init__(self) -> None:
        self._learners = {learner.learner_id: learner for learner in self.learners}
        self._offerings = {offering.offering_id: offering for offering in self.offerings}
