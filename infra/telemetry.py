"""OpenTelemetry traces and metrics set up once per process, and trace context in Kafka headers."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import Meter
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Tracer

from infra.settings import TelemetrySettings

logger = logging.getLogger(__name__)

_INSTRUMENTATION = "alcance"
_configured = False
_tracer_provider: TracerProvider | None = None
_meter_provider: MeterProvider | None = None


def setup_telemetry(settings: TelemetrySettings) -> None:
    """Install the tracer and meter providers chosen by settings; later calls do nothing.

    With exporter "none" the SDK still creates spans (so trace context propagates through Kafka) but
    nothing leaves the process.
    """
    global _configured, _tracer_provider, _meter_provider
    if _configured:
        return
    resource = Resource.create({"service.name": settings.service_name})
    tracer_provider = TracerProvider(resource=resource)
    readers: list[MetricReader] = []
    span_exporter: SpanExporter | None = None
    if settings.exporter == "console":
        span_exporter = ConsoleSpanExporter()
        readers.append(
            PeriodicExportingMetricReader(
                ConsoleMetricExporter(), export_interval_millis=settings.metric_export_interval_ms
            )
        )
    elif settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = (settings.otlp_endpoint or "http://127.0.0.1:4318").rstrip("/")
        span_exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
        readers.append(
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"),
                export_interval_millis=settings.metric_export_interval_ms,
            )
        )
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _tracer_provider, _meter_provider = tracer_provider, meter_provider
    _configured = True
    logger.debug("telemetry exporter: %s", settings.exporter)


def shutdown_telemetry() -> None:
    """Flush and stop the exporters installed by `setup_telemetry`."""
    if _tracer_provider is not None:
        _tracer_provider.shutdown()
    if _meter_provider is not None:
        _meter_provider.shutdown()


def tracer() -> Tracer:
    """The tracer every alcance module uses."""
    return trace.get_tracer(_INSTRUMENTATION)


def meter() -> Meter:
    """The meter every alcance module uses."""
    return metrics.get_meter(_INSTRUMENTATION)


def inject_headers(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Append the current trace context (`traceparent`, `tracestate`) to Kafka record headers."""
    carrier: dict[str, str] = {}
    inject(carrier)
    headers.extend((key, value.encode()) for key, value in carrier.items())
    return headers


def extract_context(headers: Iterable[tuple[str, bytes]] | None) -> Context:
    """The trace context carried in Kafka record headers (an empty context when there is none)."""
    carrier: Mapping[str, str] = {
        key: value.decode(errors="replace")
        for key, value in (headers or ())
        if key in ("traceparent", "tracestate") and value is not None
    }
    return extract(carrier)
