"""The gateway's own pauses are summed from its loop timer and taken out of what providers are judged by."""

from __future__ import annotations

import pytest

from gateway.flow.loop_pauses import TOLERANCE_S, LoopPauses, provider_seconds


def test_a_timer_late_within_its_jitter_is_no_pause() -> None:
    p = LoopPauses()
    for _ in range(1000):
        p.tick(TOLERANCE_S)
    assert p.so_far() == 0.0


def test_lateness_beyond_the_jitter_is_summed() -> None:
    p = LoopPauses()
    p.tick(0.052)
    p.tick(0.001)
    p.tick(0.302)
    assert p.so_far() == pytest.approx(0.05 + 0.3)


def test_the_pause_the_loop_is_in_counts_before_its_tick_runs() -> None:
    p = LoopPauses()
    p.tick(0.102)
    assert p.so_far(overdue_s=0.202) == pytest.approx(0.1 + 0.2)


def test_the_providers_share_of_a_wait_is_what_elapsed_less_the_pauses_and_never_negative() -> None:
    assert provider_seconds(2.0, 1.9) == pytest.approx(0.1)
    assert provider_seconds(0.5, 0.7) == 0.0


def test_a_wait_paused_for_half_or_more_of_it_was_the_gateways_own() -> None:
    from gateway.flow.loop_pauses import gateways_own

    assert gateways_own(3.0, 1.5) and gateways_own(3.0, 2.9)
    assert not gateways_own(3.0, 1.0) and not gateways_own(0.0, 0.0)
