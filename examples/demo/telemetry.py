"""OpenTelemetry for the demo: real SDK providers, OTLP export when asked, SAQ instrumented.

With OTEL_EXPORTER_OTLP_ENDPOINT set (the Docker set-up), spans and metrics go out over
OTLP/HTTP; the workers report their queue's health (``queue_health=True``), which the
Grafana dashboard of docker/ shows.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from opentelemetry.instrumentation.saq import SAQInstrumentor

logger = logging.getLogger(__name__)


def setup(service_name: str, *, export_logs: bool = False) -> TracerProvider:
    """Configure tracing once per process. Exports OTLP/HTTP when
    OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set, e.g. to Jaeger; with
    ``export_logs`` (a worker), log lines too when OTEL_EXPORTER_OTLP_LOGS_ENDPOINT is set,
    as docs/guides/remote-workers.md does."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    service = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if export_logs and os.environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"):
        _export_logs(provider.resource)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        logger.info("exporting spans with OTLP/HTTP")
    trace.set_tracer_provider(provider)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        metrics.set_meter_provider(_meter_provider(provider.resource))
        logger.info("exporting metrics with OTLP/HTTP")
    SAQInstrumentor().instrument(queue_health=True)
    return provider


def _export_logs(resource: Resource) -> None:
    """Log lines of the process, through the root logger, to the OTLP logs endpoint."""
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    set_logger_provider(logger_provider)
    logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))
    logger.info("exporting log lines with OTLP/HTTP")


def _meter_provider(resource: Resource) -> MeterProvider:
    """Metrics every OTEL_METRIC_EXPORT_INTERVAL ms (60 s by default) to the OTLP endpoint."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    return MeterProvider(metric_readers=[reader], resource=resource)
