"""Policy keys for shared state: `state: {redis_url: redis://…, timeout_ms: 50}`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator


class StateSettings(BaseModel):
    """Where replicas share breaker, probe, budget and rate-limit state. Absent: kept in memory."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

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
