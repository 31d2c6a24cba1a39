"""The deployment: below routing, attempts, metering and every upstream client, since all of them speak of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.policy.schema import ModelFacts, Timeouts


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model at one provider: the unit that breakers, metrics and failover speak of."""

    provider: str
    model: str
    kind: str                       # "openai" for the fast path, else the litellm provider name
    base_url: str
    timeouts: Timeouts
    facts: ModelFacts | None = None
    api_key: str | None = field(default=None, repr=False)
    responses: bool = False         # the upstream answers the Responses API itself

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"
