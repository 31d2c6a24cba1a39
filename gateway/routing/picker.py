"""Which replica of a pool takes a request, and when the pool sends it on. Pure; time comes in as `now`.

Requests ahead of a new one at an endpoint are those its last reading counted (less those of the
gateway's that finished since) and those the gateway sent since that are still in flight. With prefix
matches (gateway/routing/prefix.py), the request goes to the endpoint that holds the longest prefix of
its prompt, unless that endpoint is past its bound: no free place in its batch and more requests
ahead than `bound` × the pool's mean (bounded-load hashing, Mirrokni et al. 2018), or an expected wait
past the spill limit. Then the next longest match, then the endpoint a new request waits least at (and
of those, the least full). Requests that share a prefix so find its KV cache warm, a hot prefix spreads
to a second replica only when the first is full, and no prefix makes one replica the hot spot.

The expected wait at an endpoint is the requests that must leave its batch before a new one starts,
over its service rate: its batch size ÷ the mean time the gateway's requests that started at once
took there. The pool sends a request on when even its least wait is longer than the next target's
expected time to first token plus a margin, or than its first-token objective allows
(gateway/routing/spill.py); a pool with a free place anywhere has no wait.

A reading older than `stale_s` no longer counts: the endpoint is then judged by the gateway's own
requests in flight on it, as endpoints of servers without metrics (Ollama, plain OpenAI-wire) are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.policy.pools import Spill

FIT_ALPHA = 0.05     # the first-token fit follows about the last twenty first tokens
FIT_SAMPLES = 20     # … and predicts once it has seen that many


@dataclass(slots=True)
class FirstTokens:
    """An endpoint's time to first token as a line in the prompt bytes it had to compute (those the
    gateway's picture said it did not hold): moving means of both and of their square and product, so
    the line is a least-squares fit over recent first tokens that did not wait for a place."""

    n: int = 0
    u: float = 0.0       # uncached bytes
    t: float = 0.0       # seconds to the first token
    uu: float = 0.0
    ut: float = 0.0

    def add(self, uncached: float, ttft_s: float) -> None:
        self.n += 1
        a = 1.0 if self.n == 1 else max(FIT_ALPHA, 1.0 / self.n)
        self.u += a * (uncached - self.u)
        self.t += a * (ttft_s - self.t)
        self.uu += a * (uncached * uncached - self.uu)
        self.ut += a * (uncached * ttft_s - self.ut)

    def predict(self, uncached: float | None) -> float | None:
        """The expected time to first token for a prompt with `uncached` bytes to compute (None: the mean
        one); None until enough first tokens were seen."""
        if self.n < FIT_SAMPLES:
            return None
        if uncached is None:
            return self.t
        spread = self.uu - self.u * self.u
        per_byte = max(0.0, (self.ut - self.u * self.t) / spread) if spread > 1.0 else 0.0
        return max(0.0, self.t + per_byte * (uncached - self.u))


@dataclass(slots=True)
class EndpointLoad:
    """What is known of one endpoint's load: its last reading, and the gateway's own traffic to it."""

    running: float = 0.0
    waiting: float = 0.0
    kv: float | None = None          # KV-cache use, 0..1, when the server reports it
    read_at: float | None = None     # when the last good reading was taken; None: never read
    sent: int = 0                    # the gateway's requests sent since that reading and still on it
    in_flight: int = 0               # the gateway's requests on it now
    queued: int = 0                  # … of those, the ones sent when it had no free place
    sends: list[float] = field(default_factory=list)   # when each of those was sent, oldest first
    batch: float = 0.0               # its batch size: configured, or the most seen running while a queue stood
    gone: int = 0                    # the gateway's requests the reading counted that finished since
    service_s: float | None = None   # mean time on it of the gateway's requests that started at once
    gap_s: float | None = None       # mean time between its completions while requests queued there
    gap_at: float = 0.0              # when the last such gap was measured
    done_at: float | None = None     # the last completion while requests queued there
    first_tokens: FirstTokens = field(default_factory=FirstTokens)   # streams' that did not wait


def fresh(load: EndpointLoad, now: float, stale_s: float) -> bool:
    return load.read_at is not None and now - load.read_at <= stale_s


def ahead(load: EndpointLoad, now: float, stale_s: float) -> float:
    """Requests ahead of a new one at this endpoint: never fewer than the gateway's own on it. A reading
    races the gateway's traffic (a request sent just before the scrape may reach the server after it
    answered; one that ended there just before may end at the gateway just after, and count as gone
    twice), and a place counted free that is not makes the next request queue."""
    if fresh(load, now, stale_s):
        return max(max(0.0, load.running + load.waiting - load.gone) + _since(load), float(load.in_flight))
    return float(load.in_flight)


GAP_FRESH_S = 5.0    # completions measured under a queue this recently tell the service rate best


def expected_wait(load: EndpointLoad, now: float, stale_s: float) -> float:
    """Seconds a new request would wait at this endpoint for a place in its batch: the requests that must
    leave the batch first, over its service rate — the rate its requests completed at while a queue
    stood there (a measure of the server alone), else its batch ÷ the mean service time. 0 with a free
    place, and while neither is measured yet (then only the hard thresholds speak)."""
    if load.service_s is None and load.gap_s is None:
        return 0.0
    batch = load.batch
    if batch > 0:
        before = ahead(load, now, stale_s) + 1 - batch
    elif fresh(load, now, stale_s) and load.waiting > 0:    # queueing, its batch not yet learnt
        batch = max(1.0, load.running)
        before = queue(load, now, stale_s) + 1
    else:
        return 0.0
    if load.gap_s is not None and (load.service_s is None or now - load.gap_at <= GAP_FRESH_S):
        return max(0.0, before) * load.gap_s
    assert load.service_s is not None
    return max(0.0, before) * load.service_s / batch


def _since(load: EndpointLoad) -> int:
    """The gateway's requests the reading cannot have seen: sent after it, and not yet finished."""
    return load.sent


def queue(load: EndpointLoad, now: float, stale_s: float) -> float:
    """Requests waiting at this endpoint for a place in its batch. Those sent since the reading count
    when it already showed a queue, or once they overflow the batch size learnt from earlier readings:
    a server with room admits them into its running batch. Without that, a burst between two scrapes
    would all go to a pool one reading called idle."""
    if fresh(load, now, stale_s):
        own = max(0.0, load.in_flight - load.batch) if load.batch > 0 else 0.0   # as in ahead()
        if load.waiting > 0:     # each of the gateway's requests that left let a waiting one in
            return max(max(0.0, load.waiting - load.gone) + _since(load), own)
        if load.batch > 0:
            return max(0.0, load.running - load.gone + _since(load) - load.batch, own)
        return load.waiting
    return float(load.in_flight)


def utilisation(load: EndpointLoad, now: float, stale_s: float) -> float:
    """How full an endpoint is, 0..1: its fullest known measure — KV-cache use, running ÷ its batch size
    (learnt from readings with a queue), and 1 while requests queue there. Without a fresh reading:
    1 while the gateway has a request on it, else 0."""
    if not fresh(load, now, stale_s):
        return 1.0 if load.in_flight > 0 else 0.0
    if load.waiting > 0:
        return 1.0
    measures = [load.kv or 0.0]
    if load.batch > 0:
        measures.append(load.running / load.batch)
    return min(1.0, max(measures))


def past_threshold(load: EndpointLoad, spill: Spill, now: float, stale_s: float) -> bool:
    """Is this endpoint past the pool's sweet spot (its queue, or its KV-cache use)?"""
    if spill.queue is not None and queue(load, now, stale_s) >= spill.queue:
        return True
    return (spill.kv_percent is not None and load.kv is not None and fresh(load, now, stale_s)
            and 100.0 * load.kv >= spill.kv_percent)


def pool_full(loads: Sequence[EndpointLoad], spill: Spill | None, now: float, stale_s: float) -> bool:
    """Every endpoint (of those that may be tried) past a threshold: the pool serves no more well."""
    if spill is None or not loads:
        return False
    return all(past_threshold(load, spill, now, stale_s) for load in loads)


def pick(loads: Sequence[float], kvs: Sequence[float | None], waits: Sequence[float],
         batches: Sequence[float], matches: Sequence[int] | None, bound: float,
         wait_limit: float = math.inf, past: Sequence[bool] | None = None) -> list[int]:
    """Positions of the pool's endpoints in the order to try them: the longest prefix match within its
    bound first (when there are matches), then by least expected wait and the least full; ties keep the
    order they came in (the planner's random one). `loads` are requests ahead, `batches` each batch
    size (0: unknown). Endpoints `past` a hard threshold go after all the others, whatever their waits
    say: the pool counts as having room while one endpoint is within its thresholds, and that endpoint
    is where the room is (an estimate of the service rate, from a few completions, can be far off)."""
    n = len(loads)
    over = past if past is not None else [False] * n
    # Fullness: requests ahead per place in the batch when every batch size is known, else per endpoint.
    per = batches if all(b > 0 for b in batches) else [1.0] * n
    order = sorted(range(n), key=lambda i: (over[i], waits[i], loads[i] / per[i], kvs[i] or 0.0))
    if matches is None or n < 2 or not any(matches):
        return order
    limit = math.ceil(bound * (sum(loads) + 1) / n)
    for i in sorted(order, key=lambda i: -matches[i]):
        if matches[i] == 0:
            break
        if over[i] and not over[order[0]]:
            continue
        if waits[i] <= wait_limit and (loads[i] + 1 <= batches[i] or loads[i] + 1 <= limit):
            order.remove(i)
            order.insert(0, i)
            break
    return order
