"""Which replica of a pool takes a request, and when the pool is full. Pure; time comes in as `now`.

A request goes to the endpoint with the fewest requests ahead of it (running, waiting, and those the
gateway sent since the endpoint's last reading that are still in flight): the live stand-in for the least expected wait, and
one that moves traffic off a slowed replica, since its requests pile up (Little's law). With an
affinity key, the request goes to the endpoint the key hashes to first (rendezvous hashing), unless
that endpoint's load is past `bound` × the pool's mean (bounded-load consistent hashing, Mirrokni et
al. 2018): then the key's next endpoint in hash order. Requests sharing a prefix so find its KV cache
warm, and no key can make one replica the hot spot.

A reading older than `stale_s` no longer counts: the endpoint is then judged by the gateway's own
requests in flight on it, as endpoints of servers without metrics (Ollama, plain OpenAI-wire) are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.policy.schema import Spill

_MASK = (1 << 64) - 1


@dataclass(slots=True)
class EndpointLoad:
    """What is known of one endpoint's load: its last reading, and the gateway's own traffic to it."""

    running: float = 0.0
    waiting: float = 0.0
    kv: float | None = None          # KV-cache use, 0..1, when the server reports it
    read_at: float | None = None     # when the last good reading was taken; None: never read
    sent: int = 0                    # requests the gateway sent since that reading (finished or not)
    in_flight: int = 0               # the gateway's requests on it now
    batch: float = 0.0               # the most requests seen running while a queue stood: its batch size


def fresh(load: EndpointLoad, now: float, stale_s: float) -> bool:
    return load.read_at is not None and now - load.read_at <= stale_s


def ahead(load: EndpointLoad, now: float, stale_s: float) -> float:
    """Requests ahead of a new one at this endpoint."""
    if fresh(load, now, stale_s):
        return load.running + load.waiting + _since(load)
    return float(load.in_flight)


def _since(load: EndpointLoad) -> int:
    """The gateway's requests the reading cannot have seen: sent after it, and not yet finished."""
    return min(load.sent, load.in_flight)


def queue(load: EndpointLoad, now: float, stale_s: float) -> float:
    """Requests waiting at this endpoint for a place in its batch. Those sent since the reading count
    when it already showed a queue, or once they overflow the batch size learnt from earlier readings:
    a server with room admits them into its running batch. Without that, a burst between two scrapes
    would all go to a pool one reading called idle."""
    if fresh(load, now, stale_s):
        if load.waiting > 0:
            return load.waiting + _since(load)
        if load.batch > 0:
            return max(0.0, load.running + _since(load) - load.batch)
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


def _rank(key: int, seed: int) -> int:
    """A well-mixed 64-bit score of (key, endpoint): the endpoint order a key prefers."""
    x = ((key ^ seed) * 0x9E3779B97F4A7C15) & _MASK
    x ^= x >> 31
    x = (x * 0xBF58476D1CE4E5B9) & _MASK
    return x ^ (x >> 29)


def affinity_choice(key: int, seeds: Sequence[int], loads: Sequence[float], bound: float) -> int:
    """The position the key belongs to: the first in its hash order whose load, with this request,
    stays within `bound` × the pool's mean load (with this request)."""
    n = len(loads)
    limit = math.ceil(bound * (sum(loads) + 1) / n)
    ranked = sorted(range(n), key=lambda i: _rank(key, seeds[i]), reverse=True)
    for i in ranked:
        if loads[i] + 1 <= limit:
            return i
    return ranked[0]  # unreachable: some load is at most the mean


def pick(loads: Sequence[float], kvs: Sequence[float | None], seeds: Sequence[int], key: int | None,
         bound: float) -> list[int]:
    """Positions of the pool's endpoints in the order to try them: the affinity choice first (when
    there is a key), then the least loaded; ties keep the order they came in (the planner's random one)."""
    order = sorted(range(len(loads)), key=lambda i: (loads[i], kvs[i] or 0.0))
    if key is not None and len(order) > 1:
        first = affinity_choice(key, seeds, loads, bound)
        order.remove(first)
        order.insert(0, first)
    return order
