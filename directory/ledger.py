"""The consent ledger: PLGN's directory-authorisation items as append-only DPV-status entries.

An entry records what a consent covers after it: a grant or renewal its recipients and fields, a
partial withdrawal the recipients left, a refusal, a full withdrawal, an expiry or a retraction none.
Entries are idempotent by `source_ref` (the feed activity's id, or the API request's), so a re-read page
or a withdrawal that arrives twice (API first, feed later) adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from connectors.plgn_contract import contract_violation
from connectors.pseudonym import Pseudonymiser
from directory.schema import sql

ALL_MEMBERS = "ALL_MEMBERS"
CONTACT_FIELDS = frozenset({"contactName", "contactEmail", "contactPhone"})
GIVEN, RENEWED = "ConsentGiven", "RenewedConsentGiven"
REFUSED, WITHDRAWN, EXPIRED, INVALIDATED = (
    "ConsentRefused",
    "ConsentWithdrawn",
    "ConsentExpired",
    "ConsentInvalidated",
)
_STATUS_OF = {"Create": GIVEN, "Update": RENEWED, "Reject": REFUSED, "Remove": WITHDRAWN}


class LedgerItemError(ValueError):
    """Raised when a feed item is not a directory authorisation the ledger can record (with the reason)."""


@dataclass(frozen=True)
class ConsentEntry:
    """One ledger entry (see migration 0350 for the columns)."""

    consent_ref: str
    org_ref: str
    subject_kind: str
    subject_ref: str
    status: str
    recipients: tuple[str, ...]
    fields: tuple[str, ...]
    starts_at: datetime
    at: datetime
    actor: str
    source_ref: str
    expires_at: datetime | None = None
    notice_version: str | None = None
    language: str | None = None
    evidence_ref: str | None = None


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ref(value: Any) -> str:
    return str(value["id"]) if isinstance(value, dict) else str(value)


def is_consent_item(item: Any) -> bool:
    """Whether a feed item concerns a directory authorisation (or retracts one)."""
    if not isinstance(item, dict) or not isinstance(item.get("object"), dict):
        return False
    kind = item["object"].get("type")
    former = item["object"].get("formerType")
    authorisation = "DirectoryAuthorisation"
    return bool(kind == authorisation or (kind == "Tombstone" and former == authorisation))


def entry_from_item(item: dict[str, Any], pseudonyms: Pseudonymiser) -> ConsentEntry:
    """The ledger entry of one directory-authorisation feed item, firms and people pseudonymised.

    A partial withdrawal is returned with the recipients it withdraws; `record` turns them into the
    recipients left. Raises:
        LedgerItemError: when the item breaks the feed contract or is no authorisation item.
    """
    reason = contract_violation(item)
    if reason is not None:
        raise LedgerItemError(reason)
    if not is_consent_item(item):
        raise LedgerItemError("not a directory authorisation item")
    o, at = item["object"], _time(item["published"])
    org_ref = pseudonyms.org(_ref(item["actor"]))
    common: dict[str, Any] = {
        "consent_ref": pseudonyms.org(str(o["id"])),
        "org_ref": org_ref,
        "at": at,
        "actor": "plgn",
        "source_ref": str(item["id"]),
    }
    if o["type"] == "Tombstone":
        return ConsentEntry(**common, subject_kind="ORG", subject_ref=org_ref, status=INVALIDATED,
                            recipients=(), fields=(), starts_at=at)  # fmt: skip
    person = o.get("consentSubject")
    status = _STATUS_OF.get(item["type"])
    if status is None:
        raise LedgerItemError(f"{item['type']} of a DirectoryAuthorisation is not a consent change")
    keeps = status in {GIVEN, RENEWED}
    return ConsentEntry(
        **common,
        subject_kind="PERSON" if person else "ORG",
        subject_ref=pseudonyms.person(str(person["id"])) if person else org_ref,
        status=status,
        recipients=tuple(sorted(set(o["recipients"]))) if keeps or status == WITHDRAWN else (),
        fields=tuple(sorted(set(o["fields"]))) if keeps else (),
        starts_at=_time(o["startTime"]) if "startTime" in o else at,
        expires_at=_time(o["endTime"]) if "endTime" in o else None,
        notice_version=o.get("noticeVersion"),
        language=o.get("language"),
        evidence_ref=o.get("evidenceRef"),
    )


def recipients_left(current: Sequence[str], withdrawn: Sequence[str]) -> tuple[str, ...]:
    """What a consent still covers after withdrawing `withdrawn` from `current` (empty: all of it)."""
    if not withdrawn or ALL_MEMBERS in withdrawn or ALL_MEMBERS in current:
        # Withdrawing part of an all-members consent leaves no list PLGN stated: the whole consent ends.
        return ()
    return tuple(sorted(set(current) - set(withdrawn)))


_LATEST = "SELECT recipients, fields, starts_at, expires_at FROM {s}.consent_current WHERE consent_ref = $1"
_DUE = """
SELECT consent_ref, org_ref, subject_kind, subject_ref, expires_at FROM {s}.consent_current
 WHERE cardinality(recipients) > 0 AND expires_at IS NOT NULL AND expires_at <= $1
"""
_INSERT = """
INSERT INTO {s}.consent_event (consent_ref, org_ref, subject_kind, subject_ref, status, recipients, fields,
    notice_version, language, evidence_ref, starts_at, expires_at, at, actor, source_ref)
SELECT $1, $2, $3, $4,
       CASE WHEN $5 = 'ConsentGiven' AND EXISTS (SELECT 1 FROM {s}.consent_event WHERE consent_ref = $1)
            THEN 'RenewedConsentGiven' ELSE $5 END,
       $6, $7, $8, $9, $10, $11, $12, $13, $14, $15
ON CONFLICT (source_ref) DO NOTHING
"""


async def record(connection: asyncpg.Connection, schema: str, entries: Iterable[ConsentEntry]) -> int:
    """Append `entries` (in their order) inside the caller's transaction; returns how many were new.

    A withdrawal's recipients become those left of the consent's latest terms; a withdrawal of a consent
    never granted is kept as evidence with nothing left.
    """
    added = 0
    for entry in entries:
        final = entry
        if entry.status == WITHDRAWN:
            latest = await connection.fetchrow(
                sql(_LATEST, schema),
                entry.consent_ref,
            )
            current = list(latest["recipients"]) if latest else []
            left = recipients_left(current, entry.recipients) if latest else ()
            final = replace(
                entry,
                recipients=left,
                fields=tuple(latest["fields"]) if latest and left else (),
                starts_at=latest["starts_at"] if latest else entry.starts_at,
                expires_at=latest["expires_at"] if latest else None,
            )
        status = await connection.execute(
            sql(_INSERT, schema),
            final.consent_ref, final.org_ref, final.subject_kind, final.subject_ref, final.status,
            list(final.recipients), list(final.fields), final.notice_version, final.language,
            final.evidence_ref, final.starts_at, final.expires_at, final.at, final.actor, final.source_ref,
        )  # fmt: skip
        added += status == "INSERT 0 1"
    return added


async def expire_due(connection: asyncpg.Connection, schema: str, now: datetime) -> list[str]:
    """Append a `ConsentExpired` entry for every consent whose expiry has passed; returns their orgs."""
    due = await connection.fetch(
        sql(_DUE, schema),
        now,
    )
    entries = [
        ConsentEntry(
            consent_ref=row["consent_ref"],
            org_ref=row["org_ref"],
            subject_kind=row["subject_kind"],
            subject_ref=row["subject_ref"],
            status=EXPIRED,
            recipients=(),
            fields=(),
            starts_at=row["expires_at"],
            at=row["expires_at"],
            actor="alcance",
            source_ref=f"expiry:{row['consent_ref']}:{row['expires_at'].isoformat()}",
        )
        for row in due
    ]
    await record(connection, schema, entries)
    return sorted({entry.org_ref for entry in entries})
