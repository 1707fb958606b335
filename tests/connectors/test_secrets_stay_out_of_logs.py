"""Source credentials and pseudonym keys never reach a log line or an error message, whatever fails."""

# ruff: noqa: S105 - test credentials whose absence from logs is the point

from __future__ import annotations

import asyncio
import base64
import logging

import pytest
from pydantic import SecretStr

from connectors.context import ConnectorContext
from connectors.moodle import MoodleConnector
from connectors.runtime import pull
from connectors.simulators.generator import generate
from connectors.simulators.moodle_ws import MoodleSimulator, state_from_world
from connectors.simulators.serving import serving
from connectors.simulators.xapi_lrs import XapiLrs, statements_from_world
from connectors.xapi import XapiConnector
from infra.settings import ConnectorSettings, PseudonymSettings, Settings, SourceConfig

LRS_PASSWORD = "lrs-Pa55word-d0-not-log"
MOODLE_TOKEN = "moodletoken0123456789abcdefdonotlog"
PERSON_KEY = "person-key-never-in-logs-0123"
ORG_KEY = "org-key-never-in-logs-0123"


def _secret_forms() -> list[str]:
    basic = base64.b64encode(f"alcance:{LRS_PASSWORD}".encode()).decode()
    return [LRS_PASSWORD, basic, MOODLE_TOKEN, PERSON_KEY, ORG_KEY]


def _with_sources(settings: Settings, *sources: SourceConfig) -> Settings:
    return settings.model_copy(
        update={
            "sources": list(sources),
            "connector": ConnectorSettings(
                request_timeout_s=0.5,
                max_attempts=3,
                backoff_base_s=0.01,
                backoff_max_s=0.05,
                lease_ttl_s=1.0,
            ),
            "pseudonym": PseudonymSettings(person_key=SecretStr(PERSON_KEY), org_key=SecretStr(ORG_KEY)),
        }
    )


def _assert_no_secret(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    everything = "\n".join([record.getMessage() for record in caplog.records] + [caplog.text, *texts])
    assert everything, "nothing was logged: the test would prove nothing"
    for secret in _secret_forms():
        assert secret not in everything


async def test_failing_and_faulty_sources_log_no_credentials(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world = generate(11, learners=15, firms=5)
    statements, _ = statements_from_world(world, seed=11)
    lrs = XapiLrs(statements, username="alcance", password=LRS_PASSWORD)
    # Every kind of fault, so retries, timeouts and truncated bodies are all logged.
    lrs.faults.error_rate = 0.3
    lrs.faults.throttle_rate = 0.2
    lrs.faults.retry_after_s = 0.01
    lrs.faults.truncate_rate = 0.2
    lrs.faults.slow_rate = 0.1
    lrs.faults.slow_s = 0.6
    lrs_endpoint = await lrs.start()
    try:
        async with serving(MoodleSimulator(state_from_world(world), MOODLE_TOKEN).app()) as moodle_url:
            good = _with_sources(
                settings,
                SourceConfig(
                    name="cvf-lrs",
                    kind="xapi",
                    endpoint=lrs_endpoint,
                    username="alcance",
                    password=SecretStr(LRS_PASSWORD),
                    page_size=20,
                ),
                SourceConfig(
                    name="cvf-moodle", kind="moodle", endpoint=f"{moodle_url}/", token=SecretStr(MOODLE_TOKEN)
                ),
            )
            errors: list[str] = []
            async with ConnectorContext.open(good) as context:
                for source in good.sources:
                    connector = (XapiConnector if source.kind == "xapi" else MoodleConnector)(source, good)
                    await asyncio.wait_for(pull(connector, context, until_idle=True), 60)
                # The same sources with credentials the servers reject: the failures are logged and raised.
                for source in good.sources:
                    wrong = source.model_copy(
                        update={"password": SecretStr(MOODLE_TOKEN), "token": SecretStr(LRS_PASSWORD)}
                    )
                    cls = XapiConnector if source.kind == "xapi" else MoodleConnector
                    try:
                        await asyncio.wait_for(pull(cls(wrong, good), context, until_idle=True), 60)
                    except Exception as exc:  # the failure itself is what is inspected
                        errors.append(f"{exc!r} {exc}")
    finally:
        await lrs.stop()
    assert sum(lrs.faults.injected.values()) > 0
    assert errors, "rejected credentials must surface as errors"
    _assert_no_secret(caplog, *errors, repr(good), str(good.model_dump()))
