"""Policy keys for OpenTelemetry traces (`tracing:`): the settings the standard OTEL_* variables carry,
for a policy that would rather say them itself. What the block leaves out, the variables fill."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Sampler = Literal["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off",
                  "parentbased_traceidratio"]
SAMPLERS: tuple[str, ...] = Sampler.__args__   # type: ignore[attr-defined]
Protocol = Literal["http/protobuf", "http/json"]
PROTOCOLS: tuple[str, ...] = Protocol.__args__  # type: ignore[attr-defined]


class Tracing(BaseModel):
    """Where spans go and which are kept (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, …_PROTOCOL,
    OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    enabled: bool = True                     # false: no traces, whatever the environment says
    # The OTLP/HTTP traces URL, used as given (like OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): …/v1/traces.
    endpoint: Annotated[str, StringConstraints(min_length=8, max_length=2048)] | None = None
    protocol: Protocol | None = None         # default http/protobuf
    service_name: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None   # default recloser
    sampler: Sampler | None = None           # default parentbased_always_on
    sampler_arg: Annotated[float, Field(ge=0, le=1)] | None = None   # the ratio of the traceidratio samplers

    @field_validator("endpoint")
    @classmethod
    def an_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("endpoint must be an http:// or https:// URL (OTLP over HTTP), e.g. "
                             "http://collector:4318/v1/traces")
        return value
