"""Coming back from an ejection, decided purely: active probes while ejected, and slow start after.

An ejected deployment is probed on a short jittered interval, whatever the length of its ejection,
so a provider that recovered is noticed within seconds even after a long outage. A probe that
succeeds ends the ejection at once (the deployment goes on probing with real traffic); a probe that
fails changes nothing, and in particular does not lengthen the ejection. Once recovered, a
deployment's share of traffic ramps up over `slow_start_s` instead of jumping back to all of it.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.policy.schema import Breaker
from gateway.routing.breaker import Health, Outcome, State, current, on_outcome

SLOW_START_FLOOR = 0.1   # the share a just-recovered deployment starts from
JITTER = 0.25            # probe intervals vary by this much either way, so replicas do not probe in step


def probe_interval(cfg: Breaker, u: float) -> float:
    """The wait before the next probe, given a uniform random `u` in [0, 1)."""
    return cfg.probe_interval_s * (1 - JITTER + 2 * JITTER * u)


def next_probe_at(h: Health, after: float, cfg: Breaker, u: float) -> float:
    """When to probe an ejected deployment next: a jittered interval after `after` (its ejection, or
    the last probe), and never before a Retry-After the upstream gave has run out."""
    return max(after + probe_interval(cfg, u), h.asked_until)


def on_probe(h: Health, o: Outcome, cfg: Breaker) -> Health:
    """The next health after an active probe's outcome."""
    h = current(h, o.at, cfg)
    if h.state is State.EJECTED:
        if not o.ok:  # still down: noted, and the ejection left as it is (unless told to stay away longer)
            asked = o.at + o.eject_for_s if o.eject_for_s else 0.0
            return replace(h, window=h.window.add(False, o.at, cfg.window_s), asked_until=max(h.asked_until, asked),
                           ejected_until=max(h.ejected_until, asked))
        h = replace(h, state=State.PROBING, reason="a probe succeeded", since=o.at, ejected_until=o.at,
                    probe_successes=0)
    return on_outcome(h, o, cfg)  # probing: the probe counts as one of its probe requests


def traffic_share(h: Health, now: float, cfg: Breaker) -> float:
    """The share of its usual traffic a deployment gets now: ramping from a floor to all of it over
    `slow_start_s` after it recovered, 1.0 otherwise."""
    if h.recovered_at is None or cfg.slow_start_s <= 0 or h.state not in (State.HEALTHY, State.DEGRADED):
        return 1.0
    elapsed = now - h.recovered_at
    if elapsed >= cfg.slow_start_s:
        return 1.0
    return max(SLOW_START_FLOOR, elapsed / cfg.slow_start_s)
