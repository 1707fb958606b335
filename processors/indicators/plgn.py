"""PLGN platform and business-round indicator parts (arts. 8 and 1): what one PLGN event contributes; pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from processors.indicators.base import Part
from processors.indicators.periods import day_key, encode_member, epoch_seconds, order_key
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

UNKNOWN = "UNKNOWN"
ALL_MEMBERS = "ALL_MEMBERS"
_WAVE_RANK = {Wave.M3: 1, Wave.M6: 2, Wave.M12: 3}
# Far enough in the future that 11 digits hold every (far - epoch seconds) of this century.
_FAR_FUTURE_S = 99_999_999_999


def active_day(org_key: str, at: datetime, country: str | None) -> Part:
    """PLGN-02: the firm took a qualifying action on this UTC day (also read by CVF-23)."""
    return Part(
        "PLGN-02",
        "active_day",
        "distinct",
        at,
        {"country": country or UNKNOWN},
        member=encode_member(org_key, day_key(at)),
    )


def deal_order_key(event: DealReported) -> str:
    """Order of deal reports: the exporter's report first (rule 1), then the latest wave (rule 2)."""
    exporter = 1 if event.reporter_role in (RoundRole.SELLER, RoundRole.BOTH) else 0
    return f"{exporter}|{_WAVE_RANK[event.wave]}|{order_key(event.occurred_at, 0, str(event.event_id))}"


def deal_dimensions(event: DealReported) -> Mapping[str, str]:
    """Exporter's and importer's countries whoever reports, so both reports of a deal share a cell."""
    reporter = event.country or UNKNOWN
    if event.reporter_role == RoundRole.BUYER:
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
    granted = isinstance(event, DirectoryAuthorisationGranted)
    order = order_key(event.occurred_at, 0 if granted else 1, str(event.event_id))
    country = event.country or UNKNOWN
    parts = [
        Part(
            "PLGN-16",
            "authorised",
            "latest",
            event.occurred_at,
            {"country": country, "recipient": recipient},
            amount=Decimal(1 if granted else 0),
            member=encode_member(event.org_key, recipient, event.consent_id),
            order_key=order,
        )
        for recipient in _recipients(list(event.recipients))
    ]
    if not granted:
        listed = sorted(set(event.recipients)) or [ALL_MEMBERS]
        parts.extend(
            Part("PLGN-16", "withdrawals", "sum", event.occurred_at, {"country": country, "recipient": r})
            for r in listed
        )
    return parts


def _meeting(event: MeetingEvent) -> list[Part]:
    dims = {"activity": event.activity_id, "modality": event.modality.value if event.modality else UNKNOWN}
    part = {MeetingScheduled: "scheduled", MeetingHeld: "held", MeetingNoShow: "no_show"}.get(type(event))
    if part is None:
        return []
    # Every meeting event is dated by its slot, so scheduled, held and no-show share a cell.
    parts = [Part("PLGN-07", part, "distinct", event.slot_at, dims, member=event.meeting_id)]
    if isinstance(event, MeetingScheduled | MeetingHeld):
        parts.append(
            Part(
                "ACT-07",
                "last_session",
                "latest",
                event.slot_at,
                {"activity": event.activity_id},
                amount=Decimal(epoch_seconds(event.slot_at)),
                member=event.activity_id,
                order_key=order_key(event.slot_at),
            )
        )
    if isinstance(event, MeetingHeld):
        for org in (event.org_a_key, event.org_b_key):
            parts.append(
                Part(
                    "ACT-02", "served", "distinct", event.slot_at, {"activity": event.activity_id}, member=org
                )
            )
            parts.append(active_day(org, event.slot_at, None))
    return parts


def _deal(event: DealReported) -> list[Part]:
    dims = deal_dimensions(event)
    order = deal_order_key(event)
    usd = event.realised_value_cumulative.usd_amount
    factor = Decimal(str(event.attribution_pct)) / 100 * Decimal(str(event.confidence_pct)) / 100
    return [
        Part(
            "PLGN-10",
            "realised_usd",
            "latest",
            event.occurred_at,
            dims,
            amount=usd,
            member=event.deal_id,
            order_key=order,
        ),
        Part(
            "ACT-05",
            "attributable_usd",
            "latest",
            event.occurred_at,
            {"activity": event.activity_id},
            amount=usd * factor,
            member=event.deal_id,
            order_key=order,
        ),
    ]


def plgn_parts(event: Event) -> list[Part]:
    """The parts one PLGN event contributes (an empty list for events no indicator uses)."""
    if isinstance(event, OrganisationRegistered):
        women_led = UNKNOWN if event.women_led is None else str(event.women_led).lower()
        dims = {
            "country": event.country or UNKNOWN,
            "size_band": event.size_band.value,
            "women_led": women_led,
        }
        return [
            Part("PLGN-01", "registered", "distinct", event.registered_at, dims, member=event.org_key),
            active_day(event.org_key, event.registered_at, event.country),
        ]
    if isinstance(event, DirectoryAuthorisationGranted | DirectoryAuthorisationWithdrawn):
        return _authorisation(event)
    if isinstance(event, OpportunityPublished):
        dims = {"country": event.country or UNKNOWN, "kind": event.kind.value}
        return [
            Part("PLGN-04", "published", "distinct", event.occurred_at, dims, member=event.opp_id),
            active_day(event.org_key, event.occurred_at, event.country),
        ]
    if isinstance(event, ContactRequested):
        member = encode_member(event.request_id, str(epoch_seconds(event.occurred_at)))
        dims = {"country": event.country or UNKNOWN}
        return [
            Part("PLGN-06", "requested", "distinct", event.occurred_at, dims, member=member),
            active_day(event.from_org_key, event.occurred_at, event.country),
        ]
    if isinstance(event, ContactResponded):
        seconds = epoch_seconds(event.responded_at)
        # The first answer counts: earlier answers get higher order keys.
        first = f"{_FAR_FUTURE_S - seconds:011d}"
        dims = {"country": event.country or UNKNOWN}
        return [
            Part(
                "PLGN-06",
                "responded",
                "latest",
                event.responded_at,
                dims,
                amount=Decimal(seconds),
                member=event.request_id,
                order_key=first,
            ),
            active_day(event.to_org_key, event.responded_at, None),
        ]
    if isinstance(event, RoundRegistered):
        return [active_day(event.org_key, event.occurred_at, event.country)]
    if isinstance(event, MeetingEvent):
        return _meeting(event)
    if isinstance(event, MeetingOutcomeReported):
        dims = {"activity": event.activity_id or UNKNOWN, "horizon": event.horizon.value}
        return [
            Part(
                "PLGN-09",
                "expected_usd",
                "latest",
                event.occurred_at,
                dims,
                amount=event.expected_value.usd_amount,
                member=event.meeting_id,
                order_key=order_key(event.occurred_at, 0, str(event.event_id)),
            )
        ]
    if isinstance(event, DealReported):
        return _deal(event)
    return []
