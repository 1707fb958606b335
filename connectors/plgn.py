"""PLGN connector: the PLGN Activity Streams 2.0 feed (ordered pages with cursors) to `plgn.*` events.

Delivery guarantee: at-least-once into Kafka with deterministic event ids (consumers de-duplicate).

PLGN feed contract. PLGN publishes no API of its own, so alcance states the feed it reads
(`schemas/feeds/plgn-activity.schema.json`, JSON Schema draft 2020-12, with examples beside it):

* The endpoint is an AS2 `OrderedCollection` whose `first` leads to `OrderedCollectionPage`s in
  ascending publication order; each page has `orderedItems` and a `next` IRI carrying an opaque cursor
  after its last item, also on the last page (the place to poll again). The committed cursor is that
  `next` IRI, relative to the endpoint when it is on the endpoint's host. A page without `next` is
  read again on the next poll (duplicates are dropped by event id).
* Each item is an activity with a stable `id`, a `type`, `published`, `actor` (the organisation) and an
  `object` whose `type` names the PLGN entity: `Create`/`Update` `Organization` (registered, profile
  updated), `Create`/`Update`/`Remove` `DirectoryAuthorisation` (granted, renewed, withdrawn; a
  refusal, `Reject`, and a contact person's own consent, `consentSubject`, concern the directory's
  consent ledger only and are skipped here), `Create` `Opportunity`,
  `Create` `ContactRequest` and `Accept`/`Reject` of it (requested, answered), `Join` `BusinessRound`
  with `role`/`interests` (round registration), `Create` `Meeting` and `Update` `Meeting` with
  `status` held / no_show / cancelled, `Create` `MeetingOutcome` (expected business at meeting close)
  and `Create` `DealReport` (one per deal and wave, with the cumulative realised value).
* Retractions follow ActivityPub: a `Create` is retracted by a `Delete` whose `Tombstone` has the id of
  the created object; any other activity by an `Undo` naming the activity. Both carry a `reason`.
* An embedded organisation may give its `country` (actor of an `Opportunity` or `DealReport`, requester
  of a `ContactRequest`): what it did counts there. A `MeetingOutcome` names its round in `context`.
* Event identities: an event from a `Create` is identified by the created object's id, every other
  by the activity id, so a re-read item or a retraction always names the same event id.

Every item is validated against the contract at the edge (`connectors.plgn_contract`: one validator,
built once); an item that breaks it goes to the `plgn` dead-letter topic with the first violation as
the reason, with names, e-mails and free text removed from the stored copy. Organisation ids, and the
ids of their directory authorisations and their evidence references (which name the firm), become
keyed pseudonyms, in events and dead letters alike.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from pydantic import Field

from connectors.base import ConnectorOptions, Cursor, Page, PollingConnector
from connectors.exceptions import DeadLetterRecord, FatalSourceError, RetryableError, SkipRecord
from connectors.plgn_contract import contract_violation, scrubbed
from schemas.events.base import Event, event_id_for
from schemas.events.plgn import (
    ContactRequested,
    ContactResponded,
    DealReported,
    DirectoryAuthorisationGranted,
    DirectoryAuthorisationWithdrawn,
    MeetingCancelled,
    MeetingHeld,
    MeetingNoShow,
    MeetingOutcomeReported,
    MeetingScheduled,
    OpportunityPublished,
    OrganisationRegistered,
    OrganisationUpdated,
    PlgnEventRetracted,
    RoundRegistered,
)

logger = logging.getLogger(__name__)


class PlgnOptions(ConnectorOptions):
    """Options of a PLGN source."""

    limit_param: str = Field(default="limit", min_length=1)
    """Query parameter the feed's `first` page accepts for the page size."""


def _ref(value: Any) -> str:
    """The id of an IRI-or-object reference."""
    if isinstance(value, dict):
        return str(value["id"])
    return str(value)


def _country(value: Any) -> str | None:
    """The country an embedded organisation states (`{"id": ..., "country": "AR"}`), or None."""
    found = value.get("country") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


def _money(value: dict[str, Any]) -> dict[str, Any]:
    amount = Decimal(value["amount"])
    usd = Decimal(value["usdAmount"]) if "usdAmount" in value else amount
    return {"amount": amount, "currency": value["currency"], "usd_amount": usd}


class PlgnConnector(PollingConnector[dict[str, Any]]):
    """Pulls the PLGN activity feed; see the module docstring for the contract."""

    kind: ClassVar[str] = "plgn"
    family: ClassVar[str] = "plgn"
    options_model: ClassVar[type[ConnectorOptions]] = PlgnOptions

    def default_headers(self) -> dict[str, str]:
        """Ask for Activity Streams JSON."""
        return {
            "Accept": 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
        }

    async def fetch_page(self, cursor: Cursor | None) -> Page[dict[str, Any]]:
        """Follow the collection's `first` (no cursor yet) or the committed `next` IRI."""
        stored = cursor.get("next") if cursor else None
        url = urljoin(self.source.endpoint, str(stored)) if stored else await self._first_page_url()
        if self.page_limit is not None:
            # The runtime is splitting pages that keep failing: ask for fewer items from the same cursor.
            parts = urlsplit(url)
            query = {**dict(parse_qsl(parts.query)), self.opts.limit_param: str(self.page_size)}
            url = urlunsplit(parts._replace(query=urlencode(query)))
        response = await self.http.get_json(str(url))
        page = response.body
        if not isinstance(page, dict) or page.get("type") not in {"OrderedCollectionPage", "CollectionPage"}:
            raise RetryableError("the PLGN feed answered something other than a collection page")
        items = page.get("orderedItems", page.get("items", []))
        if not isinstance(items, list):
            raise RetryableError("the PLGN page has no item list")
        following = page.get("next")
        next_url = _ref(following) if following else str(url)
        newest = None
        for item in reversed(items):
            if isinstance(item, dict) and isinstance(item.get("published"), str):
                try:
                    newest = datetime.fromisoformat(item["published"].replace("Z", "+00:00")).astimezone(UTC)
                except ValueError:
                    newest = None
                break
        # A short page does not prove the end: a feed may cap pages below our limit. Only an empty page,
        # or one without `next`, says that nothing follows yet.
        exhausted = not items or not following
        return Page(
            records=items,
            next_cursor={"next": self._portable(next_url)},
            exhausted=exhausted,
            newest_at=newest,
        )

    def _portable(self, url: str) -> str:
        """`url` as committed: without scheme and host when they are the endpoint's.

        The cursor is resolved against the configured endpoint again when read, so it survives the
        endpoint moving to another host or port (a new address, a restarted simulator).
        """
        parts, endpoint = urlsplit(url), urlsplit(self.source.endpoint)
        if (parts.scheme, parts.netloc) != (endpoint.scheme, endpoint.netloc):
            return url
        return urlunsplit(parts._replace(scheme="", netloc=""))

    async def _first_page_url(self) -> str:
        response = await self.http.get_json(self.source.endpoint)
        collection = response.body
        if not isinstance(collection, dict) or "first" not in collection:
            raise FatalSourceError("the PLGN endpoint is not an OrderedCollection with `first`")
        first = _ref(collection["first"])
        parts = urlsplit(first)
        query = dict(parse_qsl(parts.query))
        query.setdefault(self.opts.limit_param, str(self.page_size))
        return urlunsplit(parts._replace(query=urlencode(query)))

    @property
    def opts(self) -> PlgnOptions:
        """The validated PLGN options."""
        assert isinstance(self.options, PlgnOptions)  # noqa: S101 - guaranteed by options_model
        return self.options

    # ---- mapping ------------------------------------------------------------------------------

    def map_record(self, record: dict[str, Any]) -> list[Event]:
        """The event of one feed item (validated against the contract first)."""
        reason = contract_violation(record)
        if reason is not None:
            raise DeadLetterRecord(reason)
        activity, obj = record["type"], record["object"]
        object_type = obj.get("type") if isinstance(obj, dict) else None
        handler = _HANDLERS.get((activity, object_type)) or _HANDLERS.get((activity, None))
        if handler is None:
            raise DeadLetterRecord(f"no mapping for {activity} of {object_type or 'a reference'}")
        return [handler(self, record)]

    def _identity(self, record: dict[str, Any]) -> str:
        if record["type"] == "Create":
            return _ref(record["object"])
        return str(record["id"])

    def _common(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "source": self.name,
            "record_identity": self._identity(record),
            "occurred_at": record["published"],
            "source_ref": str(record["id"])[:256],
        }

    def _org(self, ref: Any) -> str:
        return self.pseudonyms.org(_ref(ref))

    def _organisation(self, record: dict[str, Any]) -> Event:
        o = record["object"]
        return OrganisationRegistered.create(
            **self._common(record), org_key=self._org(o["id"]), country=o["country"], org_type=o["orgType"],
            size_band=o["sizeBand"], size_basis=o.get("sizeBasis"), employees_band=o.get("employeesBand"),
            isic_rev4=o.get("isicRev4"), hs_chapters=o.get("hsChapters", []),
            exporter_status=o["exporterStatus"],
            women_led=o.get("womenLed"), registered_at=record["published"], utm_campaign=o.get("utmCampaign"),
        )  # fmt: skip

    def _organisation_update(self, record: dict[str, Any]) -> Event:
        o = record["object"]
        return OrganisationUpdated.create(
            **self._common(record), org_key=self._org(o["id"]), completeness_pct=o["completenessPct"],
            changed_field_names=o["changedFields"],
        )  # fmt: skip

    def _authorisation(self, record: dict[str, Any]) -> Event:
        o = record["object"]
        if record["type"] == "Reject" or "consentSubject" in o:
            # A refusal, or a contact person's own consent: no firm authorisation to count.
            raise SkipRecord("a refusal or a person's consent: kept by the directory's consent ledger only")
        if record["type"] == "Remove":
            return DirectoryAuthorisationWithdrawn.create(
                **self._common(record), consent_id=self._org(o["id"]), org_key=self._org(record["actor"]),
                recipients=o["recipients"],
            )  # fmt: skip
        return DirectoryAuthorisationGranted.create(
            **self._common(record), consent_id=self._org(o["id"]), org_key=self._org(record["actor"]),
            recipients=o["recipients"], fields=o["fields"], notice_version=o["noticeVersion"],
            granted_by_role=o.get("grantedByRole"),  # the evidence names the consent, hence the firm:
            evidence_ref=self._org(o["evidenceRef"]) if "evidenceRef" in o else None,
            starts_at=o.get("startTime"), expires_at=o.get("endTime"),
        )  # fmt: skip

    def _opportunity(self, record: dict[str, Any]) -> Event:
        o = record["object"]
        return OpportunityPublished.create(
            **self._common(record), opp_id=o["id"], org_key=self._org(record["actor"]), kind=o["kind"],
            hs_code=o["hsCode"], target_countries=o.get("targetCountries", []), expires_at=o.get("endTime"),
            country=_country(record["actor"]),
        )  # fmt: skip

    def _contact(self, record: dict[str, Any]) -> Event:
        o = record["object"]
        fields = {
            "request_id": o["id"],
            "from_org_key": self._org(o["attributedTo"]),
            "to_org_key": self._org(o["audience"]),
            "opp_id": _ref(o["inReplyTo"]) if "inReplyTo" in o else None,
            "country": _country(o["attributedTo"]),  # the requester's, on the answer too: one cell
        }
        if record["type"] == "Create":
            return ContactRequested.create(**self._common(record), **fields)
        return ContactResponded.create(
            **self._common(record),
            **fields,
            accepted=record["type"] == "Accept",
            responded_at=record["published"],
        )

    def _round(self, record: dict[str, Any]) -> Event:
        return RoundRegistered.create(
            **self._common(record), activity_id=_ref(record["object"]), org_key=self._org(record["actor"]),
            role=record["role"], interests=record.get("interests", []),
        )  # fmt: skip

    def _meeting(self, record: dict[str, Any]) -> Event:
        o = record["object"]
        org_a, org_b = o["attendee"]
        fields = {
            "meeting_id": o["id"],
            "activity_id": _ref(o["context"]),
            "org_a_key": self._org(org_a),
            "org_b_key": self._org(org_b),
            "slot_at": o["startTime"],
            "modality": o.get("modality"),
        }
        if record["type"] == "Create":
            return MeetingScheduled.create(**self._common(record), **fields)
        status = o["status"]
        if status == "held":
            return MeetingHeld.create(**self._common(record), **fields)
        if status == "no_show":
            absent = self._org(o["absentee"]) if "absentee" in o else None
            return MeetingNoShow.create(**self._common(record), **fields, absent_org_key=absent)
        return MeetingCancelled.create(**self._common(record), **fields)

    def _outcome(self, record: dict[str, Any]) -> Event:
        o = record["object"]
        return MeetingOutcomeReported.create(
            **self._common(record), meeting_id=_ref(o["inReplyTo"]),
            activity_id=_ref(o["context"]) if "context" in o else None,
            reporter_org_key=self._org(record["actor"]), interest_level=o["interestLevel"],
            expected_value=_money(o["expectedValue"]), horizon=o["horizon"],
            hs_code=o.get("hsCode"),
        )  # fmt: skip

    def _deal(self, record: dict[str, Any]) -> Event:
        o = record["object"]
        return DealReported.create(
            **self._common(record), deal_id=o["dealId"],
            meeting_id=_ref(o["inReplyTo"]) if "inReplyTo" in o else None,
            activity_id=_ref(o["context"]), org_key=self._org(record["actor"]),
            counterpart_country=o["counterpartCountry"], hs_code=o.get("hsCode"), wave=o["wave"],
            realised_value_cumulative=_money(o["realisedValueCumulative"]),
            attribution_pct=o["attributionPct"],
            confidence_pct=o["confidencePct"], additionality=o["additionality"],
            country=_country(record["actor"]),
        )  # fmt: skip

    def _retraction(self, record: dict[str, Any]) -> Event:
        target = record["object"]
        if record["type"] == "Delete":
            identity = _ref(target)
        elif isinstance(target, dict) and target.get("type") == "Create" and "object" in target:
            identity = _ref(target["object"])
        else:
            identity = _ref(target)
        return PlgnEventRetracted.create(
            **self._common(record), subject_key=self._org(record["actor"]),
            retracted_event_id=event_id_for(self.name, identity), reason=record["reason"],
        )  # fmt: skip

    def record_json(self, record: dict[str, Any]) -> bytes:
        """The item for the dead-letter topic: names, e-mails and free text removed, firms pseudonymised."""
        return json.dumps(scrubbed(record, self._org), default=str, ensure_ascii=False).encode()


_HANDLERS: dict[tuple[str, str | None], Any] = {
    ("Create", "Organization"): PlgnConnector._organisation,
    ("Update", "Organization"): PlgnConnector._organisation_update,
    ("Create", "DirectoryAuthorisation"): PlgnConnector._authorisation,
    ("Update", "DirectoryAuthorisation"): PlgnConnector._authorisation,
    ("Remove", "DirectoryAuthorisation"): PlgnConnector._authorisation,
    ("Reject", "DirectoryAuthorisation"): PlgnConnector._authorisation,
    ("Create", "Opportunity"): PlgnConnector._opportunity,
    ("Create", "ContactRequest"): PlgnConnector._contact,
    ("Accept", "ContactRequest"): PlgnConnector._contact,
    ("Reject", "ContactRequest"): PlgnConnector._contact,
    ("Join", None): PlgnConnector._round,
    ("Join", "BusinessRound"): PlgnConnector._round,
    ("Create", "Meeting"): PlgnConnector._meeting,
    ("Update", "Meeting"): PlgnConnector._meeting,
    ("Create", "MeetingOutcome"): PlgnConnector._outcome,
    ("Create", "DealReport"): PlgnConnector._deal,
    ("Undo", None): PlgnConnector._retraction,
    ("Undo", "Create"): PlgnConnector._retraction,
    ("Delete", "Tombstone"): PlgnConnector._retraction,
}
