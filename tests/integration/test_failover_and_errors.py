"""Ordered failover, auth, and every error the client can see, in the OpenAI shape with its status."""

from __future__ import annotations

import hashlib

import httpx
import openai
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import GatewayFactory, free_port

HELLO = [{"role": "user", "content": "hello"}]


def post(gw: EmbeddedGateway, body: object, **kw: object) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/chat/completions", json=body, timeout=10, **kw)  # type: ignore[arg-type]


def assert_openai_error(r: httpx.Response, status: int, type_: str, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_
    if code is not None:
        assert error["code"] == code
    return error


def dead_then_sim(dead_port: int) -> str:
    return f"""
    version: 1
    providers:
      dead: {{kind: openai, base_url: "http://127.0.0.1:{dead_port}/v1", api_key: sk-dead}}
      beta: {{kind: sim}}
    routes:
      chat:
        targets:
          - {{provider: dead, model: m1}}
          - {{provider: beta, model: m2}}
    """


def test_a_dead_first_target_fails_over_to_the_next(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(dead_then_sim(free_port()))
    c = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    raw = c.chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    assert raw.headers["x-recloser-provider"] == "beta"
    assert raw.headers["x-recloser-attempts"] == "2"
    stream = c.chat.completions.create(model="chat", messages=HELLO, stream=True)
    assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices).startswith("beta")


@pytest.mark.parametrize("status", [503, 500, 429])
def test_an_upstream_error_status_fails_over(two_sims: EmbeddedGateway, status: int) -> None:
    two_sims.set_fault("alpha", Fault(status=status))
    raw = openai.OpenAI(base_url=two_sims.base_url, api_key="k", max_retries=0) \
        .chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    assert raw.headers["x-recloser-provider"] == "beta"


def test_a_caller_fault_from_the_upstream_is_returned_as_is(two_sims: EmbeddedGateway) -> None:
    two_sims.set_fault("alpha", Fault(status=422))
    r = post(two_sims, {"model": "chat", "messages": HELLO})
    assert r.status_code == 422
    assert r.headers["x-recloser-provider"] == "alpha"
    assert two_sims.sim("beta").request_count() == 0


def test_when_every_target_fails_the_error_names_each_and_why(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(dead_then_sim(free_port()))
    gw.set_fault("beta", Fault(status=500))
    error = assert_openai_error(post(gw, {"model": "chat", "messages": HELLO}), 503, "server_error")
    assert "All 2 targets of route 'chat' failed" in error["message"]
    assert "dead/m1 (connection refused)" in error["message"]
    assert "beta/m2 (HTTP 500)" in error["message"]


def test_all_targets_answering_5xx_is_a_502(two_sims: EmbeddedGateway) -> None:
    for name in ("alpha", "beta"):
        two_sims.set_fault(name, Fault(status=500))
    assert_openai_error(post(two_sims, {"model": "chat", "messages": HELLO}), 502, "server_error")


def test_all_targets_timing_out_is_a_504(start_gateway: GatewayFactory) -> None:
    gw = start_gateway("""
    version: 1
    providers:
      slow: {kind: sim, timeouts: {first_token_s: 0.2, total_s: 0.3}}
    routes:
      chat: {targets: [{provider: slow, model: m}]}
    """)
    gw.set_fault("slow", Fault(hang=True))
    error = assert_openai_error(post(gw, {"model": "chat", "messages": HELLO}), 504, "server_error")
    assert "slow/m (timed out)" in error["message"]


def test_a_stream_broken_mid_way_that_no_target_can_continue_ends_with_an_error_the_sdk_raises(
        two_sims: EmbeddedGateway) -> None:
    two_sims.set_fault("alpha", Fault(cut_after_chunks=3))
    two_sims.set_fault("beta", Fault(status=500))   # the only other target: nothing can resume it
    stream = openai.OpenAI(base_url=two_sims.base_url, api_key="k", max_retries=0) \
        .chat.completions.create(model="chat", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError, match="mid-stream"):
        for _ in stream:
            pass


KEY = "sk-team-search-web"
AUTH_POLICY = f"""
version: 1
providers:
  beta: {{kind: sim}}
routes:
  chat: {{targets: [{{provider: beta, model: m}}]}}
auth:
  keys:
    - {{id: search-web, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}, team: search, app: web}}
"""


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Basic " + KEY, "Token " + KEY])
def test_requests_without_a_known_key_are_refused_with_401(start_gateway: GatewayFactory, header: str | None) -> None:
    gw = start_gateway(AUTH_POLICY)
    headers = {"Authorization": header} if header is not None else {}
    assert_openai_error(post(gw, {"model": "chat", "messages": HELLO}, headers=headers), 401,
                        "invalid_request_error", "invalid_api_key")


def test_a_known_key_is_served(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(AUTH_POLICY)
    answer = openai.OpenAI(base_url=gw.base_url, api_key=KEY, max_retries=0) \
        .chat.completions.create(model="chat", messages=HELLO)
    assert answer.choices[0].message.content


def test_without_an_auth_section_any_key_is_served(two_sims: EmbeddedGateway) -> None:
    r = post(two_sims, {"model": "chat", "messages": HELLO}, headers={"Authorization": "Bearer anything"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b'{"model": "chat", "messages": [', None),
        (b"[1, 2]", None),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "chat"}', "messages"),
        (b'{"model": 7, "messages": []}', "model"),
        (b'{"model": "chat", "messages": "hello"}', "messages"),
        (b'{"model": "chat", "messages": [{"role": "user"}], "stream": "yes"}', "stream"),
        (b'{"model": "chat", "messages": [{"role": "user"}], "max_tokens": "ten"}', "max_tokens"),
    ],
)
def test_malformed_requests_get_400(two_sims: EmbeddedGateway, raw: bytes, param: str | None) -> None:
    r = httpx.post(f"{two_sims.base_url}/chat/completions", content=raw,
                   headers={"Content-Type": "application/json"})
    error = assert_openai_error(r, 400, "invalid_request_error")
    assert error["param"] == param
    assert two_sims.sim("alpha").request_count() == 0


def test_an_unknown_model_is_404_listing_the_routes(two_sims: EmbeddedGateway) -> None:
    error = assert_openai_error(post(two_sims, {"model": "gpt-5", "messages": HELLO}), 404,
                                "invalid_request_error", "model_not_found")
    assert "'chat'" in error["message"] and "'embed'" in error["message"]


def test_an_over_large_body_is_413(start_gateway: GatewayFactory) -> None:
    gw = start_gateway("""
    version: 1
    providers: {beta: {kind: sim}}
    routes: {chat: {targets: [{provider: beta, model: m}]}}
    limits: {max_body_bytes: 2048}
    """)
    big = {"model": "chat", "messages": [{"role": "user", "content": "x" * 4096}]}
    assert_openai_error(post(gw, big), 413, "invalid_request_error", "request_too_large")


def test_an_unknown_path_is_404_in_the_openai_shape(two_sims: EmbeddedGateway) -> None:
    r = httpx.post(f"{two_sims.base_url}/no/such/thing", json={})
    assert_openai_error(r, 404, "invalid_request_error")


def test_errors_carry_the_request_id(two_sims: EmbeddedGateway) -> None:
    r = post(two_sims, {"model": "nope", "messages": HELLO}, headers={"X-Request-Id": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"
