"""The committed AsyncAPI document is current and describes every topic, message and header."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas import asyncapi
from schemas.registry import ALL_EVENT_CLASSES, ce_type, event_type_of, schema_version_of
from schemas.topics import TopicCatalogue


def _committed() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(asyncapi.ASYNCAPI_FILE.read_text(encoding="utf-8"))
    return document


def test_committed_document_is_current() -> None:
    assert not asyncapi.is_stale(), "run `python -m schemas.asyncapi` and commit schemas/asyncapi.json"


def test_stale_check_notices_a_difference(tmp_path: Path) -> None:
    copy = tmp_path / "asyncapi.json"
    copy.write_text(asyncapi.render(), encoding="utf-8")
    assert not asyncapi.is_stale(copy)
    copy.write_text(
        asyncapi.render().replace("alcance.cvf.events.v1", "alcance.cvf.events.v2"), encoding="utf-8"
    )
    assert asyncapi.is_stale(copy)
    assert asyncapi.is_stale(tmp_path / "missing.json")


def test_is_asyncapi_3_with_a_channel_for_every_topic() -> None:
    document = _committed()
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {spec.name for spec in TopicCatalogue().all()}


def test_channel_bindings_follow_the_catalogue() -> None:
    document = _committed()
    by_address = {channel["address"]: channel for channel in document["channels"].values()}
    for spec in TopicCatalogue().all():
        kafka = by_address[spec.name]["bindings"]["kafka"]
        assert kafka["partitions"] == spec.partitions
        assert kafka["topicConfiguration"]["cleanup.policy"] == [spec.cleanup_policy]
        assert kafka["topicConfiguration"].get("retention.ms") == spec.retention_ms


def test_every_event_type_is_a_message_on_its_family_channel_with_cloudevents_headers() -> None:
    document = _committed()
    messages = document["components"]["messages"]
    for cls in ALL_EVENT_CLASSES:
        name = f"{cls.__name__}V{schema_version_of(cls)}"
        message = messages[name]
        headers = message["headers"]
        assert headers["properties"]["ce_type"] == {
            "const": ce_type(event_type_of(cls), schema_version_of(cls))
        }
        assert {"ce_specversion", "ce_id", "ce_source", "ce_type"} <= set(headers["required"])
        assert set(message["x-names"]) == {"es", "pt", "en"}
        assert name in document["channels"][cls.family]["messages"]


def test_payload_references_point_at_committed_schema_files() -> None:
    document = _committed()
    base = asyncapi.ASYNCAPI_FILE.parent
    for message in document["components"]["messages"].values():
        ref = message["payload"].get("schema", {}).get("$ref")
        if ref is not None:
            assert (base / ref).is_file(), ref


def test_internal_references_resolve() -> None:
    document = _committed()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                target: Any = document
                for part in ref[2:].split("/"):
                    target = target[part]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


def test_operations_send_and_receive_every_input_topic_and_publish_indicators() -> None:
    operations = _committed()["operations"]
    for family in ("training", "plgn", "finance"):
        assert operations[f"publish_{family}"]["action"] == "send"
        consume = operations[f"consume_{family}"]
        assert consume["action"] == "receive"
        assert consume["bindings"]["kafka"]["groupId"]["enum"] == ["alcance.indicators"]
        assert operations[f"dead_letter_{family}"]["channel"] == {"$ref": f"#/channels/{family}DeadLetter"}
    assert operations["publish_indicators"]["channel"] == {"$ref": "#/channels/indicators"}
