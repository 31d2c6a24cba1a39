"""The gateway's own pauses: how late its event loop ran, summed, so that time the gateway spent not
reading its sockets (a collection, a burst of new streams, a saturated core) is never blamed on a
provider. Pure; the admission's timer feeds it one measurement per tick.

An upstream's first token that arrived while the loop was busy elsewhere is read only when the loop
gets to it: the time to first token the gateway sees is the provider's time plus the loop's
lateness meanwhile. What a breaker or a first-token limit judges is the first minus the second.
"""

from __future__ import annotations

# A timer's own jitter (well under a millisecond on an idle loop) is not a pause: without this, an
# idle gateway would discount a few per cent of every wait.
TOLERANCE_S = 0.002
# A wait the gateway's loop was paused for at least this share of was the gateway's, whatever timed out.
OWN_SHARE = 0.5


class LoopPauses:
    """The loop's lateness beyond the tolerance, summed over its ticks."""

    def __init__(self) -> None:
        self.total_s = 0.0

    def tick(self, late_s: float) -> None:
        """One tick of the loop's timer ran `late_s` late."""
        if late_s > TOLERANCE_S:
            self.total_s += late_s - TOLERANCE_S

    def so_far(self, overdue_s: float = 0.0) -> float:
        """The pauses until now, with the current one: a timer overdue by `overdue_s` means the loop
        is late right now by that much, though its tick has not run yet."""
        return self.total_s + max(0.0, overdue_s - TOLERANCE_S)


def provider_seconds(elapsed_s: float, paused_s: float) -> float:
    """The part of a wait that was the provider's: what elapsed, less the gateway's pauses meanwhile."""
    return max(0.0, elapsed_s - paused_s)


def gateways_own(elapsed_s: float, paused_s: float) -> bool:
    """Was a wait that timed out mostly the gateway's own pause? (Then it is no fault of the provider's:
    a connect or first-token bound ran out while the loop was not reading its sockets.)"""
    return elapsed_s > 0 and paused_s >= OWN_SHARE * elapsed_s
