"""The push intake: xAPI and Caliper status codes, acknowledgement after the broker, voiding."""

# ruff: noqa: S105 - well-known test credentials

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from connectors.context import ConnectorContext
from connectors.intake import CALIPER_V1P2, serving_intake
from infra.settings import IntakeSettings, PseudonymSettings, Settings
from schemas.events.training import EnrolmentCreated, TrainingEventRetracted
from schemas.topics import TopicCatalogue
from tests.connectors.support import decode_all, read_topic

TOKEN = "intake-test-token-0123456789abcdefghij"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Experience-API-Version": "1.0.3"}
EXT = "https://w3id.org/alcance/xapi/extensions/"


def statement(n: int, **changes: Any) -> dict[str, Any]:
    base = {
        "id": str(uuid.UUID(int=n, version=4)),
        "actor": {"objectType": "Agent", "name": "Ana García", "mbox": f"mailto:ana{n}@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/registered"},
        "object": {"objectType": "Activity", "id": "https://cvf.aladi.org/course/course-1"},
        "context": {
            "extensions": {EXT + "country": "UY", EXT + "course": "course-1", EXT + "offering": "course-1-o1"}
        },
        "timestamp": f"2026-02-0{1 + n % 8}T10:00:00Z",
    }
    base.update(changes)
    return base


@pytest.fixture
async def intake(settings: Settings) -> AsyncIterator[tuple[Settings, str, aiohttp.ClientSession]]:
    settings = settings.model_copy(
        update={
            "intake": IntakeSettings(enabled=True, port=0, token=SecretStr(TOKEN)),
            "pseudonym": PseudonymSettings(
                person_key=SecretStr("test-person-key-0123456789"),
                org_key=SecretStr("test-org-key-0123456789"),
            ),
        }
    )
    async with (
        ConnectorContext.open(settings) as context,
        serving_intake(context) as url,
        aiohttp.ClientSession() as session,
    ):
        yield settings, url, session


async def test_post_acknowledges_only_after_the_broker_has_the_events(intake: Any) -> None:
    settings, url, session = intake
    batch = [statement(1), statement(2), {k: v for k, v in statement(3).items() if k != "id"}]
    async with session.post(f"{url}/xapi/statements", json=batch, headers=AUTH) as response:
        assert response.status == 200
        assert response.headers["X-Experience-API-Version"] == "1.0.3"
        ids = await response.json()
    assert ids[:2] == [batch[0]["id"], batch[1]["id"]] and uuid.UUID(ids[2])
    # Read right after the answer: the events are already in the topic.
    catalogue = TopicCatalogue.from_settings(settings)
    events = decode_all(await read_topic(settings, catalogue.training.name, timeout_s=5))
    assert sorted(type(e).__name__ for e in events) == ["EnrolmentCreated"] * 3
    assert all(e.source == settings.intake.source_name and e.subject_key.startswith("p-") for e in events)
    assert not any(b"ana1@example.org" in json.dumps(e.model_dump(mode="json")).encode() for e in events)


async def test_put_is_204_idempotent_and_409_on_other_content(intake: Any) -> None:
    _, url, session = intake
    body = statement(10)
    target = f"{url}/xapi/statements?statementId={body['id']}"
    async with session.put(target, json=body, headers=AUTH) as response:
        assert response.status == 204
        assert response.headers["X-Experience-API-Version"] == "1.0.3"
    async with session.put(target, json=body, headers=AUTH) as response:
        assert response.status == 204
    changed = statement(10, timestamp="2026-03-01T10:00:00Z")
    async with session.put(target, json=changed, headers=AUTH) as response:
        assert response.status == 409
    async with session.post(f"{url}/xapi/statements", json=[changed], headers=AUTH) as response:
        assert response.status == 409
    other = f"{url}/xapi/statements?statementId={uuid.uuid4()}"
    async with session.put(other, json=body, headers=AUTH) as response:
        assert response.status == 400


BAD_XAPI_REQUESTS: list[tuple[dict[str, str], Any, int]] = [
    ({}, [statement(20)], 401),
    ({**AUTH, "Authorization": "Bearer wrong"}, [statement(20)], 401),
    ({"Authorization": f"Bearer {TOKEN}"}, [statement(20)], 400),
    ({**AUTH, "X-Experience-API-Version": "1.1.0"}, [statement(20)], 400),
    (AUTH, [statement(20), statement(20)], 400),
    (AUTH, [statement(21, actor={"objectType": "Agent", "name": "x"})], 400),
    (AUTH, [statement(22, verb={"display": {"en": "did"}})], 400),
    (AUTH, [statement(23, id="not-a-uuid")], 400),
    (AUTH, "not a statement", 400),
]


async def test_bad_xapi_requests_get_their_status(intake: Any) -> None:
    _, url, session = intake
    for headers, body, status in BAD_XAPI_REQUESTS:
        async with session.post(f"{url}/xapi/statements", json=body, headers=headers) as response:
            assert response.status == status, (headers, body)
            assert "X-Experience-API-Version" in response.headers
            assert (await response.json())["error"]


async def test_voiding_retracts_and_unmappable_statements_are_dead_lettered(intake: Any) -> None:
    settings, url, session = intake
    original = statement(30)
    no_course = statement(31, context={"extensions": {EXT + "audience": "PIRATES"}})
    voiding = statement(
        32,
        verb={"id": "http://adlnet.gov/expapi/verbs/voided"},
        object={"objectType": "StatementRef", "id": original["id"]},
    )
    unknown_void = copy.deepcopy(voiding)
    unknown_void["id"] = str(uuid.UUID(int=33, version=4))
    unknown_void["object"]["id"] = str(uuid.uuid4())
    for batch in ([original, no_course], [voiding, unknown_void]):
        async with session.post(f"{url}/xapi/statements", json=batch, headers=AUTH) as response:
            assert response.status == 200
    catalogue = TopicCatalogue.from_settings(settings)
    events = decode_all(await read_topic(settings, catalogue.training.name, timeout_s=5))
    created = [e for e in events if isinstance(e, EnrolmentCreated)]
    retracted = [e for e in events if isinstance(e, TrainingEventRetracted)]
    assert len(created) == 1 and len(retracted) == 1
    assert retracted[0].retracted_event_id == created[0].event_id
    assert retracted[0].subject_key == created[0].subject_key
    dead = await read_topic(settings, catalogue.dead_letter(catalogue.training).name, timeout_s=5)
    reasons = sorted(dict(r.headers)["dlq_reason"].decode() for r in dead)
    assert reasons == [
        "unknown audience in https://w3id.org/alcance/xapi/extensions/audience",
        "voided statement was not received by this intake",
    ]
    assert not any(b"@example.org" in record.value for record in dead)


def envelope(*events: dict[str, Any], version: str = CALIPER_V1P2) -> dict[str, Any]:
    sensor = "https://cvf.aladi.org/sensor"
    return {
        "sensor": sensor,
        "sendTime": "2026-02-01T10:00:00.000Z",
        "dataVersion": version,
        "data": list(events),
    }


def caliper_event(n: int, action: str = "Activated") -> dict[str, Any]:
    return {
        "@context": CALIPER_V1P2,
        "id": f"urn:uuid:{uuid.UUID(int=1000 + n, version=4)}",
        "type": "Event",
        "profile": "GeneralProfile",
        "actor": {"id": f"https://cvf.aladi.org/users/{n}", "type": "Person"},
        "action": action,
        "object": {"id": "https://cvf.aladi.org/course/course-2", "type": "CourseOffering"},
        "eventTime": "2026-02-01T10:00:00.000Z",
        "extensions": {EXT + "course": "course-2", EXT + "country": "AR"},
    }


async def test_caliper_envelopes_are_mapped_and_bad_ones_get_their_status(intake: Any) -> None:
    settings, url, session = intake
    person = {"id": "https://cvf.aladi.org/users/9", "type": "Person"}
    good = envelope(caliper_event(1), caliper_event(2, "Completed"), caliper_event(3, "Viewed"), person)
    async with session.post(
        f"{url}/caliper", json=good, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        assert response.status == 200
        assert await response.read() == b""
    catalogue = TopicCatalogue.from_settings(settings)
    events = decode_all(await read_topic(settings, catalogue.training.name, timeout_s=5))
    assert sorted(e.event_type for e in events) == ["cvf.enrolment.completed", "cvf.enrolment.created"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    cases = [
        ({}, json.dumps(good), "application/json", 401),
        (auth, json.dumps(good), "text/plain", 415),
        (auth, json.dumps(envelope(caliper_event(4), version="http://purl.imsglobal.org/ctx/caliper/v1p1")),
         "application/json", 422),
        (auth, json.dumps({"data": []}), "application/json", 400),
        (auth, "{not json", "application/json", 400),
        (auth, json.dumps(envelope({**caliper_event(5), "id": "42"})), "application/json", 400),
    ]  # fmt: skip
    for headers, body, content_type, status in cases:
        request_headers = {**headers, "Content-Type": content_type}
        async with session.post(f"{url}/caliper", data=body, headers=request_headers) as response:
            assert response.status == status, body


async def test_intake_refuses_to_start_without_a_token(settings: Settings) -> None:
    async with ConnectorContext.open(settings) as context:
        with pytest.raises(ValueError, match="token"):
            async with serving_intake(context):
                pass
