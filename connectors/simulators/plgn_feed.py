"""A PLGN Activity Streams 2.0 feed simulator: an append-only activity log served as pages with cursors.

`GET /activities` answers the `OrderedCollection` (with `first`);
`GET /activities/page?after=<cursor>&limit=N` answers an `OrderedCollectionPage` in ascending
publication order whose `next` carries an opaque cursor after its last item. The last page also has
a `next` (the position to poll again later), as the feed contract in
`schemas/feeds/plgn-activity.schema.json` asks. Retractions and late updates are new activities
appended to the log (`Undo`, `Delete`, an `Update`, a later deal wave).
"""

from __future__ import annotations

import base64
import binascii
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from connectors.simulators.generator import World

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
MAX_PAGE = 500


def encode_cursor(position: int) -> str:
    """The opaque cursor for "after `position` items of the log"."""
    return "c_" + base64.urlsafe_b64encode(f"plgn:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The log position of a cursor.

    Raises:
        ValueError: when the cursor was not made by `encode_cursor`.
    """
    if not cursor.startswith("c_"):
        raise ValueError("bad cursor")
    raw = cursor[2:]
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("bad cursor") from exc
    prefix, _, number = text.partition(":")
    if prefix != "plgn" or not number.isdigit():
        raise ValueError("bad cursor")
    return int(number)


@dataclass
class PlgnFeedState:
    """The PLGN activity log in publication order; tests append to it while the feed is served.

    Attributes:
        base: absolute base IRI of PLGN objects (`https://plgn.example`).
        items: the activities, oldest first.
        page_requests: pages served, for cost assertions.
        broken: positions of items that make any page holding them fail with HTTP 500 (a row the
            feed's server cannot serialise).
    """

    base: str = "https://plgn.example"
    items: list[dict[str, Any]] = field(default_factory=list)
    page_requests: int = 0
    broken: set[int] = field(default_factory=set)
    _clock: datetime = field(default_factory=lambda: datetime(2026, 3, 1, tzinfo=UTC))

    def tick(self, minutes: int = 7) -> str:
        """Advance the simulated clock and return it as an RFC 3339 string."""
        self._clock += timedelta(minutes=minutes)
        return self._clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def append(
        self, activity_type: str, actor: str | dict[str, Any], obj: Any, **extra: Any
    ) -> dict[str, Any]:
        """Append an activity with the next id and publication time; returns it."""
        item: dict[str, Any] = {
            "id": f"{self.base}/activities/{len(self.items) + 1}",
            "type": activity_type,
            "published": self.tick(),
            "actor": actor,
            "object": obj,
            **extra,
        }
        self.items.append(item)
        return item

    def undo(self, activity: dict[str, Any], reason: str) -> dict[str, Any]:
        """Append an `Undo` retracting `activity` (not a Create: those are retracted by `delete`)."""
        return self.append("Undo", activity["actor"], activity["id"], reason=reason)

    def delete(self, created: dict[str, Any], reason: str) -> dict[str, Any]:
        """Append a `Delete` of the object of the `Create` activity `created`."""
        obj = created["object"]
        tombstone = {"type": "Tombstone", "id": obj["id"], "formerType": obj["type"]}
        return self.append("Delete", created["actor"], tombstone, reason=reason)


class PlgnFeedSimulator:
    """The aiohttp application of the simulated feed.

    Args:
        state: the log to serve.
        token: bearer token required on every request, or None for an open feed.
        max_page: the most items a page holds, whatever `limit` asks for.
    """

    def __init__(self, state: PlgnFeedState, token: str | None = None, *, max_page: int = MAX_PAGE) -> None:
        self.state = state
        self.token = token
        self.max_page = max_page

    def app(self, *, middlewares: list[Any] | None = None) -> web.Application:
        """The aiohttp application; `middlewares` may add faults (see `connectors.simulators.faults`)."""
        application = web.Application(middlewares=middlewares or [])
        application.router.add_get("/activities", self._collection)
        application.router.add_get("/activities/page", self._page)
        return application

    def _check_auth(self, request: web.Request) -> None:
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            raise web.HTTPUnauthorized(text='{"error": "unauthorized"}', content_type="application/json")

    async def _collection(self, request: web.Request) -> web.Response:
        self._check_auth(request)
        origin = f"{request.scheme}://{request.host}"
        body = {
            "@context": AS_CONTEXT,
            "id": f"{origin}/activities",
            "type": "OrderedCollection",
            "totalItems": len(self.state.items),
            "first": f"{origin}/activities/page?after={encode_cursor(0)}",
        }
        return web.json_response(body, content_type="application/activity+json")

    async def _page(self, request: web.Request) -> web.Response:
        self._check_auth(request)
        self.state.page_requests += 1
        try:
            position = decode_cursor(request.query.get("after", encode_cursor(0)))
            limit = int(request.query.get("limit", "50"))
        except ValueError:
            return web.json_response({"error": "bad cursor or limit"}, status=400)
        limit = max(1, min(limit, self.max_page))
        chosen = self.state.items[position : position + limit]
        if any(position <= index < position + len(chosen) for index in self.state.broken):
            return web.json_response({"error": "internal error"}, status=500)
        origin = f"{request.scheme}://{request.host}"
        after = position + len(chosen)
        body = {
            "@context": AS_CONTEXT,
            "id": str(request.url.with_scheme(request.scheme)),
            "type": "OrderedCollectionPage",
            "partOf": f"{origin}/activities",
            "startIndex": position,
            "next": f"{origin}/activities/page?after={encode_cursor(after)}&limit={limit}",
            "orderedItems": chosen,
        }
        return web.json_response(body, content_type="application/activity+json")


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# What a firm shares by default (the directory's field names), and what its contact person may add.
FIRM_FIELDS = [
    "legalName", "country", "sector", "hsChapters", "sizeBand", "exporterStatus", "website", "contactName",
    "contactEmail",
]  # fmt: skip
PERSON_FIELDS = ["contactName", "contactEmail"]


def directory_consents(world: World, base: str) -> list[tuple[datetime, str, str, dict[str, Any]]]:
    """The world's directory consents as feed activities: (when, type, firm id, DirectoryAuthorisation).

    Each authorisation is granted (and perhaps withdrawn); for about half of them the firm's contact person
    gives their own consent to the contact fields a minute later (withdrawn with the firm's); about a third
    of the firms without an authorisation refused when asked. Drawn from a generator of their own, so the
    rest of the world is the same with or without them.
    """
    rng = random.Random(f"{world.seed}/directory")
    country = {firm.org_id: firm.country for firm in world.firms}
    registered = {firm.org_id: firm.registered_at for firm in world.firms}
    found: list[tuple[datetime, str, str, dict[str, Any]]] = []
    for auth in world.authorisations:
        consent = {
            "type": "DirectoryAuthorisation",
            "id": f"{base}/consents/{auth.consent_id}",
            "recipients": auth.recipients,
            "fields": FIRM_FIELDS,
            "noticeVersion": "2025-01",
            "language": "pt" if country[auth.org_id] == "BR" else "es",
            "evidenceRef": f"{base}/consents/{auth.consent_id}/evidence",
        }
        found.append((auth.granted_at, "Create", auth.org_id, consent))
        person = None
        if rng.random() < 0.5:
            person = {
                **consent,
                "id": f"{base}/consents/{auth.consent_id}/contact",
                "fields": PERSON_FIELDS,
                "consentSubject": {"type": "Person", "id": f"{base}/people/{auth.org_id}/contact"},
            }
            found.append((auth.granted_at + timedelta(minutes=1), "Create", auth.org_id, person))
        if auth.withdrawn_at is not None:
            found.append((auth.withdrawn_at, "Remove", auth.org_id, consent))
            if person is not None:
                found.append((auth.withdrawn_at + timedelta(minutes=1), "Remove", auth.org_id, person))
    authorised = {auth.org_id for auth in world.authorisations}
    for firm_id in sorted(set(country) - authorised):
        if rng.random() < 1 / 3:
            refused = {
                "type": "DirectoryAuthorisation",
                "id": f"{base}/consents/refused-{firm_id}",
                "recipients": ["ALL_MEMBERS"],
                "fields": FIRM_FIELDS,
                "noticeVersion": "2025-01",
                "language": "pt" if country[firm_id] == "BR" else "es",
            }
            found.append((registered[firm_id] + timedelta(days=2), "Reject", firm_id, refused))
    return found


def feed_from_world(world: World, *, invalid: int = 2, base: str = "https://plgn.example") -> PlgnFeedState:
    """The shared generator's PLGN world as an activity log in publication order.

    Firms, directory consents (`directory_consents`), opportunities, contact requests and answers, round
    registrations, meetings (scheduled, then held or no-show), expected business of held meetings and
    deal reports, sorted by time; then `invalid` contract violations spread through the log.
    Firm names and tax ids are in the items, as a real platform would serve them.
    """
    feed = PlgnFeedState(base=base)
    org = {firm.org_id: f"{base}/orgs/{firm.org_id}" for firm in world.firms}
    # A firm embedded with its country, as PLGN gives the actor of what it publishes, asks or reports.
    embedded = {
        firm.org_id: {"type": "Organization", "id": org[firm.org_id], "country": firm.country}
        for firm in world.firms
    }
    pending: list[tuple[datetime, str, str | dict[str, Any], Any, dict[str, Any]]] = []

    def add(when: datetime, kind: str, actor: str | dict[str, Any], obj: Any, **extra: Any) -> None:
        pending.append((when, kind, actor, obj, extra))

    for firm in world.firms:
        add(
            firm.registered_at,
            "Create",
            org[firm.org_id],
            {
                "type": "Organization",
                "id": org[firm.org_id],
                "name": firm.name,
                "taxId": firm.tax_id,
                "country": firm.country,
                "orgType": firm.org_type,
                "sizeBand": firm.size_band,
                "sizeBasis": "NATIONAL_DEFINITION",
                "isicRev4": firm.isic_rev4,
                "hsChapters": firm.hs_chapters,
                "exporterStatus": firm.exporter_status,
                **({"womenLed": firm.women_led} if firm.women_led is not None else {}),
            },
        )
    for when, kind, firm_id, consent in directory_consents(world, base):
        add(when, kind, org[firm_id], consent)
    for opp in world.opportunities:
        add(
            opp.published_at,
            "Create",
            embedded[opp.org_id],
            {
                "type": "Opportunity",
                "id": f"{base}/opportunities/{opp.opp_id}",
                "kind": opp.kind,
                "hsCode": opp.hs_code,
                "targetCountries": opp.target_countries,
            },
        )
    for contact in world.contacts:
        request = {
            "type": "ContactRequest",
            "id": f"{base}/contact-requests/{contact.request_id}",
            "attributedTo": embedded[contact.from_org],
            "audience": org[contact.to_org],
            **({"inReplyTo": f"{base}/opportunities/{contact.opp_id}"} if contact.opp_id else {}),
        }
        add(
            contact.requested_at,
            "Create",
            org[contact.from_org],
            {**request, "content": "Hola, ¿conversamos?"},
        )
        if contact.responded_at is not None:
            add(contact.responded_at, "Accept", org[contact.to_org], request)
    for activity in world.activities:
        for org_id, role in activity.participants:
            add(
                activity.starts_at - timedelta(days=10),
                "Join",
                org[org_id],
                {"type": "BusinessRound", "id": f"{base}/rounds/{activity.activity_id}"},
                role=role,
            )
    for meeting in world.meetings:
        body = {
            "type": "Meeting",
            "id": f"{base}/meetings/{meeting.meeting_id}",
            "context": f"{base}/rounds/{meeting.activity_id}",
            "attendee": [org[meeting.org_a], org[meeting.org_b]],
            "startTime": _ts(meeting.slot_at),
            "modality": "IN_PERSON",
        }
        add(meeting.slot_at - timedelta(days=3), "Create", org[meeting.org_a], body)
        if meeting.status in {"HELD", "NO_SHOW"}:
            status = "held" if meeting.status == "HELD" else "no_show"
            add(
                meeting.slot_at + timedelta(minutes=40),
                "Update",
                org[meeting.org_a],
                {**body, "status": status},
            )
        if meeting.status == "HELD" and meeting.expected_usd is not None and meeting.horizon is not None:
            add(
                meeting.slot_at + timedelta(minutes=45),
                "Create",
                org[meeting.org_a],
                {
                    "type": "MeetingOutcome",
                    "id": f"{base}/meeting-outcomes/{meeting.meeting_id}",
                    "inReplyTo": body["id"],
                    "context": body["context"],
                    "interestLevel": 4,
                    "horizon": meeting.horizon,
                    "expectedValue": {"amount": f"{meeting.expected_usd:.2f}", "currency": "USD"},
                },
            )
    for deal in world.deals:
        money = {
            "amount": f"{deal.amount:.2f}",
            "currency": deal.currency,
            "usdAmount": f"{deal.usd_amount:.2f}",
        }
        add(
            deal.reported_at,
            "Create",
            embedded[deal.org_id],
            {
                "type": "DealReport",
                "id": f"{base}/deals/{deal.deal_id}/{deal.wave}",
                "dealId": f"{base}/deals/{deal.deal_id}",
                "context": f"{base}/rounds/{deal.activity_id}",
                "counterpartCountry": deal.counterpart_country,
                "hsCode": deal.hs_code,
                "wave": deal.wave,
                "realisedValueCumulative": money,
                "attributionPct": deal.attribution_pct,
                "confidencePct": deal.confidence_pct,
                "additionality": deal.additionality,
                **({"inReplyTo": f"{base}/meetings/{deal.meeting_id}"} if deal.meeting_id else {}),
            },
        )
    pending.sort(key=lambda entry: entry[0])
    for when, kind, actor, obj, extra in pending:
        feed._clock = when - timedelta(minutes=1)
        item = feed.append(kind, actor, obj, **extra)
        item["published"] = _ts(when)
    rng = random.Random(world.seed)
    for number in range(invalid):
        position = rng.randrange(1, len(feed.items))
        published = feed.items[position]["published"]
        if number % 2 == 0:
            bad = {
                "id": f"{base}/activities/bad-{number}",
                "type": "Create",
                "published": published,
                "actor": org[world.firms[0].org_id],
                "object": {
                    "type": "Organization",
                    "id": f"{base}/orgs/bad-{number}",
                    "orgType": "FIRM",
                    "sizeBand": "SMALL",
                    "sizeBasis": "SELF_DECLARED",
                    "exporterStatus": "UNKNOWN",
                },
            }
        else:
            bad = {
                "id": f"{base}/activities/bad-{number}",
                "type": "Like",
                "published": published,
                "actor": org[world.firms[0].org_id],
                "object": f"{base}/orgs/{world.firms[1].org_id}",
            }
        feed.items.insert(position, bad)
    return feed
