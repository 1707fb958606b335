"""The PLGN connector: the feed contract, AS2 mapping, retractions, and SIGKILL restarts under faults."""

# ruff: noqa: S105 - simulators' well-known test credentials

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.context import ConnectorContext
from connectors.exceptions import DeadLetterRecord
from connectors.plgn import PlgnConnector
from connectors.plgn_contract import (
    contract_violation,
    directory_firm_violation,
    directory_page_violation,
    feed_validator,
)
from connectors.pseudonym import Pseudonymiser
from connectors.runtime import pull
from connectors.simulators.faults import Faults
from connectors.simulators.generator import generate
from connectors.simulators.plgn_feed import PlgnFeedSimulator, feed_from_world
from connectors.simulators.serving import serving
from infra.settings import ConnectorSettings, PseudonymSettings, Settings, SourceConfig
from schemas.events.base import event_id_for
from schemas.events.plgn import PlgnEventRetracted
from schemas.topics import TopicCatalogue
from tests.connectors.support import (
    decode_all,
    kill_pull_worker_at_random,
    read_topic,
    run_pull_worker_to_end,
)

TOKEN = "plgn-test-token"
SOURCE = "plgn-feed"
EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "feeds" / "examples"


def plgn_settings(settings: Settings, endpoint: str, *, page_size: int = 8) -> Settings:
    timings = {
        "request_timeout_s": 1.0,
        "max_attempts": 3,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.1,
        "poll_interval_s": 0.1,
        "lease_ttl_s": 1.0,
    }
    source = SourceConfig(
        name=SOURCE, kind="plgn", endpoint=endpoint, token=SecretStr(TOKEN), page_size=page_size
    )
    return settings.model_copy(
        update={
            "sources": [source],
            "connector": ConnectorSettings(**timings),
            "pseudonym": PseudonymSettings(
                person_key=SecretStr("test-person-key-0123456789"),
                org_key=SecretStr("test-org-key-0123456789"),
            ),
        }
    )


def connector() -> PlgnConnector:
    source = SourceConfig(name=SOURCE, kind="plgn", endpoint="http://plgn.invalid/activities")
    return PlgnConnector(source, Settings(), pseudonymiser=Pseudonymiser(b"p" * 16, b"o" * 16))


def _ledger_only(item: dict[str, Any]) -> bool:
    # Refusals and a contact person's own consent are kept by the directory's consent ledger, not published.
    obj = item["object"]
    return isinstance(obj, dict) and (item["type"] == "Reject" or "consentSubject" in obj)


def identity(item: dict[str, Any]) -> str:
    obj = item["object"]
    return str(obj["id"]) if item["type"] == "Create" else str(item["id"])


EXPECTED_TYPES = {
    "organisation-registered": "plgn.org.registered",
    "organisation-updated": "plgn.org.profile_updated",
    "directory-authorisation-granted": "plgn.directory_authorisation.granted",
    "directory-authorisation-withdrawn": "plgn.directory_authorisation.withdrawn",
    "opportunity-published": "plgn.opportunity.published",
    "contact-requested": "plgn.contact.requested",
    "contact-answered": "plgn.contact.responded",
    "round-registered": "plgn.round.registered",
    "meeting-scheduled": "plgn.meeting.scheduled",
    "meeting-held": "plgn.meeting.held",
    "meeting-no-show": "plgn.meeting.no_show",
    "meeting-outcome-expected-business": "plgn.meeting.outcome_reported",
    "deal-reported": "plgn.deal.reported",
    "undo-round-registration": "plgn.event.retracted",
    "delete-deal-report": "plgn.event.retracted",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_TYPES))
def test_each_contract_example_is_valid_and_maps_to_its_event(name: str) -> None:
    item = json.loads((EXAMPLES / f"{name}.json").read_text())
    assert contract_violation(item) is None
    events = connector().map_record(item)
    assert [event.event_type for event in events] == [EXPECTED_TYPES[name]]
    assert events[0].event_id == event_id_for(SOURCE, identity(item))
    # Organisation ids never travel in clear: every org key is a pseudonym.
    dumped = events[0].model_dump_json()
    assert "orgs/42" not in dumped and "orgs/51" not in dumped


def test_every_example_file_is_covered_and_the_page_examples_hold_valid_items() -> None:
    names = {path.stem for path in EXAMPLES.glob("*.json")}
    assert names - {"feed-page", "directory-page"} == set(EXPECTED_TYPES)
    page = json.loads((EXAMPLES / "feed-page.json").read_text())
    assert page["type"] == "OrderedCollectionPage" and page["next"]
    assert all(contract_violation(item) is None for item in page["orderedItems"])
    directory = json.loads((EXAMPLES / "directory-page.json").read_text())
    assert directory_page_violation(directory) is None and directory["next"] and directory["items"]
    assert all(directory_firm_violation(item) is None for item in directory["items"])


def test_the_examples_carry_the_actors_country_and_the_outcomes_round() -> None:
    plgn = connector()

    def mapped(name: str) -> Any:
        (event,) = plgn.map_record(json.loads((EXAMPLES / f"{name}.json").read_text()))
        return event

    assert mapped("opportunity-published").country == "UY"
    assert mapped("deal-reported").country == "UY"
    # The answer counts under the requester's country, as the request does.
    assert mapped("contact-requested").country == mapped("contact-answered").country == "PE"
    assert (
        mapped("meeting-outcome-expected-business").activity_id
        == "https://plgn.example/rounds/expo-aladi-2026"
    )


def test_an_embedded_firm_leaves_only_its_pseudonym_in_a_dead_letter() -> None:
    item = json.loads((EXAMPLES / "contact-requested.json").read_text())
    scrubbed = connector().record_json(item).decode()
    assert "orgs/51" not in scrubbed and "PE" in scrubbed


def test_retractions_name_the_retracted_event() -> None:
    undo = json.loads((EXAMPLES / "undo-round-registration.json").read_text())
    delete = json.loads((EXAMPLES / "delete-deal-report.json").read_text())
    join = json.loads((EXAMPLES / "round-registered.json").read_text())
    deal = json.loads((EXAMPLES / "deal-reported.json").read_text())
    plgn = connector()
    (undone,) = plgn.map_record(undo)
    (deleted,) = plgn.map_record(delete)
    assert isinstance(undone, PlgnEventRetracted) and isinstance(deleted, PlgnEventRetracted)
    assert undone.retracted_event_id == plgn.map_record(join)[0].event_id
    assert deleted.retracted_event_id == plgn.map_record(deal)[0].event_id
    assert undone.subject_key == plgn.map_record(join)[0].subject_key


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda item: item["object"].pop("country"),
            "feed contract: /object: 'country' is a required property",
        ),
        (lambda item: item.update(type="Like"), "feed contract: /type: value not allowed"),
        (
            lambda item: item["object"].update(sizeBand="TINY"),
            "feed contract: /object/sizeBand: value not allowed",
        ),
        (lambda item: item.update(published="yesterday"), "feed contract: /published: fails pattern"),
    ],
)
def test_items_breaking_the_contract_are_dead_lettered_with_a_reason_free_of_values(
    mutate: Any, reason: str
) -> None:
    item = json.loads((EXAMPLES / "organisation-registered.json").read_text())
    mutate(item)
    with pytest.raises(DeadLetterRecord) as caught:
        connector().map_record(item)
    assert caught.value.reason == reason
    stored = json.loads(connector().record_json(item))
    assert stored["object"]["name"] == "<removed>"


def test_the_validator_is_built_once() -> None:
    assert feed_validator() is feed_validator()


@pytest.mark.slow
async def test_plgn_pull_with_faults_and_sigkills_publishes_every_item_once_after_dedup(
    settings: Settings,
) -> None:
    rng = random.Random(503)
    world = generate(51, learners=5, firms=40)
    feed = feed_from_world(world, invalid=3)
    faults = Faults(
        error_rate=0.04, burst_length=2, throttle_rate=0.04, retry_after_s=0.05, truncate_rate=0.04,
        duplicate_rate=0.08, slow_rate=0.01, slow_s=1.3, seed=11,
    )  # fmt: skip
    async with serving(PlgnFeedSimulator(feed, token=TOKEN).app(middlewares=[faults])) as url:
        run_settings = plgn_settings(settings, f"{url}/activities", page_size=8)
        interrupted = await kill_pull_worker_at_random(run_settings, rng, runs=2)
        await run_pull_worker_to_end(run_settings)
        # After the fact: a registration undone, a created object deleted, a profile updated.
        join = next(item for item in feed.items if item["type"] == "Join")
        created = next(
            item
            for item in feed.items
            if item["type"] == "Create" and item["object"]["type"] == "Opportunity"
        )
        undo = feed.undo(join, "registered by mistake")
        delete = feed.delete(created, "published by mistake")
        org = next(
            item
            for item in feed.items
            if item["type"] == "Create" and item["object"]["type"] == "Organization"
        )
        update = {
            "type": "Organization",
            "id": org["object"]["id"],
            "completenessPct": 95,
            "changedFields": ["sizeBand"],
        }
        feed.append("Update", org["actor"], update)
        interrupted += await kill_pull_worker_at_random(run_settings, rng, runs=1)
        await run_pull_worker_to_end(run_settings)
    catalogue = TopicCatalogue.from_settings(run_settings)
    records = await read_topic(run_settings, catalogue.plgn.name)
    events = decode_all(records)
    ids = [event.event_id for event in events]
    print(f"plgn: {len(ids)} events, {len(ids) - len(set(ids))} duplicates, {interrupted} runs killed")
    print(f"plgn: faults injected {faults.injected}")
    valid = [item for item in feed.items if contract_violation(item) is None and not _ledger_only(item)]
    assert interrupted >= 2
    assert sum(faults.injected.values()) > 0
    assert set(ids) == {event_id_for(SOURCE, identity(item)) for item in valid}
    # A re-published record is the same event, not just the same id.
    copies: dict[Any, set[str]] = {}
    for event in events:
        copies.setdefault(event.event_id, set()).add(event.model_dump_json())
    assert all(len(payloads) == 1 for payloads in copies.values())
    by_id = {event.event_id: event for event in events}
    retractions = {e.retracted_event_id: e for e in by_id.values() if isinstance(e, PlgnEventRetracted)}
    assert set(retractions) == {
        event_id_for(SOURCE, join["id"]),
        event_id_for(SOURCE, created["object"]["id"]),
    }
    assert by_id[event_id_for(SOURCE, undo["id"])].event_type == "plgn.event.retracted"
    assert by_id[event_id_for(SOURCE, delete["id"])].event_type == "plgn.event.retracted"
    counts = Counter(event.event_type for event in by_id.values())
    assert counts["plgn.org.registered"] == len(world.firms)
    dead = await read_topic(run_settings, catalogue.dead_letter(catalogue.plgn).name)
    assert len({record.value for record in dead}) == 3
    assert all(dict(record.headers)["dlq_reason"].decode().startswith("feed contract: ") for record in dead)
    # Firm names and tax ids stay at the edge.
    secrets = [firm.name.encode() for firm in world.firms] + [firm.tax_id.encode() for firm in world.firms]
    assert not any(secret in record.value for record in [*records, *dead] for secret in secrets)


async def test_a_feed_capping_pages_below_the_page_size_is_still_read_to_the_end(settings: Settings) -> None:
    feed = feed_from_world(generate(52, learners=5, firms=6), invalid=0)
    async with serving(PlgnFeedSimulator(feed, token=TOKEN, max_page=4).app()) as url:
        run_settings = plgn_settings(settings, f"{url}/activities", page_size=50)
        async with ConnectorContext.open(run_settings) as context:
            plgn = PlgnConnector(run_settings.sources[0], run_settings)
            await pull(plgn, context, until_idle=True)
    # Every item is published, but the consents only the directory's ledger keeps (refusals, people's).
    assert plgn.stats.events_published + sum(plgn.stats.skipped.values()) == len(feed.items)
    assert set(plgn.stats.skipped) == {
        "a refusal or a person's consent: kept by the directory's consent ledger only"
    }
    # Every page of four, then one empty page that says the feed has nothing more.
    assert feed.page_requests == -(-len(feed.items) // 4) + 1


async def test_a_committed_cursor_follows_the_feed_to_a_new_address(settings: Settings) -> None:
    feed = feed_from_world(generate(53, learners=5, firms=6), invalid=0)
    simulator = PlgnFeedSimulator(feed, token=TOKEN)
    async with AsyncExitStack() as old_address:
        url = await old_address.enter_async_context(serving(simulator.app()))
        before = plgn_settings(settings, f"{url}/activities", page_size=4)
        async with ConnectorContext.open(before) as context:
            first = PlgnConnector(before.sources[0], before)
            await pull(first, context, until_idle=True)
        assert first.stats.events_published + sum(first.stats.skipped.values()) == len(feed.items)
        join = next(item for item in feed.items if item["type"] == "Join")
        feed.undo(join, "registered by mistake")
        async with serving(simulator.app()) as moved:
            await old_address.aclose()  # the feed now answers on the new address only
            assert moved != url
            after = plgn_settings(settings, f"{moved}/activities", page_size=4)
            async with ConnectorContext.open(after) as context:
                resumed = PlgnConnector(after.sources[0], after)
                await asyncio.wait_for(pull(resumed, context, until_idle=True), 20)
    # It went on from its committed place on the new address: the one new activity, nothing read twice.
    assert resumed.stats.events_published == 1
