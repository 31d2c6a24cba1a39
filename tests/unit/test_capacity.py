"""What one process holds is sized at start: descriptors raised to the hard limit, admission from them,
and a collector tuned for many long-lived objects."""

from __future__ import annotations

import gc
import resource

from gateway.serving.capacity import (
    COLLECTOR_THRESHOLDS, FD_RESERVE, in_flight_for, max_in_flight, raise_fd_limit, settle_collector, watch_collector,
)


def test_a_request_in_flight_takes_two_descriptors_after_the_reserve() -> None:
    assert in_flight_for(20_000) == (20_000 - FD_RESERVE) // 2
    assert in_flight_for(100) == 1, "never less than one"


def test_the_policys_limit_wins_and_without_one_the_descriptors_decide() -> None:
    assert max_in_flight(300, fds=20_000) == 300
    assert max_in_flight(None, fds=20_000) == in_flight_for(20_000)


def test_the_soft_limit_on_open_files_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard // 2), hard))
    try:
        assert raise_fd_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def test_settling_freezes_what_start_up_made_and_sets_thresholds_for_long_lived_objects() -> None:
    before = gc.get_threshold()
    start_up = [[i] for i in range(1000)]   # objects a start-up leaves behind
    try:
        settle_collector()
        assert gc.get_threshold() == COLLECTOR_THRESHOLDS
        assert gc.get_freeze_count() >= len(start_up)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_each_collection_is_reported_with_its_generation_and_pause() -> None:
    seen: list[tuple[int, float]] = []
    callback = watch_collector(lambda generation, seconds: seen.append((generation, seconds)))
    try:
        gc.collect(2)
    finally:
        gc.callbacks.remove(callback)
    assert seen and seen[-1][0] == 2 and seen[-1][1] >= 0
