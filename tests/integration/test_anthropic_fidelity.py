"""litellm is the oracle for our Anthropic translation: each request of the corpus goes through a
client at the provider level (deployment + call + budget) to the Anthropic-wire simulator on
loopback, and the OpenAI-shaped answer must be the one Anthropic's documentation implies. Where
litellm departs from the documentation, the case says so and the documented answer is asserted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from gateway.core.deployment import Deployment
from gateway.policy.schema import Timeouts
from gateway.providers.anthropic_wire import AnthropicWire
from gateway.providers.base import UpstreamClient
from gateway.providers.litellm_bridge import LitellmBridge
from gateway.sim import SimConfig, SimServer
from tests.fidelity.answers import Answer, answer
from tests.fidelity.compare import expected, upstream_view, view
from tests.fidelity.corpus import CASES, Case

pytestmark = pytest.mark.asyncio(loop_scope="module")
KEY = "sk-ant-fidelity-0123456789"
MODEL = "claude-sonnet-4-5"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(name="claude", wire="anthropic", api_key=KEY, reply_tokens=8))
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def litellm() -> AsyncIterator[LitellmBridge]:
    bridge = LitellmBridge()
    await bridge.load()
    yield bridge
    await bridge.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def native() -> AsyncIterator[AnthropicWire]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield AnthropicWire(session)


def deployment(sim: SimServer) -> Deployment:
    # Both clients take the API root without /v1 and append /v1/messages themselves.
    return Deployment(provider="claude", model=MODEL, kind="anthropic", base_url=sim.base_url,
                      timeouts=Timeouts(first_token_s=10, idle_s=10, total_s=20), api_key=KEY)


async def run(sim: SimServer, client: UpstreamClient, d: Deployment, case: Case) -> tuple[Answer, dict[str, Any] | None]:
    """The case's answer through `client`, and the Messages request the simulator received for it."""
    sim.state.prompt_cache.clear()
    await sim.set_fault(None)
    body = {"model": "chat", **case.body}
    if case.warm:
        await answer(client, d, body)
    await sim.set_fault(case.fault)
    sim.reset_log()
    try:
        got = await answer(client, d, body)
    finally:
        await sim.set_fault(None)
    sent = sim.requests[-1].body if sim.requests else None
    return got, sent


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_litellm_answers_as_anthropic_documents(case: Case, sim: SimServer, litellm: LitellmBridge) -> None:
    got, sent = await run(sim, litellm, deployment(sim), case)
    want = expected(case, sent)
    documented, answered = view(want, want), view(got, want)
    assert {k: v for k, v in answered.items() if k not in case.litellm_wrong} == \
        {k: v for k, v in documented.items() if k not in case.litellm_wrong}
    assert all(answered[k] != documented[k] for k in case.litellm_wrong), "litellm now answers as documented"
    if case.sent:
        assert sent is not None
        assert {k: upstream_view(sent)[k] for k in case.sent} == case.sent


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_the_native_wire_answers_as_anthropic_documents(case: Case, sim: SimServer, native: AnthropicWire) -> None:
    got, sent = await run(sim, native, deployment(sim), case)
    want = expected(case, sent)
    assert view(got, want) == view(want, want)
    if case.sent:
        assert sent is not None
        assert {k: upstream_view(sent)[k] for k in case.sent} == case.sent


ANSWERED = [c for c in CASES if c.fault is None and c.expect.failure is None]


@pytest.mark.parametrize("case", ANSWERED, ids=[c.name for c in ANSWERED])
async def test_both_paths_send_anthropic_the_same_request(case: Case, sim: SimServer, litellm: LitellmBridge,
                                                         native: AnthropicWire) -> None:
    _, by_litellm = await run(sim, litellm, deployment(sim), case)
    _, by_native = await run(sim, native, deployment(sim), case)
    assert by_litellm is not None and by_native is not None
    ours, theirs = upstream_view(by_native), upstream_view(by_litellm)
    if "max_tokens" not in case.sent:
        # Without a limit from the client, litellm sends its price map's max output for the model
        # (64,000 here); ours sends the policy's max_output_tokens, else 4096. Both are valid.
        ours.pop("max_tokens"), theirs.pop("max_tokens")
    assert ours == theirs

