"""What one process can hold, settled at start: its file descriptors, the admission limit they allow,
and a garbage collector tuned for a server that keeps thousands of streams open for minutes.

A stream in flight holds two descriptors (the client's connection and the upstream's), so the
default `limits.max_in_flight` follows the descriptors the process may open, after raising the soft
limit to the hard one (a soft limit of 1,024 is a shell's default, not the machine's capacity).

CPython's collector, left at its defaults (700, 10, 10), runs a full collection whenever the objects
that survived grew by a quarter: with thousands of open streams that is a pause of hundreds of
milliseconds every half second, over objects that are mostly alive. What start-up made (modules,
the policy, the routes) is frozen out of every collection, young objects are collected less often,
and a full collection waits much longer: the stream objects that live for minutes are not garbage,
and the cycles that are die young and are found by the younger generations.
"""

from __future__ import annotations

import gc
import resource
import time
from collections.abc import Callable
from typing import Any

FDS_PER_REQUEST = 2         # the client's connection and the upstream's
# Descriptors kept for what is not a request: listeners, the ledger, Redis, simulators, logs, DNS.
FD_RESERVE = 256
# (young, middle, old): a young collection every 20,000 net allocations instead of 700; a full one
# after 100 middle collections (about 20 million allocations) instead of 10, and never before the
# survivors grew by a quarter (CPython's own rule on top).
COLLECTOR_THRESHOLDS = (20_000, 10, 100)


def raise_fd_limit() -> int:
    """Raises the soft limit on open files to the hard one; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return fd_limit()
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):   # a container may refuse; serve within what we have
        pass
    return fd_limit()


def fd_limit() -> int:
    """The descriptors this process may open (the soft limit; 1,048,576 stands in for unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else int(soft)


def in_flight_for(fds: int) -> int:
    """The requests in flight `fds` descriptors hold: two each, after the reserve."""
    return max(1, (fds - FD_RESERVE) // FDS_PER_REQUEST)


def max_in_flight(configured: int | None, fds: int | None = None) -> int:
    """The policy's `limits.max_in_flight`, or when it sets none, what the descriptors hold."""
    if configured is not None:
        return configured
    return in_flight_for(fd_limit() if fds is None else fds)


def settle_collector() -> None:
    """After start-up: collect once, freeze the survivors out of later collections, set thresholds
    for long-lived objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def watch_collector(observe: Callable[[int, float], None]) -> Callable[[str, dict[str, Any]], None]:
    """Tells `observe(generation, seconds)` of each collection's pause; returns the callback, for
    `gc.callbacks.remove`."""
    began = 0.0

    def callback(phase: str, info: dict[str, Any]) -> None:
        nonlocal began
        if phase == "start":
            began = time.perf_counter()
        else:
            observe(int(info.get("generation", 0)), time.perf_counter() - began)

    gc.callbacks.append(callback)
    return callback
