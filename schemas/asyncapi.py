"""Generate `schemas/asyncapi.json` (AsyncAPI 3.0) from the topic catalogue and the JSON Schema files.

Run `python -m schemas.asyncapi` after changing a topic or an event model (after
`python -m schemas.jsonschema_gen`), and commit the result; `--check` only reports a stale file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas import deadletter, generated
from schemas.cloudevents import CONTENT_TYPE, SOURCE_PREFIX, SPEC_VERSION
from schemas.events.base import TIMESTAMP_PATTERN, UUID_PATTERN, Event, anchored
from schemas.indicators import INDICATOR_CE_SOURCE, INDICATOR_CE_TYPE, INDICATOR_SCHEMA_ID
from schemas.jsonschema_gen import INDICATOR_FILE, SCHEMA_DIR, file_name
from schemas.registry import ALL_EVENT_CLASSES, ce_type, event_type_of, schema_id, schema_version_of
from schemas.topics import TopicCatalogue, TopicSpec

ASYNCAPI_FILE = Path(__file__).parent / "asyncapi.json"
KAFKA_BINDING_VERSION = "0.5.0"
JSON_SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
# The consumer group that reads every input topic (see the brief's processor contract).


def _schema_ref(name: str) -> dict[str, Any]:
    # Paths are relative to this document, which sits next to the jsonschema/ directory.
    return {"schemaFormat": JSON_SCHEMA_FORMAT, "schema": {"$ref": f"{SCHEMA_DIR.name}/{name}"}}


def _channel_bindings(spec: TopicSpec) -> dict[str, Any]:
    config: dict[str, Any] = {"cleanup.policy": [spec.cleanup_policy]}
    if spec.retention_ms is not None:
        config["retention.ms"] = spec.retention_ms
    return {
        "kafka": {
            "topic": spec.name,
            "partitions": spec.partitions,
            "topicConfiguration": config,
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _key_binding(description: str) -> dict[str, Any]:
    return {
        "kafka": {
            "key": {"type": "string", "description": description},
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _cloudevents_headers(cls: type[Event]) -> dict[str, Any]:
    event_type, version = event_type_of(cls), schema_version_of(cls)
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes in Kafka binary mode (ce_* headers, UTF-8).",
        "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "content-type"],
        "properties": {
            "ce_specversion": {"const": SPEC_VERSION},
            "ce_id": {"type": "string", "pattern": UUID_PATTERN, "description": "equals event_id"},
            "ce_source": {
                "type": "string",
                "pattern": anchored(f"{SOURCE_PREFIX}[a-z0-9][a-z0-9._-]{{0,62}}"),
                "description": "urn:alcance:source:<source>",
            },
            "ce_type": {"const": ce_type(event_type, version)},
            "ce_time": {"type": "string", "pattern": TIMESTAMP_PATTERN, "description": "equals occurred_at"},
            "ce_subject": {"type": "string", "description": "equals subject_key (the record key)"},
            "ce_dataschema": {"const": schema_id(event_type, version)},
            "content-type": {"const": CONTENT_TYPE},
            "traceparent": {"type": "string", "description": "W3C trace context of the producer"},
        },
    }


def _indicator_headers() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes in Kafka binary mode (ce_* headers, UTF-8).",
        "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "content-type"],
        "properties": {
            "ce_specversion": {"const": SPEC_VERSION},
            "ce_id": {"type": "string", "pattern": UUID_PATTERN, "description": "uuid5 of key and version"},
            "ce_source": {"const": INDICATOR_CE_SOURCE},
            "ce_type": {"const": INDICATOR_CE_TYPE},
            "ce_time": {"type": "string", "pattern": TIMESTAMP_PATTERN, "description": "equals as_of"},
            "ce_subject": {"type": "string", "description": "equals the record key"},
            "ce_dataschema": {"const": INDICATOR_SCHEMA_ID},
            "content-type": {"const": CONTENT_TYPE},
            "traceparent": {"type": "string", "description": "W3C trace context of the producer"},
        },
    }


DEAD_LETTER_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "The original record's headers are kept; these say why and where from.",
    "required": [deadletter.REASON],
    "properties": {
        name: {"type": "string", "description": text} for name, text in deadletter.HEADERS.items()
    },
}


def _message_name(cls: type[Event]) -> str:
    return f"{cls.__name__}V{schema_version_of(cls)}"


def build(catalogue: TopicCatalogue | None = None) -> dict[str, Any]:
    """The AsyncAPI document of `catalogue` (default: the default prefix and partitions)."""
    catalogue = catalogue or TopicCatalogue()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    for cls in ALL_EVENT_CLASSES:
        event_type = event_type_of(cls)
        messages[_message_name(cls)] = {
            "name": event_type,
            "title": cls.names.get("en", event_type),
            "summary": (cls.__doc__ or "").strip().splitlines()[0],
            "contentType": CONTENT_TYPE,
            "headers": _cloudevents_headers(cls),
            "payload": _schema_ref(file_name(cls)),
            "bindings": _key_binding(catalogue.topic_for(cls).key),
            "x-names": dict(cls.names),
        }

    for family, spec in (
        ("training", catalogue.training),
        ("plgn", catalogue.plgn),
        ("finance", catalogue.finance),
    ):
        family_messages = {
            _message_name(cls): {"$ref": f"#/components/messages/{_message_name(cls)}"}
            for cls in ALL_EVENT_CLASSES
            if cls.family == family
        }
        channels[family] = {
            "address": spec.name,
            "title": spec.name,
            "description": spec.description,
            "messages": family_messages,
            "bindings": _channel_bindings(spec),
        }
        dead = catalogue.dead_letter(spec)
        channels[f"{family}DeadLetter"] = {
            "address": dead.name,
            "title": dead.name,
            "description": dead.description,
            "messages": {"deadLetter": {"$ref": "#/components/messages/deadLetter"}},
            "bindings": _channel_bindings(dead),
        }
        refs = [{"$ref": f"#/channels/{family}/messages/{name}"} for name in family_messages]
        operations[f"publish_{family}"] = {
            "action": "send",
            "summary": f"Connectors publish {family} events, keyed by {spec.key}.",
            "channel": {"$ref": f"#/channels/{family}"},
            "messages": refs,
        }
        operations[f"consume_{family}"] = {
            "action": "receive",
            "summary": "The indicator processors consume the events, exactly once in effect.",
            "channel": {"$ref": f"#/channels/{family}"},
            "messages": refs,
            "bindings": {
                "kafka": {
                    "groupId": {"type": "string", "enum": [catalogue.indicators_group]},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        operations[f"dead_letter_{family}"] = {
            "action": "send",
            "summary": "Records that cannot be processed go here unchanged, with the reason.",
            "channel": {"$ref": f"#/channels/{family}DeadLetter"},
            "messages": [{"$ref": f"#/channels/{family}DeadLetter/messages/deadLetter"}],
        }

    indicators = catalogue.indicators
    channels["indicators"] = {
        "address": indicators.name,
        "title": indicators.name,
        "description": indicators.description,
        "messages": {"indicatorValue": {"$ref": "#/components/messages/indicatorValue"}},
        "bindings": _channel_bindings(indicators),
    }
    operations["publish_indicators"] = {
        "action": "send",
        "summary": "The processors publish every changed indicator cell.",
        "channel": {"$ref": "#/channels/indicators"},
        "messages": [{"$ref": "#/channels/indicators/messages/indicatorValue"}],
    }
    identity = catalogue.log_identity
    channels["logIdentity"] = {
        "address": identity.name,
        "title": identity.name,
        "description": identity.description,
        "messages": {"logIdentity": {"$ref": "#/components/messages/logIdentity"}},
        "bindings": _channel_bindings(identity),
    }
    messages["indicatorValue"] = {
        "name": "indicator",
        "title": "Indicator value",
        "summary": "One indicator cell; the highest version per key is the current value.",
        "contentType": CONTENT_TYPE,
        "headers": _indicator_headers(),
        "payload": _schema_ref(INDICATOR_FILE),
        "bindings": _key_binding(indicators.key),
    }
    messages["deadLetter"] = {
        "name": "deadLetter",
        "title": "Dead letter",
        "summary": "A rejected record: its original value and headers, unchanged, plus dlq_* headers.",
        "contentType": "application/octet-stream",
        "headers": DEAD_LETTER_HEADERS,
        "payload": {"description": "the rejected value, unchanged"},
    }
    messages["logIdentity"] = {
        "name": "logIdentity",
        "title": "Log identity",
        "summary": "A UUID (text) written once at offset 0 when the topic is created.",
        "contentType": "text/plain",
        "payload": {"type": "string", "pattern": UUID_PATTERN},
    }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "alcance event pipeline",
            "version": "1.0.0",
            "description": "Topics of alcance (ALADI Resolution 503 monitoring). Generated from "
            "schemas/topics.py and schemas/jsonschema/ by `python -m schemas.asyncapi`; do not edit by "
            f"hand. Topic names use the default prefix {catalogue.prefix!r}, which deployments configure.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render(catalogue: TopicCatalogue | None = None) -> str:
    """The exact text of `asyncapi.json`."""
    return generated.document_text(build(catalogue))


def is_stale(path: Path = ASYNCAPI_FILE) -> bool:
    """Whether the committed document differs from what the catalogue and schemas produce now."""
    return generated.is_stale(path, render())


def main(argv: list[str] | None = None) -> int:
    """Command line: rewrite `asyncapi.json`, or with `--check` fail when it is stale."""
    return generated.rewrite_or_check(
        argv, prog="python -m schemas.asyncapi", description=__doc__, path=ASYNCAPI_FILE, render=render
    )


if __name__ == "__main__":
    raise SystemExit(main())
