"""OpenTelemetry traces, when an OTLP exporter is configured: off, the gateway opens no span at all.

The instrumentation (a span per GraphQL operation, one per upstream request)
uses only the OpenTelemetry API; the SDK and the OTLP exporter are the
`tracing` extra, needed only by a gateway that exports. Each app gets its own
tracer provider rather than the process-wide one, so tests (and several apps
in one process) keep their spans apart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry.trace import Tracer

from gateway.config import ObservabilitySettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["Tracing", "tracing_from"]

logger = logging.getLogger("gateway.tracing")


@dataclass
class Tracing:
    tracer: Tracer
    provider: TracerProvider

    async def shutdown(self) -> None:
        """Sends what is still batched; the exporter may block on the network: not on the loop."""
        await asyncio.to_thread(self.provider.shutdown)


def tracing_from(settings: ObservabilitySettings, environ: Mapping[str, str]) -> Tracing | None:
    """Traces exported over OTLP/HTTP to `[observability] otlp_endpoint`, or where the standard
    `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` variables say; nothing when neither is set."""
    from_environment = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not (settings.otlp_endpoint or from_environment):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(
            "an OTLP endpoint is configured but the OpenTelemetry SDK is not installed "
            "(pip install 'propgate[tracing]'): no traces are exported"
        )
        return None
    exporter = (
        OTLPSpanExporter(endpoint=settings.otlp_endpoint.rstrip("/") + "/v1/traces")
        if settings.otlp_endpoint
        else OTLPSpanExporter()
    )
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: environ.get("OTEL_SERVICE_NAME", "propgate")})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider.get_tracer("propgate"), provider)
