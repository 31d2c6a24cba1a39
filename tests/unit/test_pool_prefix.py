"""Pools: the gateway's picture of the prefixes each replica holds, picking by the longest match, and
spilling by expected wait. Pure, no sockets."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gateway.core.metrics import Metrics
from gateway.routing.picker import EndpointLoad, ahead, expected_wait, pick
from gateway.routing.pool_metrics import Reading
from gateway.routing.pools import PoolBoard
from gateway.routing.spill import UNMEASURED_TTFT_S
from gateway.routing.prefix import CHUNK_BYTES, PrefixPicture, chunk_names, chunks_held, prompt_bytes, prompt_chunks
from gateway.routing.table import RouteTable
from gateway.sim.workload import AgentWorkload, Shape
from tests.pools import three_replicas

SYSTEM = {"role": "system", "content": " ".join(f"rule{i}" for i in range(600))}
TOOLS = [{"type": "function", "function": {"name": f"t{i}", "description": "does things " * 20}} for i in range(5)]


def chat(*turns: dict[str, Any], tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "llama", "messages": [SYSTEM, *turns]}
    if tools:
        body["tools"] = tools
    return body


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_the_next_turn_of_a_conversation_repeats_every_chunk_of_the_last() -> None:
    first = prompt_chunks(chat(user("Plan a trip to Lisbon. " * 30), tools=TOOLS))
    second = prompt_chunks(chat(user("Plan a trip to Lisbon. " * 30), {"role": "assistant", "content": "Sure."},
                                user("Make it three days."), tools=TOOLS))
    assert len(first) > 10 and second[:len(first)] == first


def test_sessions_sharing_a_system_prompt_and_tools_share_its_chunks_and_part_after() -> None:
    a = prompt_chunks(chat(user("question one " * 40), tools=TOOLS))
    b = prompt_chunks(chat(user("another matter " * 40), tools=TOOLS))
    shared = (len(prompt_bytes(chat(tools=TOOLS))) - 1) // CHUNK_BYTES    # the system prompt and tools
    common = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    assert common >= shared - 1 and common < min(len(a), len(b))


def test_the_system_prompt_and_tools_come_first_whatever_api_carries_them() -> None:
    messages_api = {"system": SYSTEM["content"], "tools": TOOLS, "messages": [user("hi " * 300)]}
    chat_api = chat(user("hi " * 300), tools=TOOLS)
    responses_api = {"instructions": SYSTEM["content"], "tools": TOOLS, "input": [user("hi " * 300)]}
    texts = [prompt_bytes(b) for b in (messages_api, chat_api, responses_api)]
    assert texts[0].startswith(SYSTEM["content"].encode()) and texts[2] == texts[0]
    for text in texts:
        assert text.index(b"rule599") < text.index(b"does things") < text.index(b"hi hi")


def test_cache_control_marks_that_move_from_turn_to_turn_do_not_change_the_prefix() -> None:
    marked = {"role": "user", "content": [{"type": "text", "text": "read the file " * 40,
                                          "cache_control": {"type": "ephemeral"}}]}
    plain = {"role": "user", "content": [{"type": "text", "text": "read the file " * 40}]}
    assert prompt_chunks(chat(marked)) == prompt_chunks(chat(plain))


def test_a_picture_matches_the_leading_chunks_it_holds() -> None:
    picture = PrefixPicture(capacity=100)
    held = b"".join(bytes([65 + i]) * CHUNK_BYTES for i in range(4))
    picture.sent(chunk_names(held))
    assert picture.match(chunk_names(held + b"E" * CHUNK_BYTES * 2)) == 4
    assert picture.match(chunk_names(held[:2 * CHUNK_BYTES] + b"Z" * CHUNK_BYTES + held[3 * CHUNK_BYTES:])) == 2
    assert picture.match(chunk_names(b"Z" * CHUNK_BYTES + held)) == 0


def test_a_picture_forgets_the_least_recently_sent_and_a_prompts_head_last() -> None:
    picture = PrefixPicture(capacity=6)
    picture.sent((1, 2, 3, 4))
    picture.sent((10, 11, 12, 13))      # two of the first prompt's chunks go: its tail
    assert len(picture) == 6 and picture.match((1, 2, 3, 4)) == 2 and picture.match((10, 11, 12, 13)) == 4


def test_a_replicas_picture_is_sized_to_the_tokens_its_cache_holds() -> None:
    assert chunks_held(64_000) == 64_000 * 4 // CHUNK_BYTES


def test_the_longest_match_goes_first_while_it_has_a_free_place() -> None:
    # Two requests running on a replica of four places is no reason to prefill elsewhere.
    assert pick([2.0, 0.0, 0.0], [None] * 3, [0.0] * 3, [4.0] * 3, [10, 0, 3], 1.25)[0] == 0


def test_a_match_past_its_bound_gives_way_to_the_next_longest() -> None:
    loads, batches = [6.0, 1.0, 1.0], [4.0] * 3          # the best match is full and far above the mean
    assert pick(loads, [None] * 3, [0.0] * 3, batches, [10, 0, 3], 1.25)[0] == 2
    assert pick(loads, [None] * 3, [0.0] * 3, batches, [10, 0, 3], 10.0)[0] == 0   # a loose bound keeps it


def test_a_match_whose_wait_is_past_the_spill_limit_is_not_taken() -> None:
    order = pick([5.0, 4.0, 5.0], [None] * 3, [0.5, 0.1, 0.3], [4.0] * 3, [10, 0, 3], 10.0, wait_limit=0.4)
    assert order[0] == 2
    order = pick([5.0, 4.0, 5.0], [None] * 3, [0.5, 0.1, 0.6], [4.0] * 3, [10, 0, 3], 10.0, wait_limit=0.4)
    assert order[0] == 1    # no match within the limit: the least wait


def test_without_a_match_the_least_wait_and_then_the_least_full_go_first() -> None:
    assert pick([3.0, 1.0, 2.0], [None] * 3, [0.0, 0.0, 0.0], [8.0, 2.0, 8.0], [0, 0, 0], 1.25) == [2, 0, 1]
    assert pick([3.0, 1.0, 2.0], [None] * 3, [0.2, 0.0, 0.1], [8.0, 2.0, 8.0], None, 1.25) == [1, 2, 0]


def test_requests_of_the_gateways_that_finished_since_the_reading_no_longer_count() -> None:
    load = EndpointLoad(running=4, waiting=2, read_at=10.0, sent=1, in_flight=1, gone=3)
    assert ahead(load, 11.0, stale_s=3.0) == 4


def test_the_expected_wait_is_the_requests_to_leave_first_over_the_service_rate() -> None:
    load = EndpointLoad(running=4, waiting=2, read_at=0.0, batch=4, service_s=0.6)
    # 6 ahead on 4 places: 3 must leave before a new one starts, one every 0.15 s.
    assert abs(expected_wait(load, 0.1, 3.0) - 0.45) < 1e-9
    assert expected_wait(EndpointLoad(running=3, read_at=0.0, batch=4, service_s=0.6), 0.1, 3.0) == 0.0
    assert expected_wait(EndpointLoad(running=4, waiting=2, read_at=0.0, batch=4), 0.1, 3.0) == 0.0  # unmeasured


def route() -> RouteTable:
    return three_replicas("{slots: 4, cache_tokens: 50000, spill: {margin_s: 0.2}}")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def send(board: PoolBoard, table: RouteTable, body: dict[str, Any], order: tuple[int, ...] = (0, 1, 2, 3),
         ttfts: list[float | None] | None = None) -> int:
    """Arranges one request, sends it to the first target, finishes it; its first target's position."""
    arranged = board.arrange(table, order, body, board.clock(), ttfts)
    first = arranged.order[0]
    if first < 3:
        sends = board.sends(table, arranged.chunks)
        sends.mark(table.deployments[first])
        sends.close()
    return first


def test_a_conversation_keeps_its_replica_turn_after_turn() -> None:
    table, board = route(), PoolBoard(Metrics(), Clock())
    work = AgentWorkload(Shape(sessions=1, chat_share=0.0, turns=8), seed=3)
    # The planner's order differs every time; the conversation's replica does not.
    orders = [(0, 1, 2, 3), (2, 0, 1, 3), (1, 2, 0, 3), (2, 1, 0, 3), (0, 2, 1, 3), (1, 0, 2, 3), (2, 0, 1, 3)]
    replicas = [send(board, table, work.next(), order) for order in orders]
    assert len(set(replicas)) == 1


def test_sessions_that_share_a_system_prompt_find_it_warm() -> None:
    table, board = route(), PoolBoard(Metrics(), Clock())
    metrics = board.metrics
    work = AgentWorkload(Shape(agents=1, sessions=10, chat_share=0.0, turns=8), seed=5)
    orders = [(0, 1, 2, 3), (1, 2, 0, 3), (2, 0, 1, 3)]
    replicas = [send(board, table, work.next(), orders[i % 3]) for i in range(10)]
    assert max(replicas.count(r) for r in set(replicas)) >= 8
    lookups = metrics.prefix_lookups("gpus")._value.get()
    hits = metrics.prefix_hits("gpus")._value.get()
    assert lookups == 10 and hits == 9   # all but the first found the system prompt and tools


def test_a_pool_with_a_free_place_never_spills() -> None:
    clock = Clock()
    table, board = route(), PoolBoard(Metrics(), clock)
    span = table.pools[0]
    for url in span.urls:
        board.load(url).service_s = 0.6
    board.read(span, span.urls[0], Reading(running=4, waiting=9, kv=0.5), 0.0)
    board.read(span, span.urls[1], Reading(running=4, waiting=9, kv=0.5), 0.0)
    board.read(span, span.urls[2], Reading(running=3, waiting=0, kv=0.5), 0.0)
    got = board.arrange(table, (0, 1, 2, 3), chat(user("hi")), 0.1, [None, None, None, 0.3])
    assert got.spilled == () and got.order[0] == 2


def test_a_pool_spills_when_its_least_wait_is_longer_than_the_next_targets_first_token_and_margin() -> None:
    table, board = route(), PoolBoard(Metrics(), Clock())
    span = table.pools[0]
    for url in span.urls:
        board.load(url).service_s = 0.6                   # one place frees every 0.15 s
        board.read(span, url, Reading(running=4, waiting=2, kv=0.5), 0.0)
    # 3 to leave first: 0.45 s; the frontier answers in 0.3 s, plus 0.2 s: the pool is still sooner.
    got = board.arrange(table, (0, 1, 2, 3), chat(user("hi")), 0.1, [None, None, None, 0.3])
    assert got.spilled == () and got.order[-1] == 3
    got = board.arrange(table, (0, 1, 2, 3), chat(user("hi")), 0.1, [None, None, None, 0.2])
    assert got.spilled == (span,) and got.order[0] == 3
    # The frontier's first token never measured: taken as a frontier's usual.
    for url in span.urls:
        board.read(span, url, Reading(running=4, waiting=8, kv=0.5), 0.0)
    assert 9 * 0.15 > UNMEASURED_TTFT_S + 0.2
    assert board.arrange(table, (0, 1, 2, 3), chat(user("hi")), 0.1).spilled == (span,)


def test_the_service_time_is_learnt_from_requests_that_started_at_once() -> None:
    clock = Clock()
    table, board = route(), PoolBoard(Metrics(), clock)
    d = table.deployments[0]
    span = table.pools[0]
    board.read(span, span.urls[0], Reading(running=0, waiting=0, kv=0.0), 0.0)
    ticket = board.sent(d, (), span)
    clock.now = 0.6
    board.done(d, ticket)
    assert board.load(d.base_url).service_s == 0.6
    board.read(span, span.urls[0], Reading(running=4, waiting=3, kv=0.5), 0.7)   # full: a newcomer waits
    ticket = board.sent(d, (), span)
    clock.now = 3.0
    board.done(d, ticket)
    assert board.load(d.base_url).service_s == 0.6


def test_a_replica_is_queueing_while_requests_wait_for_its_batch() -> None:
    clock = Clock()
    table, board = route(), PoolBoard(Metrics(), clock)
    span, d = table.pools[0], table.deployments[0]
    board.read(span, span.urls[0], Reading(running=4, waiting=0, kv=0.5), 0.0)
    assert not board.queueing(d)
    board.read(span, span.urls[0], Reading(running=4, waiting=2, kv=0.5), 0.1)
    assert board.queueing(d)
    board.read(span, span.urls[0], Reading(running=3, waiting=0, kv=0.5), 0.2)
    assert not board.queueing(d)
    for _ in range(2):
        board.sent(d, (), span)       # 5 ahead on 4 places, between two scrapes
    assert board.queueing(d)


def test_a_slow_first_token_on_a_queueing_replica_is_load_not_a_brownout() -> None:
    from gateway.flow.attempts import Attempts
    from gateway.routing.breaker import State
    from gateway.routing.health import HealthBoard

    table = route()
    d = table.deployments[0]
    health = HealthBoard(table.deployments, Metrics(), lambda: 0.0, table.breaker)
    attempts = Attempts(lambda _: None, health, Metrics(), lambda: 0.0)   # type: ignore[arg-type,return-value]
    for _ in range(20):
        attempts.report(table, d, True, True, ttft_s=0.02)
    attempts.queueing = lambda _: True
    for _ in range(20):
        attempts.report(table, d, True, True, ttft_s=0.9)    # 45× its baseline: queued behind a full batch
    assert health.healths[d.key].state is State.HEALTHY
    attempts.queueing = lambda _: False
    for _ in range(20):
        attempts.report(table, d, True, True, ttft_s=0.9)    # as slow with room in its batch: a brownout
    assert health.healths[d.key].state is not State.HEALTHY


def test_max_wait_caps_the_wait_a_pool_may_ask_whatever_the_next_target_takes() -> None:
    table = route()
    span = table.pools[0]
    assert span.load.spill is not None
    capped = span.load.spill.model_copy(update={"max_wait_s": 0.05})
    span = replace(span, load=span.load.model_copy(update={"spill": capped}))
    table = replace(table, pools=(span,))
    board = PoolBoard(Metrics(), Clock())
    for url in span.urls:
        board.load(url).service_s = 0.6
        board.read(span, url, Reading(running=4, waiting=0, kv=0.5), 0.0)
    # One to leave first: 0.15 s, well before the frontier's first token, but past the cap.
    got = board.arrange(table, (0, 1, 2, 3), chat(user("hi")), 0.1, [None, None, None, 2.0])
    assert got.spilled == (span,) and got.reasons == ("objective",)


def test_under_a_queue_the_service_rate_is_the_pace_of_completions_not_the_time_each_took() -> None:
    clock = Clock()
    table, board = route(), PoolBoard(Metrics(), clock)
    span, d = table.pools[0], table.deployments[0]
    load = board.load(d.base_url)
    load.service_s = 1.0            # each request took a second through a slow relay …
    board.read(span, span.urls[0], Reading(running=0, waiting=0, kv=0.1), 0.0)
    tickets = [board.sent(d, (), span) for _ in range(10)]      # 4 running, 6 waiting
    for n, ticket in enumerate(tickets[:5]):
        clock.now = 0.05 * (n + 1)                                # … but one left every 50 ms
        board.done(d, ticket)
    assert load.gap_s is not None and abs(load.gap_s - 0.05) < 1e-9
    # 5 ahead on 4 places: 2 must leave before a newcomer starts, 50 ms apart.
    assert abs(expected_wait(load, clock.now, 3.0) - 0.1) < 1e-9
    clock.now += 10.0               # long ago: the mean service time speaks again
    assert load.service_s is not None
    assert abs(expected_wait(load, clock.now, 30.0) - 2 * load.service_s / 4) < 1e-9
