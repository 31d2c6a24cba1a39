"""The trace settings, alone: the export process (gateway/flow/otel_export.py) reads them without
importing what the gateway's tracing hooks need (the policy's schema and the request flow's records)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TraceSettings:
    endpoint: str              # the OTLP/HTTP traces URL
    protocol: str              # http/protobuf or http/json
    service_name: str
    sampler: str
    sampler_arg: float         # the ratio of the traceidratio samplers
