"""The admission cap follows the event loop's lag: down when it stays late, back up when on time."""

from __future__ import annotations

import asyncio
import contextlib
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


def saturated(wait_ms: int) -> Admission:
    """Two requests starting, the cap cut to one by a late loop (the timer not running)."""
    a = Admission(max_in_flight=100, max_loop_lag_ms=20, wait_ms=wait_ms)
    a.admit()
    a.admit()
    a.set_cap(1)
    return a


async def test_a_newcomer_the_lag_cap_refuses_is_admitted_when_a_request_starting_gets_under_way() -> None:
    a = saturated(wait_ms=10_000)
    assert not a.admits() and a.may_wait()
    waiting = asyncio.create_task(a.wait_for_room())
    await asyncio.sleep(0)
    assert not waiting.done()
    a.answering()                         # still 1 starting: the cap of 1 has no room yet
    await asyncio.sleep(0)
    assert not waiting.done()
    a.answering()
    assert await waiting is True
    assert (a.in_flight, a.starting) == (3, 1), "admitted as admit() counts it"


async def test_a_newcomer_is_admitted_when_the_cap_rises() -> None:
    a = saturated(wait_ms=10_000)
    waiting = asyncio.create_task(a.wait_for_room())
    await asyncio.sleep(0)
    a.observe(0.0)                        # an on-time tick: the cap rises by one, to 2 (still full)
    a.observe(0.0)
    assert await waiting is True and a.starting == 3


async def test_a_wait_that_runs_out_sheds_and_leaves_nothing_counted() -> None:
    a = saturated(wait_ms=20)
    assert await a.wait_for_room() is False
    assert (a.in_flight, a.starting) == (2, 2) and a.admits() is False
    a.answering()
    a.answering()
    assert a.admits(), "an expired waiter does not hold the line"


async def test_waiters_are_admitted_first_come_first_served_and_newcomers_queue_behind_them() -> None:
    a = saturated(wait_ms=10_000)
    first = asyncio.create_task(a.wait_for_room())
    await asyncio.sleep(0)
    second = asyncio.create_task(a.wait_for_room())
    await asyncio.sleep(0)
    a.set_cap(3)                          # room for one
    await asyncio.sleep(0)
    assert first.done() and not second.done()
    a.set_cap(10)
    assert a.admits() is True             # the line is empty: newcomers go straight in
    assert await second is True


async def test_a_waiter_whose_client_left_is_not_counted() -> None:
    a = saturated(wait_ms=10_000)
    waiting = asyncio.create_task(a.wait_for_room())
    await asyncio.sleep(0)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    a.set_cap(10)
    assert (a.in_flight, a.starting) == (2, 2) and a.admits()


def test_no_wait_for_a_full_max_in_flight_nor_with_the_lag_limit_off() -> None:
    full = Admission(max_in_flight=2, max_loop_lag_ms=20, wait_ms=1000)
    full.admit()
    full.admit()
    assert not full.admits() and not full.may_wait()
    off = Admission(max_in_flight=100, max_loop_lag_ms=0, wait_ms=1000)
    off.set_cap(0)
    assert not off.admits() and not off.may_wait()
    assert not saturated(wait_ms=0).may_wait()


async def test_a_stream_may_wait_longer_than_a_whole_answer_and_waits_as_long_as_it_was_told() -> None:
    a = Admission(max_in_flight=100, max_loop_lag_ms=20, wait_ms=0, stream_wait_ms=2000)
    a.admit()
    a.set_cap(1)
    assert a.streams_wait_longer
    assert not a.may_wait() and not a.may_wait(a.wait_s), "a whole answer is shed at once"
    assert a.may_wait(a.stream_wait_s)
    assert await a.wait_for_room(0.01) is False, "its own wait ran out, not the admission's"
    assert a.waiting == 0
