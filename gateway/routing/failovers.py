"""The last failovers of the process, newest last, in a bounded ring: when, on which route, from which
target to which, and why. The console shows them; the metrics count them
(recloser_failovers_total)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

KEPT = 50


@dataclass(frozen=True, slots=True)
class Failover:
    at: float           # seconds on the gateway's (monotonic) clock
    route: str
    source: str         # the deployment that failed (its key: provider/model[@endpoint])
    target: str         # the deployment tried next
    reason: str         # the classification's word for the failure


class FailoverRing:
    def __init__(self, size: int = KEPT) -> None:
        self.events: deque[Failover] = deque(maxlen=size)

    def add(self, event: Failover) -> None:
        self.events.append(event)

    def latest(self, n: int) -> list[Failover]:
        """The `n` newest, newest first."""
        return list(reversed(self.events))[:n]
