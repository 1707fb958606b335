"""PLGN platform and business-round indicator parts (arts. 8 and 1): what one PLGN event contributes; pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from processors.indicators.base import (
    UNKNOWN,
    ByEventType,
    Part,
    distinct_part,
    latest_part,
    no_parts,
    sum_part,
)
from processors.indicators.periods import day_key, encode_member, epoch_seconds, order_key, with_window
from schemas.events.base import MEMBER_STATES, Event
from schemas.events.plgn import (
    ContactRequested,
    ContactResponded,
    DealReported,
    DirectoryAuthorisationGranted,
    DirectoryAuthorisationWithdrawn,
    MeetingEvent,
    MeetingHeld,
    MeetingNoShow,
    MeetingOutcomeReported,
    MeetingScheduled,
    OpportunityPublished,
    OrganisationRegistered,
    RoundRegistered,
    RoundRole,
    Wave,
)

ALL_MEMBERS = "ALL_MEMBERS"
_WAVE_RANK = {Wave.M3: 1, Wave.M6: 2, Wave.M12: 3}
_EXPORTER_ROLES = (RoundRole.SELLER, RoundRole.BOTH)
_BUYER = RoundRole.BUYER
_GRANTED, _WITHDRAWN = Decimal(1), Decimal(0)
# Far enough in the future that 11 digits hold every (far - epoch seconds) of this century.
_FAR_FUTURE_S = 99_999_999_999


def active_day(org_key: str, at: datetime, country: str | None) -> Part:
    """PLGN-02: the firm took a qualifying action on this UTC day (also read by CVF-23)."""
    return _active_on(org_key, day_key(at), at, country)


def _active_on(org_key: str, day: str, at: datetime, country: str | None) -> Part:
    # `active_day` for a day key already computed (both parties of a meeting share it).
    return distinct_part(
        "PLGN-02", "active_day", at, {"country": country or UNKNOWN}, encode_member(org_key, day)
    )


def deal_order_key(event: DealReported) -> str:
    """Order of deal reports: the exporter's report first (rule 1), then the latest wave (rule 2)."""
    exporter = 1 if event.reporter_role in _EXPORTER_ROLES else 0
    return f"{exporter}|{_WAVE_RANK[event.wave]}|{order_key(event.occurred_at, 0, str(event.event_id))}"


def deal_dimensions(event: DealReported) -> Mapping[str, str]:
    """Exporter's and importer's countries whoever reports, so both reports of a deal share a cell."""
    reporter = event.country or UNKNOWN
    if event.reporter_role == _BUYER:
        exporter, importer = event.counterpart_country, reporter
    else:
        exporter, importer = reporter, event.counterpart_country
    return {"activity": event.activity_id, "country": exporter, "counterpart_country": importer}


def _recipients(listed: list[str]) -> list[str]:
    # ALL_MEMBERS (or, for a withdrawal, an empty list: the whole consent) covers every member state.
    if not listed or ALL_MEMBERS in listed:
        return sorted(MEMBER_STATES)
    return sorted(set(listed))


def _authorisation(event: DirectoryAuthorisationGranted | DirectoryAuthorisationWithdrawn) -> list[Part]:
    # An authorisation counts under the member state that receives the firm's directory record (art. 8):
    # `country` is that state, as `recipient` is. The firm's own country is not on the event.
    granted = isinstance(event, DirectoryAuthorisationGranted)
    order = order_key(event.occurred_at, 0 if granted else 1, str(event.event_id))
    if isinstance(event, DirectoryAuthorisationGranted):
        # A grant holds from its start (its publication when it names none) until its end, as the
        # consent ledger reads it; the window rides on the report, so the event still makes one report
        # per recipient, and a retraction negates exactly what it added.
        order = with_window(order, event.starts_at or event.occurred_at, event.expires_at)
    parts = [
        latest_part(
            "PLGN-16",
            "authorised",
            event.occurred_at,
            {"country": recipient, "recipient": recipient},
            _GRANTED if granted else _WITHDRAWN,
            encode_member(event.org_key, recipient, event.consent_id),
            order,
        )
        for recipient in _recipients(list(event.recipients))
    ]
    if not granted:
        listed = sorted(set(event.recipients)) or [ALL_MEMBERS]
        parts.extend(
            sum_part("PLGN-16", "withdrawals", event.occurred_at, {"country": r, "recipient": r}, _GRANTED)
            for r in listed
        )
    return parts


def _meeting_dims(event: MeetingEvent) -> dict[str, str]:
    # Every meeting event is dated by its slot, so scheduled, held and no-show share a cell.
    # (`_value_` is what `.value` returns, without the descriptor call.)
    modality = event.modality
    return {"activity": event.activity_id, "modality": modality._value_ if modality else UNKNOWN}


def _last_session(event: MeetingScheduled | MeetingHeld) -> Part:
    at = event.slot_at
    amount = Decimal(epoch_seconds(at))
    return latest_part(
        "ACT-07",
        "last_session",
        at,
        {"activity": event.activity_id},
        amount,
        event.activity_id,
        order_key(at),
    )


def _scheduled(event: MeetingScheduled) -> list[Part]:
    return [
        distinct_part("PLGN-07", "scheduled", event.slot_at, _meeting_dims(event), event.meeting_id),
        _last_session(event),
    ]


def _held(event: MeetingHeld) -> list[Part]:
    at, activity = event.slot_at, event.activity_id
    org_a, org_b = event.org_a_key, event.org_b_key
    day = day_key(at)
    return [
        distinct_part("PLGN-07", "held", at, _meeting_dims(event), event.meeting_id),
        _last_session(event),
        distinct_part("ACT-02", "served", at, {"activity": activity}, org_a),
        _active_on(org_a, day, at, None),
        distinct_part("ACT-02", "served", at, {"activity": activity}, org_b),
        _active_on(org_b, day, at, None),
    ]


def _no_show(event: MeetingNoShow) -> list[Part]:
    return [distinct_part("PLGN-07", "no_show", event.slot_at, _meeting_dims(event), event.meeting_id)]


def _deal(event: DealReported) -> list[Part]:
    dims = deal_dimensions(event)
    order = deal_order_key(event)
    usd = event.realised_value_cumulative.usd_amount
    factor = Decimal(str(event.attribution_pct)) / 100 * Decimal(str(event.confidence_pct)) / 100
    deal = event.deal_id
    return [
        latest_part("PLGN-10", "realised_usd", event.occurred_at, dims, usd, deal, order),
        latest_part(
            "ACT-05",
            "attributable_usd",
            event.occurred_at,
            {"activity": event.activity_id},
            usd * factor,
            deal,
            order,
        ),
    ]


def _registered(event: OrganisationRegistered) -> list[Part]:
    women_led = UNKNOWN if event.women_led is None else str(event.women_led).lower()
    dims = {
        "country": event.country or UNKNOWN,
        "size_band": event.size_band.value,
        "women_led": women_led,
    }
    return [
        distinct_part("PLGN-01", "registered", event.registered_at, dims, event.org_key),
        active_day(event.org_key, event.registered_at, event.country),
    ]


def _published(event: OpportunityPublished) -> list[Part]:
    dims = {"country": event.country or UNKNOWN, "kind": event.kind.value}
    return [
        distinct_part("PLGN-04", "published", event.occurred_at, dims, event.opp_id),
        active_day(event.org_key, event.occurred_at, event.country),
    ]


def _requested(event: ContactRequested) -> list[Part]:
    member = encode_member(event.request_id, str(epoch_seconds(event.occurred_at)))
    dims = {"country": event.country or UNKNOWN}
    return [
        distinct_part("PLGN-06", "requested", event.occurred_at, dims, member),
        active_day(event.from_org_key, event.occurred_at, event.country),
    ]


def _responded(event: ContactResponded) -> list[Part]:
    seconds = epoch_seconds(event.responded_at)
    # The first answer counts: earlier answers get higher order keys.
    first = f"{_FAR_FUTURE_S - seconds:011d}"
    dims = {"country": event.country or UNKNOWN}
    return [
        latest_part(
            "PLGN-06", "responded", event.responded_at, dims, Decimal(seconds), event.request_id, first
        ),
        active_day(event.to_org_key, event.responded_at, None),
    ]


def _round_registered(event: RoundRegistered) -> list[Part]:
    return [active_day(event.org_key, event.occurred_at, event.country)]


def _outcome(event: MeetingOutcomeReported) -> list[Part]:
    dims = {"activity": event.activity_id or UNKNOWN, "horizon": event.horizon.value}
    return [
        latest_part(
            "PLGN-09",
            "expected_usd",
            event.occurred_at,
            dims,
            event.expected_value.usd_amount,
            event.meeting_id,
            order_key(event.occurred_at, 0, str(event.event_id)),
        )
    ]


PLGN = ByEventType(
    [
        (OrganisationRegistered, _registered),
        (DirectoryAuthorisationGranted, _authorisation),
        (DirectoryAuthorisationWithdrawn, _authorisation),
        (OpportunityPublished, _published),
        (ContactRequested, _requested),
        (ContactResponded, _responded),
        (RoundRegistered, _round_registered),
        # Only the exact meeting types below count; cancellations and any other meeting event do not.
        (MeetingEvent, no_parts),
        (MeetingOutcomeReported, _outcome),
        (DealReported, _deal),
    ],
    exact={MeetingScheduled: _scheduled, MeetingHeld: _held, MeetingNoShow: _no_show},
)
"""The PLGN contribution function of each event type."""


def plgn_parts(event: Event) -> list[Part]:
    """The parts one PLGN event contributes (an empty list for events no indicator uses)."""
    return PLGN(event)
