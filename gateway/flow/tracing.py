"""Traces at the edges: the hooks the request flow calls as a request and its upstream attempts start
and end, and which settings turn them on.

`NO_TRACER` (the default) does nothing and imports nothing: with tracing off a request pays a few
empty calls. With an OTLP endpoint set (the standard OTEL_* variables, or the policy's `tracing:`),
the serving shell (gateway/serving/traces.py) builds gateway/flow/otel.py's tracer instead, the one
module that imports OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.metering.record import CallRecord
from gateway.flow.trace_settings import TraceSettings as TraceSettings
from gateway.policy.tracing import PROTOCOLS, SAMPLERS, Tracing
from gateway.routing.request_log import AttemptRecord, RequestLog


class Tracer:
    """No traces: every hook does nothing. gateway/flow/otel.py's tracer overrides each one."""

    def request_started(self, log: RequestLog, headers: Mapping[str, str]) -> None:
        """A client request reached the attempt loop; `headers` may carry the client's traceparent."""

    def attempt_started(self, log: RequestLog, record: AttemptRecord) -> str:
        """An upstream attempt is about to be made: the traceparent to send with it ("" for none)."""
        return ""

    def attempt_failed(self, log: RequestLog, record: AttemptRecord) -> None:
        """An attempt ended without an answer (`record.outcome` says why)."""

    def request_finished(self, log: RequestLog, status: int, ended: float) -> None:
        """The client has its answer (or error) with `status`; `ended` is on the clock of `log.started`."""

    def request_charged(self, log: RequestLog, record: CallRecord) -> None:
        """The meter's record of the request: its tokens and cost (told by the meter's hook)."""

    async def start(self) -> None:
        """Starts what sends the spans (the gateway is starting)."""

    async def close(self) -> None:
        """Sends what is still queued, within a bound."""


NO_TRACER = Tracer()


class TraceSettingsError(ValueError):
    """An OTEL_* variable with a value the gateway cannot honour."""


def trace_settings(policy: Tracing | None, env: Mapping[str, str]) -> TraceSettings | None:
    """The trace settings, or None when traces are off: the policy's `tracing:` where it names a
    setting, the standard OTEL_* variables for the rest. Traces are on when an endpoint is known."""
    if policy is not None and not policy.enabled:
        return None
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or \
            env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    endpoint = policy.endpoint if policy is not None else None
    if not endpoint:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if not endpoint:   # the base endpoint names the collector: traces have their own path on it
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        endpoint = base.rstrip("/") + "/v1/traces" if base else ""
    if not endpoint:
        return None
    if not endpoint.startswith(("http://", "https://")):
        raise TraceSettingsError(f"the OTLP traces endpoint {endpoint!r} is no http:// or https:// URL "
                                 "(traces are sent over OTLP/HTTP)")
    protocol = (policy.protocol if policy is not None else None) or _env(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") \
        or _env(env, "OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    if protocol not in PROTOCOLS:
        raise TraceSettingsError(f"OTLP protocol {protocol!r} is not supported: traces go over {' or '.join(PROTOCOLS)}")
    sampler = (policy.sampler if policy is not None else None) or _env(env, "OTEL_TRACES_SAMPLER").lower() \
        or "parentbased_always_on"
    if sampler not in SAMPLERS:
        raise TraceSettingsError(f"OTEL_TRACES_SAMPLER={sampler!r} is not one of {', '.join(SAMPLERS)}")
    ratio = policy.sampler_arg if policy is not None else None
    if ratio is None:
        raw = _env(env, "OTEL_TRACES_SAMPLER_ARG")
        try:
            ratio = float(raw) if raw else 1.0
        except ValueError:
            raise TraceSettingsError(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not a number between 0 and 1") from None
        if not 0.0 <= ratio <= 1.0:
            raise TraceSettingsError(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not a number between 0 and 1")
    service = (policy.service_name if policy is not None else None) or _env(env, "OTEL_SERVICE_NAME") or "recloser"
    return TraceSettings(endpoint, protocol, service, sampler, ratio)


def _env(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()

