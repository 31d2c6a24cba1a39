"""The waiting room of a full pool: who is let go first, and who a newcomer queues behind."""

from __future__ import annotations

import asyncio

from gateway.core.metrics import Metrics
from gateway.routing.pools import PRIORITIES, PoolBoard, WaitingRoom
from gateway.routing.pool_metrics import Reading
from gateway.routing.table import PoolSpan
from gateway.policy.pools import PoolLoad, Spill


async def test_critical_waiters_are_let_go_before_standard_ones_that_came_earlier() -> None:
    room = WaitingRoom()
    let_go: list[str] = []

    async def wait(name: str, priority: str) -> None:
        await room.wait(PRIORITIES[priority])
        let_go.append(name)

    waiters = [asyncio.create_task(wait("std-1", "standard")), asyncio.create_task(wait("std-2", "standard")),
               asyncio.create_task(wait("crit", "critical"))]
    await asyncio.sleep(0)          # every waiter in line
    for _ in waiters:
        room.wake()
        await asyncio.sleep(0)
    await asyncio.gather(*waiters)
    assert let_go == ["crit", "std-1", "std-2"]


async def test_a_newcomer_queues_behind_waiters_of_its_priority_or_better_only() -> None:
    room = WaitingRoom()
    standard = asyncio.create_task(room.wait(PRIORITIES["standard"]))
    await asyncio.sleep(0)
    assert room.ahead(PRIORITIES["critical"]) == 0
    assert room.ahead(PRIORITIES["standard"]) == 1
    assert room.ahead(PRIORITIES["sheddable"]) == 1
    standard.cancel()
    await asyncio.gather(standard, return_exceptions=True)
    assert len(room) == 0 and room.ahead(PRIORITIES["sheddable"]) == 0


def test_a_reading_with_a_queue_teaches_the_board_the_endpoints_batch_size() -> None:
    board = PoolBoard(Metrics(), lambda: 0.0)
    span = PoolSpan("gpus", (0,), ("http://127.0.0.1:1/v1",), "vllm", PoolLoad(spill=Spill(queue=1)))
    board.read(span, span.urls[0], Reading(running=3, waiting=0, kv=0.2), 0.0)
    assert board.load(span.urls[0]).batch == 0
    board.read(span, span.urls[0], Reading(running=4, waiting=2, kv=0.6), 1.0)
    board.read(span, span.urls[0], Reading(running=2, waiting=0, kv=0.3), 2.0)
    assert board.load(span.urls[0]).batch == 4
    assert not board.full(span, 2.0)
