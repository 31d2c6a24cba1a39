"""Policy keys for replicas that agree: where state is shared (`state:`) and the limits it enforces
across them (`rate_limits:`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

PerMinute = Annotated[int, Field(ge=1, le=1_000_000_000)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class StateSettings(_Closed):
    """Where replicas share breaker, probe, budget and rate-limit state. Absent: kept in memory."""

    redis_url: SecretStr                                           # may carry a password: never shown
    timeout_ms: Annotated[int, Field(ge=1, le=5_000)] = 50         # the most one Redis call may take
    sync_ms: Annotated[int, Field(ge=50, le=1_000)] = 250          # outcomes out, snapshot in, this often
    prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")] = "recloser"

    @field_validator("redis_url")
    @classmethod
    def a_redis_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        return value


class RateLimit(_Closed):
    """At most `rpm` requests and `tpm` tokens (input + output, as used) in any minute."""

    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@+-]+$")]
    team: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    key: Annotated[str, Field(min_length=1, max_length=128)] | None = None     # an API key's id
    rpm: PerMinute | None = None
    tpm: PerMinute | None = None

    @model_validator(mode="after")
    def owner_and_limit(self) -> RateLimit:
        if (self.team is None) == (self.key is None):
            raise ValueError("give exactly one of team and key")
        if self.rpm is None and self.tpm is None:
            raise ValueError("give rpm, tpm or both")
        return self
