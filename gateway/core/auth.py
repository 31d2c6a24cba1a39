"""API keys → callers. Keys are held only as sha256 digests and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from gateway.policy.schema import Auth


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request: what metering attributes cost to."""

    key_id: str
    team: str
    app: str
    admin: bool = False
    metrics: bool = False           # may scrape /metrics where the policy wants a key for it


# With no `auth:` section any key is accepted; `serve` then binds to loopback only.
OPEN_CALLER = Caller(key_id="anonymous", team="default", app="default", admin=True)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Authenticator:
    def __init__(self, auth: Auth | None) -> None:
        self.open = auth is None
        self._keys: tuple[tuple[bytes, Caller], ...] = tuple(
            (bytes.fromhex(k.sha256), Caller(key_id=k.id, team=k.team, app=k.app, admin=k.admin,
                                                  metrics=k.metrics))
            for k in (auth.keys if auth is not None else ())
        )

    def authenticate(self, authorization: str | None) -> Caller | None:
        """The caller for an `Authorization` header value, or None when the key is unknown."""
        if self.open:
            return OPEN_CALLER
        if not authorization or not authorization.startswith("Bearer "):
            return None
        presented = hashlib.sha256(authorization[7:].strip().encode("utf-8")).digest()
        found: Caller | None = None
        # Every digest is compared, so the time taken does not say which key was close.
        for digest, caller in self._keys:
            if hmac.compare_digest(digest, presented):
                found = caller
        return found

    @property
    def teams(self) -> tuple[str, ...]:
        return tuple(sorted({c.team for _, c in self._keys} | ({OPEN_CALLER.team} if self.open else set())))

    @property
    def apps(self) -> tuple[str, ...]:
        return tuple(sorted({c.app for _, c in self._keys} | ({OPEN_CALLER.app} if self.open else set())))
