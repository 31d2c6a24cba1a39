"""A caller's own credentials for an upstream (a subscription's OAuth bearer, a personal API key):
what they are, never where they are written. They travel with one request to `credentials: client`
providers and nowhere else; what the gateway keeps of them is a fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

# Anthropic's beta flags that only make sense with the credential they came with (`oauth-2025-04-20`
# says "this bearer is a subscription's OAuth token"): they go where the credential goes, and only there.
CREDENTIAL_BETA_PREFIX = "oauth-"

Scheme = Literal["bearer", "x-api-key"]


@dataclass(frozen=True, slots=True)
class ClientCredential:
    """The caller's credential as it came: `Authorization: Bearer <secret>` or `x-api-key: <secret>`."""

    scheme: Scheme
    secret: str = field(repr=False)
    betas: tuple[str, ...] = ()     # the credential-bound `anthropic-beta` flags the client sent
    fingerprint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.secret))

    def __str__(self) -> str:
        return f"client credential {self.fingerprint}"


def fingerprint(secret: str) -> str:
    """What names a credential in memory and shared state: a hash, never the credential itself."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:24]


def split_betas(header: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An `anthropic-beta` header's flags: (those any provider may see, those bound to the credential)."""
    if not header:
        return (), ()
    free: list[str] = []
    bound: list[str] = []
    for flag in header.split(","):
        flag = flag.strip()
        if flag:
            (bound if flag.startswith(CREDENTIAL_BETA_PREFIX) else free).append(flag)
    return tuple(free), tuple(bound)
