"""The publisher: events to their family topic keyed by subject, acks awaited, trace context in headers."""

from __future__ import annotations

from connectors.publisher import DeadLetter, Publisher
from infra.kafka import make_producer
from infra.settings import Settings, TelemetrySettings
from infra.telemetry import setup_telemetry
from schemas.events.base import Event
from schemas.topics import TopicCatalogue
from tests.connectors.support import decode_all, read_topic
from tests.schemas.factories import make_event


async def test_events_are_published_keyed_with_traceparent_and_offsets_tracked(settings: Settings) -> None:
    setup_telemetry(TelemetrySettings(exporter="none"))
    catalogue = TopicCatalogue.from_settings(settings)
    events: list[Event] = [
        make_event("cvf.enrolment.created"),
        make_event("cvf.enrolment.completed"),
        make_event("plgn.meeting.held"),
    ]
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        publisher = Publisher(producer, catalogue)
        dlq = catalogue.dead_letter(catalogue.training).name
        page = await publisher.publish(events, [DeadLetter(dlq, b'{"raw": 1}', "bad record", "src")])
    finally:
        await producer.stop()
    assert {topic for topic, _ in page} == {catalogue.training.name, catalogue.plgn.name}
    assert publisher.produced_offsets() == page, "dead letters do not count for idle detection"
    training = await read_topic(settings, catalogue.training.name)
    assert {e.event_id for e in decode_all(training)} == {events[0].event_id, events[1].event_id}
    for record, event in zip(training, decode_all(training), strict=True):
        assert record.key == event.subject_key.encode()
        assert dict(record.headers)["traceparent"].startswith(b"00-")
    # One span per topic batch: both training records carry the same trace id.
    assert len({dict(r.headers)["traceparent"].split(b"-")[1] for r in training}) == 1
    (dead,) = await read_topic(settings, dlq)
    assert dead.value == b'{"raw": 1}' and dict(dead.headers)["dlq_reason"] == b"bad record"
