"""Survivors of a young collection are frozen while many requests are in flight, and thawed once the
load has fallen under half of that level."""

from __future__ import annotations

import gc

from gateway.serving.capacity import watch_collector
from gateway.serving.collector_freeze import CollectorFreeze


class Load:
    def __init__(self) -> None:
        self.in_flight = 0
        self.effects: list[str] = []

    def freeze(self) -> CollectorFreeze:
        return CollectorFreeze(1000, lambda: self.in_flight, freeze=lambda: self.effects.append("freeze"),
                               thaw=lambda: self.effects.append("thaw"))


def test_below_its_level_nothing_is_frozen() -> None:
    load = Load()
    freeze = load.freeze()
    load.in_flight = 999
    freeze.collected(0)
    freeze.collected(1)
    freeze.tick()
    assert load.effects == []


def test_from_its_level_the_survivors_of_young_and_middle_collections_are_frozen_not_a_full_ones() -> None:
    load = Load()
    freeze = load.freeze()
    load.in_flight = 1000
    freeze.collected(0)
    freeze.collected(1)
    freeze.collected(2)
    assert load.effects == ["freeze", "freeze"]


def test_what_was_frozen_is_thawed_once_the_load_falls_under_half_the_level() -> None:
    load = Load()
    freeze = load.freeze()
    load.in_flight = 5000
    freeze.collected(0)
    load.in_flight = 500        # half: still a load
    freeze.tick()
    assert load.effects == ["freeze"]
    load.in_flight = 499
    freeze.tick()
    freeze.tick()               # once: nothing frozen since
    assert load.effects == ["freeze", "thaw"]


def test_level_zero_never_freezes() -> None:
    effects: list[str] = []
    freeze = CollectorFreeze(0, lambda: 10_000, freeze=lambda: effects.append("freeze"))
    freeze.collected(0)
    assert effects == []


def test_freezing_from_the_collectors_own_callback_takes_the_survivors_out_of_later_collections() -> None:
    freeze = CollectorFreeze(1, lambda: 1)   # the real gc.freeze, from the callback serving installs
    callback = watch_collector(lambda generation, seconds: freeze.collected(generation))
    frozen_before = gc.get_freeze_count()
    try:
        open_streams = [[i] for i in range(5000)]   # alive across the collection, as open streams are
        gc.collect(0)
        assert gc.get_freeze_count() >= frozen_before + len(open_streams)
        assert freeze.frozen
    finally:
        gc.callbacks.remove(callback)
        gc.unfreeze()
