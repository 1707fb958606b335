"""The Moodle connector against Moodle as it is: real functions, roles, completion off, capabilities."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import aiohttp
import pytest

from connectors import moodle
from connectors.base import Health
from connectors.context import ConnectorContext
from connectors.exceptions import FatalSourceError
from connectors.moodle import FUNCTIONS_CALLED, MoodleConnector
from connectors.runtime import pull
from connectors.simulators.generator import generate
from connectors.simulators.moodle_ws import FUNCTIONS as SIMULATED_AS
from connectors.simulators.moodle_ws import MoodleSimulator, MoodleState, state_from_world
from connectors.simulators.serving import serving
from infra.settings import Settings
from schemas.events.training import EnrolmentCompleted, EnrolmentCreated
from schemas.topics import TopicCatalogue
from tests.connectors.support import decode_all, read_topic
from tests.connectors.test_moodle_pull import TOKEN, moodle_settings

REAL_FUNCTIONS = frozenset(
    line.split()[0]
    for line in (Path(__file__).parent / "data" / "moodle_functions.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


def _site() -> MoodleState:
    # Mixed roles, as every real course has: a teacher and a manager enrolled next to the students, both
    # with their completion met (a connector that counted them would count their completions too).
    state = state_from_world(generate(41, learners=20, courses=2), staff=True)
    for (course_id, user_id), enrolment in state.enrolments.items():
        if enrolment.role != "student":
            state.complete(course_id, user_id, 1_740_000_000)
    return state


async def _run(settings: Settings, state: MoodleState) -> MoodleConnector:
    async with serving(MoodleSimulator(state, token=TOKEN).app()) as url:
        local = moodle_settings(settings, url, record_max_attempts=2)
        async with ConnectorContext.open(local) as context:
            connector = MoodleConnector(local.sources[0], local)
            await pull(connector, context, until_idle=True)
    return connector


def test_the_connector_calls_only_functions_that_exist_and_the_simulator_offers_only_real_ones() -> None:
    offered = MoodleSimulator(MoodleState(), token=TOKEN).functions
    assert offered >= FUNCTIONS_CALLED, FUNCTIONS_CALLED - offered
    assert offered <= REAL_FUNCTIONS, offered - REAL_FUNCTIONS
    # Each simulated function names the real function and the versions it mirrors.
    assert offered == set(SIMULATED_AS)
    assert all(re.search(r"(Moodle|mod_customcert) \d", SIMULATED_AS[name]) for name in offered)
    # Every function name written in the connector is one it declares (an invented one fails here).
    written = set(re.findall(r'"((?:core|mod)_[a-z_]+)"', Path(moodle.__file__).read_text()))
    assert written - {"core_course_get_courses"} <= FUNCTIONS_CALLED, written - FUNCTIONS_CALLED


async def test_an_unknown_function_answers_invalidrecord_in_a_200_body() -> None:
    async with (
        serving(MoodleSimulator(MoodleState(), token=TOKEN).app()) as url,
        aiohttp.ClientSession() as http,
    ):
        form = {
            "wstoken": TOKEN,
            "wsfunction": "mod_customcert_get_customcerts_by_courses",
            "moodlewsrestformat": "json",
        }
        async with http.post(f"{url}/webservice/rest/server.php", data=form) as response:
            assert response.status == 200
            body = await response.json()
    assert body["exception"] == "dml_missing_record_exception" and body["errorcode"] == "invalidrecord"


async def test_teachers_are_not_learners_completion_off_is_skipped_once_and_the_token_stays_out_of_urls(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    state = _site()
    off_course = max(state.courses)
    state.courses[off_course].enablecompletion = False
    caplog.set_level(logging.INFO, logger="connectors.moodle")
    connector = await _run(settings, state)
    assert connector.health() == Health.STOPPED
    events = decode_all(await read_topic(settings, TopicCatalogue.from_settings(settings).training.name))
    learners = [key for key, e in state.enrolments.items() if e.role == "student"]
    created = [e for e in events if isinstance(e, EnrolmentCreated)]
    assert len({e.enrolment_id for e in created}) == len(learners)
    completed = {e.enrolment_id for e in events if isinstance(e, EnrolmentCompleted)}
    on_course_done = [k for k in learners if k[0] != off_course and state.enrolments[k].completed_at]
    assert len(completed) == len(on_course_done) and all(f"-c{off_course}-" not in e for e in completed)
    skipped = [
        r for r in caplog.records if f"course {off_course} has completion tracking off" in r.getMessage()
    ]
    assert len(skipped) == 1 and skipped[0].levelno == logging.INFO
    assert state.token_in_url == 0
    assert set(state.calls) <= FUNCTIONS_CALLED
    # The course of each customcert instance with issues is asked once, through a core function.
    instances = {issue.customcertid for issue in state.issues.values()}
    assert state.calls["core_course_get_course_module_by_instance"] == len(instances)


async def test_a_missing_completion_capability_is_a_configuration_error_naming_it(settings: Settings) -> None:
    state = _site()
    state.capabilities.discard("report/completion:view")
    with pytest.raises(FatalSourceError, match=r"report/completion:view"):
        await _run(settings, state)


async def test_a_user_whose_completion_keeps_failing_is_dead_lettered_and_the_others_pass(
    settings: Settings,
) -> None:
    state = _site()
    (_, user_id), _ = next((k, e) for k, e in state.enrolments.items() if e.role == "student")
    state.fail_completion_of.add(user_id)
    connector = await _run(settings, state)
    assert connector.health() == Health.STOPPED
    # One dead letter per enrolment of that user (one completion check each), none for anyone else.
    checks = sum(1 for (_, user), e in state.enrolments.items() if user == user_id and e.role == "student")
    assert connector.stats.dead_lettered == checks
    catalogue = TopicCatalogue.from_settings(settings)
    dead = await read_topic(settings, catalogue.dead_letter(catalogue.training).name)
    reasons = {dict(r.headers)["dlq_reason"].decode() for r in dead}
    assert reasons == {
        "unresolved after 2 attempts: Moodle core_completion_get_course_completion_status: dmlreadexception"
    }
    assert b"@" not in dead[0].value, "the dead letter carries no e-mail"
    events = decode_all(await read_topic(settings, catalogue.training.name))
    learners = [k for k, e in state.enrolments.items() if e.role == "student"]
    assert len({e.enrolment_id for e in events if isinstance(e, EnrolmentCreated)}) == len(learners)
