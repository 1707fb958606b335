"""Enrolment cohorts counted once per finest group and joined per grouping; pure.

The training indicators group the same enrolment records by many groupings (totals, each dimension,
pairs) and period kinds. The records of a read share one dimensions object per distinct grain, so the
finest groups (period and dimensions object) are far fewer than the records: each is counted once per
read and closing cut-off (`Cohort`), and a grouping joins the cohorts of the finest groups its keys
cover. Counts add up, learner sets unite, durations concatenate (their quantiles sort them); the one
sum that rounds (the normalised learning gain) is taken over the joined records in their order, so
every part equals the count over the group's records in the records' order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import chain

from processors.indicators.catalogue import TRAINING_DIMS
from processors.indicators.enrolments import Enrolment
from processors.indicators.grouping import RowIndex, project

GroupKey = tuple[date, tuple[str, ...]]
# Finest groups: per (period, identity of the dimensions object) the records' positions, ascending.
Finest = dict[tuple[date, int], list[int]]
_DAY_S = Decimal(86_400)
_COUNTS = (
    "gross",
    "net",
    "net_closed",
    "completed_closed",
    "certified_closed",
    "started_closed",
    "dropped_closed",
    "attempted_final",
    "passed_final",
)


def finest_groups(
    records: Sequence[Enrolment], period_of: str
) -> tuple[Finest, dict[int, Mapping[str, str]]]:
    """The finest groups of `records` by enrolment or certificate period, and each dimensions object.

    Records without that period are left out. The records, which live as long as their index, hold the
    dimensions objects, so the ids stay theirs.
    """
    finest: Finest = defaultdict(list)
    grains: dict[int, Mapping[str, str]] = {}
    for position, record in enumerate(records):
        when = record.period_start if period_of == "enrolment" else record.certified_period
        if when is None:
            continue
        grain = id(record.dimensions)
        if grain not in grains:
            grains[grain] = record.dimensions
        finest[(when, grain)].append(position)
    return finest, grains


def joined_positions(
    index: RowIndex, records: Sequence[Enrolment], by: Sequence[str], period_of: str
) -> dict[GroupKey, list[list[int]]]:
    """Per group of `by` the position lists of the finest groups it covers (finest groups cached)."""
    finest, grains = index.cached(
        (finest_groups, id(records), period_of), lambda: finest_groups(records, period_of)
    )
    joined: dict[GroupKey, list[list[int]]] = defaultdict(list)
    for (when, grain), positions in finest.items():
        joined[(when, project(grains[grain], by, TRAINING_DIMS))].append(positions)
    return joined


def in_order(records: Sequence[Enrolment], lists: Sequence[list[int]]) -> list[Enrolment]:
    """The records at the positions of `lists`, in the records' order."""
    positions = lists[0] if len(lists) == 1 else sorted(chain(*lists))
    return [records[position] for position in positions]


def grouped(
    index: RowIndex, records: Sequence[Enrolment], by: Sequence[str], period_of: str = "enrolment"
) -> dict[GroupKey, list[Enrolment]]:
    """The records per period and group of `by`, each group in the records' order."""
    return {
        key: in_order(records, lists)
        for key, lists in joined_positions(index, records, by, period_of).items()
    }


@dataclass
class Cohort:
    """What the enrolment indicators count of a group of enrolments, at one closing cut-off.

    Attributes:
        counts: Enrolments (`_COUNTS`): all, net, net and closed, and of the closed ones completed,
            certified, started and dropped; of the net ones those that attempted and passed the final.
        learners: Learners of the net enrolments, all and by gender, and those with a certificate.
        completion_days, certification_days: Days from enrolment to completion and to certificate of
            the closed enrolments that have one.
        positions: The records' positions, per finest group.
    """

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    learners: set[str] = field(default_factory=set)
    female: set[str] = field(default_factory=set)
    male: set[str] = field(default_factory=set)
    certified_female: set[str] = field(default_factory=set)
    certified_male: set[str] = field(default_factory=set)
    completion_days: list[Decimal] = field(default_factory=list)
    certification_days: list[Decimal] = field(default_factory=list)
    positions: list[list[int]] = field(default_factory=list)


def count_cohort(records: Sequence[Enrolment], positions: list[int], cutoff: int) -> Cohort:
    """The cohort of the records at `positions`; closed when the offering ended by `cutoff`."""
    cohort = Cohort(positions=[positions])
    counts = cohort.counts
    for position in positions:
        record = records[position]
        counts["gross"] += 1
        if not record.net:
            continue
        counts["net"] += 1
        cohort.learners.add(record.learner)
        gender = record.dimensions.get("gender")
        if gender == "F":
            cohort.female.add(record.learner)
            if record.certified_s is not None:
                cohort.certified_female.add(record.learner)
        elif gender == "M":
            cohort.male.add(record.learner)
            if record.certified_s is not None:
                cohort.certified_male.add(record.learner)
        if record.attempted_final:
            counts["attempted_final"] += 1
            counts["passed_final"] += record.passed_final
        if record.ends_s is None or record.ends_s > cutoff:
            continue
        counts["net_closed"] += 1
        if record.completed_s is not None:
            counts["completed_closed"] += 1
            cohort.completion_days.append(_days(record.enrolled_s, record.completed_s))
        if record.certified_s is not None:
            counts["certified_closed"] += 1
            cohort.certification_days.append(_days(record.enrolled_s, record.certified_s))
        if record.started:
            counts["started_closed"] += 1
            counts["dropped_closed"] += record.withdrawn_after or record.completed_s is None
    return cohort


def _days(start_s: int, end_s: int) -> Decimal:
    return (Decimal(end_s) - Decimal(start_s)) / _DAY_S


def joined_cohort(cohorts: Sequence[Cohort]) -> Cohort:
    """The cohort of the union of disjoint groups (one group's cohort as it is)."""
    if len(cohorts) == 1:
        return cohorts[0]
    joined = Cohort()
    for name in _COUNTS:
        joined.counts[name] = sum(cohort.counts[name] for cohort in cohorts)
    joined.learners = set().union(*(cohort.learners for cohort in cohorts))
    joined.female = set().union(*(cohort.female for cohort in cohorts))
    joined.male = set().union(*(cohort.male for cohort in cohorts))
    joined.certified_female = set().union(*(cohort.certified_female for cohort in cohorts))
    joined.certified_male = set().union(*(cohort.certified_male for cohort in cohorts))
    joined.completion_days = list(chain(*(cohort.completion_days for cohort in cohorts)))
    joined.certification_days = list(chain(*(cohort.certification_days for cohort in cohorts)))
    joined.positions = list(chain(*(cohort.positions for cohort in cohorts)))
    return joined


def cohorts_by(
    index: RowIndex, records: Sequence[Enrolment], by: Sequence[str], cutoff: int
) -> list[tuple[GroupKey, Cohort]]:
    """The cohorts of the groups of `by` (by enrolment period), sorted by group key.

    The finest groups' cohorts are counted once per index and cut-off and shared by every grouping.
    """
    finest, _ = index.cached(
        (finest_groups, id(records), "enrolment"), lambda: finest_groups(records, "enrolment")
    )
    counted = index.cached(
        (count_cohort, id(records), cutoff),
        lambda: {id(positions): count_cohort(records, positions, cutoff) for positions in finest.values()},
    )
    joined = joined_positions(index, records, by, "enrolment")
    return [
        (key, joined_cohort([counted[id(positions)] for positions in lists]))
        for key, lists in sorted(joined.items(), key=lambda item: item[0])
    ]
