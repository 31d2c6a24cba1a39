"""Deployment health: a pure state machine driven by attempt outcomes and an injected clock.

    healthy ──(error rate, slow first tokens)──► degraded ──► healthy
       │ │                                         │
       │ └──(failures in a row, error storm, 429 with Retry-After, first tokens far too slow)──┐
       └───────────────────────────────────────────┴──────────────────────────────────────────► ejected
    ejected ──(ejection time over)──► probing ──(probe_requests successes)──► healthy
                                         └──(a failure)──► ejected again, for longer

Quality canaries feed the same machine (`on_quality`): answers far worse than the deployment's own
baseline degrade it, mostly wrong answers eject it, and while they are poor it cannot be judged
healthy by fast, error-free traffic alone.

Ejection time is `base_ejection_s × ejections`, capped at `max_ejection_s`, and never shorter than a
Retry-After. The dispatcher owns the map from deployment to `Health`; only it applies outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from gateway.policy.schema import Breaker
from gateway.quality.verdict import Signal

BUCKETS = 10
FAST_ALPHA = 0.3      # the recent speed follows a change within a few samples …
SLOW_ALPHA = 0.05     # … the baseline only over dozens, so a brownout stands out against it;
DRIFT_ALPHA = 0.002   # a slow sample moves the baseline barely, so a lasting change is learnt only slowly
MIN_SPEED_SAMPLES = 5   # enough to rank a deployment by its speed
# Enough to judge it slower than usual: a baseline from a handful of sub-millisecond answers on an idle
# moment makes the first busy ones look tens of times slower. Until then the baseline is their plain mean.
BASELINE_SAMPLES = 20


class State(str, Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    EJECTED = "ejected"
    PROBING = "probing"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt did. `ttft_s` is the time to the first token (a stream) or to the answer."""

    ok: bool
    at: float
    ttft_s: float | None = None
    stream: bool = False
    reason: str = ""                    # the classification's word for a failure
    eject_for_s: float | None = None    # the upstream asked us to stay away this long (429 Retry-After)
    token_gap_s: float | None = None    # a whole stream: mean seconds between its events


@dataclass(frozen=True, slots=True)
class Window:
    """Successes and failures over the last `window_s`, in BUCKETS time buckets."""

    counts: tuple[tuple[int, int, int], ...] = ()   # (bucket index, ok, failed)

    def add(self, ok: bool, now: float, window_s: float) -> Window:
        width = window_s / BUCKETS
        index = int(now // width)
        kept = [c for c in self.counts if c[0] > index - BUCKETS]
        if kept and kept[-1][0] == index:
            i, good, bad = kept[-1]
            kept[-1] = (i, good + ok, bad + (not ok))
        else:
            kept.append((index, int(ok), int(not ok)))
        return Window(tuple(kept))

    def totals(self, now: float, window_s: float) -> tuple[int, int]:
        index = int(now // (window_s / BUCKETS))
        good = bad = 0
        for i, g, b in self.counts:
            if i > index - BUCKETS:
                good += g
                bad += b
        return good, bad

    def failure_rate(self, now: float, window_s: float) -> tuple[float, int]:
        good, bad = self.totals(now, window_s)
        n = good + bad
        return (bad / n if n else 0.0), n


@dataclass(frozen=True, slots=True)
class Speed:
    """A recent and a baseline moving average of one latency signal."""

    recent: float = 0.0
    baseline: float = 0.0
    samples: int = 0

    def add(self, seconds: float, slow_factor: float) -> Speed:
        if self.samples == 0:
            return Speed(seconds, seconds, 1)
        if self.samples < BASELINE_SAMPLES:
            # Still learning what is usual: every sample counts alike, none is "slow" yet.
            alpha = max(SLOW_ALPHA, 1 / (self.samples + 1))
        else:
            alpha = SLOW_ALPHA if seconds <= slow_factor * self.baseline else DRIFT_ALPHA
        return Speed(self.recent + FAST_ALPHA * (seconds - self.recent),
                     self.baseline + alpha * (seconds - self.baseline), self.samples + 1)

    def restart(self, seconds: float) -> Speed:
        """After an ejection the old recent speed says nothing: start it again from this sample."""
        return Speed(seconds, self.baseline or seconds, self.samples + 1)

    def slowdown(self, min_gap_s: float = 0.0) -> float:
        """How many times slower than usual it is now (1.0 when too little is known, or when the gap
        is under `min_gap_s`: on a fast link a few milliseconds of jitter are many times nothing)."""
        if self.samples < BASELINE_SAMPLES or self.baseline <= 0 or self.recent - self.baseline < min_gap_s:
            return 1.0
        return self.recent / self.baseline


@dataclass(frozen=True, slots=True)
class Health:
    state: State = State.HEALTHY
    reason: str = ""
    since: float = 0.0
    ejections: int = 0
    ejected_until: float = 0.0
    consecutive_failures: int = 0
    probe_successes: int = 0
    window: Window = Window()
    ttft: Speed = Speed()            # streams: time to first token
    latency: Speed = Speed()         # non-stream: time to the whole answer
    quality: str = ""                # while the canaries find answers poor: why (else empty)
    token_gap: Speed = Speed()       # streams: seconds between events (the token rate, inverted)
    recovered_at: float | None = None  # when it last came back from an ejection (slow start counts from here)
    asked_until: float = 0.0         # the upstream asked us to stay away until then (a 429's Retry-After)

    def speed_of(self, stream: bool) -> Speed:
        return self.ttft if stream else self.latency


def current(h: Health, now: float, cfg: Breaker) -> Health:
    """The health as of `now`: an ejection that has run out becomes probing; old ejections are forgiven."""
    if h.state is State.EJECTED and now >= h.ejected_until:
        return replace(h, state=State.PROBING, reason="probing after ejection", since=now, probe_successes=0)
    if h.state is State.HEALTHY and h.ejections and now - h.since >= cfg.max_ejection_s:
        return replace(h, ejections=0)
    return h


def ejection_seconds(ejections: int, cfg: Breaker, at_least: float | None = None) -> float:
    seconds = min(cfg.base_ejection_s * max(1, ejections), cfg.max_ejection_s)
    return max(seconds, at_least or 0.0)


def eject(h: Health, now: float, cfg: Breaker, reason: str, at_least: float | None = None) -> Health:
    count = h.ejections + 1
    return replace(h, state=State.EJECTED, reason=reason, since=now, ejections=count,
                   ejected_until=now + ejection_seconds(count, cfg, at_least), consecutive_failures=0,
                   probe_successes=0, asked_until=now + at_least if at_least else h.asked_until)


def _with_sample(h: Health, o: Outcome, cfg: Breaker, first_probe: bool = False) -> Health:
    window = h.window.add(o.ok, o.at, cfg.window_s)
    consecutive = 0 if o.ok else h.consecutive_failures + 1
    ttft, latency = h.ttft, h.latency
    if o.ok and o.ttft_s is not None:
        speed = h.speed_of(o.stream)
        speed = speed.restart(o.ttft_s) if first_probe else speed.add(o.ttft_s, cfg.slow_ttft_factor)
        if o.stream:
            ttft = speed
        else:
            latency = speed
    gap = h.token_gap if o.token_gap_s is None else h.token_gap.add(o.token_gap_s, cfg.slow_tokens_factor)
    # One new Health per outcome, not one per changed field: this runs on every request.
    return replace(h, window=window, consecutive_failures=consecutive, ttft=ttft, latency=latency, token_gap=gap)


def _judge(h: Health, o: Outcome, cfg: Breaker) -> Health:
    """Healthy or degraded, or ejected, from the signals gathered so far."""
    now = o.at
    if not o.ok and o.eject_for_s:
        return eject(h, now, cfg, f"rate limited, Retry-After {o.eject_for_s:.0f} s", o.eject_for_s)
    if h.consecutive_failures >= cfg.consecutive_failures:
        return eject(h, now, cfg, f"{h.consecutive_failures} failures in a row ({o.reason})")
    rate, n = h.window.failure_rate(now, cfg.window_s)
    if n >= cfg.min_requests and rate >= cfg.failure_rate:
        return eject(h, now, cfg, f"error rate {rate:.0%} over {cfg.window_s:.0f} s ({o.reason or 'errors'})")
    slowdown = max(h.ttft.slowdown(cfg.slow_min_s), h.latency.slowdown(cfg.slow_min_s))
    if slowdown >= cfg.eject_ttft_factor:
        return eject(h, now, cfg, f"first tokens {slowdown:.0f}x slower than usual")
    reason = ""
    tokens_slowdown = h.token_gap.slowdown(cfg.slow_token_min_s)
    if slowdown >= cfg.slow_ttft_factor:
        reason = f"first tokens {slowdown:.1f}x slower than usual"
    elif tokens_slowdown >= cfg.slow_tokens_factor:
        reason = f"tokens {tokens_slowdown:.0f}x slower than usual"
    elif n >= cfg.min_requests and rate >= cfg.degraded_failure_rate:
        reason = f"error rate {rate:.0%} over {cfg.window_s:.0f} s"
    elif h.quality:
        reason = h.quality   # fast and error-free, but answering worse: still degraded
    state = State.DEGRADED if reason else State.HEALTHY
    if state is h.state and reason == h.reason:
        return h
    return replace(h, state=state, reason=reason, since=now if state is not h.state else h.since)


def on_outcome(h: Health, o: Outcome, cfg: Breaker) -> Health:
    """The next health of a deployment after one attempt's outcome."""
    h = current(h, o.at, cfg)
    if h.state is State.EJECTED:
        # An attempt that began before the ejection: it informs the window, not the state.
        return replace(h, window=h.window.add(o.ok, o.at, cfg.window_s))
    if h.state is State.PROBING:
        if not o.ok:
            return eject(h, o.at, cfg, f"probe failed ({o.reason})", o.eject_for_s)
        h = _with_sample(h, o, cfg, first_probe=h.probe_successes == 0)
        slowdown = h.speed_of(o.stream).slowdown(cfg.slow_min_s) if o.ttft_s is not None else 1.0
        if slowdown >= cfg.eject_ttft_factor:
            return eject(h, o.at, cfg, f"probe still {slowdown:.0f}x slower than usual")
        if h.probe_successes + 1 < cfg.probe_requests:
            return replace(h, probe_successes=h.probe_successes + 1)
        # Recovered: judge afresh, from a clean window so the outage does not count twice.
        h = replace(h, state=State.DEGRADED if h.quality else State.HEALTHY, reason=h.quality or "recovered",
                    since=o.at, window=Window(), consecutive_failures=0, probe_successes=0, recovered_at=o.at)
        return h
    return _judge(_with_sample(h, o, cfg), o, cfg)


def back_in(h: Health, now: float) -> float | None:
    """Seconds until an ejected deployment may be tried again."""
    if h.state is State.EJECTED:
        return max(0.0, h.ejected_until - now)
    return None


def on_quality(h: Health, signal: Signal, why: str, now: float, cfg: Breaker) -> Health:
    """The next health of a deployment after a canary run: `why` is the quality reason to show."""
    h = current(h, now, cfg)
    if signal is Signal.OK:
        if not h.quality:
            return h
        h = replace(h, quality="")
        if h.reason.startswith("quality"):
            if h.state is State.DEGRADED:
                return replace(h, state=State.HEALTHY, reason="recovered", since=now)
            if h.state is State.EJECTED:   # the canaries were its probes: real traffic may try it now
                return replace(h, state=State.PROBING, reason="probing after a quality ejection", since=now,
                               ejected_until=now, probe_successes=0)
        return h
    if signal is Signal.EJECTED:
        if h.state is State.EJECTED:
            return replace(h, quality=why)
        return replace(eject(h, now, cfg, why), quality=why)
    if h.state is State.HEALTHY or (h.state is State.DEGRADED and h.reason.startswith("quality")):
        return replace(h, state=State.DEGRADED, reason=why, since=now if h.state is State.HEALTHY else h.since,
                       quality=why)
    return replace(h, quality=why)   # degraded or out for another reason already; it applies once that ends
