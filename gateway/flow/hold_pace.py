"""When held requests go: the pure decisions of the hold line (gateway/flow/holding.py).

A route whose targets all failed keeps its held requests until it has shown it can answer again:
a probe saw a target back (the breaker moved it out of its ejection), or a released request was
answered. From then on they are let go at the pace the route's slow start gives a recovered
target: a tenth of the line at once, all of it once `slow_start_s` has passed. While there is no
such sign, but some target is not ejected (the breaker is off, or has not ejected a target that
keeps failing), one scout at a time tries the route, every `probe_interval_s`: a scout that is
answered is the sign; one that fails goes back to its place in the line.
"""

from __future__ import annotations

import math

from gateway.routing.recovery import SLOW_START_FLOOR

def release_quota(waiting: int, released: int, since_back_s: float, slow_start_s: float) -> int:
    """How many more of a route's held requests may go now, `since_back_s` after it came back,
    `released` of them having gone since then: a share of all it held that ramps up from
    SLOW_START_FLOOR to all of them over `slow_start_s`."""
    if waiting <= 0:
        return 0
    if slow_start_s <= 0 or since_back_s >= slow_start_s:
        return waiting
    share = max(SLOW_START_FLOOR, since_back_s / slow_start_s)
    return max(0, min(waiting, math.ceil(share * (waiting + released)) - released))


def scouts_now(waiting: int, out: int, any_target_standing: bool, scout_due: bool) -> int:
    """Before a route shows it is back: one held request at a time goes to try it, when some target
    is not ejected and the last scout is an interval ago (else the route is left to the probes)."""
    return 1 if waiting > 0 and out == 0 and any_target_standing and scout_due else 0


def refused(priority: str, held_now: int, max_held: int) -> str | None:
    """Why a request that no target could answer is not held (None: it is): sheddable requests are
    never held, and the line is bounded."""
    if priority == "sheddable":
        return "sheddable requests are not held"
    if held_now >= max_held:
        return f"{max_held} requests are held already"
    return None
