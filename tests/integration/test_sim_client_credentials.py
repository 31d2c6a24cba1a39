"""Simulated providers that take callers' own credentials (`client_credentials`), refusing them as the
real APIs do, read by the official SDKs: an OAuth bearer without its beta flag, an expired token, a
subscription's usage limit with Anthropic's unified headers, a personal OpenAI key out of quota."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator

import anthropic
import httpx
import openai
import pytest

from gateway.sim import Fault, SimConfig, SimServer
from gateway.sim.credentials import ANTHROPIC_OAUTH_EXPIRED, ANTHROPIC_OAUTH_WITHOUT_BETA, OPENAI_QUOTA
from tests.conftest import free_port
from tests.replicas import ENV, ROOT, _stop, _wait_until_answering

OAUTH = "sk-ant-oat01-sim-user-a1b2c3d4"
OTHER = "sk-ant-oat01-sim-user-e5f6a7b8"
BETA = {"anthropic-beta": "oauth-2025-04-20"}
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def claude() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(name="sub", wire="anthropic", client_credentials=True, reply_tokens=3))
    await server.start()
    yield server
    await server.stop()


def client(sim: SimServer, token: str = OAUTH, headers: dict[str, str] | None = None) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=sim.base_url, auth_token=token, max_retries=0,
                                    default_headers=BETA if headers is None else headers)


async def test_an_oauth_bearer_with_its_beta_flag_is_answered(claude: SimServer) -> None:
    m = await client(claude).messages.create(model="m", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    assert m.content[0].type == "text"
    assert claude.requests[-1].headers["Authorization"] == f"Bearer {OAUTH}"


async def test_an_oauth_bearer_without_its_beta_flag_or_no_credential_is_refused(claude: SimServer) -> None:
    with pytest.raises(anthropic.AuthenticationError) as refused:
        await client(claude, headers={}).messages.create(model="m", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    assert ANTHROPIC_OAUTH_WITHOUT_BETA in str(refused.value)
    async with httpx.AsyncClient() as bare:
        answer = await bare.post(f"{claude.base_url}/v1/messages", headers={"anthropic-version": "2023-06-01"},
                                 json={"model": "m", "max_tokens": 20, "messages": HELLO})
    assert answer.status_code == 401 and answer.json()["error"]["type"] == "authentication_error"


async def test_an_expired_token_is_401_authentication_error_for_that_credential_only(claude: SimServer) -> None:
    await claude.set_fault(Fault(status=401, only_credential=OAUTH))
    with pytest.raises(anthropic.AuthenticationError) as refused:
        await client(claude).messages.create(model="m", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    assert refused.value.body == {"type": "error", "error": {"type": "authentication_error",
                                                              "message": ANTHROPIC_OAUTH_EXPIRED},
                                  "request_id": "req_sim"}
    await client(claude, OTHER).messages.create(model="m", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]


async def test_a_usage_limit_is_429_with_the_unified_reset_and_retry_after(claude: SimServer) -> None:
    await claude.set_fault(Fault(status=429, usage_limit_reset_s=300))
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client(claude).messages.create(model="m", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    h = limited.value.response.headers
    assert h["anthropic-ratelimit-unified-status"] == "rejected" and h["retry-after"] == "300"
    assert 290 <= int(h["anthropic-ratelimit-unified-reset"]) - time.time() <= 302
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


async def test_a_personal_openai_key_out_of_quota_is_429_insufficient_quota() -> None:
    server = SimServer(SimConfig(name="mine", wire="openai", client_credentials=True))
    await server.start()
    try:
        await server.set_fault(Fault(status=429, error_code="insufficient_quota"))
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-proj-mine", max_retries=0) as c:
            with pytest.raises(openai.RateLimitError) as limited:
                await c.chat.completions.create(model="m", messages=HELLO)  # type: ignore[arg-type]
        assert limited.value.body == {"message": OPENAI_QUOTA, "type": "insufficient_quota", "param": None,
                                      "code": "insufficient_quota"}
        await server.set_fault(Fault(status=401))
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-proj-mine-abcd", max_retries=0) as c:
            with pytest.raises(openai.AuthenticationError) as refused:
                await c.chat.completions.create(model="m", messages=HELLO)  # type: ignore[arg-type]
        assert refused.value.code == "invalid_api_key" and "sk-***abcd" in refused.value.message
    finally:
        await server.stop()


def test_a_standalone_sim_takes_client_credentials_and_a_usage_limit_fault_as_json() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.sim", "--wire", "anthropic", "--client-credentials",
                             "--port", str(port), "--name", "sub"], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(proc, url + "/_sim/stats", "sim sub")
        httpx.post(url + "/_sim/fault", json={"status": 429, "usage_limit_reset_s": 60, "only_credential": OAUTH},
                   timeout=5).raise_for_status()
        body = {"model": "m", "max_tokens": 9, "messages": HELLO}
        headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "oauth-2025-04-20"}
        limited = httpx.post(url + "/v1/messages", json=body, timeout=5,
                             headers={**headers, "Authorization": f"Bearer {OAUTH}"})
        other = httpx.post(url + "/v1/messages", json=body, timeout=5,
                           headers={**headers, "Authorization": f"Bearer {OTHER}"})
        assert limited.status_code == 429 and limited.headers["anthropic-ratelimit-unified-status"] == "rejected"
        assert other.status_code == 200
    finally:
        _stop(proc)
