"""Trace context travels from the connector's send span, through Kafka headers, to the processor's span."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from connectors.publisher import Publisher
from infra.kafka import make_producer
from infra.settings import Settings
from infra.telemetry import extract_context, inject_headers
from processors.runtime import IndicatorProcessor
from schemas.topics import TopicCatalogue
from tests.schemas.factories import make_enrolment_created

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of this test, captured in memory by the process-wide SDK tracer provider."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    if not getattr(provider, "_alcance_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._alcance_test_exporter = True  # type: ignore[attr-defined]
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def test_headers_carry_the_current_trace_context(spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("outer") as span:
        headers = inject_headers([("ce_id", b"x")])
    names = [name for name, _ in headers]
    assert "traceparent" in names
    carried = trace.get_current_span(extract_context(headers)).get_span_context()
    assert carried.trace_id == span.get_span_context().trace_id
    assert carried.span_id == span.get_span_context().span_id


def test_no_headers_give_an_empty_context() -> None:
    assert not trace.get_current_span(extract_context(None)).get_span_context().is_valid


async def test_processor_span_links_to_the_connector_send_span(
    settings: Settings, pg_pool: asyncpg.Pool, spans: InMemorySpanExporter
) -> None:
    catalogue = TopicCatalogue.from_settings(settings)
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        await Publisher(producer, catalogue).publish([make_enrolment_created()])
    finally:
        await producer.stop()

    processor = IndicatorProcessor(settings, pool=pg_pool, relay=False)
    await processor.run(until=lambda: processor.stats.records >= 1)

    finished = spans.get_finished_spans()
    sends = [
        s for s in finished if s.kind == SpanKind.PRODUCER and s.name == f"send {catalogue.training.name}"
    ]
    processes = [s for s in finished if s.kind == SpanKind.CONSUMER and s.name.startswith("process")]
    assert len(sends) == 1 and processes
    send = sends[0]
    assert send.attributes is not None and send.attributes["messaging.system"] == "kafka"
    linked = {(link.context.trace_id, link.context.span_id) for s in processes for link in s.links}
    assert (send.context.trace_id, send.context.span_id) in linked
