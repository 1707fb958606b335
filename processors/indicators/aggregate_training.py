"""Read-time aggregation of the training indicators (CVF) over enrolment records; pure.

The records come from `processors.indicators.enrolments`. Rates and durations count closed cohorts
only, so open cohorts are not right-censored; cells with open cohorts are provisional.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal

from processors.indicators.base import UNKNOWN
from processors.indicators.catalogue import (
    CATALOGUE,
    COUNTRY_COVERAGE_MIN_LEARNERS,
    PATHWAY_WINDOW_DAYS,
    PLGN_CONVERSION_WINDOW_DAYS,
    TRAINING_DIMS,
    Indicator,
)
from processors.indicators.cohorts import Cohort, GroupKey, cohorts_by, grouped, in_order
from processors.indicators.enrolments import Enrolment, closing_cutoff_s, enrolments
from processors.indicators.grouping import (
    Aggregator,
    Cell,
    ReadContext,
    RowIndex,
    StoredRow,
    project,
    projector,
    quantile,
)
from processors.indicators.periods import decode_member, epoch_seconds, from_epoch, saturating_add
from schemas.events.base import MEMBER_STATES

ART7_AUDIENCES = ("TPO_AUTHORITY", "BUSINESS_CHAMBER", "SECTOR_ASSOCIATION", "MSME")
_DAY_S = Decimal(86_400)
_HUNDRED = Decimal(100)
_PERIOD_SHARE = {"month": Decimal(1) / Decimal(12), "quarter": Decimal(1) / Decimal(4), "year": Decimal(1)}


def _group(
    records: Iterable[Enrolment], ctx: ReadContext, period_of: str = "enrolment"
) -> dict[tuple[date, tuple[str, ...]], list[Enrolment]]:
    groups: dict[tuple[date, tuple[str, ...]], list[Enrolment]] = defaultdict(list)
    key_of = projector(ctx.by, TRAINING_DIMS)
    for record in records:
        when = record.period_start if period_of == "enrolment" else record.certified_period
        if when is None:
            continue
        groups[(when, key_of(record.dimensions))].append(record)
    return groups


def _cohort_parts(indicator_id: str, cohort: Cohort, records: Sequence[Enrolment]) -> dict[str, Decimal]:
    """One indicator's parts of a group's cohort (`records` are those the cohort's positions index)."""
    counts = cohort.counts
    all_parts = {name: Decimal(counts[name]) for name in counts}
    all_parts["learners"] = Decimal(len(cohort.learners))
    all_parts["in_progress"] = Decimal(counts["net"] - counts["net_closed"])
    all_parts["never_started_closed"] = Decimal(counts["net_closed"] - counts["started_closed"])
    if indicator_id == "CVF-12":
        # Its normalised gains are rounded quotients: summed over the group's records in their order.
        all_parts.update(
            _learning_gain([record for record in in_order(records, cohort.positions) if record.net])
        )
    if indicator_id == "CVF-18":
        for prefix, female, male in (
            ("", cohort.female, cohort.male),
            ("certified_", cohort.certified_female, cohort.certified_male),
        ):
            all_parts[f"{prefix}female_learners"] = Decimal(len(female))
            all_parts[f"{prefix}male_learners"] = Decimal(len(male))
            all_parts[f"{prefix}female_and_male"] = Decimal(len(female) + len(male))
    shown = {
        "CVF-01": ("gross", "net"),
        "CVF-02": ("learners", "net"),
        "CVF-05": ("completed_closed", "net_closed", "in_progress"),
        "CVF-06": ("passed_final", "attempted_final", "in_progress"),
        "CVF-07": ("certified_closed", "completed_closed", "net_closed", "in_progress"),
        "CVF-08": ("dropped_closed", "started_closed", "net_closed", "in_progress"),
        "CVF-09": ("never_started_closed", "net_closed", "in_progress"),
        "CVF-10": ("in_progress",),
        "CVF-11": ("in_progress",),
        "CVF-12": ("gain_points", "paired", "normalised_gain_sum", "normalisable", "in_progress"),
        "CVF-18": (
            "female_learners",
            "male_learners",
            "female_and_male",
            "learners",
            "certified_female_learners",
            "certified_male_learners",
            "certified_female_and_male",
        ),
    }[indicator_id]
    parts = {name: all_parts[name] for name in shown}
    if indicator_id in ("CVF-10", "CVF-11"):
        days = cohort.completion_days if indicator_id == "CVF-10" else cohort.certification_days
        parts["n"] = Decimal(len(days))
        if days:
            parts["median_days"] = quantile(days, Decimal("0.5"))
            parts["p90_days"] = quantile(days, Decimal("0.9"))
    return parts


def _learning_gain(net: Sequence[Enrolment]) -> dict[str, Decimal]:
    """CVF-12 parts over the enrolments with both a pre-test and a post-test score (points, 0-100)."""
    pairs = [
        (record.pre_score, record.post_score)
        for record in net
        if record.pre_score is not None and record.post_score is not None
    ]
    # The normalised gain divides by the room left above the pre-test: none when it was already 100.
    normalised = [(post - pre) / (_HUNDRED - pre) for pre, post in pairs if pre < _HUNDRED]
    return {
        "paired": Decimal(len(pairs)),
        "gain_points": sum((post - pre for pre, post in pairs), Decimal(0)),
        "normalisable": Decimal(len(normalised)),
        "normalised_gain_sum": sum(normalised, Decimal(0)),
    }


def aggregate_enrolments(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """CVF-01, 02, 05, 06, 07, 08, 09, 10, 11, 12, 18: enrolment cohorts by enrolment period."""
    records = enrolments(index)
    # The indicators of one read that share these records share their grouping too (which depends
    # on the records and the `by` dimensions alone; the records live as long as the index).
    # The indicators of one read share the cohorts of each grouping; a grouping's cohorts join those
    # of the finest groups (`cohorts`), counted once per read and closing cut-off.
    # Only the last grouping's are kept: a refresh asks for every indicator of one grouping in a row,
    # and the cohorts of every grouping at once would hold a copy of the learner sets per grouping.
    cutoff = closing_cutoff_s(ctx)
    last: dict[tuple[str, ...], list[tuple[GroupKey, Cohort]]] = index.cached(
        (cohorts_by, id(records), cutoff), dict
    )
    cohorts = last.get(ctx.by)
    if cohorts is None:
        last.clear()
        cohorts = last[ctx.by] = cohorts_by(index, records, ctx.by, cutoff)
    cells = []
    for (start, key), cohort in cohorts:
        parts = _cohort_parts(indicator.id, cohort, records)
        # Counts of enrolments and learners are final; rates over cohorts wait for the cohorts to close.
        provisional = "in_progress" in parts and parts["in_progress"] > 0
        cells.append(Cell(start, dict(zip(ctx.by, key, strict=True)), parts, provisional))
    return cells


def aggregate_active_learners(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """CVF-04: distinct learners with a learning event in the period, by their enrolment's dimensions.

    The ``CVF-08/started`` rows hold one member per enrolment and month with a progress or assessment
    event; the enrolment anchor gives the learner and the dimensions.
    """
    records = enrolments(index)
    started = index.get(("CVF-08", "started"), ())
    finest, grains = index.cached(
        (_active_learners, id(records), id(started)), lambda: _active_learners(records, started)
    )
    learners: dict[tuple[date, tuple[str, ...]], set[str]] = defaultdict(set)
    for (start, grain), found in finest.items():
        learners[(start, project(grains[grain], ctx.by, TRAINING_DIMS))] |= found
    return [
        Cell(start, dict(zip(ctx.by, key, strict=True)), {"active_learners": Decimal(len(found))})
        for (start, key), found in sorted(learners.items(), key=lambda item: item[0])
    ]


def _target(audience: str | None, start: date, ctx: ReadContext) -> Decimal | None:
    audiences = ART7_AUDIENCES if audience is None else (audience,)
    found = [ctx.targets.get((name, start.year)) for name in audiences]
    if any(target is None for target in found):
        return None
    return sum((target for target in found if target is not None), Decimal(0)) * _PERIOD_SHARE[ctx.period]


def aggregate_certified_learners(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """CVF-16 and CVF-19: learners and firms certified in the period, by the enrolment's dimensions."""
    records = [record for record in enrolments(index) if record.certified_s is not None]
    if indicator.id == "CVF-16":
        records = [record for record in records if record.dimensions.get("audience") in ART7_AUDIENCES]
    cells = []
    for (start, key), group in sorted(_group(records, ctx, "certificate").items(), key=lambda item: item[0]):
        dimensions = dict(zip(ctx.by, key, strict=True))
        parts = {
            "certified_learners": Decimal(len({record.learner for record in group})),
            "firms": Decimal(len({record.org for record in group if record.org})),
        }
        if indicator.id == "CVF-16" and "country" not in dimensions:
            target = _target(dimensions.get("audience"), start, ctx)
            if target is not None:
                parts["target"] = target
        cells.append(Cell(start, dimensions, parts))
    return cells


def aggregate_country_coverage(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """CVF-17: member states with certified learners, and the concentration (HHI) across countries."""
    records = [record for record in enrolments(index) if record.certified_s is not None]
    cells = []
    for (start, key), group in sorted(_group(records, ctx, "certificate").items(), key=lambda item: item[0]):
        by_country: dict[str, set[str]] = defaultdict(set)
        for record in group:
            by_country[record.dimensions.get("country", UNKNOWN)].add(record.learner)
        total = sum(len(learners) for learners in by_country.values())
        covered = sum(
            1
            for country, learners in by_country.items()
            if country in MEMBER_STATES and len(learners) >= COUNTRY_COVERAGE_MIN_LEARNERS
        )
        hhi = sum(
            ((Decimal(len(learners)) / Decimal(total)) ** 2 for learners in by_country.values()), Decimal(0)
        )
        parts = {
            "countries_covered": Decimal(covered),
            "certified_learners": Decimal(len({record.learner for record in group})),
            "hhi": hhi,
        }
        cells.append(Cell(start, dict(zip(ctx.by, key, strict=True)), parts))
    return cells


def aggregate_cost_per_certificate(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """CVF-20: offering cost in the period over certificates issued in the period, by course."""
    cost: dict[tuple[date, tuple[str, ...]], Decimal] = defaultdict(Decimal)
    for row in index.get(("CVF-20", "cost_usd"), ()):
        cost[(row.period_start, project(row.dimensions, ctx.by, CATALOGUE["CVF-20"].dimensions))] += row.value
    certificates = {
        group_key: Decimal(len(group))
        for group_key, group in _group(
            (record for record in enrolments(index) if record.certified_s is not None), ctx, "certificate"
        ).items()
    }
    cells = []
    for start, key in sorted(set(cost) | set(certificates)):
        parts = {
            "cost_usd": cost.get((start, key), Decimal(0)),
            "certificates": certificates.get((start, key), Decimal(0)),
        }
        cells.append(Cell(start, dict(zip(ctx.by, key, strict=True)), parts))
    return cells


def aggregate_plgn_conversion(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """CVF-23: certified MSME learners with a firm whose firm acts on PLGN within 90 days of the certificate.

    The join runs on the org key: the enrolment anchor carries the learner's firm, and the PLGN-02
    part ``active_day`` holds one member per firm and UTC day of a qualifying action (registration
    included).
    """
    days_by_org: dict[str, list[date]] = defaultdict(list)
    for row in index.get(("PLGN-02", "active_day"), ()):
        if row.member is not None:
            org, day = decode_member(row.member)
            days_by_org[org].append(date.fromisoformat(day))
    for days in days_by_org.values():
        days.sort()
    records = [
        record
        for record in enrolments(index)
        if record.certified_s is not None and record.org and record.dimensions.get("audience") == "MSME"
    ]
    window = timedelta(days=PLGN_CONVERSION_WINDOW_DAYS)
    cells = []
    for (start, key), group in sorted(_group(records, ctx, "certificate").items(), key=lambda item: item[0]):
        converted = 0
        provisional = False
        for record in group:
            if record.certified_s is None:
                continue
            certified_on = from_epoch(record.certified_s).date()
            days = days_by_org.get(record.org, [])
            first = bisect_left(days, certified_on)
            if first < len(days) and days[first] <= saturating_add(certified_on, window):
                converted += 1
            elif saturating_add(from_epoch(record.certified_s), window) > ctx.as_of:
                provisional = True
        parts = {"converted": Decimal(converted), "certified_with_org": Decimal(len(group))}
        cells.append(Cell(start, dict(zip(ctx.by, key, strict=True)), parts, provisional))
    return cells


def aggregate_pathway(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """CVF-22: learners certified in the period who enrol in another course within the window after.

    A learner of a cell continues when one of the learner's certificates in the cell is followed, within
    `PATHWAY_WINDOW_DAYS`, by a net enrolment of the same learner in another course.
    """
    window_s = PATHWAY_WINDOW_DAYS * 86_400
    records = enrolments(index)
    later = index.cached((_later_enrolments, id(records)), lambda: _later_enrolments(records))
    as_of_s = epoch_seconds(ctx.as_of)
    cells = []
    # Records without a certificate have no certificate period: grouping by it leaves them out.
    for (start, key), group in sorted(
        grouped(index, records, ctx.by, "certificate").items(), key=lambda item: item[0]
    ):
        by_learner: dict[str, list[Enrolment]] = defaultdict(list)
        for record in group:
            by_learner[record.learner].append(record)
        continued = 0
        provisional = False
        for learner, certificates in by_learner.items():
            if _continues(certificates, later.get(learner, ()), window_s):
                continued += 1
            elif any((record.certified_s or 0) + window_s > as_of_s for record in certificates):
                # Not continued yet, but a certificate's window is still open.
                provisional = True
        parts = {"continued": Decimal(continued), "certified_learners": Decimal(len(by_learner))}
        cells.append(Cell(start, dict(zip(ctx.by, key, strict=True)), parts, provisional))
    return cells


def _later_enrolments(records: Iterable[Enrolment]) -> dict[str, list[tuple[int, str]]]:
    """Per learner the (start, course) of each net enrolment."""
    later: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for record in records:
        if record.net:
            later[record.learner].append((record.enrolled_s, record.dimensions.get("course", "")))
    return later


def _active_learners(
    records: Iterable[Enrolment], started: Iterable[StoredRow]
) -> tuple[dict[tuple[date, int], set[str]], dict[int, Mapping[str, str]]]:
    """The learners with a learning event per period and dimensions object of their enrolment.

    Dimensions objects are told apart by identity, as in `cohorts.finest_groups`.
    """
    by_id = {record.enrolment_id: record for record in records}
    finest: dict[tuple[date, int], set[str]] = defaultdict(set)
    grains: dict[int, Mapping[str, str]] = {}
    for row in started:
        record = by_id.get(row.member) if row.member is not None else None
        if record is not None:
            grain = id(record.dimensions)
            grains.setdefault(grain, record.dimensions)
            finest[(row.period_start, grain)].add(record.learner)
    return finest, grains


def _continues(certificates: Sequence[Enrolment], enrolled: Sequence[tuple[int, str]], window_s: int) -> bool:
    """Whether a net enrolment (start, course) in another course follows one of the certificates in time."""
    return any(
        record.certified_s is not None
        and record.certified_s < start_s <= record.certified_s + window_s
        and course != record.dimensions.get("course", "")
        for record in certificates
        for start_s, course in enrolled
    )


AGGREGATIONS: dict[str, Aggregator] = {
    "enrolments": aggregate_enrolments,
    "active_learners": aggregate_active_learners,
    "certified_learners": aggregate_certified_learners,
    "country_coverage": aggregate_country_coverage,
    "cost_per_certificate": aggregate_cost_per_certificate,
    "plgn_conversion": aggregate_plgn_conversion,
    "pathway": aggregate_pathway,
}
