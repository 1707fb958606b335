"""The Moodle connector against its web-service simulator: snapshots, errors in 200 bodies, SIGKILLs."""

# ruff: noqa: S105 - simulators' well-known test credentials

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.base import Health
from connectors.context import ConnectorContext
from connectors.exceptions import FatalSourceError, RetryableError
from connectors.http import HttpClient
from connectors.moodle import MoodleConnector, flatten
from connectors.pseudonym import Pseudonymiser
from connectors.runtime import pull
from connectors.simulators.faults import Faults
from connectors.simulators.generator import generate
from connectors.simulators.moodle_ws import (
    CertIssue,
    MoodleSimulator,
    MoodleState,
    state_from_world,
    unflatten,
)
from connectors.simulators.serving import serving
from infra.settings import ConnectorSettings, PseudonymSettings, Settings, SourceConfig
from schemas.events.base import event_id_for
from schemas.topics import TopicCatalogue
from tests.connectors.support import (
    decode_all,
    kill_pull_worker_at_random,
    read_topic,
    run_pull_worker_to_end,
)

TOKEN = "moodle-test-token"
SOURCE = "cvf-moodle"
PERSON_KEY = "test-person-key-0123456789"
ORG_KEY = "test-org-key-0123456789"


def moodle_settings(settings: Settings, endpoint: str, *, page_size: int = 6, **timings: Any) -> Settings:
    connector = {
        "request_timeout_s": 1.0,
        "max_attempts": 3,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.1,
        "poll_interval_s": 0.1,
        "lease_ttl_s": 1.0,
        **timings,
    }
    return settings.model_copy(
        update={
            "sources": [
                SourceConfig(
                    name=SOURCE, kind="moodle", endpoint=endpoint, token=SecretStr(TOKEN), page_size=page_size
                )
            ],
            "connector": ConnectorSettings(**connector),
            "pseudonym": PseudonymSettings(person_key=SecretStr(PERSON_KEY), org_key=SecretStr(ORG_KEY)),
        }
    )


def user_key(state: MoodleState, user_id: int) -> str:
    return Pseudonymiser(PERSON_KEY.encode(), ORG_KEY.encode()).person(state.users[user_id].email)


def expected_ids(state: MoodleState, withdrawn: set[tuple[int, int]]) -> set[Any]:
    """Ids of every event a correct connector publishes for `state` plus the given withdrawals."""
    ids = set()
    certmap = dict(state.customcerts)
    for (course, user), enrolment in state.enrolments.items():
        key = user_key(state, user)
        ids.add(event_id_for(SOURCE, f"learner:{key}"))
        ids.add(event_id_for(SOURCE, f"enrol:{course}:{key}:0:created"))
        if enrolment.completed_at is not None:
            ids.add(event_id_for(SOURCE, f"enrol:{course}:{key}:0:completed"))
    for course, user in withdrawn:
        key = user_key(state, user)
        ids.add(event_id_for(SOURCE, f"learner:{key}"))
        ids.add(event_id_for(SOURCE, f"enrol:{course}:{key}:0:created"))
        ids.add(event_id_for(SOURCE, f"enrol:{course}:{key}:0:withdrawn"))
    for issue in state.issues.values():
        if issue.customcertid in certmap:
            ids.add(event_id_for(SOURCE, f"cert:{issue.id}"))
    return ids


def test_flattened_parameters_are_read_back_by_the_simulator() -> None:
    params = {
        "courseid": 3,
        "options": [{"name": "limitfrom", "value": 0}, {"name": "onlyactive", "value": True}],
    }
    flat = flatten(params)
    assert flat["options[1][name]"] == "onlyactive" and flat["options[1][value]"] == "1"
    assert unflatten(flat) == {
        "courseid": "3",
        "options": [{"name": "limitfrom", "value": "0"}, {"name": "onlyactive", "value": "1"}],
    }


@pytest.fixture
async def small_site() -> AsyncIterator[tuple[MoodleState, str]]:
    state = state_from_world(generate(31, learners=16, courses=1))
    async with serving(MoodleSimulator(state, token=TOKEN).app()) as url:
        yield state, url


async def test_moodle_errors_in_200_bodies_are_retried_or_fatal_by_errorcode(
    settings: Settings, small_site: tuple[MoodleState, str]
) -> None:
    state, url = small_site
    settings = moodle_settings(settings, url)
    async with ConnectorContext.open(settings) as context:
        connector = MoodleConnector(settings.sources[0], settings)
        connector.http = HttpClient(context.session, connector.source, settings.connector)
        state.fail_next.append("dmlreadexception")
        with pytest.raises(RetryableError):
            await connector.call("core_course_get_courses_by_field")
        assert isinstance(await connector.call("core_course_get_courses_by_field"), dict)
        state.fail_next.append("invalidtoken")
        with pytest.raises(FatalSourceError):
            await connector.fetch_page(None)
        bad = MoodleConnector(settings.sources[0].model_copy(update={"token": SecretStr("wrong")}), settings)
        with pytest.raises(FatalSourceError):
            await pull(bad, context, until_idle=True)
        assert bad.health() == Health.FAILED


async def test_snapshot_diff_withdraws_vanished_enrolments_and_reenrolment_is_new(
    settings: Settings, small_site: tuple[MoodleState, str]
) -> None:
    state, url = small_site
    settings = moodle_settings(settings, url, page_size=4)
    course, user = next((c, u) for (c, u), e in state.enrolments.items() if e.completed_at is None)
    catalogue = TopicCatalogue.from_settings(settings)
    async with ConnectorContext.open(settings) as context:
        first = MoodleConnector(settings.sources[0], settings)
        await pull(first, context, until_idle=True)
        calls_first_cycle = dict(state.calls)
        state.withdraw(course, user)
        second = MoodleConnector(settings.sources[0], settings)
        await pull(second, context, until_idle=True)
        state.enrol(course, user, 1_767_300_000)
        third = MoodleConnector(settings.sources[0], settings)
        await pull(third, context, until_idle=True)
    events = decode_all(await read_topic(settings, catalogue.training.name))
    key = user_key(state, user)
    mine = [
        e for e in events if e.subject_key == key and getattr(e, "enrolment_id", "").find(f"-c{course}-") > 0
    ]
    kinds = [(e.event_type, getattr(e, "enrolment_id", None)) for e in mine]
    base = f"moodle-{SOURCE}-c{course}-{key}"
    assert ("cvf.enrolment.created", base) in kinds
    assert ("cvf.enrolment.withdrawn", base) in kinds
    assert ("cvf.enrolment.created", base + "-r1") in kinds
    # A completed enrolment is asked about once: the second cycle only re-reads the enrolment lists.
    completed = sum(1 for e in state.enrolments.values() if e.completed_at is not None)
    status_calls = state.calls["core_completion_get_course_completion_status"]
    first_status_calls = calls_first_cycle["core_completion_get_course_completion_status"]
    assert status_calls - first_status_calls <= 2 * (len(state.enrolments) - completed) + 2


@pytest.mark.slow
async def test_moodle_pull_with_faults_and_sigkills_publishes_every_record_once_after_dedup(
    settings: Settings,
) -> None:
    rng = random.Random(20_26)
    state = state_from_world(generate(41, learners=30, courses=2))
    orphan_user = next(iter(state.users))
    state.issues[50_000] = CertIssue(50_000, 99_999, orphan_user, "ORPHAN", 1_767_225_600)
    faults = Faults(
        error_rate=0.04, burst_length=2, throttle_rate=0.04, retry_after_s=0.05, truncate_rate=0.04,
        slow_rate=0.01, slow_s=1.3, seed=7,
    )  # fmt: skip
    async with serving(MoodleSimulator(state, token=TOKEN).app(middlewares=[faults])) as url:
        run_settings = moodle_settings(settings, url, page_size=5)
        interrupted = await kill_pull_worker_at_random(run_settings, rng, runs=2)
        await run_pull_worker_to_end(run_settings)
        # After the fact: withdrawals, new enrolments, completions and certificates.
        open_enrolments = sorted(key for key, e in state.enrolments.items() if e.completed_at is None)
        withdrawn = set(rng.sample(open_enrolments, 3))
        for course, user in withdrawn:
            state.withdraw(course, user)
        for course, user in rng.sample(sorted(set(open_enrolments) - withdrawn), 2):
            state.complete(course, user, 1_767_400_000)
            cert_id = next(cid for cid, c in state.customcerts.items() if c == course)
            state.issue(cert_id, user, 1_767_400_100)
        newcomers = [u for u in state.users if all((c, u) not in state.enrolments for c in state.courses)][:2]
        for user in newcomers:
            state.enrol(next(iter(state.courses)), user, 1_767_400_200)
        interrupted += await kill_pull_worker_at_random(run_settings, rng, runs=1)
        await run_pull_worker_to_end(run_settings)
    catalogue = TopicCatalogue.from_settings(run_settings)
    records = await read_topic(run_settings, catalogue.training.name)
    events = decode_all(records)
    ids = [event.event_id for event in events]
    duplicates = len(ids) - len(set(ids))
    print(f"moodle: {len(ids)} events, {duplicates} duplicates, {interrupted} runs killed")
    print(f"moodle: faults injected {faults.injected}")
    assert interrupted >= 2
    assert sum(faults.injected.values()) > 0
    assert set(ids) == expected_ids(state, withdrawn)
    # A re-published record is the same event, not just the same id.
    copies: dict[Any, set[str]] = {}
    for event in events:
        copies.setdefault(event.event_id, set()).add(event.model_dump_json())
    assert all(len(payloads) == 1 for payloads in copies.values())
    types = Counter(event.event_type for event in {event.event_id: event for event in events}.values())
    assert types["cvf.enrolment.withdrawn"] == len(withdrawn)
    dead = await read_topic(run_settings, catalogue.dead_letter(catalogue.training).name)
    assert {record.value for record in dead} and all(b"ORPHAN" in record.value for record in dead)
    reasons = {dict(record.headers)["dlq_reason"].decode() for record in dead}
    assert reasons == {"certificate of a customcert instance outside the site's courses"}
    # No personal data left the edge: neither in events nor in the dead-lettered copy.
    emails = [user.email.encode() for user in state.users.values()]
    assert not any(email in record.value for record in [*records, *dead] for email in emails)


async def test_users_vanishing_during_a_scan_shift_no_one_out_of_the_window(settings: Settings) -> None:
    state = state_from_world(generate(32, learners=30, courses=1))
    course = next(iter(state.courses))
    simulator = MoodleSimulator(state, token=TOKEN)
    serve_users = simulator._functions["core_enrol_get_enrolled_users"]
    vanishing: list[int] = []

    def shifting(params: dict[str, Any]) -> Any:
        answer = serve_users(params)
        # Right after the first page of the second cycle, three users before the window disappear.
        if armed and not vanishing:
            low = sorted(user for c, user in state.enrolments if c == course)[:3]
            for user in low:
                state.withdraw(course, user)
            vanishing.extend(low)
        return answer

    simulator._functions["core_enrol_get_enrolled_users"] = shifting
    armed = False
    async with serving(simulator.app()) as url:
        run_settings = moodle_settings(settings, url, page_size=4)
        # An overlap of one user is less than the three that vanish: the connector must move back.
        source = run_settings.sources[0].model_copy(update={"options": {"page_overlap": 1}})
        run_settings = run_settings.model_copy(update={"sources": [source]})
        catalogue = TopicCatalogue.from_settings(run_settings)
        async with ConnectorContext.open(run_settings) as context:
            await pull(MoodleConnector(source, run_settings), context, until_idle=True)
            armed = True
            await pull(MoodleConnector(source, run_settings), context, until_idle=True)
            after_shift = decode_all(await read_topic(run_settings, catalogue.training.name))
            # They were read on the first page of that cycle, so the next cycle finds them gone.
            await pull(MoodleConnector(source, run_settings), context, until_idle=True)
    events = decode_all(await read_topic(run_settings, catalogue.training.name))
    assert len(vanishing) == 3
    assert not [e for e in after_shift if e.event_type == "cvf.enrolment.withdrawn"]
    withdrawn = {e.subject_key for e in events if e.event_type == "cvf.enrolment.withdrawn"}
    assert withdrawn == {user_key(state, user) for user in vanishing}
    # Nobody was taken for a new enrolment either.
    assert not [e for e in events if getattr(e, "enrolment_id", "").endswith("-r1")]


async def test_certificates_deleted_during_a_sweep_shift_no_issue_out_of_the_window(
    settings: Settings,
) -> None:
    state = state_from_world(generate(33, learners=60, courses=2))
    simulator = MoodleSimulator(state, token=TOKEN)
    serve_issues = simulator._functions["mod_customcert_list_issues"]
    deleted: list[int] = []

    def deleting(params: dict[str, Any]) -> Any:
        answer = serve_issues(params)
        # After the first (newest) page, three of its issues are deleted: older ones move to lower offsets.
        if not deleted:
            for item in answer[:3]:
                del state.issues[item["issue"]["id"]]
                deleted.append(item["issue"]["id"])
        return answer

    simulator._functions["mod_customcert_list_issues"] = deleting
    issued = set(state.issues)
    assert len(issued) >= 12, "the dataset must span several certificate pages"
    async with serving(simulator.app()) as url:
        run_settings = moodle_settings(settings, url, page_size=4)
        source = run_settings.sources[0].model_copy(update={"options": {"page_overlap": 1}})
        run_settings = run_settings.model_copy(update={"sources": [source]})
        async with ConnectorContext.open(run_settings) as context:
            await pull(MoodleConnector(source, run_settings), context, until_idle=True)
    catalogue = TopicCatalogue.from_settings(run_settings)
    events = decode_all(await read_topic(run_settings, catalogue.training.name))
    certificates = {e.event_id for e in events if e.event_type == "cvf.certificate.issued"}
    assert len(deleted) == 3
    assert certificates == {event_id_for(SOURCE, f"cert:{issue_id}") for issue_id in issued}


async def test_backfilled_enrolments_are_dated_at_course_start_and_later_ones_when_first_seen(
    settings: Settings, small_site: tuple[MoodleState, str]
) -> None:
    state, url = small_site
    settings = moodle_settings(settings, url)
    catalogue = TopicCatalogue.from_settings(settings)
    course_id, course = next(iter(state.courses.items()))
    newcomer = next(user for user in state.users if (course_id, user) not in state.enrolments)
    async with ConnectorContext.open(settings) as context:
        await pull(MoodleConnector(settings.sources[0], settings), context, until_idle=True)
        state.enrol(course_id, newcomer, course.startdate + 86_400)
        before_second_cycle = datetime.now(UTC)
        await pull(MoodleConnector(settings.sources[0], settings), context, until_idle=True)
    created = [
        e
        for e in decode_all(await read_topic(settings, catalogue.training.name))
        if e.event_type == "cvf.enrolment.created"
    ]
    newcomer_key = user_key(state, newcomer)
    late_id = f"moodle-{SOURCE}-c{course_id}-{newcomer_key}"
    backfilled = [e for e in created if e.enrolment_id != late_id]  # type: ignore[attr-defined]
    # Every course of the site started in the past: the backfill is dated at its course's start.
    assert backfilled and all(e.occurred_at == e.offering_starts_at for e in backfilled)  # type: ignore[attr-defined]
    late = [e for e in created if e.enrolment_id == late_id]  # type: ignore[attr-defined]
    assert len({e.event_id for e in late}) == 1
    assert all(e.occurred_at >= before_second_cycle.replace(microsecond=0) for e in late)
