"""OpenTelemetry for the demo: a real SDK provider, OTLP export when asked, SAQ instrumented."""

from __future__ import annotations

import logging
import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from opentelemetry.instrumentation.saq import SAQInstrumentor

logger = logging.getLogger(__name__)


def setup(service_name: str) -> TracerProvider:
    """Configure tracing once per process. Exports OTLP/HTTP when
    OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set, e.g. to Jaeger."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    service = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        logger.info("exporting spans with OTLP/HTTP")
    trace.set_tracer_provider(provider)
    SAQInstrumentor().instrument()
    return provider
