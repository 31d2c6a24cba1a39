"""The admission cap follows the event loop's lag: down when it stays late, back up when on time."""

from __future__ import annotations

import asyncio
import time

from gateway.flow.admission import TICK_S, Admission


def admission(max_in_flight: int, in_flight: int, *late_ticks: float) -> Admission:
    """An admission (limit 20 ms) with `in_flight` requests starting that has seen `late_ticks`."""
    a = Admission(max_in_flight=max_in_flight, max_loop_lag_ms=20)
    a.in_flight = a.starting = in_flight
    for lag in late_ticks:
        a.observe(lag)
    return a


def test_one_late_tick_is_a_pause_not_saturation() -> None:
    assert admission(100, 50, 0.5).cap == 100


def test_late_ticks_in_a_row_cut_the_cap_below_the_requests_starting() -> None:
    a = admission(100, 50, 0.03, 0.03)
    assert a.cap == 45
    a.in_flight = a.starting = 45
    a.observe(0.03)                      # still late: a further cut, from what is in flight
    assert a.cap == 40
    a.in_flight = a.starting = 0
    a.observe(0.03)
    assert a.cap == 1, "never below one request, so the gateway can tell it has recovered"


def test_on_time_ticks_raise_the_cap_by_one_up_to_max_in_flight() -> None:
    a = admission(10, 8, 0.05, 0.05)
    assert a.cap == 7
    for expected in (8, 9, 10, 10):
        a.observe(0.001)
        assert a.cap == expected


def test_a_lag_at_the_limit_is_on_time() -> None:
    assert admission(10, 10, 0.020, 0.020, 0.020).cap == 10


async def test_the_timer_sees_a_loop_held_busy_and_then_its_recovery() -> None:
    a = Admission(max_in_flight=100, max_loop_lag_ms=5)
    a.in_flight = a.starting = 50
    a.start()
    try:
        await asyncio.sleep(TICK_S)
        for _ in range(4):               # hold the loop well past the limit, tick after tick
            time.sleep(0.03)
            await asyncio.sleep(0)
        assert a.cap < 50 and a.lag_s > 0.005
        a.in_flight = a.starting = 0
        while a.cap < 100:               # on time again: one step per tick, back to the limit
            await asyncio.sleep(TICK_S)
        assert a.lag_s <= 0.005
    finally:
        a.stop()


async def test_a_zero_limit_leaves_admission_to_max_in_flight() -> None:
    a = Admission(max_in_flight=7, max_loop_lag_ms=0)
    a.start()
    time.sleep(0.02)
    await asyncio.sleep(TICK_S * 3)
    assert a.cap == 7 and a.lag_s == 0.0


async def test_the_timer_sums_the_loops_pauses_even_with_the_lag_limit_off() -> None:
    a = Admission(max_in_flight=7, max_loop_lag_ms=0)
    a.start()
    try:
        await asyncio.sleep(TICK_S)
        time.sleep(0.05)                 # the loop held: a pause of the gateway's own
        assert a.paused_s() >= 0.04, "the pause it is in counts before its tick runs"
        await asyncio.sleep(TICK_S * 2)
        assert a.pauses.total_s >= 0.04 and a.cap == 7
    finally:
        a.stop()


async def test_a_lag_limit_turned_on_by_a_reload_applies_at_once() -> None:
    a = Admission(max_in_flight=100, max_loop_lag_ms=0)
    a.in_flight = a.starting = 50
    a.start()
    try:
        a.limit_s = 0.005                # what a reload's retune sets
        await asyncio.sleep(TICK_S)
        for _ in range(4):
            time.sleep(0.03)
            await asyncio.sleep(0)
        assert a.cap < 50
    finally:
        a.stop()


def test_streams_already_answering_do_not_hold_the_cap_down() -> None:
    a = admission(10_000, 0)
    a.in_flight, a.starting = 5_000, 20      # thousands of streams relaying, a few starting
    a.observe(0.05)
    a.observe(0.05)
    assert a.cap == 18 and not a.admits()     # the late loop sheds newcomers…
    a.answering()
    a.answering()
    a.answering()
    assert a.admits()                          # …until the ones starting are under way, not until streams end


def test_max_in_flight_bounds_every_request_whatever_the_cap() -> None:
    a = admission(3, 0)
    for _ in range(3):
        a.admit()
        a.answering()
    assert a.starting == 0 and a.cap == 3 and not a.admits()
    a.leave()
    assert a.admits()
