"""The kept Responses: chains read back in order, bounded in time and in number."""

from __future__ import annotations

from gateway.state.responses import MemoryResponses


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def user(text: str) -> dict[str, str]:
    return {"type": "message", "role": "user", "content": text}


async def test_a_chain_is_every_item_of_the_conversation_in_order_with_the_last_writer_as_origin() -> None:
    store = MemoryResponses(60, 10, Clock())
    await store.put("resp_1", "openai", None, [user("one"), user("two")])
    await store.put("resp_2", "anthropic", "resp_1", [user("three")])
    prior = await store.chain("resp_2")
    assert prior is not None
    assert (prior.response_id, prior.origin) == ("resp_2", "anthropic")
    assert [i["content"] for i in prior.items] == ["one", "two", "three"]


async def test_an_unknown_id_has_no_chain() -> None:
    assert await MemoryResponses(60, 10, Clock()).chain("resp_nope") is None


async def test_a_response_expires_after_the_ttl() -> None:
    clock = Clock()
    store = MemoryResponses(60, 10, clock)
    await store.put("resp_1", "openai", None, [user("one")])
    clock.now = 59.9
    assert await store.chain("resp_1") is not None
    clock.now = 60.0
    assert await store.chain("resp_1") is None


async def test_the_oldest_response_goes_when_the_bound_is_reached() -> None:
    store = MemoryResponses(60, 2, Clock())
    for n in range(3):
        await store.put(f"resp_{n}", "openai", None, [user(str(n))])
    assert len(store) == 2
    assert await store.chain("resp_0") is None
    assert await store.chain("resp_2") is not None


async def test_a_chain_with_an_expired_link_is_unknown_rather_than_silently_shorter() -> None:
    clock = Clock()
    store = MemoryResponses(60, 10, clock)
    await store.put("resp_1", "openai", None, [user("one")])
    clock.now = 30
    await store.put("resp_2", "openai", "resp_1", [user("two")])
    clock.now = 61
    assert await store.chain("resp_2") is None
