"""What the pool board counts at an endpoint between two scrapes: the last reading, less the gateway's
requests it counted that finished since, plus those the gateway sent since that are still there; and
which replica a request goes to while the pool has room. No sockets, no sleeps: the clock is a list."""

from __future__ import annotations

from gateway.core.metrics import Metrics
from gateway.routing.picker import ahead
from gateway.routing.pool_metrics import Reading
from gateway.routing.pools import PoolBoard, Sent
from gateway.routing.table import PoolSpan, RouteTable
from tests.pools import three_replicas


def board(load: str = "{scrape_s: 1, affinity: none, slots: 4, spill: {queue: 1}}") -> tuple[
        PoolBoard, RouteTable, PoolSpan, list[float]]:
    now = [0.0]
    table = three_replicas(load)
    return PoolBoard(Metrics(), lambda: now[0]), table, table.pools[0], now


def test_requests_sent_since_a_reading_leave_the_count_as_they_finish() -> None:
    b, table, span, now = board()
    d, url = table.deployments[0], span.urls[0]
    b.read(span, url, Reading(running=2, waiting=0, kv=None), 0.0)
    now[0] = 0.1
    tickets = [b.sent(d, (), span) for _ in range(3)]
    assert ahead(b.load(url), now[0], 3.0) == 5
    now[0] = 0.2
    for t in tickets[:2]:
        b.done(d, t)
    # Two of the three came back: one is left beside the two the reading showed.
    assert ahead(b.load(url), now[0], 3.0) == 3


def test_requests_the_reading_counted_leave_it_as_they_finish() -> None:
    b, table, span, now = board()
    d, url = table.deployments[0], span.urls[0]
    early: list[Sent] = [b.sent(d, (), span) for _ in range(2)]
    now[0] = 0.5
    b.read(span, url, Reading(running=2, waiting=0, kv=None), 0.5)
    now[0] = 0.6
    later = b.sent(d, (), span)
    b.done(d, early[0])
    assert ahead(b.load(url), now[0], 3.0) == 2      # one of the reading's two, and the one sent since
    b.done(d, later)
    assert ahead(b.load(url), now[0], 3.0) == 1


def test_requests_sent_while_a_scrape_was_under_way_stay_counted_when_its_reading_lands() -> None:
    b, table, span, now = board()
    d, url = table.deployments[0], span.urls[0]
    asked = now[0] = 1.0
    now[0] = 1.02               # a burst goes out while the scrape is under way …
    for _ in range(4):
        b.sent(d, (), span)
    now[0] = 1.05               # … and the reading, dated when it was asked for, cannot show it
    b.read(span, url, Reading(running=0, waiting=0, kv=None), asked)
    assert ahead(b.load(url), now[0], 3.0) == 4


def test_a_reading_overtaken_by_a_later_one_changes_nothing() -> None:
    b, _, span, now = board()
    url = span.urls[0]
    now[0] = 2.0
    b.read(span, url, Reading(running=3, waiting=1, kv=None), 1.9)
    b.read(span, url, Reading(running=0, waiting=0, kv=None), 1.5)     # asked before the one above
    assert (b.load(url).running, b.load(url).waiting, b.load(url).read_at) == (3, 1, 1.9)


def test_a_replica_past_the_spill_threshold_takes_nothing_while_another_has_room_whatever_the_waits_say() -> None:
    # The pool has room (the first replica has no queue), so a request is let into it; it must go where
    # the room is, even when a few completions made the others' service rate look far faster.
    b, table, span, now = board("{scrape_s: 1, affinity: none, slots: 2, spill: {queue: 1}}")
    for url, waiting in zip(span.urls, (0, 1, 1), strict=True):
        b.read(span, url, Reading(running=2, waiting=waiting, kv=None), 0.0)
    for url, gap in zip(span.urls, (0.3, 0.001, 0.001), strict=True):
        b.load(url).gap_s = gap
    now[0] = 0.01
    pool = list(table.deployments[:3])
    assert not b.full(span, now[0])
    picked = b.repick(span, pool, {"messages": [{"role": "user", "content": "hi"}]}, now[0])
    assert picked[0] is pool[0]
    arranged = b.arrange(table, (1, 2, 0, 3), {"messages": [{"role": "user", "content": "hi"}]}, now[0])
    assert arranged.order[0] == 0
    b.sent(picked[0], (), span)
    assert b.full(span, now[0])     # and once it has gone there, the pool is full


def test_a_replica_holds_at_least_the_gateways_own_requests_whatever_a_racing_reading_said() -> None:
    b, table, span, now = board()
    d, url = table.deployments[0], span.urls[0]
    tickets = [b.sent(d, (), span) for _ in range(4)]
    # The scrape, asked for just after the last one went, was answered before it reached the server.
    now[0] = 0.001
    b.read(span, url, Reading(running=3, waiting=0, kv=None), 0.001)
    assert ahead(b.load(url), now[0], 3.0) == 4
    # One ended at the server before the next scrape answered, and at the gateway just after: the
    # reading left it out and the gateway takes it out too.
    now[0] = 0.25
    b.read(span, url, Reading(running=3, waiting=0, kv=None), 0.25)
    now[0] = 0.26
    b.done(d, tickets[0])
    assert ahead(b.load(url), now[0], 3.0) == 3


def test_a_streams_first_token_teaches_its_endpoints_fit_only_when_it_did_not_wait_for_a_place() -> None:
    from gateway.routing.request_log import AttemptRecord

    b, table, span, now = board("{scrape_s: 1, affinity: none, slots: 1, spill: {queue: 1}}")
    d, url = table.deployments[0], span.urls[0]
    first, second = b.sends(table, ()), b.sends(table, ())
    first.mark(d)
    second.mark(d)          # the batch of one is taken: this one waits
    record = AttemptRecord(d, 0.0, ttft_s=0.03)
    second.close([record], stream=True)
    first.close([record], stream=True)
    assert b.load(url).first_tokens.n == 1
    third = b.sends(table, ())
    third.mark(d)
    third.close([record], stream=False)     # an answer's time is not a first token
    assert b.load(url).first_tokens.n == 1


def test_a_first_token_after_a_wait_counts_as_load_even_once_the_queue_has_drained() -> None:
    b, table, span, now = board("{scrape_s: 1, affinity: none, slots: 1, spill: {queue: 1}}")
    d, url = table.deployments[0], span.urls[0]
    first = b.sent(d, (), span)
    last = b.sent(d, (), span)          # no place for it: it waits behind the first
    now[0] = 0.3
    b.done(d, first)
    b.read(span, url, Reading(running=1, waiting=0, kv=None), 0.3)     # it runs now, nothing waits …
    assert not b.queueing(d)
    assert b.waited(d)                  # … but its first token, when it comes, came after the wait
    b.done(d, last)
    assert not b.waited(d)
