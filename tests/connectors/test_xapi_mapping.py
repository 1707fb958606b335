"""The xAPI verb table, learner attributes, content identity and voiding, without any I/O."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from connectors.exceptions import DeadLetterRecord, SkipRecord
from connectors.pseudonym import Pseudonymiser
from connectors.xapi import XapiConnector, XapiRecord
from connectors.xapi_extensions import EXT_ASSESSMENT, EXTENSION_BASE
from infra.settings import SourceConfig, load_settings
from schemas.events.training import (
    AssessmentKind,
    AssessmentSubmitted,
    CertificateIssued,
    EnrolmentCompleted,
    EnrolmentCreated,
    EnrolmentWithdrawn,
    ProgressRecorded,
    TrainingEventRetracted,
)

ADL = "http://adlnet.gov/expapi/verbs/"


@pytest.fixture
def connector(tmp_path: Path) -> XapiConnector:
    settings = load_settings(state_dir=tmp_path)
    source = SourceConfig(
        name="cvf-lrs",
        kind="xapi",
        endpoint="http://lrs.example/xapi/",
        username="u",
        password=SecretStr("p"),
        options={"verbs": {"https://example.org/verbs/finished": "completed"}},
    )
    return XapiConnector(source, settings, pseudonymiser=Pseudonymiser(b"p" * 32, b"o" * 32))


def statement(verb: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "3b2c1f3e-0000-4000-8000-000000000001",
        "actor": {"mbox": "mailto:ana@example.org", "name": "Ana"},
        "verb": {"id": verb},
        "object": {
            "id": "https://cvf.example/course/c1",
            "definition": {"type": "http://adlnet.gov/expapi/activities/course"},
        },
        "context": {
            "registration": "9a1f6c2e-1111-4111-8111-111111111111",
            "extensions": {
                EXTENSION_BASE + "country": "UY",
                EXTENSION_BASE + "audience": "MSME",
                EXTENSION_BASE + "organisation": "firm-9",
                EXTENSION_BASE + "offering": "c1-2025",
                "https://w3id.org/xapi/lms/extensions/starting-date": "2025-03-01T00:00:00Z",
            },
        },
        "timestamp": "2025-02-20T10:00:00Z",
        "stored": "2025-02-20T10:00:01Z",
    }
    base.update(extra)
    return base


@pytest.mark.parametrize(
    ("verb", "result", "expected"),
    [
        (ADL + "registered", None, EnrolmentCreated),
        ("https://xapi.edlm/profiles/edlm-lms/concepts/verbs/enrolled", None, EnrolmentCreated),
        ("http://id.tincanapi.com/verb/unregistered", None, EnrolmentWithdrawn),
        (ADL + "completed", {"success": True}, EnrolmentCompleted),
        ("https://w3id.org/xapi/adl/verbs/satisfied", None, EnrolmentCompleted),
        (ADL + "passed", {"score": {"scaled": 0.9}, "success": True}, AssessmentSubmitted),
        (ADL + "failed", {"score": {"scaled": 0.3}, "success": False}, AssessmentSubmitted),
        ("https://w3id.org/xapi/tla/verbs/achieved", None, CertificateIssued),
        ("http://id.tincanapi.com/verb/earned", None, CertificateIssued),
        (
            ADL + "progressed",
            {"extensions": {"https://w3id.org/xapi/cmi5/result/extensions/progress": 40}},
            ProgressRecorded,
        ),
        ("https://example.org/verbs/finished", None, EnrolmentCompleted),
    ],
)
def test_verb_table(
    connector: XapiConnector, verb: str, result: dict[str, Any] | None, expected: type
) -> None:
    s = statement(verb, **({"result": result} if result else {}))
    (event,) = connector.map_record(XapiRecord(s))
    assert type(event) is expected
    assert event.subject_key == connector.pseudonyms.person("ana@example.org")
    assert event.country == "UY" and event.audience == "MSME"
    assert "ana" not in event.model_dump_json()


def test_enrolment_carries_learner_and_offering_attributes(connector: XapiConnector) -> None:
    (event,) = connector.map_record(XapiRecord(statement(ADL + "registered")))
    assert isinstance(event, EnrolmentCreated)
    assert event.enrolment_id == "9a1f6c2e-1111-4111-8111-111111111111"
    assert event.offering_id == "c1-2025" and event.course_id == "https://cvf.example/course/c1"
    assert event.org_key == connector.pseudonyms.org("firm-9")
    assert event.offering_starts_at is not None


def test_withdrawal_before_the_offering_starts_is_flagged(connector: XapiConnector) -> None:
    (event,) = connector.map_record(XapiRecord(statement("http://id.tincanapi.com/verb/unregistered")))
    assert isinstance(event, EnrolmentWithdrawn) and event.before_start


def test_unknown_verbs_are_skipped_not_dead_lettered(connector: XapiConnector) -> None:
    with pytest.raises(SkipRecord, match="launched"):
        connector.map_record(XapiRecord(statement(ADL + "launched")))


def test_replayed_statement_under_a_new_lrs_id_keeps_its_event_id(connector: XapiConnector) -> None:
    original = statement(ADL + "registered")
    replay = dict(original, id="77777777-0000-4000-8000-000000000002", stored="2025-02-21T00:00:00Z")
    (a,) = connector.map_record(XapiRecord(original))
    (b,) = connector.map_record(XapiRecord(replay))
    assert a.event_id == b.event_id
    later = dict(original, timestamp="2025-02-20T10:00:05Z")
    assert connector.map_record(XapiRecord(later))[0].event_id != a.event_id


def test_account_actor_is_pseudonymised_with_its_home_page(connector: XapiConnector) -> None:
    s = statement(ADL + "registered", actor={"account": {"homePage": "https://cvf", "name": "1042"}})
    (event,) = connector.map_record(XapiRecord(s))
    assert event.subject_key == connector.pseudonyms.person("https://cvf|1042")


def test_voiding_retracts_the_events_of_the_voided_statement(connector: XapiConnector) -> None:
    voided = statement(ADL + "completed")
    voiding = {
        "id": "88888888-0000-4000-8000-000000000003",
        "actor": {"account": {"homePage": "https://cvf", "name": "admin"}},
        "verb": {"id": ADL + "voided"},
        "object": {"objectType": "StatementRef", "id": voided["id"]},
        "timestamp": "2025-03-01T00:00:00Z",
    }
    (original,) = connector.map_record(XapiRecord(voided))
    (retraction,) = connector.map_record(XapiRecord(voiding, voided))
    assert isinstance(retraction, TrainingEventRetracted)
    assert retraction.retracted_event_id == original.event_id
    assert retraction.subject_key == original.subject_key
    with pytest.raises(DeadLetterRecord, match="voidedStatementId"):
        connector.map_record(XapiRecord(voiding, None))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"actor": {"name": "nobody"}}, "inverse functional identifier"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"verb": {}}, "verb"),
    ],
)
def test_unmappable_statements_are_dead_lettered_with_a_reason(
    connector: XapiConnector, change: dict[str, Any], reason: str
) -> None:
    with pytest.raises(DeadLetterRecord, match=reason):
        connector.map_record(XapiRecord({**statement(ADL + "registered"), **change}))


def test_an_assessment_is_a_final_unless_its_context_names_another_role(connector: XapiConnector) -> None:
    result = {"score": {"scaled": 0.4}, "success": False}
    (final,) = connector.map_record(XapiRecord(statement(ADL + "failed", result=result)))
    assert isinstance(final, AssessmentSubmitted)
    assert (final.kind, final.passed, final.score_scaled) == (AssessmentKind.FINAL, False, 0.4)
    pre_test = statement(ADL + "passed", result={"score": {"scaled": 0.7}})
    pre_test["context"]["extensions"][EXT_ASSESSMENT] = "PRE"
    (pre,) = connector.map_record(XapiRecord(pre_test))
    assert isinstance(pre, AssessmentSubmitted)
    assert (pre.kind, pre.passed) == (AssessmentKind.PRE, True)


def test_an_unknown_assessment_role_is_dead_lettered(connector: XapiConnector) -> None:
    s = statement(ADL + "passed", result={"score": {"scaled": 0.7}})
    s["context"]["extensions"][EXT_ASSESSMENT] = "MIDTERM"
    with pytest.raises(DeadLetterRecord, match="assessment kind"):
        connector.map_record(XapiRecord(s))


def test_passed_without_a_score_is_dead_lettered(connector: XapiConnector) -> None:
    with pytest.raises(DeadLetterRecord, match="score"):
        connector.map_record(XapiRecord(statement(ADL + "passed")))


def test_invalid_country_is_rejected_by_the_event_model(connector: XapiConnector) -> None:
    s = statement(ADL + "registered")
    bad = copy.deepcopy(s)
    bad["context"]["extensions"][EXTENSION_BASE + "country"] = "Uruguay"
    with pytest.raises(ValidationError):
        connector.map_record(XapiRecord(bad))


def test_a_dead_lettered_statement_keeps_no_personal_data(connector: XapiConnector) -> None:
    personal = statement(
        ADL + "completed",
        authority={"objectType": "Agent", "name": "LMS Admin", "mbox": "mailto:admin@example.org"},
        context={
            "instructor": {"name": "Prof. Pérez", "mbox": "mailto:perez@example.org"},
            "extensions": {EXTENSION_BASE + "organisation": "orgs/firm-7", EXTENSION_BASE + "country": "AR"},
        },
        result={"response": "Me llamo Ana y mi RUT es 12.345.678-9", "success": True},
    )
    value = connector.record_json(XapiRecord(personal)).decode()
    for personal_text in ("ana@example.org", "Ana", "admin@example.org", "Pérez", "12.345.678-9", "firm-7"):
        assert personal_text not in value
    redacted = json.loads(value)
    assert redacted["actor"]["pseudonym"] == connector.pseudonyms.person("ana@example.org")
    assert redacted["context"]["extensions"][EXTENSION_BASE + "organisation"] == connector.pseudonyms.org(
        "orgs/firm-7"
    )
    assert redacted["id"] == personal["id"] and redacted["result"]["success"] is True
