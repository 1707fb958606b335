"""The indicator catalogue of Res. 503 (domain research section 5) as data: meaning and stored parts.

Declarative: one entry per indicator and a few lookups; it grows with the catalogue, so the bound on
the length of hand-written modules does not apply to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from processors.indicators.base import PartKind

Family = Literal["training", "plgn", "activities"]
Unit = Literal["count", "ratio", "usd", "days", "hours", "percent", "points", "usd_per_unit"]
DerivationOp = Literal["part", "ratio", "roi", "bcr"]

# A country counts as covered by CVF-17 when it has at least this many certified learners.
COUNTRY_COVERAGE_MIN_LEARNERS = 1
# CVF-23: a certified learner converts when the learner's firm acts on PLGN within this many days.
PLGN_CONVERSION_WINDOW_DAYS = 90
# CVF-22: a certified learner continues when enrolling in another course within this many days.
PATHWAY_WINDOW_DAYS = 365
# PLGN-02: a firm is active when it took a qualifying action in this many days up to the period end.
PLGN_ACTIVE_WINDOW_DAYS = 90
# PLGN-06: a contact request counts as answered when the answer came within this many days.
CONTACT_ANSWER_WINDOW_DAYS = 7
# Money cells where one member (deal, meeting) holds more than this share are withheld externally.
DOMINANCE_SHARE = Decimal("0.85")
# ACT-07/08/13: returns stay provisional until this many days after the activity's last session.
ROI_WINDOW_DAYS = 365


@dataclass(frozen=True)
class StoredPart:
    """A part an indicator's functions write to the store.

    Attributes:
        name: Part name, unique within the indicator.
        kind: Store semantics (see `processors.indicators.base.Part`).
        description: What one unit of the part is, and what its member and amount hold.
    """

    name: str
    kind: PartKind
    description: str


@dataclass(frozen=True)
class PartRef:
    """A stored part read by an indicator, possibly one written by another indicator."""

    indicator: str
    part: str


@dataclass(frozen=True)
class Derivation:
    """How the value derives from the aggregated parts of one cell (see `derive.derive_value`).

    ``part``: the value is ``args[0]``; ``ratio``: ``args[0] / args[1] * scale``; ``roi``:
    ``(args[0] * m - args[1]) / args[1] * 100``; ``bcr``: ``args[0] * m / args[1]``, where m is
    ``settings.processor.roi_margin_coefficient``. A zero or missing denominator gives no value.
    """

    op: DerivationOp
    args: tuple[str, ...]
    scale: Decimal = Decimal(1)


@dataclass(frozen=True)
class Indicator:
    """One catalogue entry.

    Attributes:
        id: Catalogue id of domain research section 5 (``CVF-01``, ``PLGN-10``, ``ACT-07``...).
        family: Which module computes its parts.
        article: The article(s) of Res. 503 it serves.
        name_es, name_pt, name_en: Display names.
        definition: What it measures, in English.
        formula: The formula as text.
        unit: Unit of the value.
        dimensions: Dimensions the stored parts carry in full; reads may regroup on any subset.
        stores: Parts written by this indicator's functions.
        reads: Stored parts (of this or other indicators) the read model aggregates for it.
        aggregation: Name of the read-time aggregation (``processors.indicators.aggregate``).
        derivation: How the value follows from the aggregated parts.
        units_part: The aggregated part counting units (learners, firms) for small-cell suppression.
        cumulative: The value at period P is "as of the end of P" (stocks, ROI) rather than a flow in P.
        dominant_part: A money part summed over members (deals, meetings): external reads withhold a
            cell where one member holds more than `DOMINANCE_SHARE` of it.
        extra_ratios: Secondary rates shown among the parts, as (name, numerator part, denominator part).
    """

    id: str
    family: Family
    article: str
    name_es: str
    name_pt: str
    name_en: str
    definition: str
    formula: str
    unit: Unit
    dimensions: tuple[str, ...]
    stores: tuple[StoredPart, ...]
    reads: tuple[PartRef, ...]
    aggregation: str
    derivation: Derivation
    units_part: str
    cumulative: bool = False
    dominant_part: str = ""
    extra_ratios: tuple[tuple[str, str, str], ...] = ()

    @property
    def names(self) -> dict[str, str]:
        """Display names by language code."""
        return {"es": self.name_es, "pt": self.name_pt, "en": self.name_en}


def _refs(*pairs: str) -> tuple[PartRef, ...]:
    return tuple(PartRef(*pair.split("/", 1)) for pair in pairs)


_ENROLLED = "CVF-01/enrolled"
_WITHDRAWN_BEFORE = "CVF-01/withdrawn_before_start"
_COMPLETED = "CVF-05/completed"
_CERTIFIED = "CVF-07/certified"
_STARTED = "CVF-08/started"
_FINAL_ATTEMPTED = "CVF-06/final_attempted"
_FINAL_PASSED = "CVF-06/final_passed"
_PRE_SCORE = "CVF-12/pre_score"
_POST_SCORE = "CVF-12/post_score"

TRAINING_DIMS = ("country", "audience", "course", "offering", "gender")
COHORT_DIMS = ("country", "audience", "course", "offering")

INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        id="CVF-01",
        family="training",
        article="7",
        name_es="Inscripciones",
        name_pt="Inscrições",
        name_en="Enrolments",
        definition="Enrolments created in the period (gross) and those not withdrawn before the start (net).",
        formula="gross = #cvf.enrolment.created in P; net = gross - #withdrawn before start",
        unit="count",
        dimensions=TRAINING_DIMS,
        stores=(
            StoredPart(
                "enrolled",
                "distinct",
                "one member per enrolment, at enrolment time; the member encodes enrolment id, "
                "learner key, org key, enrolled_at and offering_ends_at (the enrolment anchor, see "
                "training.anchor_member)",
            ),
            StoredPart(
                "withdrawn_before_start",
                "distinct",
                "member = enrolment id of a withdrawal before the offering started",
            ),
        ),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE),
        aggregation="enrolments",
        derivation=Derivation("part", ("net",)),
        units_part="gross",
    ),
    Indicator(
        id="CVF-02",
        family="training",
        article="7",
        name_es="Participantes únicos alcanzados",
        name_pt="Participantes únicos alcançados",
        name_en="Unique learners reached",
        definition="Distinct learners with at least one net enrolment created in the period.",
        formula="#distinct learner_key with >= 1 net enrolment in P",
        unit="count",
        dimensions=("country", "audience", "gender"),
        stores=(),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE),
        aggregation="enrolments",
        derivation=Derivation("part", ("learners",)),
        units_part="learners",
    ),
    Indicator(
        id="CVF-04",
        family="training",
        article="7",
        name_es="Participantes activos",
        name_pt="Participantes ativos",
        name_en="Active learners",
        definition="Distinct learners with at least one progress or assessment event in the period, "
        "grouped by the dimensions of the enrolment each event belongs to. An event counts once its "
        "enrolment is in the store. Monthly, quarterly or yearly (no weekly periods).",
        formula="#distinct learner_key with >= 1 cvf.progress.recorded or cvf.assessment.submitted in P",
        unit="count",
        dimensions=("country", "audience", "course"),
        stores=(),
        reads=_refs(_ENROLLED, _STARTED),
        aggregation="active_learners",
        derivation=Derivation("part", ("active_learners",)),
        units_part="active_learners",
    ),
    Indicator(
        id="CVF-05",
        family="training",
        article="7",
        name_es="Tasa de finalización",
        name_pt="Taxa de conclusão",
        name_en="Completion rate",
        definition="Completed enrolments over net enrolments, closed cohorts only (offering end + grace).",
        formula="#completed / net enrolments, over enrolments whose offering_ends_at + grace <= as_of",
        unit="ratio",
        dimensions=COHORT_DIMS,
        stores=(
            StoredPart(
                "completed",
                "latest",
                "member = enrolment id; amount = completion time (epoch seconds); latest completion wins",
            ),
        ),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE, _COMPLETED),
        aggregation="enrolments",
        derivation=Derivation("ratio", ("completed_closed", "net_closed")),
        units_part="net_closed",
    ),
    Indicator(
        id="CVF-06",
        family="training",
        article="7",
        name_es="Tasa de aprobación",
        name_pt="Taxa de aprovação",
        name_en="Pass rate",
        definition="Net enrolments that passed the final assessment (in any attempt) over net enrolments "
        "that attempted it, by enrolment cohort. Attempts without a pass decision are not counted. "
        "Provisional while the cohort is open.",
        formula="#net enrolments with a passed final / #net enrolments with a final attempt",
        unit="ratio",
        dimensions=COHORT_DIMS,
        stores=(
            StoredPart(
                "final_attempted",
                "distinct",
                "member = enrolment id with a final assessment attempt that has a pass decision",
            ),
            StoredPart("final_passed", "distinct", "member = enrolment id with a passed final assessment"),
        ),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE, _FINAL_ATTEMPTED, _FINAL_PASSED),
        aggregation="enrolments",
        derivation=Derivation("ratio", ("passed_final", "attempted_final")),
        units_part="attempted_final",
    ),
    Indicator(
        id="CVF-07",
        family="training",
        article="7",
        name_es="Tasa de certificación",
        name_pt="Taxa de certificação",
        name_en="Certification rate",
        definition="Enrolments holding an unrevoked certificate over net enrolments, closed cohorts only.",
        formula="#certificate.issued (not revoked) / net enrolments (closed cohorts); also / completions",
        unit="ratio",
        dimensions=COHORT_DIMS,
        stores=(
            StoredPart(
                "certified",
                "latest",
                "member = enrolment id; amount = issue time (epoch seconds), 0 once revoked",
            ),
        ),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE, _COMPLETED, _CERTIFIED),
        aggregation="enrolments",
        derivation=Derivation("ratio", ("certified_closed", "net_closed")),
        units_part="net_closed",
        extra_ratios=(("certified_per_completion", "certified_closed", "completed_closed"),),
    ),
    Indicator(
        id="CVF-08",
        family="training",
        article="7",
        name_es="Tasa de abandono",
        name_pt="Taxa de abandono",
        name_en="Drop-out rate",
        definition="Started enrolments withdrawn after the start or not completed at cohort close, over "
        "started enrolments, closed cohorts only.",
        formula="(withdrawn after start + started-not-completed at close) / started (closed cohorts)",
        unit="ratio",
        dimensions=COHORT_DIMS,
        stores=(
            StoredPart("started", "distinct", "member = enrolment id with a progress or assessment event"),
            StoredPart("withdrawn_after_start", "distinct", "member = enrolment id withdrawn after start"),
        ),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE, _COMPLETED, _STARTED, "CVF-08/withdrawn_after_start"),
        aggregation="enrolments",
        derivation=Derivation("ratio", ("dropped_closed", "started_closed")),
        units_part="started_closed",
    ),
    Indicator(
        id="CVF-09",
        family="training",
        article="7",
        name_es="Inscritos sin actividad",
        name_pt="Inscritos sem atividade",
        name_en="Never-started share",
        definition="Net enrolments of closed cohorts with no progress or assessment event (nor a "
        "withdrawal after the start), over net enrolments of closed cohorts.",
        formula="net enrolments with no learning event at cohort close / net enrolments (closed cohorts)",
        unit="ratio",
        dimensions=COHORT_DIMS,
        stores=(),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE, _STARTED, "CVF-08/withdrawn_after_start"),
        aggregation="enrolments",
        derivation=Derivation("ratio", ("never_started_closed", "net_closed")),
        units_part="net_closed",
    ),
    Indicator(
        id="CVF-10",
        family="training",
        article="7",
        name_es="Tiempo hasta finalización",
        name_pt="Tempo até a conclusão",
        name_en="Time to completion",
        definition="Median (value) and P90 (part p90_days) of days from enrolment to completion, "
        "closed cohorts only.",
        formula="median and P90 of (completed_at - enrolled_at) in days",
        unit="days",
        dimensions=COHORT_DIMS,
        stores=(),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE, _COMPLETED),
        aggregation="enrolments",
        derivation=Derivation("part", ("median_days",)),
        units_part="n",
    ),
    Indicator(
        id="CVF-11",
        family="training",
        article="7",
        name_es="Tiempo hasta certificación",
        name_pt="Tempo até a certificação",
        name_en="Time to certification",
        definition="Median (value) and P90 (part p90_days) of days from enrolment to an unrevoked "
        "certificate, closed cohorts only.",
        formula="median and P90 of (issued_at - enrolled_at) in days",
        unit="days",
        dimensions=COHORT_DIMS,
        stores=(),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE, _CERTIFIED),
        aggregation="enrolments",
        derivation=Derivation("part", ("median_days",)),
        units_part="n",
    ),
    Indicator(
        id="CVF-12",
        family="training",
        article="7",
        name_es="Ganancia de aprendizaje",
        name_pt="Ganho de aprendizagem",
        name_en="Learning gain",
        definition="Mean gain in score points (0-100) from the pre-test to the post-test, over net "
        "enrolments with both (paired learners only), by enrolment cohort: the first pre-test attempt "
        "against the latest post-test attempt. Part normalised_gain is the mean of "
        "(post - pre) / (100 - pre) over the pairs with a pre-test below 100. Provisional while the "
        "cohort is open.",
        formula="mean(post - pre); normalised g = mean((post - pre) / (100 - pre)), paired learners only",
        unit="points",
        dimensions=COHORT_DIMS,
        stores=(
            StoredPart(
                "pre_score",
                "latest",
                "member = enrolment id; amount = pre-test score in points (0-100); the first attempt wins",
            ),
            StoredPart(
                "post_score",
                "latest",
                "member = enrolment id; amount = post-test score in points (0-100); the latest attempt wins",
            ),
        ),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE, _PRE_SCORE, _POST_SCORE),
        aggregation="enrolments",
        derivation=Derivation("ratio", ("gain_points", "paired")),
        units_part="paired",
        extra_ratios=(("normalised_gain", "normalised_gain_sum", "normalisable"),),
    ),
    Indicator(
        id="CVF-16",
        family="training",
        article="7",
        name_es="Alcance por segmento vs meta",
        name_pt="Alcance por segmento vs meta",
        name_en="Segment reach against target",
        definition="Unique learners certified in the period in an art. 7 audience, over that audience's "
        "target (table reach_target: annual targets of the activity plan; a month gets 1/12 and a "
        "quarter 1/4 of the year's target). Targets are per audience, so a cell split by country has "
        "no value.",
        formula="#distinct certified learners in segment s / target_s",
        unit="ratio",
        dimensions=("audience", "country"),
        stores=(),
        reads=_refs(_ENROLLED, _CERTIFIED),
        aggregation="certified_learners",
        derivation=Derivation("ratio", ("certified_learners", "target")),
        units_part="certified_learners",
    ),
    Indicator(
        id="CVF-17",
        family="training",
        article="7",
        name_es="Cobertura por país",
        name_pt="Cobertura por país",
        name_en="Country coverage",
        definition="Member states (of 13) with at least COUNTRY_COVERAGE_MIN_LEARNERS learners certified "
        "in the period; part hhi is the Herfindahl concentration of certified learners by country.",
        formula="#member countries with >= N certified learners; HHI = sum_c share_c^2",
        unit="count",
        dimensions=("country",),
        stores=(),
        reads=_refs(_ENROLLED, _CERTIFIED),
        aggregation="country_coverage",
        derivation=Derivation("part", ("countries_covered",)),
        units_part="certified_learners",
    ),
    Indicator(
        id="CVF-18",
        family="training",
        article="7, 9",
        name_es="Participación femenina e índice de paridad",
        name_pt="Participação feminina e índice de paridade",
        name_en="Gender share and parity",
        definition="Women among the unique learners with a net enrolment created in the period whose "
        "stated gender is F or M, over those learners; part gender_parity_index is F / M. Learners of "
        "other or unstated gender count in part learners only. Measured at enrolment (the value) and at "
        "certification: parts certified_female_share and certified_gender_parity_index count the "
        "learners of the same enrolments who hold an unrevoked certificate, so the two compare one "
        "cohort at entry and at exit.",
        formula="#distinct F learners / (#distinct F + #distinct M learners), net enrolments in P; "
        "GPI = F / M; the same over the certified learners of those enrolments",
        unit="ratio",
        dimensions=("country", "audience", "course"),
        stores=(),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE, _CERTIFIED),
        aggregation="enrolments",
        derivation=Derivation("ratio", ("female_learners", "female_and_male")),
        units_part="learners",
        extra_ratios=(
            ("gender_parity_index", "female_learners", "male_learners"),
            ("certified_female_share", "certified_female_learners", "certified_female_and_male"),
            ("certified_gender_parity_index", "certified_female_learners", "certified_male_learners"),
        ),
    ),
    Indicator(
        id="CVF-19",
        family="training",
        article="7",
        name_es="Empresas alcanzadas por la formación",
        name_pt="Empresas alcançadas pela formação",
        name_en="Firms reached by training",
        definition="Distinct firms (org keys) of learners certified in the period.",
        formula="#distinct org_key of certified learners",
        unit="count",
        dimensions=("country", "audience"),
        stores=(),
        reads=_refs(_ENROLLED, _CERTIFIED),
        aggregation="certified_learners",
        derivation=Derivation("part", ("firms",)),
        units_part="firms",
    ),
    Indicator(
        id="CVF-20",
        family="training",
        article="1, 7",
        name_es="Costo por participante certificado",
        name_pt="Custo por participante certificado",
        name_en="Cost per certified learner",
        definition="Fully loaded cost booked on course offerings in the period over certificates issued "
        "(and not revoked) in the period, per offering (cost entries of type COURSE_OFFERING).",
        formula="sum cost_usd (offerings) / #certificates",
        unit="usd_per_unit",
        dimensions=("offering",),
        stores=(StoredPart("cost_usd", "sum", "USD amount of a cost entry booked on a course offering"),),
        reads=_refs("CVF-20/cost_usd", _ENROLLED, _CERTIFIED),
        aggregation="cost_per_certificate",
        derivation=Derivation("ratio", ("cost_usd", "certificates")),
        units_part="certificates",
    ),
    Indicator(
        id="CVF-22",
        family="training",
        article="7",
        name_es="Continuidad formativa",
        name_pt="Continuidade formativa",
        name_en="Pathway continuation",
        definition="Learners certified in the period who enrol (net of withdrawals before the start) in "
        "another course within 365 days after the certificate, over learners certified in the period. "
        "Grouped by the certified course; provisional while a learner who has not continued is "
        "still inside the window.",
        formula="#certified learners with a net enrolment in another course <= 12 m after the "
        "certificate / #certified learners",
        unit="ratio",
        dimensions=("country", "audience", "course"),
        stores=(),
        reads=_refs(_ENROLLED, _WITHDRAWN_BEFORE, _CERTIFIED),
        aggregation="pathway",
        derivation=Derivation("ratio", ("continued", "certified_learners")),
        units_part="certified_learners",
    ),
    Indicator(
        id="CVF-23",
        family="training",
        article="7, 8",
        name_es="Conversión CVF a PLGN",
        name_pt="Conversão CVF para PLGN",
        name_en="CVF to PLGN conversion",
        definition="MSME learners certified in the period whose firm takes a qualifying PLGN action within "
        "90 days after certification, over certified MSME learners with a firm. Joined at read time "
        "by org key: the CVF enrolment anchor holds the learner's org key, PLGN-02 stores one member "
        "per firm and day of action.",
        formula="#certified MSME learners whose org acts on PLGN <= 90 d / #certified MSME learners with org",
        unit="ratio",
        dimensions=("country",),
        stores=(),
        reads=_refs(_ENROLLED, _CERTIFIED, "PLGN-02/active_day"),
        aggregation="plgn_conversion",
        derivation=Derivation("ratio", ("converted", "certified_with_org")),
        units_part="certified_with_org",
    ),
    Indicator(
        id="PLGN-01",
        family="plgn",
        article="8",
        name_es="Empresas registradas",
        name_pt="Empresas registradas",
        name_en="Registered firms",
        definition="Firms registered on PLGN up to the end of the period (stock); part new is the flow.",
        formula="stock = #distinct registered org_key up to end of P; flow = new in P",
        unit="count",
        dimensions=("country", "size_band", "women_led"),
        stores=(StoredPart("registered", "distinct", "member = org key, at registration time"),),
        reads=_refs("PLGN-01/registered"),
        aggregation="registered_firms",
        derivation=Derivation("part", ("stock",)),
        units_part="stock",
        cumulative=True,
    ),
    Indicator(
        id="PLGN-02",
        family="plgn",
        article="8",
        name_es="Tasa de empresas activas",
        name_pt="Taxa de empresas ativas",
        name_en="Active-firm rate",
        definition="Firms with a qualifying action (opportunity, contact, round registration, meeting) in "
        "the 90 days up to the end of the period, over registered firms at that date.",
        formula="#firms with >= 1 qualifying action in (end - 90 d, end] / stock",
        unit="ratio",
        dimensions=("country",),
        stores=(
            StoredPart(
                "active_day",
                "distinct",
                "member = org key and UTC day of a qualifying action ('<org>|YYYY-MM-DD')",
            ),
        ),
        reads=_refs("PLGN-02/active_day", "PLGN-01/registered"),
        aggregation="active_firms",
        derivation=Derivation("ratio", ("active", "stock")),
        units_part="stock",
        cumulative=True,
    ),
    Indicator(
        id="PLGN-04",
        family="plgn",
        article="8",
        name_es="Ofertas y demandas publicadas",
        name_pt="Ofertas e demandas publicadas",
        name_en="Opportunities published",
        definition="Opportunities (offers and demands) published in the period.",
        formula="# plgn.opportunity.published by kind",
        unit="count",
        dimensions=("country", "kind"),
        stores=(StoredPart("published", "distinct", "member = opportunity id"),),
        reads=_refs("PLGN-04/published"),
        aggregation="parts",
        derivation=Derivation("part", ("published",)),
        units_part="published",
    ),
    Indicator(
        id="PLGN-06",
        family="plgn",
        article="8",
        name_es="Respuesta a contactos",
        name_pt="Resposta a contatos",
        name_en="Contact response rate",
        definition="Contact requests made in the period answered within 7 days, over requests; part "
        "median_response_hours over answered requests.",
        formula="#answered <= 7 d / #requests; median response hours",
        unit="ratio",
        dimensions=("country",),
        stores=(
            StoredPart("requested", "distinct", "member = '<request id>|<requested_at epoch s>'"),
            StoredPart("responded", "latest", "member = request id; amount = first answer time, epoch s"),
        ),
        reads=_refs("PLGN-06/requested", "PLGN-06/responded"),
        aggregation="contacts",
        derivation=Derivation("ratio", ("answered_7d", "requests")),
        units_part="requests",
        extra_ratios=(("answered_rate", "answered", "requests"),),
    ),
    Indicator(
        id="PLGN-07",
        family="plgn",
        article="1",
        name_es="Reuniones realizadas y cumplimiento",
        name_pt="Reuniões realizadas e cumprimento",
        name_en="Meetings held and fulfilment",
        definition="Meetings held over meetings scheduled, by slot period; part no_show_rate.",
        formula="held / scheduled; no-show = no_show / scheduled",
        unit="ratio",
        dimensions=("activity", "modality"),
        stores=(
            StoredPart("scheduled", "distinct", "member = meeting id, at the slot time"),
            StoredPart("held", "distinct", "member = meeting id, at the slot time"),
            StoredPart("no_show", "distinct", "member = meeting id, at the slot time"),
        ),
        reads=_refs("PLGN-07/scheduled", "PLGN-07/held", "PLGN-07/no_show"),
        aggregation="parts",
        derivation=Derivation("ratio", ("held", "scheduled")),
        units_part="scheduled",
        extra_ratios=(("no_show_rate", "no_show", "scheduled"),),
    ),
    Indicator(
        id="PLGN-09",
        family="plgn",
        article="1",
        name_es="Expectativas de negocios",
        name_pt="Expectativas de negócios",
        name_en="Expected business",
        definition="Expected business (USD) of meeting outcomes, counted once per meeting (latest report).",
        formula="sum expected_value_usd over deduplicated meeting outcomes",
        unit="usd",
        dimensions=("activity", "horizon"),
        stores=(
            StoredPart(
                "expected_usd", "latest", "member = meeting id; amount = expected USD; latest report wins"
            ),
        ),
        reads=_refs("PLGN-09/expected_usd"),
        aggregation="parts",
        derivation=Derivation("part", ("expected_usd",)),
        units_part="n_expected_usd",
        dominant_part="expected_usd",
    ),
    Indicator(
        id="PLGN-10",
        family="plgn",
        article="1",
        name_es="Negocios concretados",
        name_pt="Negócios concretizados",
        name_en="Realised business",
        definition="Latest cumulative realised value per deal (USD), one report per deal: the exporter's "
        "report wins over the importer's, a later wave over an earlier one (rules 1 and 2 of section 5).",
        formula="sum over deals of the latest cumulative realised value",
        unit="usd",
        dimensions=("activity", "country", "counterpart_country"),
        stores=(
            StoredPart(
                "realised_usd",
                "latest",
                "member = deal id; amount = cumulative realised USD; order = exporter first, then wave, "
                "then report time",
            ),
        ),
        reads=_refs("PLGN-10/realised_usd"),
        aggregation="parts",
        derivation=Derivation("part", ("realised_usd",)),
        units_part="n_realised_usd",
        dominant_part="realised_usd",
        cumulative=True,
    ),
    Indicator(
        id="PLGN-11",
        family="plgn",
        article="1",
        name_es="Tasa de concreción",
        name_pt="Taxa de concretização",
        name_en="Realisation ratio",
        definition="Realised business over expected business, per activity (population version).",
        formula="PLGN-10 / PLGN-09",
        unit="ratio",
        dimensions=("activity",),
        stores=(),
        reads=_refs("PLGN-10/realised_usd", "PLGN-09/expected_usd"),
        aggregation="parts",
        derivation=Derivation("ratio", ("realised_usd", "expected_usd")),
        units_part="n_realised_usd",
        dominant_part="realised_usd",
        cumulative=True,
    ),
    Indicator(
        id="PLGN-16",
        family="plgn",
        article="8",
        name_es="Tasa de autorización del directorio",
        name_pt="Taxa de autorização do diretório",
        name_en="Directory authorisation rate",
        definition="Firms with an active directory authorisation covering member state C (country, the state "
        "that receives the directory records under art. 8; recipient is the same state), over all registered "
        "firms, at the end of the period (at the as-of instant while it runs); a grant counts only between "
        "its start and its end, as in the consent ledger; part withdrawals counts withdrawals in P.",
        formula="#firms authorised for C / stock of registered firms",
        unit="ratio",
        dimensions=("country", "recipient"),
        stores=(
            StoredPart(
                "authorised",
                "latest",
                "member = '<org>|<recipient>|<consent>'; amount 1 granted, 0 withdrawn; a grant's order key "
                "ends with its validity window, '|<start>|<end or empty>' in epoch microseconds",
            ),
            StoredPart("withdrawals", "sum", "one per withdrawal and recipient"),
        ),
        reads=_refs("PLGN-16/authorised", "PLGN-16/withdrawals", "PLGN-01/registered"),
        aggregation="directory",
        derivation=Derivation("ratio", ("authorised", "stock")),
        units_part="authorised",
        cumulative=True,
    ),
    Indicator(
        id="ACT-01",
        family="activities",
        article="1",
        name_es="Costo total",
        name_pt="Custo total",
        name_en="Fully loaded cost",
        definition="Cost entries (USD at the event-date rate) of promotion activities by category and payer.",
        formula="sum cost_usd",
        unit="usd",
        dimensions=("activity", "category", "payer"),
        stores=(StoredPart("cost_usd", "sum", "USD amount of a cost entry booked on an activity"),),
        reads=_refs("ACT-01/cost_usd"),
        aggregation="parts",
        derivation=Derivation("part", ("cost_usd",)),
        units_part="",
    ),
    Indicator(
        id="ACT-02",
        family="activities",
        article="1",
        name_es="Empresas atendidas",
        name_pt="Empresas atendidas",
        name_en="Firms served",
        definition="Distinct firms that attended at least one meeting held in an activity.",
        formula="#distinct org_key with >= 1 meeting held",
        unit="count",
        dimensions=("activity",),
        stores=(StoredPart("served", "distinct", "member = org key of a party to a meeting held"),),
        reads=_refs("ACT-02/served"),
        aggregation="parts",
        derivation=Derivation("part", ("served",)),
        units_part="served",
    ),
    Indicator(
        id="ACT-03",
        family="activities",
        article="1",
        name_es="Costo por empresa atendida",
        name_pt="Custo por empresa atendida",
        name_en="Cost per firm served",
        definition="Cumulative cost over cumulative firms served, per activity, as of the period end.",
        formula="ACT-01 / ACT-02",
        unit="usd_per_unit",
        dimensions=("activity",),
        stores=(),
        reads=_refs("ACT-01/cost_usd", "ACT-02/served"),
        aggregation="parts",
        derivation=Derivation("ratio", ("cost_usd", "served")),
        units_part="served",
        cumulative=True,
    ),
    Indicator(
        id="ACT-04",
        family="activities",
        article="1",
        name_es="Costo por reunión",
        name_pt="Custo por reunião",
        name_en="Cost per meeting held",
        definition="Cumulative cost over cumulative meetings held, per activity, as of the period end.",
        formula="ACT-01 / #meetings held",
        unit="usd_per_unit",
        dimensions=("activity",),
        stores=(),
        reads=_refs("ACT-01/cost_usd", "PLGN-07/held"),
        aggregation="parts",
        derivation=Derivation("ratio", ("cost_usd", "held")),
        units_part="held",
        cumulative=True,
    ),
    Indicator(
        id="ACT-05",
        family="activities",
        article="1",
        name_es="Volumen de negocios atribuible",
        name_pt="Volume de negócios atribuível",
        name_en="Attributable business volume",
        definition="Sum over deduplicated deals of realised value x attribution% x confidence% (latest "
        "report per deal, exporter first); part realised_usd is the unadjusted sum. Provisional like ACT-07.",
        formula="sum_deals realised x attribution% x confidence%",
        unit="usd",
        dimensions=("activity",),
        stores=(
            StoredPart(
                "attributable_usd",
                "latest",
                "member = deal id; amount = realised USD x attribution x confidence; same order as PLGN-10",
            ),
        ),
        reads=_refs("ACT-05/attributable_usd", "PLGN-10/realised_usd", "ACT-07/last_session"),
        aggregation="roi",
        derivation=Derivation("part", ("attributable_usd",)),
        units_part="n_attributable_usd",
        dominant_part="attributable_usd",
        cumulative=True,
    ),
    Indicator(
        id="ACT-06",
        family="activities",
        article="1",
        name_es="Negocios por dólar invertido",
        name_pt="Negócios por dólar investido",
        name_en="Business per USD",
        definition="Attributable business volume over fully loaded cost, per activity, as of the period end; "
        "provisional like ACT-07.",
        formula="ACT-05 / ACT-01",
        unit="usd_per_unit",
        dimensions=("activity",),
        stores=(),
        reads=_refs("ACT-05/attributable_usd", "ACT-01/cost_usd", "ACT-07/last_session"),
        aggregation="roi",
        derivation=Derivation("ratio", ("attributable_usd", "cost_usd")),
        units_part="n_attributable_usd",
        dominant_part="attributable_usd",
        cumulative=True,
    ),
    Indicator(
        id="ACT-07",
        family="activities",
        article="1",
        name_es="Retorno de la inversión",
        name_pt="Retorno do investimento",
        name_en="Return on investment",
        definition="(attributable business x m - cost) / cost x 100, per activity, as of the period end; "
        "provisional until 12 months after the activity's last session.",
        formula="(ACT-05 x m - ACT-01) / ACT-01 x 100",
        unit="percent",
        dimensions=("activity",),
        stores=(
            StoredPart(
                "last_session",
                "latest",
                "member = activity id; amount = latest meeting slot (epoch s) seen for the activity",
            ),
        ),
        reads=_refs("ACT-05/attributable_usd", "ACT-01/cost_usd", "ACT-07/last_session"),
        aggregation="roi",
        derivation=Derivation("roi", ("attributable_usd", "cost_usd")),
        units_part="n_attributable_usd",
        dominant_part="attributable_usd",
        cumulative=True,
    ),
    Indicator(
        id="ACT-08",
        family="activities",
        article="1",
        name_es="Relación beneficio-costo",
        name_pt="Relação benefício-custo",
        name_en="Benefit-cost ratio",
        definition="Attributable business x m over cost, per activity, as of the period end; provisional "
        "like ACT-07.",
        formula="(ACT-05 x m) / ACT-01",
        unit="ratio",
        dimensions=("activity",),
        stores=(),
        reads=_refs("ACT-05/attributable_usd", "ACT-01/cost_usd", "ACT-07/last_session"),
        aggregation="roi",
        derivation=Derivation("bcr", ("attributable_usd", "cost_usd")),
        units_part="n_attributable_usd",
        dominant_part="attributable_usd",
        cumulative=True,
    ),
    Indicator(
        id="ACT-13",
        family="activities",
        article="1",
        name_es="ROI anual de la cartera",
        name_pt="ROI anual da carteira",
        name_en="Annual portfolio ROI",
        definition="ROI over the activities whose 12-month window (last session + 365 d) closed in the "
        "period, with their whole cost and attributable business.",
        formula="(sum adj. benefit x m - sum cost) / sum cost x 100 over activities closed in Y",
        unit="percent",
        dimensions=(),
        stores=(),
        reads=_refs("ACT-05/attributable_usd", "ACT-01/cost_usd", "ACT-07/last_session"),
        aggregation="portfolio",
        derivation=Derivation("roi", ("attributable_usd", "cost_usd")),
        units_part="activities",
    ),
)

CATALOGUE: dict[str, Indicator] = {indicator.id: indicator for indicator in INDICATORS}


def get(indicator_id: str) -> Indicator:
    """The catalogue entry of `indicator_id`.

    Raises:
        KeyError: when the id is not in the catalogue.
    """
    try:
        return CATALOGUE[indicator_id]
    except KeyError:
        raise KeyError(f"unknown indicator {indicator_id!r}") from None


def stored_part(indicator_id: str, part: str) -> StoredPart:
    """The declaration of a stored part.

    Raises:
        KeyError: when the indicator does not store that part.
    """
    for spec in get(indicator_id).stores:
        if spec.name == part:
            return spec
    raise KeyError(f"{indicator_id} stores no part {part!r}")


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def definitions_sql(ids: Iterable[str] | None = None) -> str:
    """The VALUES rows of table ``indicator_definition``, of every indicator or of `ids`.

    Migrations embed them (0150 the first catalogue, later ones the indicators added since); a test
    checks that a migrated store holds exactly the catalogue.
    """
    wanted = None if ids is None else set(ids)
    rows = []
    for entry in INDICATORS:
        if wanted is not None and entry.id not in wanted:
            continue
        dims = "ARRAY[" + ", ".join(_sql_text(name) for name in entry.dimensions) + "]::text[]"
        rows.append(
            f"    ({_sql_text(entry.id)}, {_sql_text(entry.family)}, {_sql_text(entry.article)},\n"
            f"     {_sql_text(entry.name_es)}, {_sql_text(entry.name_pt)}, {_sql_text(entry.name_en)},\n"
            f"     {_sql_text(entry.unit)}, {dims}, {str(entry.cumulative).lower()},\n"
            f"     {_sql_text(entry.formula)},\n"
            f"     {_sql_text(entry.definition)})"
        )
    return ",\n".join(rows) + ";\n"
