"""What other replicas learnt about a deployment, merged into this replica's view of it (pure).

Replicas exchange three things: outcomes (per-second counts, summed into one window), ejections
(decided by any replica, adopted by all until they run out) and recoveries (the replica whose probes
succeeded says so; the others stop waiting). Times here are on this replica's monotonic clock; the
caller converts them from the wall-clock times replicas share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from gateway.policy.schema import Breaker
from gateway.routing.breaker import Health, State, Window, eject

# Clock conversions between processes are not exact: a note this close to what we hold is ours.
SLACK_S = 0.05


@dataclass(frozen=True, slots=True)
class Ejection:
    since: float
    until: float
    ejections: int
    reason: str

    def encode(self, offset: float) -> str:
        """As shared: times moved to the wall clock by `offset` (wall minus monotonic)."""
        return f"{self.since + offset:.3f}|{self.until + offset:.3f}|{self.ejections}|{self.reason}"

    @staticmethod
    def decode(text: str, offset: float) -> Ejection | None:
        try:
            since, until, ejections, reason = text.split("|", 3)
            return Ejection(float(since) - offset, float(until) - offset, int(ejections), reason)
        except ValueError:
            return None     # written by a different version: ignored rather than trusted


@dataclass(frozen=True, slots=True)
class SharedView:
    ejection: Ejection | None = None
    recovered_at: float | None = None
    seconds: Sequence[tuple[float, int, int]] = ()     # (start of the second, ok, failed) from every replica


def ejection_of(h: Health) -> Ejection:
    return Ejection(h.since, h.ejected_until, h.ejections, h.reason)


def merge(h: Health, view: SharedView, now: float, cfg: Breaker) -> Health:
    """This replica's health of a deployment once it has heard what the others saw. Newer news wins:
    an ejection or a recovery older than the state held here changes nothing."""
    e = view.ejection
    # A replica that never ejected the deployment (one that just started, say) takes any ejection
    # still running; one that did, only an ejection newer than its own last change.
    never_ejected = h.ejections == 0 and h.state in (State.HEALTHY, State.DEGRADED)
    if e is not None and e.until > now and (e.since > h.since + SLACK_S or never_ejected) \
            and not (h.state is State.EJECTED and h.ejected_until >= e.until - SLACK_S):
        h = replace(h, state=State.EJECTED, reason=e.reason, since=e.since, ejected_until=e.until,
                    ejections=max(h.ejections, e.ejections), consecutive_failures=0, probe_successes=0)
    if view.recovered_at is not None and h.state in (State.EJECTED, State.PROBING) \
            and view.recovered_at > h.since + SLACK_S:
        return replace(h, state=State.HEALTHY, reason="recovered (probed by another replica)",
                       since=view.recovered_at, window=Window(), consecutive_failures=0, probe_successes=0,
                       recovered_at=view.recovered_at)
    if h.state in (State.HEALTHY, State.DEGRADED):
        # Only what happened since the last change of state: an outage already acted on does not count twice.
        ok = bad = 0
        for start, good, failed in view.seconds:
            if start >= h.since and start > now - cfg.window_s:
                ok += good
                bad += failed
        n = ok + bad
        if n >= cfg.min_requests and bad / n >= cfg.failure_rate:
            return eject(h, now, cfg, f"error rate {bad / n:.0%} over {cfg.window_s:.0f} s across replicas")
    return h
