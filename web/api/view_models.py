"""Response and query models of the composed views: funnel, offerings, targets, activities, portfolio."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from web.api.models import AS_OF, CHANGES_PENDING, FreshQuery, Grain, Number, Period

Year = int


class YearQuery(FreshQuery):
    """A year to show (default: every year, or the latest where one is needed)."""

    year: Year | None = Field(default=None, ge=2000, le=2100)


class OfferingsQuery(YearQuery):
    """Offerings of a year and a cohort status."""

    status: Literal["closed", "in_progress"] | None = None


class FunnelCell(BaseModel):
    """One cell of the training funnel: counts per stage (closed cohorts) and the rates."""

    period: Period
    dimensions: dict[str, str]
    stages: dict[str, Number | None] = Field(
        description="enrolled_net, net_closed, started_closed, never_started_closed, completed_closed, "
        "certified_closed, dropped_closed, in_progress"
    )
    rates: dict[str, Number | None] = Field(description="completion_rate, certification_rate, dropout_rate")
    provisional: bool
    suppressed: bool


class TrainingFunnel(BaseModel):
    """Net enrolled -> started -> completed -> certified, per period and grouping."""

    grain: Grain
    by: list[str]
    audience: Literal["internal", "external"]
    as_of: datetime = Field(description=AS_OF)
    changes_pending: bool = Field(default=False, description=CHANGES_PENDING)
    cells: list[FunnelCell]


class OfferingRow(BaseModel):
    """One offering's cohort indicators for the year its enrolments were made."""

    period: Period
    dimensions: dict[str, str]
    net_enrolled: Number | None
    completion_rate: Number | None
    pass_rate: Number | None
    certification_rate: Number | None
    median_days_to_complete: Number | None
    median_hours_of_study: Number | None
    score_gain: Number | None
    status: Literal["closed", "in_progress"]
    provisional: bool
    suppressed: bool


class Offerings(BaseModel):
    """Offerings (course runs) with their cohort indicators."""

    as_of: datetime = Field(description=AS_OF)
    changes_pending: bool = Field(default=False, description=CHANGES_PENDING)
    offerings: list[OfferingRow]


class TargetRow(BaseModel):
    """A CVF-16 target and how far the year has reached it."""

    audience: str
    year: Year
    target: Number
    certified_learners: Number
    share_of_target: Number | None
    share_of_year_elapsed: Number = Field(description="the pace line: 1 for past years")


class Targets(BaseModel):
    """Reach targets of the art. 7 audiences."""

    as_of: datetime = Field(description=AS_OF)
    changes_pending: bool = Field(default=False, description=CHANGES_PENDING)
    targets: list[TargetRow]


class ActivityRow(BaseModel):
    """A promotion activity as of the end of a year (cumulative)."""

    period: Period
    dimensions: dict[str, str]
    cost_usd: Number | None
    firms_served: Number | None
    attributable_usd: Number | None
    roi_percent: Number | None
    benefit_cost_ratio: Number | None
    provisional: bool = Field(description="ROI stays provisional until 12 months after the last session")
    suppressed: bool


class Activities(BaseModel):
    """Promotion activities with cost, firms, business, ROI and BCR."""

    as_of: datetime = Field(description=AS_OF)
    changes_pending: bool = Field(default=False, description=CHANGES_PENDING)
    activities: list[ActivityRow]


class CostLine(BaseModel):
    """An activity's cost in one year, category and payer."""

    period: Period
    category: str
    payer: str
    cost_usd: Number | None


class ActivityDetail(BaseModel):
    """One activity: its rows per year and its cost by category."""

    activity: str
    as_of: datetime = Field(description=AS_OF)
    changes_pending: bool = Field(default=False, description=CHANGES_PENDING)
    years: list[ActivityRow]
    costs: list[CostLine]


class Portfolio(BaseModel):
    """The art. 1 annual review: activities of a year ranked by benefit-cost ratio."""

    year: Year
    years: list[Year]
    as_of: datetime = Field(description=AS_OF)
    changes_pending: bool = Field(default=False, description=CHANGES_PENDING)
    activities: list[ActivityRow]
    totals: dict[str, Number]
    portfolio_roi_percent: Number | None = Field(
        description="ACT-13: activities whose window closed that year"
    )
    portfolio_activities_closed: Number | None
