"""Client credentials that stopped working: which caller's credential is kept off which provider,
and until when. Keyed by provider and the credential's fingerprint (never the credential), so one
caller's expired token or spent subscription sends that caller elsewhere without a round trip while
every other caller's credential keeps using the provider, whose breaker never hears of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.core.deployment import Deployment
from gateway.providers.base import AttemptError, Failure

# 401/403: the credential is refused (expired, revoked, the provider's auth down); 429: a usage limit.
REFUSING_STATUSES = frozenset({401, 403, 429})


def refuses_credential(d: Deployment, err: AttemptError) -> bool:
    """Is `err` a client-credential deployment refusing the caller's own credential?"""
    return d.client_credentials and err.failure in (Failure.STATUS, Failure.CREDENTIAL) \
        and err.status in REFUSING_STATUSES


def cooldown_s(d: Deployment, err: AttemptError) -> float:
    """How long the refused credential stays off `d`'s provider: a usage limit until it resets (its
    own reset, else Retry-After); a refusal, or a limit that names no end, the provider's cool-down."""
    if err.status == 429:
        for said in (err.limit_reset_s, err.retry_after_s):
            if said is not None and said > 0:
                return said
    return d.credential_cooldown_s


Key = tuple[str, str]   # (provider, credential fingerprint)

# With shared state, a replica asks the others about the credentials it served lately: at most this
# many, seen within this long (a credential first seen here during its cool-down costs one round trip).
SHARED_RECENT_S = 900.0
SHARED_MAX = 2_000


@dataclass
class CredentialCooldowns:
    """Until when (on the dispatcher's clock) each (provider, fingerprint) is cooling down; with
    shared state, which of those are news for other replicas, and which credentials to ask about."""

    max_entries: int = 100_000
    until: dict[Key, float] = field(default_factory=dict)
    fresh: dict[Key, float] = field(default_factory=dict)     # cooled here, not yet told to other replicas
    seen: dict[Key, float] = field(default_factory=dict)      # consulted here lately (oldest first)
    sharing: bool = False

    def cool(self, provider: str, fingerprint: str, until: float, now: float, told: bool = False) -> None:
        """Keeps the credential off `provider` until `until`; `told`: heard from another replica."""
        if len(self.until) >= self.max_entries:
            self.forget_expired(now)
            if len(self.until) >= self.max_entries:   # still full: the soonest to end makes room
                del self.until[min(self.until, key=self.until.__getitem__)]
        key = (provider, fingerprint)
        if until <= self.until.get(key, 0.0):
            return
        self.until[key] = until
        if self.sharing and not told:
            self.fresh[key] = until

    def back_in(self, provider: str, fingerprint: str, now: float) -> float | None:
        """Seconds until the credential may be tried on `provider` again (None: it may now)."""
        if self.sharing:
            key = (provider, fingerprint)
            self.seen.pop(key, None)   # re-inserted last: the dict stays ordered by when each was seen
            self.seen[key] = now
            if len(self.seen) > SHARED_MAX:
                del self.seen[next(iter(self.seen))]
        until = self.until.get((provider, fingerprint))
        if until is None:
            return None
        if until <= now:
            del self.until[(provider, fingerprint)]
            return None
        return until - now

    def forget_expired(self, now: float) -> None:
        for key in [k for k, until in self.until.items() if until <= now]:
            del self.until[key]

    def take_fresh(self) -> dict[Key, float]:
        """The cool-downs other replicas have not heard of yet (they are then taken as told)."""
        fresh, self.fresh = self.fresh, {}
        return fresh

    def untold(self, fresh: dict[Key, float]) -> None:
        """An exchange that failed: its news waits for the next one."""
        for key, until in fresh.items():
            self.fresh[key] = max(until, self.fresh.get(key, 0.0))

    def asked(self, now: float) -> list[Key]:
        """The credentials to ask other replicas about: those this replica served lately."""
        while self.seen and next(iter(self.seen.values())) < now - SHARED_RECENT_S:
            del self.seen[next(iter(self.seen))]
        return list(self.seen)
