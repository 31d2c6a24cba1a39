"""The deployment: below routing, attempts, metering and every upstream client, since all of them speak of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.policy.schema import ModelFacts, Timeouts


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model at one provider: the unit that breakers, metrics and failover speak of."""

    provider: str
    model: str
    kind: str                       # openai, azure, anthropic (native wires), else the litellm provider name
    base_url: str
    timeouts: Timeouts
    facts: ModelFacts | None = None
    api_key: str | None = field(default=None, repr=False)
    responses: bool = False         # the upstream answers the Responses API itself
    api_version: str | None = None  # Azure's api-version query parameter, Anthropic's anthropic-version header
    beta: tuple[str, ...] = ()      # Anthropic's anthropic-beta header, one value per feature
    via_litellm: bool = False       # a native kind taken through litellm's adapter (the policy's `via: litellm`)
    endpoint: str = ""              # one replica of a pool (its host:port): breakers and baselines are its own
    client_credentials: bool = False   # called with the caller's own credentials (`credentials: client`)
    credential_cooldown_s: float = 60.0   # how long a refused client credential is not tried here again

    @property
    def key(self) -> str:
        if self.endpoint:
            return f"{self.provider}/{self.model}@{self.endpoint}"
        return f"{self.provider}/{self.model}"
