"""Slow and vanishing clients: a request that trickles in is cut off before any upstream is called; a
client that leaves mid-stream stops the upstream at once, and the call is still recorded and charged."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest

from gateway.serving.embedded import EmbeddedGateway
from tests.conftest import GatewayFactory

BODY = b'{"model": "chat", "messages": [{"role": "user", "content": "hello there"}]}'


def policy(ledger: Path) -> str:
    return f"""
    version: 1
    limits: {{request_read_timeout_s: 0.5}}
    providers:
      up:
        kind: sim
        sim: {{reply_tokens: 200, chunk_delay_s: 0.05}}
        models:
          m: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}
    routes:
      chat: {{targets: [{{provider: up, model: m}}]}}
    metering:
      ledger: {{path: "{ledger}"}}
    """


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "spend.jsonl"


@pytest.fixture
def gw(start_gateway: GatewayFactory, ledger: Path) -> EmbeddedGateway:
    return start_gateway(policy(ledger))


def answer(sock: socket.socket) -> bytes:
    return b"".join(iter(lambda: sock.recv(65536), b""))


def test_a_body_that_trickles_in_is_cut_off_with_408_before_any_upstream_call(gw: EmbeddedGateway) -> None:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        started = time.monotonic()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY[:10])
        head, _, body = answer(s).partition(b"\r\n\r\n")
        waited = time.monotonic() - started
    assert head.split(b" ")[1] == b"408"
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert 0.4 < waited < 5
    assert gw.sim("up").request_count() == 0


def test_a_connection_that_never_finishes_its_headers_is_closed_after_the_read_timeout(gw: EmbeddedGateway) -> None:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        started = time.monotonic()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
        assert answer(s) == b""
        assert 0.4 < time.monotonic() - started < 5
    assert gw.sim("up").request_count() == 0


def test_a_client_leaving_mid_stream_stops_the_upstream_within_a_second_and_is_charged(
        gw: EmbeddedGateway, ledger: Path) -> None:
    sim = gw.sim("up")
    body = BODY[:-1] + b', "stream": true}'
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        received = b""
        while received.count(b"data: ") < 5:  # a few tokens in, of a 10-second answer
            chunk = s.recv(65536)
            assert chunk, received
            received += chunk
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    left = time.monotonic()
    gw.run(asyncio.wait_for(sim.state.client_gone.wait(), 5))  # the sim notices at its next write (50 ms)
    assert sim.state.clients_gone[0] - left < 1.0
    gw.run(gw.context.meter.drain())
    [record] = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert record["outcome"] == "error_499"  # 499: the client closed the request
    assert 4 <= record["output_tokens"] < 200
    assert float(record["cost_usd"]) > 0


HEDGED = """
version: 1
providers:
  a: {kind: sim, sim: {reply_tokens: 100, first_token_delay_s: 0.5, chunk_delay_s: 0.05}}
  b: {kind: sim, sim: {reply_tokens: 100, first_token_delay_s: 0.5, chunk_delay_s: 0.05}}
routes:
  chat:
    hedge: {after_s: 0.05, max_percent: 100}
    targets: [{provider: a, model: m}, {provider: b, model: m}]
"""


def test_a_client_leaving_during_a_hedge_stops_both_legs(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(HEDGED)
    body = BODY[:-1] + b', "stream": true}'
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        deadline = time.monotonic() + 5
        while gw.sim("b").request_count() == 0:  # the hedge has started: both legs wait on a first token
            assert time.monotonic() < deadline, "the hedge never started"
            time.sleep(0.01)
    # Neither leg may live on without its client: each upstream finds its caller gone at its first write.
    for name in ("a", "b"):
        gw.run(asyncio.wait_for(gw.sim(name).state.client_gone.wait(), 5))


def test_a_connection_whose_request_came_whole_keeps_no_read_timer_while_it_streams(gw: EmbeddedGateway) -> None:
    body = BODY[:-1] + b', "stream": true}'
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        received = b""
        while received.count(b"data: ") < 2:   # streaming: the request was read whole
            chunk = s.recv(65536)
            assert chunk, received
            received += chunk

        async def timers() -> list[object]:
            assert gw._runner is not None and gw._runner.server is not None
            return [h._headers_due for h in gw._runner.server.connections]   # type: ignore[attr-defined]

        assert gw.run(timers()) == [None]   # the first request's deadline is not kept for the stream's length
