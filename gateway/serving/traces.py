"""Opening the process's tracer at start: OpenTelemetry's when the settings turn traces on, imported
only then; the no-op tracer otherwise."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

from gateway.flow.tracing import NO_TRACER, Tracer, TraceSettingsError, trace_settings
from gateway.policy.tracing import Tracing

_logger = logging.getLogger("recloser.tracing")


def open_tracer(policy: Tracing | None, env: Mapping[str, str]) -> Tracer:
    """The tracer the settings ask for: NO_TRACER when traces are off, and OpenTelemetry's (imported
    only now) when on. Traces that cannot be had are logged and left off: requests are still served."""
    try:
        settings = trace_settings(policy, env)
    except TraceSettingsError as err:
        _logger.error("traces are off: %s", err)
        return NO_TRACER
    if settings is None:
        return NO_TRACER
    try:
        from gateway.flow.otel import OtelTracer
    except ImportError as err:
        _logger.error("traces are off: OpenTelemetry is not installed (pip install 'recloser[tracing]'): %s", err)
        return NO_TRACER
    _logger.info("traces go to %s over %s as service %s, sampled %s", where(settings.endpoint), settings.protocol,
                 settings.service_name, settings.sampler)
    return OtelTracer(settings)


def where(endpoint: str) -> str:
    """The collector's address for a log line: a user and password in the URL stay out of it."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
