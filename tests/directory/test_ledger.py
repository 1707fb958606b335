"""The consent ledger: feed items as DPV-status entries, partial withdrawals, renewals and expiries."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from connectors.pseudonym import Pseudonymiser
from directory.access import FirmFilters, Identity, list_firms
from directory.ledger import LedgerItemError, entry_from_item, expire_due, recipients_left, record
from directory.schema import sql
from directory.store import as_writer, reconcile

from .support import NOW, firm_values, grant, setup

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "feeds" / "examples"
PSEUDONYMS = Pseudonymiser(b"p" * 16, b"o" * 16)


def _example(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return loaded


def test_feed_items_become_pseudonymous_entries_with_their_evidence() -> None:
    granted = entry_from_item(_example("directory-authorisation-granted"), PSEUDONYMS)  # type: ignore[arg-type]
    assert granted.status == "ConsentGiven" and granted.subject_kind == "ORG"
    assert granted.org_ref.startswith("o-") and granted.consent_ref.startswith("o-")
    assert granted.notice_version and granted.evidence_ref == "consent-form-77"
    withdrawn = entry_from_item(_example("directory-authorisation-withdrawn"), PSEUDONYMS)  # type: ignore[arg-type]
    assert withdrawn.status == "ConsentWithdrawn" and withdrawn.consent_ref == granted.consent_ref
    with pytest.raises(LedgerItemError, match="not a directory authorisation item"):
        entry_from_item(_example("opportunity-published"), PSEUDONYMS)  # type: ignore[arg-type]
    broken = {**_example("directory-authorisation-granted"), "published": "yesterday"}
    with pytest.raises(LedgerItemError, match="feed contract: /published"):
        entry_from_item(broken, PSEUDONYMS)


@pytest.mark.parametrize(
    ("current", "withdrawn", "left"),
    [
        (("AR", "BR", "CL"), ("BR",), ("AR", "CL")),
        (("AR", "BR"), (), ()),
        (("AR",), ("ALL_MEMBERS",), ()),
        (("ALL_MEMBERS",), ("BR",), ()),
    ],
)
def test_recipients_left_after_a_withdrawal(
    current: tuple[str, ...], withdrawn: tuple[str, ...], left: tuple[str, ...]
) -> None:
    assert recipients_left(current, withdrawn) == left


async def test_a_partial_withdrawal_keeps_the_other_states_and_an_expiry_deletes_the_firm(
    admin: asyncpg.Connection, directory_schema: str
) -> None:
    schema = directory_schema
    expiring = grant("o-exp", ("CL",), ("legalName",), expires_at=NOW + timedelta(hours=1))
    shared = grant("o-two", ("AR", "BR"), ("legalName",), consent="c-two")
    await setup(admin, schema, [expiring, shared], {"o-exp": firm_values(), "o-two": firm_values()})
    partial = shared.__class__(**{**shared.__dict__, "status": "ConsentWithdrawn", "recipients": ("BR",),
                                  "source_ref": "feed:partial", "at": NOW})  # fmt: skip
    renewal = grant("o-two", ("AR", "BR"), ("legalName",), consent="c-two")
    async with admin.transaction():
        await as_writer(admin)
        await record(admin, schema, [partial])
        await reconcile(admin, schema, ["o-two"])
    br, ar = Identity("b", "state", "BR"), Identity("a", "state", "AR")
    assert await list_firms(admin, br, FirmFilters(), schema=schema) == []
    assert [f["ref"] for f in await list_firms(admin, ar, FirmFilters(), schema=schema)] == ["o-two"]
    async with admin.transaction():
        await as_writer(admin)
        # A grant for a consent already in the ledger is a renewal.
        await record(
            admin, schema, [renewal.__class__(**{**renewal.__dict__, "source_ref": "feed:renew", "at": NOW})]
        )
        expired = await expire_due(admin, schema, NOW + timedelta(hours=2))
        await reconcile(admin, schema, expired)
    assert expired == ["o-exp"]
    assert [f["ref"] for f in await list_firms(admin, br, FirmFilters(), schema=schema)] == ["o-two"]
    assert await admin.fetchval(sql("SELECT count(*) FROM {s}.firm WHERE org_ref = 'o-exp'", schema)) == 0
    statuses = await admin.fetch(
        sql("SELECT consent_ref, status FROM {s}.consent_event ORDER BY seq", schema)
    )
    assert [row["status"] for row in statuses] == [
        "ConsentGiven", "ConsentGiven", "ConsentWithdrawn", "RenewedConsentGiven", "ConsentExpired",
    ]  # fmt: skip
